"""Running an exported model with its own runtime: TensorFlow, LiteRT or ONNX Runtime."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mnistkit._extras import require
from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError
from mnistkit.export._writers import INPUT_NAME, OUTPUT_NAME, SIGNATURE
from mnistkit.quiet import held_back_stderr

# LiteRT's one line on stderr as it first allocates, whatever the log level.
_XNNPACK_NOTE = "INFO: Created TensorFlow Lite XNNPACK delegate"

__all__ = ["ExportedModel", "load_export"]

Quantization = tuple[float, int]


class ExportedModel:
    """An exported model loaded with its runtime, called like a function on images.

    Whatever the format, a call takes float images in [0, 1] and returns float32
    probabilities; for an int8 TFLite model the images are quantized on the way in and
    the probabilities dequantized on the way out, with the scales stored in the file.

    Attributes:
        format: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        path: The file, or the SavedModel's version folder.
        input_dtype: The dtype the model itself takes: ``"float32"`` or ``"int8"``.
        input_quantization: ``(scale, zero_point)`` of an int8 input, else ``None``:
            the model takes ``round(image / scale) + zero_point``.
        output_quantization: ``(scale, zero_point)`` of an int8 output, else ``None``:
            a probability is ``scale * (output - zero_point)``.
    """

    def __init__(
        self,
        format: str,
        path: Path,
        run: Callable[[np.ndarray], np.ndarray],
        *,
        input_quantization: Quantization | None = None,
        output_quantization: Quantization | None = None,
    ) -> None:
        self.format = format
        self.path = path
        self.input_dtype = "float32" if input_quantization is None else "int8"
        self.input_quantization = input_quantization
        self.output_quantization = output_quantization
        self._run = run

    def __call__(self, images: np.ndarray, *, batch_size: int = 500) -> np.ndarray:
        """Return the probabilities (N, 10) for float ``images`` (N, 28, 28, 1) in [0, 1]."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (28, 28, 1):
            raise InvalidArgumentError(
                "Invalid value for argument `images`. Expected float images shaped "
                f"(N, 28, 28, 1) in [0, 1]. Received: images.shape={x.shape}"
            )
        outputs = [
            self._run(x[start : start + batch_size]) for start in range(0, len(x), batch_size)
        ]
        return np.concatenate(outputs) if outputs else np.zeros((0, 10), np.float32)

    def __repr__(self) -> str:
        return f"ExportedModel(format={self.format!r}, path={str(self.path)!r})"


def load_export(path: str | os.PathLike[str]) -> ExportedModel:
    """Load a model that :func:`~mnistkit.export.export_model` wrote, with its own runtime.

    The format is told by the path: a ``.tflite`` file runs in LiteRT
    (``mnistkit[tflite]``), an ``.onnx`` file in ONNX Runtime (``mnistkit[onnx]``), and a
    folder holding ``saved_model.pb``, or numbered version folders that do (the newest is
    taken), in TensorFlow.

    Args:
        path: The exported file or folder.

    Returns:
        The loaded model, which maps float images in [0, 1] to probabilities.

    Raises:
        DataNotFoundError: If nothing exported is at ``path``.
        MissingDependencyError: If the format's runtime is not installed.

    Example:
        >>> import tempfile, pathlib, numpy as np
        >>> from mnistkit import build
        >>> from mnistkit.export import export_model
        >>> folder = pathlib.Path(tempfile.mkdtemp()) / "softmax"
        >>> _ = export_model(build("softmax"), folder, verify=False)
        >>> exported = load_export(folder)
        >>> probabilities = exported(np.zeros((2, 28, 28, 1), np.float32))
        >>> probabilities.shape, float(probabilities[0, 3])  # an untrained softmax: all 0.1
        ((2, 10), 0.10000000149011612)
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".tflite":
        return _load_tflite(path)
    if path.is_file() and path.suffix == ".onnx":
        return _load_onnx(path)
    if path.is_dir():
        return _load_saved_model(_version_folder(path))
    raise DataNotFoundError(
        f"{path}: no exported model (a .tflite or .onnx file, or a SavedModel folder)."
    )


def _version_folder(path: Path) -> Path:
    if (path / "saved_model.pb").is_file():
        return path
    versions = [child for child in path.iterdir() if child.name.isdigit()]
    for version in sorted(versions, key=lambda child: int(child.name), reverse=True):
        if (version / "saved_model.pb").is_file():
            return version
    raise DataNotFoundError(f"{path}: no saved_model.pb in it or in a numbered version folder.")


def _load_saved_model(folder: Path) -> ExportedModel:
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(folder)).signatures[SIGNATURE]
    except (KeyError, OSError, ValueError) as error:
        raise DataFormatError(
            f"{folder}: not a SavedModel with a {SIGNATURE!r} signature ({error})"
        ) from None

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(signature(**{INPUT_NAME: tf.constant(x)})[OUTPUT_NAME])

    return ExportedModel("saved_model", folder, run)


def _load_onnx(path: Path) -> ExportedModel:
    ort = require("onnxruntime", extra="onnx", purpose="Running an ONNX model")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(session.run(None, {input_name: x})[0])

    return ExportedModel("onnx", path, run)


def _load_tflite(path: Path) -> ExportedModel:
    litert = require("ai_edge_litert.interpreter", extra="tflite", purpose="Running a TFLite model")
    interpreter = litert.Interpreter(model_path=str(path))
    source = interpreter.get_input_details()[0]
    target = interpreter.get_output_details()[0]
    into = _quantization(source)
    out = _quantization(target)
    batch = [0]  # the batch size the interpreter is allocated for

    def run(x: np.ndarray) -> np.ndarray:
        if batch[0] != len(x):
            interpreter.resize_tensor_input(source["index"], [len(x), 28, 28, 1])
            with held_back_stderr(
                lambda lines: [x for x in lines if not x.startswith(_XNNPACK_NOTE)]
            ):
                interpreter.allocate_tensors()
            batch[0] = len(x)
        if into is not None:
            scale, zero = into
            x = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        y = np.asarray(interpreter.get_tensor(target["index"]))
        if out is not None:
            scale, zero = out
            y = (scale * (y.astype(np.float32) - zero)).astype(np.float32)
        return y

    return ExportedModel("tflite", path, run, input_quantization=into, output_quantization=out)


def _quantization(details: dict[str, Any]) -> Quantization | None:
    if details["dtype"] != np.int8:
        return None
    scale, zero = details["quantization"]
    return float(scale), int(zero)


def _without_xnnpack_note(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith(_XNNPACK_NOTE)]
