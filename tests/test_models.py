"""The registered models, the keep_prob dropout layer, and saving and loading models."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import mnistkit
from mnistkit import (
    DataFormatError,
    DataNotFoundError,
    InvalidArgumentError,
    build,
    list_models,
    load_model,
    model_info,
    read_metadata,
    register_model,
    save_model,
    unregister_model,
)
from mnistkit.layers import (
    KeepProbDropout,
    get_keep_prob,
    mc_dropout,
    parameter_count,
    parameters,
    set_keep_prob,
)

TUTORIAL_PARAMETERS = {"softmax": 7850, "deep_cnn": 3_274_634}
#: The models mnistkit itself registers.
OWN_MODELS = ["deep_cnn", "softmax"]
EXAMPLE_PLUGIN = Path(__file__).parents[1] / "examples" / "mnistkit-plugin-example" / "src"
BAD_KEEP_PROBS = [0, -0.1, 1.5, "a", True, float("nan")]


def _images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, 28, 28, 1), dtype=np.float32)


@pytest.fixture(scope="module")
def deep_cnn() -> keras.Model:
    """A seeded deep_cnn that tests only read."""
    return build("deep_cnn", seed=0)


def _check_ten_finite_logits(name: str) -> None:
    model = build(name)
    logits = np.asarray(model(_images(2)))
    assert logits.shape == (2, 10)
    assert np.isfinite(logits).all()
    assert model_info(model).name == name


# By name, not list_models(): a plugin installed beside mnistkit is not the project's to test.
@pytest.mark.parametrize("name", OWN_MODELS)
def test_each_own_model_maps_a_batch_to_ten_finite_logits(name: str) -> None:
    _check_ten_finite_logits(name)


def test_own_models_are_the_builtin_ones() -> None:
    assert set(OWN_MODELS) <= set(list_models())


def test_example_plugins_model_maps_a_batch_to_ten_finite_logits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE_PLUGIN))
    from mnistkit_plugin_example.models import tiny_mlp

    register_model("example_tiny_mlp")(tiny_mlp)  # its own name: the plugin may be installed
    try:
        _check_ten_finite_logits("example_tiny_mlp")
    finally:
        unregister_model("example_tiny_mlp")


@pytest.mark.parametrize(("name", "count"), TUTORIAL_PARAMETERS.items())
def test_builtin_models_have_the_tutorials_parameter_counts(name: str, count: int) -> None:
    model = build(name)
    assert parameter_count(model) == count
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == count


def test_deep_cnn_has_the_tutorials_layers(deep_cnn: keras.Model) -> None:
    shapes = {w.path: tuple(w.shape) for w in parameters(deep_cnn)}
    assert shapes == {
        "conv1/kernel": (5, 5, 1, 32),
        "conv1/bias": (32,),
        "conv2/kernel": (5, 5, 32, 64),
        "conv2/bias": (64,),
        "fc1/kernel": (7 * 7 * 64, 1024),
        "fc1/bias": (1024,),
        "logits/kernel": (1024, 10),
        "logits/bias": (10,),
    }


def test_deep_cnn_biases_start_at_one_tenth(deep_cnn: keras.Model) -> None:
    for layer in ("conv1", "conv2", "fc1", "logits"):
        bias = np.asarray(deep_cnn.get_layer(layer).bias)
        assert (bias == np.float32(0.1)).all(), layer


def test_deep_cnn_kernels_are_normal_with_stddev_one_tenth_truncated_at_two_sigma(
    deep_cnn: keras.Model,
) -> None:
    for layer in ("conv1", "conv2", "fc1", "logits"):
        kernel = np.asarray(deep_cnn.get_layer(layer).kernel)
        assert np.abs(kernel).max() <= 0.2, layer
    fc1 = np.asarray(deep_cnn.get_layer("fc1").kernel)
    assert np.abs(fc1).max() > 0.199
    assert abs(fc1.mean()) < 1e-3
    # A normal of stddev 0.1 cut at +-0.2 has a stddev of 0.1 * 0.8796.
    assert fc1.std() == pytest.approx(0.08796, abs=5e-4)


def test_deep_cnn_seed_fixes_the_initial_weights(deep_cnn: keras.Model) -> None:
    same, other = build("deep_cnn", seed=0), build("deep_cnn", seed=1)
    kernel = np.asarray(deep_cnn.get_layer("conv1").kernel)
    np.testing.assert_array_equal(np.asarray(same.get_layer("conv1").kernel), kernel)
    assert not np.array_equal(np.asarray(other.get_layer("conv1").kernel), kernel)


def test_softmax_starts_at_zero_and_outputs_zero_logits() -> None:
    model = build("softmax")
    assert all(not np.asarray(w).any() for w in model.weights)
    assert not np.asarray(model(_images(3))).any()


@pytest.mark.parametrize("value", BAD_KEEP_PROBS)
def test_keep_prob_outside_zero_one_is_rejected_in_keras_wording(
    deep_cnn: keras.Model, value: object
) -> None:
    expected = (
        "Invalid value for argument `keep_prob`. Expected a float in (0, 1]. "
        f"Received: keep_prob={value!r}"
    )
    with pytest.raises(InvalidArgumentError) as from_build:
        build("deep_cnn", keep_prob=value)
    with pytest.raises(InvalidArgumentError) as from_layer:
        KeepProbDropout(keep_prob=value)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError) as from_setter:
        set_keep_prob(deep_cnn, value)  # type: ignore[arg-type]
    assert str(from_build.value) == str(from_layer.value) == str(from_setter.value) == expected
    assert get_keep_prob(deep_cnn) == 0.5


def test_keep_prob_dropout_drops_only_in_training_and_rescales_what_it_keeps() -> None:
    layer = KeepProbDropout(keep_prob=0.75, seed=3)
    ones = np.ones((1, 20_000), np.float32)

    trained = np.asarray(layer(ones, training=True))
    again = np.asarray(layer(ones, training=True))

    np.testing.assert_allclose(np.unique(trained), [0.0, 1 / 0.75], rtol=1e-6)
    assert (trained == 0).mean() == pytest.approx(0.25, abs=0.02)
    assert not np.array_equal(trained, again)  # each call draws a new mask
    np.testing.assert_array_equal(np.asarray(layer(ones)), ones)
    np.testing.assert_array_equal(np.asarray(layer(ones, training=False)), ones)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="counts tf.function traces")
def test_set_keep_prob_changes_a_variable_without_retracing() -> None:
    model = build("deep_cnn", keep_prob=0.5, seed=0)
    images = _images(4)

    @tf.function
    def forward(batch: tf.Tensor) -> tf.Tensor:
        return model(batch, training=True)

    dropped = forward(images).numpy()
    previous = set_keep_prob(model, 1.0)
    kept = forward(images).numpy()

    assert forward.experimental_get_tracing_count() == 1
    assert (previous, get_keep_prob(model)) == (0.5, 1.0)
    np.testing.assert_allclose(kept, np.asarray(model(images)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(dropped, kept, atol=1e-3)


def test_keep_prob_and_sampling_switch_inside_a_compiled_predict(tmp_path: Path) -> None:
    model = build("deep_cnn", keep_prob=0.5, seed=0)
    images = _images(4)
    plain = model.predict(images, verbose=0)  # compiled once, on any backend
    with mc_dropout(model, keep_prob=0.5):
        sampled = model.predict(images, verbose=0)
    with mc_dropout(model, keep_prob=1.0):
        kept = model.predict(images, verbose=0)
    assert not np.allclose(plain, sampled, atol=1e-3)
    np.testing.assert_allclose(kept, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(images, verbose=0), plain, rtol=1e-5, atol=1e-5)


def test_models_without_dropout_have_no_keep_prob() -> None:
    model = build("softmax")
    assert get_keep_prob(model) is None
    assert set_keep_prob(model, 0.5) is None


def test_save_and_load_keep_the_keep_prob_and_the_dropout_stream(tmp_path: Path) -> None:
    model = build("deep_cnn", keep_prob=0.5, seed=0)
    set_keep_prob(model, 0.3)
    images = _images(2)
    model(images, training=True)  # one mask drawn: the loaded model must draw the next one

    path = save_model(model, tmp_path / "cnn.keras", metadata={"steps": 3})
    loaded = load_model(path)

    assert [p.name for p in tmp_path.iterdir()] == ["cnn.keras"]
    assert read_metadata(path) == {"steps": 3}
    assert get_keep_prob(loaded) == pytest.approx(0.3)
    assert loaded.get_layer("dropout").get_config()["keep_prob"] == pytest.approx(0.3)
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(model(images)), atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(loaded(images, training=True)),
        np.asarray(model(images, training=True)),
        atol=1e-6,
    )


def test_keep_prob_dropout_is_a_registered_keras_serializable() -> None:
    assert keras.saving.get_registered_name(KeepProbDropout) == "mnistkit>KeepProbDropout"
    assert keras.saving.get_registered_object("mnistkit>KeepProbDropout") is KeepProbDropout
    assert mnistkit.KeepProbDropout is KeepProbDropout

    layer = KeepProbDropout(keep_prob=0.7, seed=5, name="drop")
    config = keras.saving.serialize_keras_object(layer)
    copy = keras.saving.deserialize_keras_object(json.loads(json.dumps(config)), safe_mode=True)

    assert type(copy) is KeepProbDropout
    assert (copy.name, copy.get_config()["keep_prob"], copy.seed) == ("drop", 0.7, 5)


def test_load_model_of_a_missing_file_raises_data_not_found(tmp_path: Path) -> None:
    path = tmp_path / "missing.keras"
    with pytest.raises(DataNotFoundError, match="no such model file") as caught:
        load_model(path)
    assert str(path) in str(caught.value)
    with pytest.raises(DataNotFoundError):
        read_metadata(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({}, "not a .keras model file"),
        ({"metadata.json": "{}"}, "not a Keras model file"),
        ({"config.json": "{not json"}, "its config.json is not valid JSON"),
        ({"config.json": '{"class_name": "Nothing", "config": {}}'}, "could not be loaded"),
    ],
    ids=["not-a-zip", "no-config", "bad-json", "unknown-class"],
)
def test_load_model_of_something_else_raises_data_format_error(
    tmp_path: Path, content: dict[str, str], message: str
) -> None:
    path = tmp_path / "model.keras"
    if content:
        with zipfile.ZipFile(path, "w") as archive:
            for name, text in content.items():
                archive.writestr(name, text)
    else:
        path.write_text("not a zip")
    with pytest.raises(DataFormatError, match=message) as caught:
        load_model(path)
    assert str(path) in str(caught.value)


def test_save_model_refuses_a_name_without_the_keras_suffix(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"ending in `\.keras`"):
        save_model(build("softmax"), tmp_path / "model.h5")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_leaves_no_file_behind(tmp_path: Path) -> None:
    class FailingModel:
        def save(self, path: Path) -> None:
            Path(path).write_bytes(b"partial")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_model(FailingModel(), tmp_path / "model.keras")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_importing_mnistkit_and_listing_does_not_import_tensorflow() -> None:
    code = (
        "import sys, mnistkit\n"
        "from mnistkit.compat import input_data\n"
        "mnistkit.list_models(); mnistkit.describe_models(); mnistkit.list_datasets()\n"
        "mnistkit.model_recipes('deep_cnn')\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- plain Keras models


def test_keras_loads_a_saved_deep_cnn_after_importing_mnistkit_alone(tmp_path: Path) -> None:
    path = tmp_path / "cnn.keras"
    save_model(build("deep_cnn", seed=0), path)
    for loader in ("keras.saving.load_model", "tf.keras.models.load_model"):
        code = (
            "import mnistkit, keras, tensorflow as tf\n"
            f"model = {loader}({str(path)!r})\n"
            "print(type(model.get_layer('dropout')).__name__, mnistkit.model_info(model).name)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.split() == ["KeepProbDropout", "deep_cnn"]


def test_several_built_models_fit_in_one_keras_model() -> None:
    inputs = keras.Input((28, 28, 1))
    first, second = build("deep_cnn", seed=1), build("deep_cnn", seed=2)
    assert first.name != second.name
    ensemble = keras.Model(inputs, keras.layers.Average()([first(inputs), second(inputs)]))
    assert parameter_count(ensemble) == 2 * TUTORIAL_PARAMETERS["deep_cnn"]
    on_top = keras.Sequential([build("softmax"), keras.layers.Softmax()])
    assert on_top(_images(1)).shape == (1, 10)
    named = build("softmax", name="mine")
    assert named.name == "mine"


def test_a_probability_model_trains_with_kerass_probability_losses() -> None:
    from mnistkit import load_dataset

    mnist = load_dataset("mnist", one_hot=True)
    model = build("softmax", output="probabilities")
    assert model_info(model).output == "probabilities"
    np.testing.assert_allclose(np.asarray(model(_images(3))).sum(axis=1), 1.0, rtol=1e-6)
    keras.utils.set_random_seed(0)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    model.fit(mnist.train.images[:30_000], mnist.train.labels[:30_000], batch_size=100,
              epochs=1, verbose=0)  # fmt: skip
    _, accuracy = model.evaluate(mnist.test.images, mnist.test.labels, verbose=0)
    assert accuracy >= 0.9


def test_a_built_model_says_what_it_outputs_in_its_summary() -> None:
    lines: list[str] = []
    build("deep_cnn", output="probabilities").summary(print_fn=lines.append)
    assert any("output_probabilities" in line for line in lines)


def test_a_clone_drops_as_the_original_once_its_dropout_state_is_copied() -> None:
    from mnistkit.layers import copy_dropout_state

    model = build("deep_cnn", seed=3)
    images = _images(2)
    model(images, training=True)  # the original has drawn a mask
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    assert not np.allclose(clone(images, training=True), model(images, training=True))
    copy_dropout_state(model, clone)
    np.testing.assert_allclose(clone(images, training=True), model(images, training=True))
