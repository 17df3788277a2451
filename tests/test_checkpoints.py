"""Checkpoints under bad input and faults: every state field checked, leftovers cleared.

A checkpoint is either wholly there or not at all: a save that fails (a full disk, a
size limit) leaves the one before it as it was and no temporary file; the files a
killed save leaves behind are removed by the next save or resume.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from mnistkit import CheckpointError, StorageError, Trainer, TrainingDivergedError
from mnistkit.checkpoints import read_state, remove_leftovers, save


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    from mnistkit import load_dataset

    train = load_dataset("mnist", validation_size=0).train
    return train.images[:200], train.labels[:200]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory, data: tuple[np.ndarray, np.ndarray]) -> Path:
    folder = tmp_path_factory.mktemp("saved") / "ckpt"
    Trainer("softmax", seed=1).fit(data, steps=3, batch_size=20, checkpoint_dir=folder, verbose=0)
    return folder


@pytest.fixture
def checkpoint(tmp_path: Path, saved: Path) -> Path:
    """A real checkpoint of a softmax regression after 3 steps, this test's own copy."""
    return Path(shutil.copytree(saved, tmp_path / "ckpt"))


_DROP = object()


def _state(folder: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((folder / "state.json").read_text())
    return state


def _rewrite(folder: Path, **changes: Any) -> None:
    state = _state(folder)
    state.update(changes)
    for name, value in changes.items():
        if value is _DROP:
            del state[name]
    (folder / "state.json").write_text(json.dumps(state))


def test_a_checkpoint_records_the_optimizer_and_learning_rate_it_started_with(
    checkpoint: Path,
) -> None:
    state = read_state(checkpoint)

    assert (state["optimizer"], state["learning_rate"], state["step"]) == ("SGD", 0.5, 3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("step", 5000, "step 5000 is past the run's end at step 3"),
        ("step", -5, "step -5 is not a whole number of steps"),
        ("step", "abc", "step 'abc' is not a whole number of steps"),
        ("step", 2.5, "step 2.5 is not"),
        ("step", True, "step True is not"),
        ("total_steps", 0, "total_steps 0 is not a positive whole number"),
        ("seed", -1, "seed -1 is not an integer from 0 to 4294967295"),
        ("seed", 2**40, "seed 1099511627776 is not"),
        ("stream_seed", "x", "stream_seed 'x' is not"),
        ("batch_size", 0, "batch_size 0 is not a positive integer"),
        ("parameters", None, "parameters None is not"),
        ("model", "", "model '' is not a model name"),
        ("data_checksum", "abc", "data_checksum 'abc' is not a SHA-256"),
        ("optimizer", 3, "optimizer 3 is not"),
        ("learning_rate", -0.5, "learning_rate -0.5 is not a positive number"),
        ("learning_rate", "0.5", "learning_rate '0.5' is not"),
        ("format", 99, "format 99 is not one of (1, 2)"),
        ("weights", "../state.json", "weights '../state.json' is not a file name"),
        ("weights", _DROP, "no weights"),
        ("step", _DROP, "no step"),
    ],
)
def test_every_field_of_a_checkpoint_state_is_checked(
    checkpoint: Path, field: str, value: Any, message: str
) -> None:
    _rewrite(checkpoint, **{field: value})

    with pytest.raises(CheckpointError, match="not a checkpoint state this version") as caught:
        read_state(checkpoint)
    assert message in str(caught.value)
    assert str(checkpoint / "state.json") in str(caught.value)


