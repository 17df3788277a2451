"""Pretrained weights: the shipped sets score what their metadata says, and the mechanism
(declare, write, check, load) works for a plugin's model as for the built-ins."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import keras
import numpy as np
import pytest

from mnistkit import (
    DataFormatError,
    DataNotFoundError,
    InvalidArgumentError,
    Predictor,
    UnknownNameError,
    Weights,
    build,
    list_models,
    load_dataset,
    model_info,
    model_weights,
    register_model,
    unregister_model,
    with_recipes,
    with_weights,
)
from mnistkit.layers import parameter_count, parameters
from mnistkit.recipes import Recipe
from mnistkit.weights import write_weights

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ["deep_cnn", "softmax"]
TINY_RECIPE = Recipe(optimizer="sgd", learning_rate=0.1, steps=10, batch_size=10, name="default")


def test_list_models_pretrained_lists_the_models_that_ship_weights() -> None:
    assert list_models(pretrained=True) == SHIPPED
    assert list_models("*cnn*", pretrained=True) == ["deep_cnn"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_metadata_records_how_the_weights_were_made(name: str) -> None:
    weights = model_weights(name)["mnist"]
    meta = weights.meta

    assert meta["model"] == name
    assert meta["parameters"] == parameter_count(build(name))
    assert meta["sha256"]
    assert meta["size_bytes"] == weights.path.stat().st_size
    assert meta["dtype"] == "float16"
    assert meta["license"].startswith("CC BY-SA 3.0")
    assert set(meta["versions"]) >= {"mnistkit", "keras", "tensorflow"}
    assert meta["test_examples"] == 10_000
    assert meta["test_errors"] == round((1 - meta["test_accuracy"]) * 10_000)
    assert meta["test_accuracy"] > (0.99 if name == "deep_cnn" else 0.9)


@pytest.mark.parametrize("name", SHIPPED)
def test_the_recorded_command_reproduces_the_recorded_recipe_and_seed(name: str) -> None:
    meta = model_weights(name)["mnist"].meta
    spec = importlib.util.spec_from_file_location("make_weights", ROOT / "tools/make_weights.py")
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)

    words = shlex.split(meta["command"])
    assert words[:2] == ["python", "tools/make_weights.py"]
    args = tool.parse_args(words[2:])

    assert args.model == name
    assert (args.recipe or "default") == meta["recipe"]["name"]
    assert args.seed == meta["seed"]
    assert args.dtype == meta["dtype"]
    assert tool.command_of(args) == meta["command"]
    assert name != "deep_cnn" or meta["recipe"]["name"] == "best"


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_pretrained_model_scores_its_metadata_accuracy_within_two_images(name: str) -> None:
    meta = model_weights(name)["mnist"].meta
    result = Predictor(build(name, weights="mnist")).evaluate(load_dataset("mnist").test)

    errors = round((1 - result["accuracy"]) * result["examples"])
    assert abs(errors - meta["test_errors"]) <= 2, (errors, meta["test_errors"])


def test_a_pretrained_model_is_built_for_the_recipe_it_was_trained_with() -> None:
    model = build("deep_cnn", weights="mnist")
    info = model_info(model)

    assert info is not None
    assert info.recipe is not None
    assert info.recipe.name == "best"
    assert info.recipe == Recipe.from_dict(model_weights("deep_cnn")["mnist"].meta["recipe"])
    assert model.get_layer("dropout").get_config()["keep_prob"] == 0.5


def test_a_recipe_given_with_weights_is_kept_and_the_weights_still_load() -> None:
    fast = build("deep_cnn", weights="mnist", recipe="fast")
    shipped = build("deep_cnn", weights="mnist")

    assert model_info(fast).recipe.name == "fast"
    assert fast.get_layer("dropout").get_config()["keep_prob"] == 0.75
    for mine, theirs in zip(parameters(fast), parameters(shipped), strict=True):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_probability_output_with_weights_gives_the_softmax_of_the_logits() -> None:
    images = load_dataset("mnist").test.images[:8].reshape(-1, 28, 28, 1)
    logits = np.asarray(build("softmax", weights="mnist")(images))
    probabilities = np.asarray(build("softmax", weights="mnist", output="probabilities")(images))

    np.testing.assert_allclose(probabilities, keras.ops.softmax(logits), atol=1e-6)


def test_unknown_weights_name_lists_the_models_weights() -> None:
    with pytest.raises(UnknownNameError, match=r"no weights 'imagenet'\. Its weights: mnist\."):
        build("softmax", weights="imagenet")


def test_weights_must_be_a_name_or_weights() -> None:
    with pytest.raises(InvalidArgumentError, match="Invalid value for argument `weights`"):
        build("softmax", weights=3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the mechanism, for a plugin


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable package, as a plugin's, to hold weight files."""
    folder = tmp_path / "weights_plugin"
    (folder / "weights").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield folder
    sys.modules.pop("weights_plugin", None)


