"""Training checkpoints: weights and optimizer state, plus the position of the run.

A checkpoint folder holds ``ckpt-<step>.weights.h5`` (the model's weights with its
optimizer's state, as ``keras.Model.save_weights`` writes them) and ``state.json``,
which names the weights file and records the step and the settings the run must be
resumed with. Both are written to a temporary name and renamed; ``state.json`` is
renamed last, so a checkpoint is either wholly there or not at all.

The weights are written into memory first and then to the file from Python, so a full
disk fails with a :class:`~mnistkit.StorageError` and leaves the previous checkpoint as
it was (HDF5 writing to a full disk itself crashes the process). Temporary files that a
killed process left behind are removed by the next save.

This module reads and writes that folder, and imports Keras only to save or load
weights; the Trainer's checkpoint callback uses it.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistkit._files import (
    atomic_path,
    read_bounded,
    remove_temporaries,
    write_bytes_atomically,
)
from mnistkit.errors import CheckpointError, StorageError
from mnistkit.validation import MAX_SEED

if TYPE_CHECKING:
    import keras

__all__ = [
    "FORMAT",
    "STATE_FILE",
    "check_run",
    "exists",
    "load",
    "optimizer_record",
    "read_state",
    "remove_leftovers",
    "save",
]

#: The name of a checkpoint folder's state file.
STATE_FILE = "state.json"
#: The format this version writes; it reads format 1 (mnistkit 0.1.0) too.
FORMAT = 2
_READABLE = (1, 2)
_WEIGHTS_NAME = re.compile(r"^ckpt-[0-9]{9,}\.weights\.h5$")
_WEIGHTS_GLOB = "ckpt-*.weights.h5"
# A state file is a few hundred bytes; anything much longer is not one.
_MAX_STATE_BYTES = 1_000_000


def exists(directory: str | Path) -> bool:
    """Return whether ``directory`` holds a checkpoint (a ``state.json``).

    Args:
        directory: The checkpoint folder.

    Returns:
        Whether its state file is there.
    """
    return (Path(directory) / STATE_FILE).is_file()


def read_state(directory: str | Path) -> dict[str, Any]:
    """Return the state of the checkpoint in ``directory``, every field checked.

    Args:
        directory: The checkpoint folder.

    Returns:
        The state, with ``step``, ``total_steps``, ``weights`` (the weights file's
        name) and the settings of the run that wrote it.

    Raises:
        CheckpointError: If there is no checkpoint, or its state is unreadable, from an
            unknown format, has a field of the wrong type or out of range (a step
            outside the run, a negative batch size...), or names a weights file that is
            missing.

    Example:
        >>> import tempfile
        >>> read_state(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        mnistkit.errors.CheckpointError: ...: no checkpoint to resume from ...
    """
    directory = Path(directory)
    path = directory / STATE_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{directory}: no checkpoint to resume from (no {STATE_FILE}). "
            "Start the run without resume=True (--resume)."
        )
    try:
        state = json.loads(read_bounded(path, _MAX_STATE_BYTES))
    except (OSError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}: corrupt checkpoint state ({error}).") from None
    problem = _state_problem(state)
    if problem is not None:
        raise CheckpointError(f"{path}: not a checkpoint state this version reads ({problem}).")
    if not (directory / state["weights"]).is_file():
        raise CheckpointError(
            f"{directory}: the checkpoint's weights file {state['weights']} is missing."
        )
    return dict(state)


def _whole(low: int, high: float = math.inf) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and low <= v <= high


def _rate(value: Any) -> bool:
    if isinstance(value, dict):  # a learning-rate schedule's configuration
        return True
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and 0 < value < math.inf


# The fields of a state and what each must be; the first four must be there.
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "format": (lambda v: v in _READABLE and not isinstance(v, bool), f"one of {_READABLE}"),
    "weights": (lambda v: isinstance(v, str) and bool(_WEIGHTS_NAME.match(v)), "a file name"),
    "step": (_whole(0), "a whole number of steps"),
    "total_steps": (_whole(1), "a positive whole number of steps"),
    "model": (lambda v: isinstance(v, str) and bool(v), "a model name"),
    "parameters": (_whole(0), "a count of parameters"),
    "seed": (_whole(0, MAX_SEED), f"an integer from 0 to {MAX_SEED}"),
    "stream_seed": (_whole(0, 2**64 - 1), "a non-negative integer"),
    "batch_size": (_whole(1), "a positive integer"),
    "data_checksum": (
        lambda v: v is None or (isinstance(v, str) and bool(re.fullmatch("[0-9a-f]{64}", v))),
        "a SHA-256 in hex, or null",
    ),
    "optimizer": (lambda v: isinstance(v, str) and bool(v), "an optimizer's name"),
    "learning_rate": (_rate, "a positive number or a schedule"),
}
_REQUIRED = ("format", "weights", "step", "total_steps")


def _state_problem(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"a JSON {type(state).__name__}, not an object"
    for name in _REQUIRED:
        if name not in state:
            return f"no {name}"
    for name, (accepts, expected) in _FIELDS.items():
        if name in state and not accepts(state[name]):
            return f"{name} {_shown(state[name])} is not {expected}"
    if state["step"] > state["total_steps"]:
        return f"step {state['step']} is past the run's end at step {state['total_steps']}"
    return None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def optimizer_record(optimizer: keras.optimizers.Optimizer) -> dict[str, Any]:
    """Return what a checkpoint records of the optimizer a run starts with: class and rate.

    A resumed run restores the optimizer's state, learning rate included, so a run that
    asks for another optimizer or rate must be refused rather than silently given the
    checkpoint's.

    Args:
        optimizer: The run's optimizer.

    Returns:
        ``{"optimizer": class name, "learning_rate": its configured rate or schedule}``.
    """
    inner = getattr(optimizer, "inner_optimizer", None) or optimizer  # loss scaling wraps it
    record: dict[str, Any] = {"optimizer": type(inner).__name__}
    rate = inner.get_config().get("learning_rate")
    if rate is not None:
        record["learning_rate"] = json.loads(json.dumps(rate))  # as state.json holds it
    return record


def check_run(state: Mapping[str, Any], run: Mapping[str, Any], directory: str | Path) -> None:
    """Raise if the checkpoint ``state`` was written by a run with other settings than ``run``.

    Args:
        state: The checkpoint's state (:func:`read_state`).
        run: The settings of the run that would resume it.
        directory: The checkpoint folder, for the message.

    Raises:
        CheckpointError: Listing each setting that differs.
    """
    differences = [
        f"{key}: checkpoint {_shown(state.get(key))}, this run {_shown(value)}"
        for key, value in run.items()
        if key in state and state[key] != value
    ]
    if differences:
        backend = state.get("backend")
        how = (
            f"Resume on Keras's {backend} backend (KERAS_BACKEND={backend})"
            if backend is not None and backend != run.get("backend")
            else "Resume with the same settings"
        )
        raise CheckpointError(
            f"{directory}: the checkpoint belongs to a different run ("
            + "; ".join(differences)
            + f"). {how}, or start afresh in another folder."
        )


def load(directory: str | Path, model: keras.Model, state: Mapping[str, Any]) -> None:
    """Load a checkpoint's weights and optimizer state into ``model``.

    Args:
        directory: The checkpoint folder.
        model: The compiled model (its optimizer is built first if it is not yet).
        state: The checkpoint's state (:func:`read_state`).

    Raises:
        CheckpointError: If the weights do not fit the model or are corrupt.
    """
    path = Path(directory) / state["weights"]
    optimizer = model.optimizer
    if optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except Exception as error:
        raise CheckpointError(
            f"{path}: the checkpoint does not fit this model or is corrupt "
            f"({type(error).__name__}: {error})."
        ) from error


def save(directory: str | Path, model: keras.Model, state: Mapping[str, Any]) -> Path:
    """Write a checkpoint of ``model`` (with its optimizer) and ``state``, atomically.

    Args:
        directory: The checkpoint folder; created if needed.
        model: The model.
        state: What the checkpoint records: the ``step`` and the run's settings.

    Returns:
        The weights file written. Older weights files of the folder, and temporary files
        left by an interrupted save, are removed once the new state names the new one.

    Raises:
        StorageError: If the disk is full, a file size limit is reached or the folder
            cannot be written; the checkpoint that was there before is left as it was.
    """
    directory = Path(directory)
    weights = directory / f"ckpt-{int(state['step']):09d}.weights.h5"
    payload = _weights_in_memory(model, weights)
    if payload is None:  # a Keras that writes only to files: write through a temporary one
        with atomic_path(weights) as temporary:
            model.save_weights(temporary)
    else:
        write_bytes_atomically(weights, payload)
    record = {**state, "format": FORMAT, "weights": weights.name}
    try:
        write_bytes_atomically(directory / STATE_FILE, json.dumps(record, indent=2).encode())
    except StorageError:
        if weights.name != _named_weights(directory):  # the checkpoint before stays whole
            weights.unlink(missing_ok=True)
        raise
    remove_leftovers(directory)
    return weights


def remove_leftovers(directory: str | Path) -> list[Path]:
    """Remove the temporary files that a save interrupted by a kill or a crash left.

    Those are temporary files, and weights files that no state names (a save that
    failed after writing its weights); each is a whole checkpoint's size. A save
    removes them once it has succeeded; call this only while nothing else saves into
    ``directory``.

    Args:
        directory: The checkpoint folder; nothing happens if it does not exist.

    Returns:
        The files removed.

    Example:
        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / ".ckpt-000000100.x1y2z3w4.weights.h5").write_bytes(b"...")
        >>> [path.name for path in remove_leftovers(folder)]
        ['.ckpt-000000100.x1y2z3w4.weights.h5']
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = remove_temporaries(directory, [_WEIGHTS_GLOB, STATE_FILE])
    named = _named_weights(directory)
    if named is not None:  # weights that no state names: a save that failed half-way
        for path in directory.glob(_WEIGHTS_GLOB):
            if path.name != named and _WEIGHTS_NAME.match(path.name):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def _named_weights(directory: Path) -> str | None:
    """The weights file that the folder's state names, or ``None`` if there is none."""
    try:
        return str(read_state(directory)["weights"])
    except CheckpointError:
        return None


class _NamedBuffer(io.BytesIO):
    """Memory that Keras's ``save_weights`` takes for a ``.weights.h5`` file of that name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.file_name = name

    def __str__(self) -> str:
        return self.file_name


def _weights_in_memory(model: keras.Model, weights: Path) -> bytes | None:
    """The bytes of ``model.save_weights``, written into memory; ``None`` if Keras refuses.

    Keras checks only the name's suffix, and its HDF5 store takes an ``io.BytesIO``.
    """
    buffer = _NamedBuffer(weights.name)
    try:
        model.save_weights(buffer)
    except (TypeError, AttributeError):
        return None
    return buffer.getvalue()
