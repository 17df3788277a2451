"""Training checkpoints: weights and optimizer state, plus the position of the run.

A checkpoint folder holds ``ckpt-<step>.weights.h5`` (the model's weights with its
optimizer's state, as ``keras.Model.save_weights`` writes them) and ``state.json``,
which names the weights file and records the step and the settings the run must be
resumed with. Both are written to a temporary name and renamed; ``state.json`` is
renamed last, so a checkpoint is either wholly there or not at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistkit._files import atomic_path, write_bytes_atomically
from mnistkit.errors import CheckpointError

if TYPE_CHECKING:
    import keras

STATE_FILE = "state.json"
FORMAT = 1


def exists(directory: Path) -> bool:
    """Return whether ``directory`` holds a checkpoint."""
    return (directory / STATE_FILE).is_file()


def save(directory: Path, model: keras.Model, state: dict[str, Any]) -> Path:
    """Write a checkpoint of ``model`` (with its optimizer) and ``state``; return its path."""
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


def read_state(directory: Path) -> dict[str, Any]:
    """Return the state of the checkpoint in ``directory``, checked for readability."""
    path = directory / STATE_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{directory}: no checkpoint to resume from (no {STATE_FILE}). "
            "Start the run without resume=True (--resume)."
        )
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: corrupt checkpoint state ({error}).") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT or "weights" not in state:
        raise CheckpointError(f"{path}: not a checkpoint state this version of mnistkit reads.")
    if not (directory / state["weights"]).is_file():
        raise CheckpointError(
            f"{directory}: the checkpoint's weights file {state['weights']} is missing."
        )
    return state


def check_compatible(state: dict[str, Any], expected: dict[str, Any], directory: Path) -> None:
    """Raise if the checkpoint was written by a run with other settings."""
    differences = [
        f"{key}: checkpoint {state.get(key)!r}, this run {value!r}"
        for key, value in expected.items()
        if state.get(key) != value
    ]
    if differences:
        raise CheckpointError(
            f"{directory}: the checkpoint belongs to a different run ("
            + "; ".join(differences)
            + "). Resume with the same settings, or start afresh in another folder."
        )


def restore(directory: Path, model: keras.Model, state: dict[str, Any]) -> None:
    """Load the checkpoint's weights and optimizer state into ``model``."""
    path = directory / state["weights"]
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(path)
    except Exception as error:
        raise CheckpointError(
            f"{path}: the checkpoint does not fit this model or is corrupt "
            f"({type(error).__name__}: {error})."
        ) from error