def test_a_step_past_the_runs_end_is_refused_before_training(
    checkpoint: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    _rewrite(checkpoint, step=5000, total_steps=5000)

    # The run's own length (3 steps) disagrees: nothing trains for ever.
    with pytest.raises(CheckpointError, match="total_steps: checkpoint 5000, this run 3"):
        Trainer("softmax", seed=1).fit(
            data, steps=3, batch_size=20, checkpoint_dir=checkpoint, resume=True, verbose=0
        )


def test_an_oversized_state_file_is_corrupt_not_read_whole(checkpoint: Path) -> None:
    (checkpoint / "state.json").write_bytes(b" " * 2_000_000 + b"{}")

    with pytest.raises(CheckpointError, match="corrupt checkpoint state"):
        read_state(checkpoint)


def test_resume_with_another_learning_rate_or_optimizer_is_refused(
    checkpoint: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    settings = {"steps": 3, "batch_size": 20, "checkpoint_dir": checkpoint, "resume": True}

    with pytest.raises(CheckpointError, match=r"learning_rate: checkpoint 0\.5, this run 0\.1"):
        Trainer("softmax", seed=1, learning_rate=0.1).fit(data, **settings, verbose=0)
    with pytest.raises(CheckpointError, match="optimizer: checkpoint 'SGD', this run 'Adam'"):
        Trainer("softmax", seed=1, optimizer="adam").fit(data, **settings, verbose=0)


def test_a_failed_save_keeps_the_checkpoint_before_and_leaves_no_file(
    checkpoint: Path, data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = Trainer("softmax", seed=1)
    before = sorted(path.name for path in checkpoint.iterdir())
    state = {**_state(checkpoint), "step": 4}
    real_write = Path.write_bytes

    def full_disk_for_state(self: Path, payload: bytes) -> int:
        if ".state." in self.name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, payload)

    monkeypatch.setattr(Path, "write_bytes", full_disk_for_state)
    with pytest.raises(StorageError, match=r"No space left on device while writing .*state\.json"):
        save(checkpoint, trainer.model, state)
    monkeypatch.undo()

    assert sorted(path.name for path in checkpoint.iterdir()) == before  # no new weights
    assert read_state(checkpoint)["step"] == 3
    resumed = Trainer("softmax", seed=1)
    resumed.fit(data, steps=3, batch_size=20, checkpoint_dir=checkpoint, resume=True, verbose=0)
    assert int(resumed.model.optimizer.iterations.numpy()) == 3


def test_leftovers_of_a_killed_save_are_removed_by_the_next_resume(
    checkpoint: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    temporary = checkpoint / ".ckpt-000000004.k1ll3d00.weights.h5"
    temporary.write_bytes(b"half a checkpoint")
    (checkpoint / ".state.k1ll3d00.json").write_text("{")
    orphan = checkpoint / "ckpt-000000004.weights.h5"  # written, but no state names it
    orphan.write_bytes(b"weights of a save whose state was never written")

    Trainer("softmax", seed=1).fit(
        data, steps=3, batch_size=20, checkpoint_dir=checkpoint, resume=True, verbose=0
    )

    assert sorted(path.name for path in checkpoint.iterdir()) == [
        "ckpt-000000003.weights.h5",
        "state.json",
    ]


def test_remove_leftovers_keeps_the_checkpoint_and_other_files(checkpoint: Path) -> None:
    (checkpoint / "notes.txt").write_text("mine")
    (checkpoint / ".ckpt-000000009.abcdefgh.weights.h5").write_bytes(b"x")

    removed = remove_leftovers(checkpoint)

    assert [path.name for path in removed] == [".ckpt-000000009.abcdefgh.weights.h5"]
    assert sorted(path.name for path in checkpoint.iterdir()) == [
        "ckpt-000000003.weights.h5",
        "notes.txt",
        "state.json",
    ]
    assert remove_leftovers(checkpoint / "absent") == []


def test_a_checkpoint_dir_under_a_file_is_refused_before_training(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    (tmp_path / "file").write_text("not a folder")

    for where in (tmp_path / "file", tmp_path / "file" / "checkpoints"):
        with pytest.raises(ValueError, match="Expected a folder"):
            Trainer("softmax", seed=1).fit(
                data, steps=2, batch_size=20, checkpoint_dir=where, verbose=0
            )


def test_divergence_before_the_first_save_says_no_checkpoint_exists(
    tmp_path: Path, data: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = data
    poisoned = np.full((len(labels), 10), np.nan, np.float32)  # NaN one-hot labels
    loss = keras.losses.CategoricalCrossentropy(from_logits=True)

    with pytest.raises(TrainingDivergedError) as caught:
        Trainer("softmax", seed=1, loss=loss).fit(
            (images, poisoned), steps=5, batch_size=20, checkpoint_dir=tmp_path / "c", verbose=0
        )

    assert "No checkpoint was saved" in str(caught.value)
    assert "last good checkpoint" not in str(caught.value)
    assert not (tmp_path / "c").exists()
