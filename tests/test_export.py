"""Tests of mnistkit.export: SavedModel, TFLite and ONNX files, checked with their runtimes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mnistkit.export
from mnistkit import InvalidArgumentError, build, load_dataset
from mnistkit.errors import ExportError, MissingDependencyError
from mnistkit.export import ExportReport, export_model, load_export
from mnistkit.layers import parameter_count

pytestmark = pytest.mark.extras  # the converters' extras, or a browser

ROUND_TRIPS = [
    pytest.param("saved_model", None, "model", id="saved_model"),
    pytest.param("tflite", None, "model.tflite", id="tflite"),
    pytest.param("tflite", "int8", "model.tflite", id="tflite-int8"),
    pytest.param("onnx", None, "model.onnx", id="onnx"),
]


def _probabilities(model: Any, images: np.ndarray) -> np.ndarray:
    logits = np.asarray(model(images, training=False), np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _needs_runtime(format: str, quantize: str | None) -> None:
    if format == "onnx":
        pytest.importorskip("onnxruntime", reason="mnistkit[onnx] is not installed")
        pytest.importorskip("tf2onnx", reason="mnistkit[onnx] is not installed")
    if format == "tflite":
        pytest.importorskip("ai_edge_litert", reason="mnistkit[tflite] is not installed")


def _check_round_trip(
    model: Any, tmp_path: Path, format: str, quantize: str | None, name: str
) -> ExportReport:
    _needs_runtime(format, quantize)
    report = export_model(model, tmp_path / name, format=format, quantize=quantize)

    test = load_dataset("mnist").test
    expected = _probabilities(model, test.images[:200])
    got = load_export(report.path)(test.images[:200])
    assert report.verified_on == 10_000
    assert report.accuracy is not None
    assert report.keras_accuracy is not None
    assert report.max_difference is not None
    if quantize == "int8":
        assert report.input_dtype == "int8"
        scale, zero = report.input_quantization or (0.0, 0)
        assert scale == pytest.approx(1 / 255)
        assert zero == -128
        assert report.accuracy >= report.keras_accuracy - 0.003
        assert np.abs(got - expected).max() < 0.1
    else:
        assert report.input_dtype == "float32"
        assert report.input_quantization is None
        assert report.max_difference <= 1e-4
        np.testing.assert_allclose(got, expected, atol=1e-4)
    assert report.size_bytes > 0
    return report


@pytest.mark.parametrize(("format", "quantize", "name"), ROUND_TRIPS)
def test_softmax_round_trips_through_each_format(
    trained_softmax: Any, tmp_path: Path, format: str, quantize: str | None, name: str
) -> None:
    report = _check_round_trip(trained_softmax, tmp_path, format, quantize, name)
    assert report.keras_accuracy is not None
    assert report.keras_accuracy > 0.9  # 0.907 after the fixture's 200 steps


def test_litert_export_and_run_write_nothing_to_stderr(
    trained_softmax: Any, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    _needs_runtime("tflite", None)
    capfd.readouterr()

    report = export_model(trained_softmax, tmp_path / "softmax.tflite", format="tflite")
    load_export(report.path)(load_dataset("mnist").test.images[:3])

    assert "XNNPACK" not in capfd.readouterr().err  # LiteRT's INFO line is held back


@pytest.mark.slow
@pytest.mark.parametrize(("format", "quantize", "name"), ROUND_TRIPS)
def test_deep_cnn_round_trips_through_each_format(
    trained_deep_cnn: Any, tmp_path: Path, format: str, quantize: str | None, name: str
) -> None:
    report = _check_round_trip(trained_deep_cnn, tmp_path, format, quantize, name)
    assert report.keras_accuracy is not None
    assert report.keras_accuracy > 0.9


def test_saved_model_is_laid_out_for_tf_serving(trained_softmax: Any, tmp_path: Path) -> None:
    import tensorflow as tf

    first = export_model(trained_softmax, tmp_path / "mnist", verify=False)
    second = export_model(trained_softmax, tmp_path / "mnist", verify=False)

    assert first.path == tmp_path / "mnist" / "1"
    assert second.path == tmp_path / "mnist" / "2"
    assert (second.path / "saved_model.pb").is_file()
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == ["1", "2"]
    signature = tf.saved_model.load(str(second.path)).signatures["serving_default"]
    assert list(signature.structured_input_signature[1]) == ["image"]
    assert list(signature.structured_outputs) == ["probabilities"]
    assert load_export(tmp_path / "mnist").path == second.path  # the newest version


def test_saved_model_stores_each_weight_once(tmp_path: Path) -> None:
    model = build("deep_cnn", seed=0)
    report = export_model(model, tmp_path / "cnn", verify=False)

    weights = sum(p.stat().st_size for p in (report.path / "variables").iterdir())
    assert weights < 1.05 * 4 * parameter_count(model)


def test_existing_version_is_refused(trained_softmax: Any, tmp_path: Path) -> None:
    export_model(trained_softmax, tmp_path / "mnist", verify=False)
    before = sorted(p.name for p in (tmp_path / "mnist").rglob("*"))

    with pytest.raises(InvalidArgumentError, match=r"argument `version`.*version=1"):
        export_model(trained_softmax, tmp_path / "mnist", version=1, verify=False)
    assert sorted(p.name for p in (tmp_path / "mnist").rglob("*")) == before


def test_model_given_as_keras_file_is_exported(trained_softmax: Any, tmp_path: Path) -> None:
    from mnistkit import save_model

    saved = save_model(trained_softmax, tmp_path / "softmax.keras")
    report = export_model(saved, tmp_path / "served", test_data=_small_test())

    assert report.max_difference is not None
    assert report.max_difference <= 1e-4


def test_mixed_precision_model_is_exported_in_float32(tmp_path: Path) -> None:
    import keras

    _needs_runtime("onnx", None)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build("deep_cnn", seed=0)
    finally:
        keras.config.set_dtype_policy("float32")

    report = export_model(model, tmp_path / "m.onnx", format="onnx", test_data=_small_test())

    assert report.max_difference is not None
    assert report.max_difference <= 1e-4


def _small_test() -> tuple[np.ndarray, np.ndarray]:
    test = load_dataset("mnist").test
    return test.images[:300], test.labels[:300]


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"format": "tfjs"}, r"argument `format`\. Expected one of saved_model, tflite, onnx"),
        ({"format": "onnx", "quantize": "int8"}, r"argument `quantize`.*quantize='int8'"),
        ({"format": "tflite", "quantize": "float16"}, r"argument `quantize`"),
        ({"calibration": np.zeros((2, 28, 28, 1))}, r"argument `calibration`.*quantize=None"),
        ({"format": "tflite", "version": 2}, r"argument `version`.*format='tflite'"),
        ({"version": 0}, r"argument `version`.*version=0"),
        (
            {"format": "tflite", "quantize": "int8", "calibration": np.zeros((3, 28, 28))},
            r"calibration\.shape=\(3, 28, 28\)",
        ),
        (
            {"format": "tflite", "quantize": "int8", "calibration": np.full((3, 28, 28, 1), 255.0)},
            r"values in \[0, 1\]",
        ),
        ({"format": "onnx", "path": "out.tflite"}, r"ending in `\.onnx`.*path='.*out\.tflite'"),
        ({"test_data": (np.zeros((3, 28, 28, 1)), np.zeros(2))}, r"argument `test_data`"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(
    tmp_path: Path, options: dict[str, Any], pattern: str
) -> None:
    format = options.get("format", "saved_model")
    name = options.pop("path", {"tflite": "out.tflite", "onnx": "out.onnx"}.get(format, "out"))

    with pytest.raises(InvalidArgumentError, match=pattern):
        export_model(build("softmax"), tmp_path / name, **options)
    assert list(tmp_path.iterdir()) == []


def test_model_of_another_shape_is_refused(tmp_path: Path) -> None:
    import keras

    flat = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])

    with pytest.raises(InvalidArgumentError, match=r"argument `model`.*input_shape=\(None, 784\)"):
        export_model(flat, tmp_path / "flat")
    with pytest.raises(InvalidArgumentError, match=r"Expected a keras\.Model.*type list"):
        export_model([], tmp_path / "nothing")  # type: ignore[arg-type]


def test_saved_model_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").write_text("not a folder")

    with pytest.raises(InvalidArgumentError, match=r"Expected a folder.*which is a file"):
        export_model(build("softmax"), tmp_path / "model")


@pytest.mark.parametrize(
    ("module", "options", "message"),
    [
        (
            "onnxruntime",
            {"format": "onnx"},
            "Checking an ONNX export needs onnxruntime, which is not installed: "
            "pip install 'mnistkit[onnx]'",
        ),
        (
            "tf2onnx",
            {"format": "onnx", "verify": False},
            "Exporting to ONNX needs tf2onnx, which is not installed: pip install 'mnistkit[onnx]'",
        ),
        (
            "ai_edge_litert",
            {"format": "tflite"},
            "Checking a TFLite export needs ai_edge_litert, which is not installed: "
            "pip install 'mnistkit[tflite]'",
        ),
    ],
)
def test_missing_extra_is_named_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    options: dict[str, Any],
    message: str,
) -> None:
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    path = tmp_path / ("model.onnx" if options["format"] == "onnx" else "model.tflite")

    with pytest.raises(MissingDependencyError) as caught:
        export_model(build("softmax"), path, **options)

    assert str(caught.value) == message
    assert isinstance(caught.value, ModuleNotFoundError)
    assert list(tmp_path.iterdir()) == []


def test_missing_runtime_is_named_when_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _needs_runtime("onnx", None)
    path = export_model(build("softmax"), tmp_path / "m.onnx", format="onnx", verify=False).path
    monkeypatch.setitem(sys.modules, "onnxruntime", None)

    with pytest.raises(MissingDependencyError, match=r"pip install 'mnistkit\[onnx\]'$"):
        load_export(path)


def test_failed_int8_check_leaves_no_file(trained_softmax: Any, tmp_path: Path) -> None:
    _needs_runtime("tflite", "int8")
    path = tmp_path / "model.tflite"
    path.write_bytes(b"the previous export")
    blank = np.zeros((50, 28, 28, 1), np.float32)  # calibrates every scale to nothing

    with pytest.raises(ExportError, match=r"int8 export reaches .* accuracy"):
        export_model(trained_softmax, path, format="tflite", quantize="int8", calibration=blank)

    assert path.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]


@pytest.mark.parametrize(
    ("format", "name"), [("saved_model", "mnist"), ("tflite", "m.tflite"), ("onnx", "m.onnx")]
)
def test_interrupted_export_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, format: str, name: str
) -> None:
    _needs_runtime(format, None)

    def interrupt(path: Any) -> Any:
        assert Path(path).exists()  # the converter wrote it, not yet in place
        raise KeyboardInterrupt

    monkeypatch.setattr(mnistkit.export, "load_export", interrupt)

    with pytest.raises(KeyboardInterrupt):
        export_model(build("softmax"), tmp_path / "out" / name, format=format)

    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "out"])
    assert not (tmp_path / "out" / name).exists()


def test_exported_model_refuses_images_of_another_shape(
    trained_softmax: Any, tmp_path: Path
) -> None:
    report = export_model(trained_softmax, tmp_path / "mnist", verify=False)
    exported = load_export(report.path)

    with pytest.raises(InvalidArgumentError, match=r"argument `images`.*images\.shape=\(2, 784\)"):
        exported(np.zeros((2, 784), np.float32))
    assert json.loads(json.dumps(report.as_dict()))["path"] == str(report.path)


def test_load_export_of_nothing_says_what_it_wanted(tmp_path: Path) -> None:
    from mnistkit import DataNotFoundError

    with pytest.raises(DataNotFoundError, match=r"no exported model"):
        load_export(tmp_path / "missing.onnx")
    with pytest.raises(DataNotFoundError, match=r"no saved_model\.pb"):
        load_export(tmp_path)


def test_summary_states_the_input_contract(trained_softmax: Any, tmp_path: Path) -> None:
    _needs_runtime("tflite", "int8")
    report = export_model(
        trained_softmax, tmp_path / "q.tflite", format="tflite", quantize="int8", verify=False
    )

    summary = report.summary()
    assert "Input 'image': int8 (N, 28, 28, 1), round(pixel / 0.00392157) - 128" in summary
    assert "Output 'probabilities': int8 (N, 10), p = 0.00390625 * (q + 128)." in summary
    assert report.verified_on == 0
    assert report.accuracy is None
