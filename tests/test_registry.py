"""The generic registry, the model registry, and plugins declared by real entry-point metadata."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from mnistkit import (
    InvalidArgumentError,
    MnistkitError,
    PluginConflictWarning,
    PluginError,
    UnknownNameError,
    build,
    describe_models,
    list_datasets,
    list_models,
    load_dataset,
    model_info,
    model_recipes,
    register_model,
)
from mnistkit import models as models_module
from mnistkit.registry import Registry, normalize_name

if TYPE_CHECKING:
    from conftest import Plugins


@pytest.fixture
def widgets() -> Registry[Any]:
    return Registry("widget", group="mnistkit.test_widgets", lister="widgets()")


def _factory(result: str = "widget") -> Any:
    def factory(*, size: int = 1, colour: str = "red") -> str:
        """Make a widget."""
        return f"{result} {size} {colour}"

    return factory


# A fresh registry ------------------------------------------------------------------------


def test_registering_a_taken_name_raises_unless_override(widgets: Registry[Any]) -> None:
    first, second = _factory("first"), _factory("second")
    widgets.register("gear")(first)

    with pytest.raises(InvalidArgumentError, match="widget name 'gear' is already registered"):
        widgets.register("Gear")(second)
    assert widgets.get("gear") is first

    widgets.register("gear", override=True)(second)
    assert widgets.get("gear") is second


def test_names_are_normalised_at_registration_and_lookup(widgets: Registry[Any]) -> None:
    factory = widgets.register("Deep-CNN")(_factory())

    assert widgets.names() == ["deep_cnn"]
    assert widgets.get("deep_cnn") is factory
    assert widgets.get(" DEEP cnn ") is factory
    assert widgets.entry("Deep_CNN").name == "deep_cnn"
    assert normalize_name("Deep-CNN") == normalize_name("deep_cnn") == "deep_cnn"
    with pytest.raises(InvalidArgumentError, match="already registered"):
        widgets.register("deep_cnn")(_factory())


@pytest.mark.parametrize(
    "name", ["", "   ", "-net", "_net", ".net", "a/b", "naïve", "net!", 3, None]
)
def test_invalid_names_are_rejected_at_registration_and_lookup(
    widgets: Registry[Any], name: Any
) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Invalid value for argument `name`\. Expected"):
        widgets.register(name)
    with pytest.raises(InvalidArgumentError, match=r"Received: name="):
        widgets.get(name)


def test_registering_something_not_callable_is_rejected(widgets: Registry[Any]) -> None:
    with pytest.raises(InvalidArgumentError, match="Expected a callable"):
        widgets.register("gear")(42)
    assert widgets.names() == []


def test_unknown_name_suggests_close_matches(widgets: Registry[Any]) -> None:
    widgets.register("deep_cnn")(_factory())
    widgets.register("softmax")(_factory())

    with pytest.raises(LookupError) as caught:
        widgets.get("Deep-CN")

    assert isinstance(caught.value, UnknownNameError)
    assert isinstance(caught.value, MnistkitError)
    assert str(caught.value) == (
        "Unknown widget 'deep_cn'. Did you mean 'deep_cnn'? "
        "Registered widgets: deep_cnn, softmax. List them with widgets()."
    )


def test_unknown_name_without_close_match_lists_what_is_registered(
    widgets: Registry[Any],
) -> None:
    widgets.register("softmax")(_factory())
    with pytest.raises(UnknownNameError) as caught:
        widgets.create("transformer")
    assert "Did you mean" not in str(caught.value)
    assert "Registered widgets: softmax." in str(caught.value)


def test_unregister_removes_a_name_and_rejects_unknown_ones(widgets: Registry[Any]) -> None:
    widgets.register("gear")(_factory())
    widgets.unregister("Gear")
    assert widgets.names() == []
    with pytest.raises(UnknownNameError, match="Unknown widget 'gear'"):
        widgets.unregister("gear")


def test_names_are_sorted_and_filtered_with_fnmatch(widgets: Registry[Any]) -> None:
    for name in ["zeta_net", "Big-CNN", "alpha_net", "cnn_small"]:
        widgets.register(name)(_factory())

    assert widgets.names() == ["alpha_net", "big_cnn", "cnn_small", "zeta_net"]
    assert widgets.names("*net") == ["alpha_net", "zeta_net"]
    assert widgets.names("*CNN*") == ["big_cnn", "cnn_small"]
    assert widgets.names("[ab]*") == ["alpha_net", "big_cnn"]
    assert widgets.names("nothing*") == []
    assert [entry.name for entry in widgets.entries("*net")] == ["alpha_net", "zeta_net"]


def test_create_names_the_factory_and_its_arguments_when_one_is_wrong(
    widgets: Registry[Any],
) -> None:
    widgets.register("gear")(_factory())
    widgets.register("blank")(lambda: "blank")

    assert widgets.create("Gear", size=2) == "widget 2 red"
    with pytest.raises(InvalidArgumentError) as caught:
        widgets.create("gear", shape="round")
    assert str(caught.value).startswith("The widget 'gear' does not accept those arguments (")
    assert str(caught.value).endswith("Accepted arguments: size, colour.")
    with pytest.raises(InvalidArgumentError, match="Accepted arguments: none"):
        widgets.create("blank", size=1)


def test_entries_say_where_each_name_comes_from(widgets: Registry[Any]) -> None:
    widgets.register("gear")(_factory())
    (entry,) = widgets.entries()
    assert (entry.origin, entry.source, entry.summary) == ("local", "local", "Make a widget.")
    assert entry.target == f"{__name__}:_factory.<locals>.factory"
    assert entry.distribution is None


# The model registry ----------------------------------------------------------------------


def test_builtin_models_are_listed_sorted_and_described() -> None:
    names = list_models()
    assert {"deep_cnn", "softmax"} <= set(names)
    assert names == sorted(names)
    assert list_models("*CNN*") == ["deep_cnn"]
    entries = {entry.name: entry for entry in describe_models()}
    assert entries["softmax"].origin == "built-in"
    assert entries["softmax"].target == "mnistkit.models:softmax"
    assert entries["deep_cnn"].summary.startswith("The tutorial's deep MNIST network")


def test_model_lookup_normalises_names() -> None:
    assert models_module.MODELS.get("Deep-CNN") is models_module.deep_cnn
    assert model_recipes("DEEP CNN")["default"].steps == 20_000


def test_model_registry_refuses_a_second_softmax() -> None:
    with pytest.raises(InvalidArgumentError, match="'softmax' is already registered"):
        register_model("Softmax")(lambda: None)


@pytest.mark.parametrize(
    ("name", "kwargs", "accepted"),
    [("softmax", {"keep_prob": 0.5}, "none"), ("Deep-CNN", {"dropout": 0.5}, "keep_prob, seed")],
)
def test_build_with_an_unknown_argument_names_the_model_and_what_it_accepts(
    name: str, kwargs: dict[str, Any], accepted: str
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        build(name, **kwargs)
    message = str(caught.value)
    assert f"The model {normalize_name(name)!r} does not accept those arguments" in message
    assert message.endswith(f"Accepted arguments: {accepted}.")


def test_unknown_model_suggests_a_close_match() -> None:
    with pytest.raises(UnknownNameError) as caught:
        build("deep-cn")
    assert isinstance(caught.value, LookupError)
    assert "Did you mean 'deep_cnn'?" in str(caught.value)
    assert "mnistkit.list_models()" in str(caught.value)


# Plugins from entry-point metadata -------------------------------------------------------


FAKE_NET = """
from mnistkit import Recipe, with_recipes


