"""The run folder: what ``mnistkit train`` leaves behind, and the functions that write it.

A run folder holds:

==========================  ===========================================================
``model.keras``             the trained model, with the run's metadata inside
                            (:func:`~mnistkit.read_metadata`)
``metrics.json``            test accuracy and loss, training time, steps, batch size,
                            seed, recipe, library versions, data checksum
``history.csv``             one row per logged step (or per epoch)
``learning_curves.png``     loss and accuracy against steps or epochs
``confusion_matrix.png``    the confusion matrix on the test split
``misclassified.png``       the misclassified test digits, true and predicted labels
``checkpoints/``            the Trainer's checkpoints, for ``--resume``
``run.json``                the command and the settings the run was started with
==========================  ===========================================================

Each file is written through a temporary file and a rename, so an interrupted run never
leaves a half-written one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mnistkit._files import write_bytes_atomically
from mnistkit.errors import DataFormatError

__all__ = [
    "CHECKPOINT_DIR",
    "HISTORY_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "PLOT_FILES",
    "RUN_FILE",
    "new_run_folder",
    "read_history",
    "read_json",
    "write_history",
    "write_json",
    "write_plots",
]

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"
#: The plots, by what they show.
PLOT_FILES = {
    "learning_curves": "learning_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "misclassified": "misclassified.png",
}


_NUMBER_LIST = re.compile(r"\[\s*(-?[0-9][0-9.eE+-]*(?:,\s*-?[0-9][0-9.eE+-]*)*)\s*\]")


def new_run_folder(
    model: str, *, root: str | os.PathLike[str] = "runs", now: datetime | None = None
) -> Path:
    """Create and return a new, empty folder ``root/<model>-<YYYYmmdd-HHMMSS>``.

    If a run started in the same second already took the name, ``-2``, ``-3``... is
    appended.

    Args:
        model: The model's name, the start of the folder's name.
        root: The folder the run folders live in; created if needed.
        now: The time to name the folder by; the current local time by default.

    Returns:
        The new folder.

    Example:
        >>> import tempfile
        >>> from datetime import datetime
        >>> root = tempfile.mkdtemp()
        >>> when = datetime(2026, 11, 28, 14, 25, 1)
        >>> new_run_folder("deep_cnn", root=root, now=when).name
        'deep_cnn-20261128-142501'
        >>> new_run_folder("deep_cnn", root=root, now=when).name
        'deep_cnn-20261128-142501-2'
    """
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{model}-{stamp}"
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = base, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1
            candidate = base.with_name(f"{base.name}-{number}")


def write_json(path: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    """Write a JSON object to a file, atomically, indented and with sorted keys.

    NumPy scalars and arrays are written as numbers and lists; non-finite floats as
    ``null``, so that any JSON reader accepts the file.

    Args:
        path: The file, such as ``metrics.json`` in a run folder.
        record: The object.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.json"
        >>> _ = write_json(path, {"test_accuracy": 0.92, "steps": 1000})
        >>> read_json(path)["steps"]
        1000
    """
    path = Path(path)
    text = json.dumps(_plain(record), indent=2, sort_keys=True, allow_nan=False)
    # A list of numbers (a confusion-matrix row) reads better on one line.
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    write_bytes_atomically(path, (text + "\n").encode())
    return path


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json`.

    Args:
        path: The file.

    Returns:
        The object.

    Raises:
        DataFormatError: If the file is not a JSON object.
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise DataFormatError(f"{path}: not a JSON file ({error}).") from None
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}: expected a JSON object, found {type(record).__name__}.")
    return record


def write_history(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write training history rows to a CSV file, atomically.

    The columns are ``step`` or ``epoch`` first if present, then the others in sorted
    order; a row that lacks a column leaves its cell empty.

    Args:
        path: The file, such as ``history.csv`` in a run folder.
        rows: One mapping per logged step or epoch.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
        >>> _ = write_history(path, [{"step": 0, "train_accuracy": 0.1}])
        >>> print(path.read_text().strip())
        step,train_accuracy
        0,0.1
    """
    names = sorted({name for row in rows for name in row})
    first = [name for name in ("step", "epoch") if name in names]
    columns = first + [name for name in names if name not in first]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({name: _cell(value) for name, value in row.items()})
    path = Path(path)
    write_bytes_atomically(path, buffer.getvalue().encode())
    return path


def read_history(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Read the rows of a ``history.csv`` written by :func:`write_history`.

    Args:
        path: The file.

    Returns:
        One dictionary per row, numbers as floats (whole numbers as ints); empty
        cells are left out. An absent file gives an empty list.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
        >>> read_history(write_history(path, [{"step": 100, "loss": 0.25}]))
        [{'step': 100, 'loss': 0.25}]
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({name: _number(value) for name, value in row.items() if value != ""})
    return rows


def write_plots(
    folder: str | os.PathLike[str],
    *,
    history: Sequence[Mapping[str, Any]],
    images: np.ndarray,
    labels: np.ndarray,
    probabilities: np.ndarray,
) -> list[Path]:
    """Draw a run's plots (:data:`PLOT_FILES`) into its folder.

    Args:
        folder: The run folder.
        history: The rows of the run's history (see :func:`read_history`).
        images: The test images.
        labels: Their true labels: integers, or one-hot rows.
        probabilities: The model's class probabilities for them, shaped (N, 10).

    Returns:
        The files written; the learning curves are left out when the history holds no
        loss or accuracy.

    Raises:
        ModuleNotFoundError: If matplotlib is not installed
            (``pip install 'mnistkit[plots]'``).
    """
    from mnistkit import plots

    folder = Path(folder)
    true = np.asarray(labels)
    if true.ndim == 2:
        true = true.argmax(axis=1)
    predicted = np.asarray(probabilities).argmax(axis=1)
    confidence = np.asarray(probabilities).max(axis=1)
    written = []
    series = _columns(history)
    if any("loss" in name or "acc" in name for name in series):
        written.append(plots.plot_learning_curves(series, folder / PLOT_FILES["learning_curves"]))
    written.append(
        plots.plot_confusion_matrix(
            true, predicted, folder / PLOT_FILES["confusion_matrix"], title="Test set"
        )
    )
    written.append(
        plots.plot_misclassified(
            images, true, predicted, folder / PLOT_FILES["misclassified"], confidence=confidence
        )
    )
    return written


def _columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[float]]:
    # A row that lacks a value gets NaN, which matplotlib leaves as a gap.
    names = sorted({name for row in rows for name in row})
    return {name: [float(row.get(name, math.nan)) for row in rows] for name in names}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value: Any) -> Any:
    value = _plain(value)
    if isinstance(value, float):
        return repr(value)
    return value


def _number(text: str | None) -> Any:
    if text is None:
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number
