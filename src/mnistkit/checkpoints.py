"""Training checkpoints: weights and optimizer state, plus the position of the run.

A checkpoint folder holds ``ckpt-<step>.weights.h5`` (the model's weights with its
optimizer's state, as ``keras.Model.save_weights`` writes them) and ``state.json``,
which names the weights file and records the step and the settings the run must be
resumed with. Both are written to a temporary name and renamed; ``state.json`` is
renamed last, so a checkpoint is either wholly there or not at all.

This module reads and writes that folder, and imports Keras only to save or load
weights; the Trainer's checkpoint callback uses it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistkit._files import atomic_path, write_bytes_atomically
from mnistkit.errors import CheckpointError

if TYPE_CHECKING:
    import keras

__all__ = ["FORMAT", "STATE_FILE", "check_run", "exists", "load", "read_state", "save"]

#: The name of a checkpoint folder's state file.
STATE_FILE = "state.json"
#: The format this version writes; it reads format 1 (mnistkit 0.1.0) too.
FORMAT = 2
_READABLE = (1, 2)
_WEIGHTS_NAME = re.compile(r"^ckpt-[0-9]{9,}\.weights\.h5$")


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
            unknown format, inconsistent (a step outside the run) or names a weights
            file that is missing.

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
        state = json.loads(path.read_bytes()[:1_000_000])
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: corrupt checkpoint state ({error}).") from None
    problem = _state_problem(state)
    if problem is not None:
        raise CheckpointError(f"{path}: not a checkpoint state this version reads ({problem}).")
    if not (directory / state["weights"]).is_file():
        raise CheckpointError(
            f"{directory}: the checkpoint's weights file {state['weights']} is missing."
        )
    return dict(state)


def _state_problem(state: Any) -> str | None:
    if not isinstance(state, dict):
        return f"a JSON {type(state).__name__}, not an object"
    if state.get("format") not in _READABLE:
        return f"format {state.get('format')!r}; this version reads {_READABLE}"
    weights = state.get("weights")
    if not isinstance(weights, str) or not _WEIGHTS_NAME.match(weights):
        return f"weights {weights!r} is not a checkpoint file name"
    step, total = state.get("step"), state.get("total_steps")
    for name, value in (("step", step), ("total_steps", total)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name} {value!r} is not a whole number of steps"
    assert isinstance(step, int)
    assert isinstance(total, int)
    if step > total:
        return f"step {step} is past the run's end at step {total}"
    return None


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
        f"{key}: checkpoint {state.get(key)!r}, this run {value!r}"
        for key, value in run.items()
        if key in state and state[key] != value
    ]
    if differences:
        raise CheckpointError(
            f"{directory}: the checkpoint belongs to a different run ("
            + "; ".join(differences)
            + "). Resume with the same settings, or start afresh in another folder."
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
        The weights file written. Older weights files of the folder are removed once the
        new state names the new one.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / f"ckpt-{int(state['step']):09d}.weights.h5"
    with atomic_path(weights) as temporary:
        model.save_weights(temporary)
    record = {**state, "format": FORMAT, "weights": weights.name}
    write_bytes_atomically(directory / STATE_FILE, json.dumps(record, indent=2).encode())
    for old in directory.glob("ckpt-*.weights.h5"):
        if old.name != weights.name:
            old.unlink(missing_ok=True)
    return weights