def _tiny_mlp(hidden: int) -> keras.Model:
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Rescaling(1.0)(inputs))
    x = keras.layers.Dense(hidden, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def _register(name: str, hidden: int, weights: dict[str, Weights]) -> None:
    @register_model(name)
    @with_recipes(default=TINY_RECIPE)
    @with_weights(**weights)
    def factory() -> keras.Model:
        """A tiny perceptron."""
        return _tiny_mlp(hidden)


def _write(model: keras.Model, package: Path, stem: str) -> dict[str, object]:
    return write_weights(
        model,
        package / "weights" / f"{stem}.npz",
        meta={"model": "tiny_mlp", "recipe": TINY_RECIPE.as_dict(), "test_accuracy": 0.5},
    )


def test_a_plugin_ships_weights_that_build_loads_in_float16(package: Path) -> None:
    trained = _tiny_mlp(8)
    for variable in trained.weights:
        variable.assign(np.random.default_rng(1).normal(size=variable.shape))
    written = _write(trained, package, "tiny_mlp-mnist")
    _register("tiny_mlp", 8, {"mnist": Weights("weights_plugin", "weights/tiny_mlp-mnist.npz")})
    try:
        assert "tiny_mlp" in list_models(pretrained=True)
        model = build("tiny_mlp", weights="mnist")
    finally:
        unregister_model("tiny_mlp")

    assert written["parameters"] == parameter_count(trained)
    for loaded, original in zip(model.weights, trained.weights, strict=True):
        rounded = original.numpy().astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(loaded.numpy(), rounded)
    assert model_info(model).recipe == TINY_RECIPE


def test_a_damaged_weights_file_fails_its_sha256_check(package: Path) -> None:
    _write(_tiny_mlp(8), package, "tiny_mlp-mnist")
    path = package / "weights" / "tiny_mlp-mnist.npz"
    payload = bytearray(path.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    path.write_bytes(bytes(payload))
    _register("tiny_mlp", 8, {"mnist": Weights("weights_plugin", "weights/tiny_mlp-mnist.npz")})
    try:
        with pytest.raises(DataFormatError, match=r"SHA-256 \w+ is not the \w+ its"):
            build("tiny_mlp", weights="mnist")
    finally:
        unregister_model("tiny_mlp")


def test_weights_of_another_architecture_are_refused_naming_the_weight(package: Path) -> None:
    _write(_tiny_mlp(8), package, "tiny_mlp-mnist")
    _register("tiny_mlp", 16, {"mnist": Weights("weights_plugin", "weights/tiny_mlp-mnist.npz")})
    try:
        with pytest.raises(DataFormatError, match=r"the array for '.*kernel' is shaped \(784, 8\)"):
            build("tiny_mlp", weights="mnist")
    finally:
        unregister_model("tiny_mlp")


def test_pickled_objects_in_a_weights_file_are_never_loaded(package: Path) -> None:
    _write(_tiny_mlp(8), package, "tiny_mlp-mnist")
    path = package / "weights" / "tiny_mlp-mnist.npz"
    np.savez(path, **{"0000": np.array([{"code": "anything"}], dtype=object)})
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    weights = Weights("weights_plugin", "weights/tiny_mlp-mnist.npz")

    with pytest.raises(DataFormatError, match=r"not an \.npz of arrays"):
        weights.arrays()


def test_weights_replaced_by_nan_and_rehashed_are_refused_naming_the_weight(
    package: Path,
) -> None:
    model = _tiny_mlp(8)
    _write(model, package, "tiny_mlp-mnist")
    path = package / "weights" / "tiny_mlp-mnist.npz"
    arrays = [np.full(variable.shape, np.nan, np.float16) for variable in model.weights]
    np.savez_compressed(path, **{f"{index:04d}": array for index, array in enumerate(arrays)})
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta_path.write_text(json.dumps(meta))
    _register("tiny_mlp", 8, {"mnist": Weights("weights_plugin", "weights/tiny_mlp-mnist.npz")})
    try:
        with pytest.raises(DataFormatError) as caught:
            build("tiny_mlp", weights="mnist")
    finally:
        unregister_model("tiny_mlp")
    assert f"the array for weight {model.weights[0].path!r} holds NaN" in str(caught.value)


def test_weights_whose_metadata_names_another_model_are_refused(package: Path) -> None:
    _write(_tiny_mlp(8), package, "tiny_mlp-mnist")  # its metadata says tiny_mlp
    _register("other_mlp", 8, {"mnist": Weights("weights_plugin", "weights/tiny_mlp-mnist.npz")})
    try:
        with pytest.raises(DataFormatError) as caught:
            build("other_mlp", weights="mnist")
    finally:
        unregister_model("other_mlp")
    message = str(caught.value)
    assert message.endswith("these weights are for the model 'tiny_mlp', not 'other_mlp'.")
    assert "\n" not in message


def test_oversized_weight_metadata_is_refused_before_it_is_read(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(_tiny_mlp(8), package, "tiny_mlp-mnist")
    meta_path = package / "weights" / "tiny_mlp-mnist.json"
    with meta_path.open("ab") as handle:
        handle.truncate(300 * 2**20)  # 300 MB, sparse: trailing zero bytes
    reads: list[int] = []
    original = json.loads
    monkeypatch.setattr(
        json, "loads", lambda text, **kw: reads.append(len(text)) or original(text, **kw)
    )
    weights = Weights("weights_plugin", "weights/tiny_mlp-mnist.npz")

    with pytest.raises(DataFormatError, match="holds more than the 1,048,576 bytes"):
        weights.meta  # noqa: B018
    assert reads == []


def test_a_model_without_weights_says_so() -> None:
    _register("tiny_mlp", 8, {})
    try:
        with pytest.raises(UnknownNameError, match="'tiny_mlp' has no pretrained weights"):
            build("tiny_mlp", weights="mnist")
        assert "tiny_mlp" not in list_models(pretrained=True)
    finally:
        unregister_model("tiny_mlp")


def test_write_weights_refuses_weights_that_overflow_float16(tmp_path: Path) -> None:
    model = _tiny_mlp(8)
    model.weights[0].assign(np.full(model.weights[0].shape, 1e6, np.float32))

    with pytest.raises(InvalidArgumentError, match="finite in float16"):
        write_weights(model, tmp_path / "big.npz", meta={"model": "x", "recipe": {}})
    assert not list(tmp_path.iterdir())
    write_weights(model, tmp_path / "big.npz", meta={"model": "x", "recipe": {}}, dtype="float32")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json", "big.npz"]


def test_weights_of_a_package_not_installed_say_so() -> None:
    weights = Weights("no_such_package_here", "weights/x.npz")

    with pytest.raises(DataNotFoundError, match="'no_such_package_here', which is not installed"):
        weights.meta  # noqa: B018


def test_with_weights_takes_only_weights() -> None:
    with pytest.raises(InvalidArgumentError, match="Expected a Weights"):
        with_weights(mnist="weights/x.npz")  # type: ignore[arg-type]


def test_weights_name_an_npz_file() -> None:
    with pytest.raises(InvalidArgumentError, match="Invalid value for argument `file`"):
        Weights("mnistkit", "data/weights/deep_cnn-mnist.json")
