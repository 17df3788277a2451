"""Exporting a trained model to where models run: TF Serving, LiteRT (TFLite) and ONNX.

Every export takes the same input and gives the same output, whatever the format:

- input ``image``: float32 images shaped (N, 28, 28, 1), white digits on black with values
  in [0, 1], as :func:`~mnistkit.load_dataset` and :func:`~mnistkit.images.prepare_image`
  give them (int8 TFLite: the same images quantized, see :class:`ExportReport`);
- output ``probabilities``: float32 (N, 10) class probabilities that sum to 1. mnistkit's
  models output logits, so a softmax is appended to the exported graph.

After writing, each export is loaded with its own runtime and checked on the 10,000 MNIST
test images against the Keras model; a disagreement fails the export. Files are written
atomically: a failed export leaves nothing at the destination.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit._extras import require
from mnistkit._files import atomic_folder, atomic_path
from mnistkit.datasets import load_dataset
from mnistkit.errors import ExportError, MnistkitError
from mnistkit.export._checks import (
    FORMATS,
    check_choices,
    check_images,
    check_path,
    resolve_model,
    test_arrays,
    version_folder,
)
from mnistkit.export._runtimes import ExportedModel, load_export
from mnistkit.export._writers import (
    probability_model,
    write_onnx,
    write_saved_model,
    write_tflite,
)

if TYPE_CHECKING:
    import keras

    from mnistkit.datasets import Split

__all__ = ["FORMATS", "ExportReport", "ExportedModel", "export_model", "load_export"]

#: The largest difference from the Keras model's probabilities a float export may show.
FLOAT_TOLERANCE = 1e-4
#: The most accuracy (a fraction) an int8 export may lose against the Keras model.
INT8_ACCURACY_LOSS = 0.003
#: How many training images calibrate an int8 export unless told otherwise.
CALIBRATION_IMAGES = 500


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What :func:`export_model` wrote, the input it takes, and how it was checked.

    Attributes:
        format: ``"saved_model"``, ``"tflite"`` or ``"onnx"``.
        quantize: ``"int8"`` or ``None``.
        path: The file written, or the SavedModel's version folder (``PATH/1``).
        size_bytes: The size of the file, or of all the folder's files.
        input_dtype: ``"float32"``, or ``"int8"`` for int8 TFLite.
        input_quantization: For an int8 input, ``(scale, zero_point)``: the model
            takes ``round(image / scale) + zero_point``, which for images in [0, 1] is
            ``(1/255, -128)``, a uint8 pixel minus 128. ``None`` for float input.
        output_quantization: For an int8 output, ``(scale, zero_point)``: a probability
            is ``scale * (output - zero_point)``. ``None`` for float output.
        verified_on: How many test images checked the export; 0 when not verified.
        accuracy: The export's accuracy on those images, or ``None``.
        keras_accuracy: The Keras model's accuracy on the same images, or ``None``.
        max_difference: The largest difference between the export's probabilities and
            the Keras model's, or ``None``.

    Example:
        >>> from pathlib import Path
        >>> report = ExportReport("onnx", None, Path("digits.onnx"), 31_400)
        >>> print(report.summary())
        Wrote digits.onnx (onnx, 0.0 MB).
        Input 'image': float32 (N, 28, 28, 1), values in [0, 1].
        Output 'probabilities': float32 (N, 10).
    """

    format: str
    quantize: str | None
    path: Path
    size_bytes: int
    input_dtype: str = "float32"
    input_quantization: tuple[float, int] | None = None
    output_quantization: tuple[float, int] | None = None
    verified_on: int = 0
    accuracy: float | None = None
    keras_accuracy: float | None = None
    max_difference: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready values, the path as a string.

        Example:
            >>> report = ExportReport("onnx", None, Path("digits.onnx"), 31_400)
            >>> report.as_dict()["path"], report.as_dict()["size_bytes"]
            ('digits.onnx', 31400)
        """
        values = dataclasses.asdict(self)
        values["path"] = str(self.path)
        return values

    def summary(self) -> str:
        """Return a few lines for people: what was written, its contract, the check."""
        kind = self.format + (f" {self.quantize}" if self.quantize else "")
        lines = [f"Wrote {self.path} ({kind}, {self.size_bytes / 1e6:.1f} MB)."]
        if self.input_quantization is None:
            lines.append("Input 'image': float32 (N, 28, 28, 1), values in [0, 1].")
        else:
            scale, zero = self.input_quantization
            lines.append(
                "Input 'image': int8 (N, 28, 28, 1), round(pixel / "
                f"{scale:.6g}) {_signed(zero)} for pixels in [0, 1]."
            )
        if self.output_quantization is None:
            lines.append("Output 'probabilities': float32 (N, 10).")
        else:
            scale, zero = self.output_quantization
            lines.append(
                f"Output 'probabilities': int8 (N, 10), p = {scale:.6g} * (q {_signed(-zero)})."
            )
        if self.verified_on:
            lines.append(
                f"Checked on {self.verified_on:,} test images: accuracy {self.accuracy:.2%} "
                f"(Keras {self.keras_accuracy:.2%}), largest difference from Keras "
                f"{self.max_difference:.1e}."
            )
        return "\n".join(lines)


def export_model(
    model: keras.Model | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    format: str = "saved_model",
    quantize: str | None = None,
    calibration: np.ndarray | None = None,
    version: int | None = None,
    verify: bool = True,
    test_data: Split | tuple[np.ndarray, np.ndarray] | None = None,
) -> ExportReport:
    """Export a model for serving, checked against the Keras model after writing.

    - ``"saved_model"``: a TensorFlow SavedModel laid out for TF Serving, a numbered
      version folder under ``path`` (``path/1/saved_model.pb``, ``path/1/variables/``),
      with a ``serving_default`` signature from ``image`` to ``probabilities``.
    - ``"tflite"``: a LiteRT (TFLite) flatbuffer, float32; with ``quantize="int8"``,
      fully integer (int8 weights, activations, input and output), calibrated on
      ``calibration`` images.
    - ``"onnx"``: an ONNX file from Keras's exporter (``mnistkit[onnx]``).

    Args:
        model: A ``keras.Model`` from images (N, 28, 28, 1) to 10 logits, or the path
            of a ``.keras`` file saved by :func:`~mnistkit.save_model`.
        path: The destination: the base folder of a SavedModel, else a file ending in
            ``.tflite`` or ``.onnx``. A file there is replaced.
        format: One of :data:`FORMATS`.
        quantize: ``"int8"`` (TFLite only) or ``None``.
        calibration: Float images (N, 28, 28, 1) in [0, 1] whose value ranges set the
            int8 scales; ``None`` takes the first 500 MNIST training images.
        version: The SavedModel's version folder; ``None`` takes one more than the
            highest already under ``path``, or 1.
        verify: Load the export with its runtime and compare it with the Keras model on
            ``test_data``: float formats must stay within 1e-4 of its probabilities,
            int8 within 0.3 points of its accuracy.
        test_data: A :class:`~mnistkit.Split` or ``(images, labels)`` to verify on;
            ``None`` takes the 10,000 MNIST test images.

    Returns:
        An :class:`ExportReport` with the path, size, input contract and check results.

    Raises:
        InvalidArgumentError: If a setting is out of range, or the model does not map
            (28, 28, 1) images to 10 outputs.
        MissingDependencyError: If the converter or runtime the format needs is not
            installed; the message names the extra to install.
        ExportError: If conversion fails, or the export disagrees with the model.

    Example:
        >>> import tempfile, pathlib
        >>> from mnistkit import build
        >>> folder = pathlib.Path(tempfile.mkdtemp()) / "softmax"
        >>> report = export_model(build("softmax"), folder)
        >>> report.path.relative_to(folder), report.verified_on, report.max_difference
        (PosixPath('1'), 10000, 0.0)
        >>> sorted(child.name for child in report.path.iterdir())
        ['assets', 'fingerprint.pb', 'saved_model.pb', 'variables']
    """
    keras_model = resolve_model(model)
    check_choices(format, quantize, calibration, version)
    destination = check_path(Path(path), format)
    if quantize and calibration is None:
        calibration = load_dataset("mnist").train.images[:CALIBRATION_IMAGES]
    elif quantize:
        calibration = check_images(calibration)
    if verify or quantize:
        _require_runtime(format)
    test_set = test_arrays(test_data) if verify else None
    probabilities = probability_model(keras_model)
    with _converting(format, quantize, keras_model.name):
        if format == "saved_model":
            final = version_folder(destination, version)
            with atomic_folder(final) as staging:
                write_saved_model(probabilities, staging)
                return _finish(final, staging, format, quantize, probabilities, test_set)
        with atomic_path(destination) as staging:
            if format == "onnx":
                write_onnx(probabilities, staging)
            else:
                write_tflite(probabilities, staging, calibration=calibration)
            return _finish(destination, staging, format, quantize, probabilities, test_set)


def _finish(
    final: Path,
    staging: Path,
    format: str,
    quantize: str | None,
    probabilities: keras.Model,
    test_arrays: tuple[np.ndarray, np.ndarray] | None,
) -> ExportReport:
    """Load the staged export with its runtime, check it, and describe it."""
    exported = load_export(staging) if test_arrays is not None or quantize else None
    contract = ("input_dtype", "input_quantization", "output_quantization")
    given = {key: getattr(exported, key) for key in contract} if exported else {}
    report = ExportReport(format, quantize, final, _size(staging), **given)
    if test_arrays is None or exported is None:
        return report
    images, labels = test_arrays
    expected = _keras_probabilities(probabilities, images)
    got = exported(images)
    keras_accuracy = float(np.mean(expected.argmax(axis=1) == labels))
    accuracy = float(np.mean(got.argmax(axis=1) == labels))
    difference = float(np.abs(got - expected).max())
    what = f"The {format}{' ' + quantize if quantize else ''} export"
    if quantize and accuracy < keras_accuracy - INT8_ACCURACY_LOSS:
        raise ExportError(
            f"{what} reaches {accuracy:.2%} accuracy, more than {INT8_ACCURACY_LOSS:.1%} below "
            f"the Keras model's {keras_accuracy:.2%}; calibrate on other images."
        )
    if not quantize and difference > FLOAT_TOLERANCE:
        raise ExportError(
            f"{what} differs from the Keras model by up to {difference:.2e} in probability "
            f"(tolerance {FLOAT_TOLERANCE:.0e})."
        )
    return dataclasses.replace(
        report,
        verified_on=len(labels),
        accuracy=accuracy,
        keras_accuracy=keras_accuracy,
        max_difference=difference,
    )


def _signed(number: int) -> str:
    return f"+ {number}" if number >= 0 else f"- {-number}"


def _require_runtime(format: str) -> None:
    if format == "onnx":
        require("onnxruntime", extra="onnx", purpose="Checking an ONNX export")
    elif format == "tflite":
        require("ai_edge_litert.interpreter", extra="tflite", purpose="Checking a TFLite export")


@contextlib.contextmanager
def _converting(format: str, quantize: str | None, name: str) -> Iterator[None]:
    """Report a converter's own failure as an ExportError naming what was converted."""
    try:
        yield
    except MnistkitError:
        raise
    except Exception as error:
        kind = format + (f" {quantize}" if quantize else "")
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ExportError(
            f"Converting {name!r} to {kind} failed: {type(error).__name__}: {first_line}"
        ) from error


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _keras_probabilities(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [np.asarray(model(images[i : i + 500], training=False)) for i in range(0, len(images), 500)]
    )