@with_recipes(default=Recipe(optimizer="sgd", learning_rate=0.1, steps=10))
def fake_net(*, width: int = 4):
    '''A small model of a plugin.'''
    import keras

    inputs = keras.Input((28, 28, 1))
    hidden = keras.layers.Dense(width, name="hidden")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, keras.layers.Dense(10)(hidden), name="fake")


def not_a_model():
    '''A factory that returns something else.'''
    return "not a model"
"""


def test_plugin_is_listed_and_described_without_being_imported(plugins: Plugins) -> None:
    plugins.install(
        "fake-widgets",
        {"mnistkit.models": {"Fake-Net": "fake_widgets_models:fake_net"}},
        {"fake_widgets_models.py": FAKE_NET},
    )

    assert "fake_net" in list_models()
    assert list_models("fake*") == ["fake_net"]
    (entry,) = describe_models("fake_net")
    assert models_module.MODELS.entry("FAKE-NET") == entry
    assert models_module.MODELS.plugin_modules() >= {"fake_widgets_models"}

    assert entry.origin == "plugin"
    assert entry.distribution == "fake-widgets 1.0"
    assert entry.source == "plugin (fake-widgets 1.0)"
    assert entry.target == "fake_widgets_models:fake_net"
    assert entry.summary == "Models of fake-widgets."
    assert "fake_widgets_models" not in sys.modules


def test_plugin_is_imported_and_built_on_first_use(plugins: Plugins) -> None:
    plugins.install(
        "fake-widgets",
        {"mnistkit.models": {"fake_net": "fake_widgets_models:fake_net"}},
        {"fake_widgets_models.py": FAKE_NET},
    )
    assert "fake_widgets_models" not in sys.modules

    model = build("fake-net", width=8)

    assert "fake_widgets_models" in sys.modules
    assert model_info(model).name == "fake_net"
    assert model.get_layer("hidden").units == 8
    assert model_recipes("fake_net")["default"].learning_rate == 0.1
    with pytest.raises(InvalidArgumentError, match=r"Accepted arguments: width\."):
        build("fake_net", depth=2)


def test_plugin_in_a_package_is_found_by_its_top_level_module(plugins: Plugins) -> None:
    plugins.install(
        "packaged-widgets",
        {"mnistkit.models": {"packaged_net": "packaged_widgets.nets:fake_net"}},
        {"packaged_widgets/__init__.py": "", "packaged_widgets/nets.py": FAKE_NET},
    )
    assert "packaged_widgets" in models_module.MODELS.plugin_modules()
    assert "packaged_widgets" not in sys.modules
    assert model_info(build("packaged_net")).name == "packaged_net"


def test_plugin_that_fails_to_import_raises_plugin_error_while_others_keep_working(
    plugins: Plugins,
) -> None:
    plugins.install(
        "mixed-widgets",
        {
            "mnistkit.models": {
                "broken_net": "mixed_broken:fake_net",
                "good_net": "mixed_good:fake_net",
            }
        },
        {"mixed_broken.py": "raise RuntimeError('boom')\n", "mixed_good.py": FAKE_NET},
    )

    with pytest.raises(PluginError) as caught:
        build("broken_net")

    error = caught.value
    assert isinstance(error, ImportError)
    assert isinstance(error, MnistkitError)
    assert isinstance(error.__cause__, RuntimeError)
    assert str(error.__cause__) == "boom"
    for part in ("'broken_net'", "mixed-widgets 1.0", "'mixed_broken:fake_net'", "RuntimeError"):
        assert part in str(error)
    assert {"broken_net", "good_net"} <= set(list_models())
    assert describe_models("broken_net")[0].origin == "plugin"
    assert model_info(build("good_net")).name == "good_net"
    assert models_module.MODELS.get("good_net").__module__ == "mixed_good"
    with pytest.raises(PluginError):  # a failed import is not cached as a success
        build("broken_net")


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("odd_widgets:missing", r"could not be loaded .*AttributeError"),
        ("odd_widgets:CONSTANT", r"points at 'odd_widgets:CONSTANT', which is not callable"),
    ],
)
def test_plugin_entry_that_is_not_a_factory_raises_plugin_error(
    plugins: Plugins, target: str, message: str
) -> None:
    plugins.install(
        "odd-widgets",
        {"mnistkit.models": {"odd_net": target}},
        {"odd_widgets.py": "CONSTANT = 42\n"},
    )
    with pytest.raises(PluginError, match=message):
        build("odd_net")


def test_plugin_factory_that_returns_no_model_is_refused_in_one_line(plugins: Plugins) -> None:
    plugins.install(
        "fake-widgets",
        {"mnistkit.models": {"not_a_model": "fake_widgets_models:not_a_model"}},
        {"fake_widgets_models.py": FAKE_NET},
    )
    with pytest.raises(InvalidArgumentError, match="its factory returned a str"):
        build("not_a_model")


def test_plugin_clashing_with_a_builtin_loses_with_a_warning(plugins: Plugins) -> None:
    plugins.install(
        "rogue-widgets",
        {"mnistkit.models": {"softmax": "rogue_widgets:fake_net"}},
        {"rogue_widgets.py": FAKE_NET},
    )

    with pytest.warns(PluginConflictWarning) as caught:
        names = list_models()

    assert str(caught[0].message) == (
        "Plugin rogue-widgets 1.0 declares the model 'softmax', which is already built-in "
        "(mnistkit.models:softmax); the built-in entry wins and the plugin's is ignored."
    )
    assert names.count("softmax") == 1
    (entry,) = describe_models("softmax")
    assert entry.origin == "built-in"
    assert any("rogue-widgets 1.0" in note for note in entry.notes)
    assert models_module.MODELS.get("softmax") is models_module.softmax
    assert "rogue_widgets" not in sys.modules


def test_two_plugins_with_one_name_first_by_distribution_name_wins(plugins: Plugins) -> None:
    # beta is installed last, so it comes first on sys.path: the order must not matter.
    for distribution in ("alpha-widgets", "beta-widgets"):
        module = distribution.replace("-", "_")
        plugins.install(
            distribution,
            {"mnistkit.models": {"shared_net": f"{module}:fake_net"}},
            {f"{module}.py": FAKE_NET},
        )

    with pytest.warns(PluginConflictWarning) as caught:
        (entry,) = describe_models("shared_net")

    assert str(caught[0].message) == (
        "Plugins alpha-widgets 1.0 and beta-widgets 1.0 both declare the model 'shared_net'; "
        "alpha-widgets 1.0 wins (first by distribution name) and the other is ignored."
    )
    assert entry.distribution == "alpha-widgets 1.0"
    assert entry.notes == ("also declared by plugin beta-widgets 1.0, which is ignored",)
    assert model_info(build("shared_net")).name == "shared_net"
    assert models_module.MODELS.get("shared_net").__module__ == "alpha_widgets"
    assert "beta_widgets" not in sys.modules


def test_plugin_entry_point_with_an_invalid_name_is_skipped_with_a_warning(
    plugins: Plugins,
) -> None:
    plugins.install(
        "sloppy-widgets",
        {"mnistkit.models": {"bad/name": "sloppy_widgets:fake_net", "ok_net": "x:y"}},
    )
    with pytest.warns(PluginConflictWarning, match="Ignoring model entry point 'bad/name'"):
        names = list_models()
    assert "ok_net" in names


def test_dataset_plugins_are_read_from_their_own_group(plugins: Plugins) -> None:
    source = """
        import numpy as np

        from mnistkit import Datasets


        def blank(*, validation_size: int = 2):
            '''Ten blank digits.'''
            x, y = np.zeros((10, 28, 28), np.uint8), np.arange(10, dtype=np.uint8)
            return Datasets.from_arrays(x, y, x, y, validation_size=validation_size)
    """
    plugins.install(
        "blank-digits",
        {"mnistkit.datasets": {"blank": "blank_digits:blank"}},
        {"blank_digits.py": source},
    )

    assert "blank" in list_datasets()
    assert "blank" not in list_models()
    assert "blank_digits" not in sys.modules
    assert load_dataset("blank", validation_size=4).train.num_examples == 6


def test_uninstalling_restores_the_registries(plugins: Plugins) -> None:
    before = list_models()
    plugins.install(
        "fake-widgets",
        {"mnistkit.models": {"fake_net": "fake_widgets_models:fake_net"}},
        {"fake_widgets_models.py": FAKE_NET},
    )
    build("fake_net")

    plugins.uninstall_all()

    assert list_models() == before
    assert "fake_widgets_models" not in sys.modules
    with pytest.raises(UnknownNameError):
        build("fake_net")
