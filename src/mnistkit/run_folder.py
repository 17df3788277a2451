"""The run folder's layout, and reading and naming run folders without a :class:`Run`.

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
``checkpoints/``            the Trainer's checkpoints, for ``--resume`` (removed when
                            the run finishes, unless asked to keep them)
``run.json``                the command and the settings the run was started with
``run.lock``                while a run writes to the folder: its process and host
==========================  ===========================================================

Each file is written through a temporary file and a rename, so an interrupted run never
leaves a half-written one. :class:`~mnistkit.runs.Run` is the workflow over such a folder.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mnistkit._lock import LOCK_FILE
from mnistkit.errors import CheckpointError, DataFormatError, DataNotFoundError, MnistkitError
from mnistkit.records import read_json
from mnistkit.validation import MAX_SEED

__all__ = [
    "CHECKPOINT_DIR",
    "HISTORY_FILE",
    "LOCK_FILE",
    "METRICS_FILE",
    "MODEL_FILE",
    "PLOT_FILES",
    "RUN_FILE",
    "RUN_FORMAT",
    "RUN_OUTPUTS",
    "WRITTEN_FILES",
    "new_run_folder",
    "read_run",
    "write_plots",
]

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
RUN_FILE = "run.json"
CHECKPOINT_DIR = "checkpoints"
#: The format of ``run.json`` this version writes and resumes.
RUN_FORMAT = 2
#: The plots, by what they show.
PLOT_FILES = {
    "learning_curves": "learning_curves.png",
    "confusion_matrix": "confusion_matrix.png",
    "misclassified": "misclassified.png",
}


#: What marks a folder as holding a run already.
RUN_OUTPUTS = (RUN_FILE, MODEL_FILE, METRICS_FILE, CHECKPOINT_DIR)
#: Every file a run writes, for the temporary files a killed run may leave.
WRITTEN_FILES = (RUN_FILE, MODEL_FILE, METRICS_FILE, HISTORY_FILE, LOCK_FILE, *PLOT_FILES.values())


def read_run(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Return what ``run.json`` records of the run in ``folder``, every field checked.

    Args:
        folder: The run folder.

    Returns:
        The record, with ``format``, ``model``, ``command``, ``settings`` (the dataset,
        the resolved recipe, the seed...) and ``train_seconds``.

    Raises:
        DataNotFoundError: If the folder, or its ``run.json``, does not exist.
        CheckpointError: If ``run.json`` is not a run record this version resumes: not
            JSON, from another version, or with a field of the wrong type or range.

    Example:
        >>> import tempfile
        >>> from mnistkit.runs import Run
        >>> with Run.start("softmax", settings={"dataset": "mnist"}, command="",
        ...                root=tempfile.mkdtemp()) as run:
        ...     read_run(run.folder)["settings"]
        {'dataset': 'mnist'}
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder}: no such run folder.")
    path = folder / RUN_FILE
    if not path.is_file():
        raise DataNotFoundError(
            f"{folder}: not a run folder (no {RUN_FILE}); `mnistkit train` writes one."
        )
    try:
        record = read_json(path)
    except (DataFormatError, OSError) as error:
        raise CheckpointError(f"{path}: unreadable run record ({error}).") from None
    if record.get("format") != RUN_FORMAT or not isinstance(record.get("settings"), dict):
        raise CheckpointError(
            f"{path} was written by another version of mnistkit (0.1.0), whose runs this "
            "version does not resume. Finish it with that version, or start afresh."
        )
    problem = _record_problem(record)
    if problem is not None:
        raise CheckpointError(f"{path}: not a run record this version reads ({problem}).")
    return record


def _record_problem(record: dict[str, Any]) -> str | None:
    from mnistkit.recipes import Recipe

    settings = record["settings"]
    checks: dict[str, tuple[Any, Callable[[Any], bool]]] = {
        "model": (record.get("model"), lambda v: isinstance(v, str) and bool(v)),
        "command": (record.get("command"), lambda v: isinstance(v, str)),
        "train_seconds": (record.get("train_seconds", 0.0), _duration),
        "dataset": (settings.get("dataset", "mnist"), lambda v: isinstance(v, str) and bool(v)),
        "seed": (settings.get("seed"), lambda v: v is None or _whole(v, 0, MAX_SEED)),
        "deterministic": (settings.get("deterministic", False), lambda v: isinstance(v, bool)),
        "log_every": (settings.get("log_every"), lambda v: v is None or _whole(v, 1, 2**62)),
        "strategy": (settings.get("strategy"), lambda v: v in (None, "mirrored", "multiworker")),
    }
    for name, (value, accepted) in checks.items():
        if not accepted(value):
            shown = repr(value) if len(repr(value)) < 60 else repr(value)[:57] + "..."
            return f"{name} {shown}"
    if "recipe" in settings:
        try:
            Recipe.from_dict(settings["recipe"])
        except MnistkitError as error:
            return f"recipe: {error}"
    return None


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _duration(value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and 0 <= value < math.inf


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
    base = Path(root) / f"{model}-{(now or datetime.now()):%Y%m%d-%H%M%S}"
    base.parent.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        candidate = base.with_name(f"{base.name}-{number}") if number > 1 else base
        with contextlib.suppress(FileExistsError):
            candidate.mkdir()
            return candidate
        number += 1


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

    paths = {plot: Path(folder) / name for plot, name in PLOT_FILES.items()}
    true = np.asarray(labels)
    true = true.argmax(axis=1) if true.ndim == 2 else true
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    names = sorted({name for row in history for name in row})
    # A row that lacks a value gets NaN, which matplotlib leaves as a gap.
    series = {name: [float(row.get(name, math.nan)) for row in history] for name in names}
    written = []
    if any("loss" in name or "acc" in name for name in series):
        written.append(plots.plot_learning_curves(series, paths["learning_curves"]))
    return [
        *written,
        plots.plot_confusion_matrix(true, predicted, paths["confusion_matrix"], title="Test set"),
        plots.plot_misclassified(
            images, true, predicted, paths["misclassified"], confidence=probabilities.max(axis=1)
        ),
    ]
