"""Checks at the boundary of :func:`~mnistkit.export.export_model`: settings, paths, data."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit.datasets import load_dataset
from mnistkit.errors import InvalidArgumentError
from mnistkit.validation import invalid

if TYPE_CHECKING:
    import keras

#: The formats :func:`~mnistkit.export.export_model` writes.
FORMATS = ("saved_model", "tflite", "onnx")
_SUFFIXES = {"tflite": ".tflite", "onnx": ".onnx"}


def resolve_model(model: Any) -> keras.Model:
    if isinstance(model, (str, os.PathLike)):
        from mnistkit.saving import load_model

        return load_model(model, compile=False)
    import keras

    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(
            "Invalid value for argument `model`. Expected a keras.Model or the path of a "
            f".keras file. Received: model of type {type(model).__name__}"
        )
    input_shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    if input_shape != (None, 28, 28, 1) or tuple(model.output_shape) != (None, 10):
        raise InvalidArgumentError(
            "Invalid value for argument `model`. Expected a model from images shaped "
            f"(None, 28, 28, 1) to 10 outputs. Received: input_shape={model.input_shape}, "
            f"output_shape={model.output_shape}"
        )
    return model


def check_choices(format: str, quantize: str | None, calibration: Any, version: int | None) -> None:
    if format not in FORMATS:
        raise invalid("format", f"one of {', '.join(FORMATS)}", format)
    if quantize not in (None, "int8") or (quantize and format != "tflite"):
        raise InvalidArgumentError(
            "Invalid value for argument `quantize`. Expected None, or 'int8' with "
            f"format='tflite'. Received: quantize={quantize!r} with format={format!r}"
        )
    if calibration is not None and quantize is None:
        raise InvalidArgumentError(
            "Invalid value for argument `calibration`. Expected None unless quantize='int8'. "
            "Received: calibration images with quantize=None"
        )
    if version is not None and (
        format != "saved_model"
        or isinstance(version, bool)
        or not isinstance(version, int)
        or version < 1
    ):
        raise InvalidArgumentError(
            "Invalid value for argument `version`. Expected a positive integer with "
            f"format='saved_model', or None. Received: version={version!r} with format={format!r}"
        )


def check_path(path: Path, format: str) -> Path:
    suffix = _SUFFIXES.get(format)
    if suffix is not None and path.suffix != suffix:
        raise InvalidArgumentError(
            f"Invalid value for argument `path`. Expected a file name ending in `{suffix}` "
            f"for format={format!r}. Received: path={str(path)!r}"
        )
    if suffix is None and path.is_file():
        raise InvalidArgumentError(
            "Invalid value for argument `path`. Expected a folder for the SavedModel's "
            f"versions. Received: path={str(path)!r}, which is a file"
        )
    return path


def check_images(images: Any) -> np.ndarray:
    array = np.asarray(images)
    if (
        array.ndim != 4
        or array.shape[1:] != (28, 28, 1)
        or len(array) == 0
        or not np.issubdtype(array.dtype, np.floating)
        or not np.isfinite(array).all()
        or array.min() < 0.0
        or array.max() > 1.0
    ):
        raise InvalidArgumentError(
            "Invalid value for argument `calibration`. Expected float images shaped "
            f"(N, 28, 28, 1) with values in [0, 1]. Received: calibration.shape={array.shape}, "
            f"dtype={array.dtype}"
        )
    return array.astype(np.float32)


def version_folder(folder: Path, version: int | None) -> Path:
    """Return ``folder/version``, or the next free version folder for ``None``."""
    if version is None:
        taken = [int(child.name) for child in folder.glob("*") if child.name.isdigit()]
        version = max(taken, default=0) + 1
    final = folder / str(version)
    if final.exists():
        raise InvalidArgumentError(
            "Invalid value for argument `version`. Expected a version not yet exported to "
            f"{str(folder)!r}. Received: version={version} (the folder {str(final)!r} exists)"
        )
    return final


def test_arrays(test_data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return ``test_data`` as float images (N, 28, 28, 1) and integer labels (N,)."""
    if test_data is None:
        test_data = load_dataset("mnist").test
    if hasattr(test_data, "images") and hasattr(test_data, "labels"):
        images, labels = np.asarray(test_data.images), np.asarray(test_data.labels)
    elif isinstance(test_data, (tuple, list)) and len(test_data) == 2:
        images, labels = np.asarray(test_data[0]), np.asarray(test_data[1])
    else:
        images, labels = np.zeros((0,)), np.zeros((1,))
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if (
        images.shape[1:] not in ((28, 28, 1), (784,))
        or len(images) == 0
        or labels.shape != (len(images),)
    ):
        raise InvalidArgumentError(
            "Invalid value for argument `test_data`. Expected a Split or an (images, labels) "
            "pair: images (N, 28, 28, 1) or (N, 784), labels (N,) or one-hot (N, 10). "
            f"Received: test_data of type {type(test_data).__name__}"
        )
    return images.astype(np.float32).reshape(-1, 28, 28, 1), labels
