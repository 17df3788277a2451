"""Tests of mnistkit.runs: the files of a run folder."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnistkit import CheckpointError, DataFormatError, DataNotFoundError, RunPlan
from mnistkit.records import read_history, read_json, write_history, write_json
from mnistkit.run_folder import new_run_folder, read_run
from mnistkit.runs import Run


def test_new_run_folders_are_named_by_model_and_time_and_never_shared(tmp_path: Path) -> None:
    when = datetime(2026, 11, 28, 14, 25, 1)

    first = new_run_folder("deep_cnn", root=tmp_path / "runs", now=when)
    second = new_run_folder("deep_cnn", root=tmp_path / "runs", now=when)

    assert first == tmp_path / "runs" / "deep_cnn-20261128-142501"
    assert second.name == "deep_cnn-20261128-142501-2"
    assert first.is_dir()
    assert second.is_dir()


def test_json_holds_numpy_values_and_non_finite_floats_as_null(tmp_path: Path) -> None:
    path = write_json(
        tmp_path / "metrics.json",
        {"accuracy": np.float32(0.5), "counts": np.eye(2, dtype=np.int64), "loss": math.nan},
    )

    assert read_json(path) == {"accuracy": 0.5, "counts": [[1, 0], [0, 1]], "loss": None}
    assert "[1, 0]" in path.read_text()  # number lists stay on one line


def test_read_json_of_a_list_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("[1, 2]")

    with pytest.raises(DataFormatError, match="expected a JSON object"):
        read_json(path)


def test_history_rows_round_trip_with_step_first_and_gaps_left_empty(tmp_path: Path) -> None:
    rows = [{"train_accuracy": 0.1, "step": 0}, {"step": 100, "loss": 0.25, "train_accuracy": 0.9}]

    path = write_history(tmp_path / "history.csv", rows)

    assert path.read_text().splitlines() == [
        "step,loss,train_accuracy",
        "0,,0.1",
        "100,0.25,0.9",
    ]
    assert read_history(path) == rows


def test_history_of_a_run_not_yet_logged_is_empty(tmp_path: Path) -> None:
    assert read_history(tmp_path / "history.csv") == []


# ---------------------------------------------------------------- the folder's lock


def _lock_of(folder: Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((folder / "run.lock").read_text())
    return record


def test_a_run_holds_its_folder_and_a_second_is_refused_naming_the_holder(tmp_path: Path) -> None:
    with Run.start("softmax", settings={}, command="", output=tmp_path / "run") as first:
        holder = _lock_of(first.folder)
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())

        with pytest.raises(CheckpointError) as caught:
            Run.resume(first.folder, "softmax")

    message = str(caught.value)
    assert f"another mnistkit run (process {os.getpid()} on {socket.gethostname()})" in message
    assert "run.lock" in message
    assert not (tmp_path / "run" / "run.lock").exists()  # let go on leaving the block
    Run.resume(tmp_path / "run", "softmax").close()


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(tmp_path: Path) -> None:
    with Run.start("softmax", settings={}, command="", output=tmp_path / "run"):
        pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    (tmp_path / "run" / "run.lock").write_text(
        json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "started": "1"})
    )

    with Run.resume(tmp_path / "run", "softmax") as run:
        assert _lock_of(run.folder)["pid"] == os.getpid()


def test_a_lock_whose_pid_was_given_to_another_process_is_taken_over(tmp_path: Path) -> None:
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        pytest.skip("needs /proc to tell when a process started")
    with Run.start("softmax", settings={}, command="", output=tmp_path / "run"):
        pass
    # This very process, but "started" at another time: the pid was reused.
    (tmp_path / "run" / "run.lock").write_text(
        json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "started": "-1"})
    )

    with Run.resume(tmp_path / "run", "softmax") as run:
        assert _lock_of(run.folder)["pid"] == os.getpid()


@pytest.mark.parametrize(
    ("holder", "named"),
    [
        ({"pid": 1, "host": "another-host", "started": "5"}, "process 1 on another-host"),
        ("{not json", "process ? on an unknown host"),
    ],
    ids=["other-host", "unreadable"],
)
def test_a_lock_this_host_cannot_judge_is_never_taken_over(
    tmp_path: Path, holder: Any, named: str
) -> None:
    with Run.start("softmax", settings={}, command="", output=tmp_path / "run"):
        pass
    lock = tmp_path / "run" / "run.lock"
    lock.write_text(holder if isinstance(holder, str) else json.dumps(holder))

    with pytest.raises(CheckpointError, match=re.escape(named)):
        Run.resume(tmp_path / "run", "softmax")
    assert lock.exists()


def test_a_start_into_a_folder_that_holds_a_run_leaves_it_as_it_was(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with Run.start("softmax", settings={"seed": 1}, command="first", output=folder):
        pass
    before = (folder / "run.json").read_text()

    with pytest.raises(CheckpointError, match="already holds a run"):
        Run.start("softmax", settings={"seed": 2}, command="second", output=folder)

    assert (folder / "run.json").read_text() == before
    assert sorted(path.name for path in folder.iterdir()) == ["run.json"]


def test_abandon_removes_only_what_the_run_made(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")
    run = Run.start("softmax", settings={}, command="", output=mine)
    run.abandon()
    assert sorted(path.name for path in mine.iterdir()) == ["notes.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    Run.start("softmax", settings={}, command="", output=empty).abandon()
    assert empty.is_dir()  # the user made it: it stays

    Run.start("softmax", settings={}, command="", output=tmp_path / "new").abandon()
    assert not (tmp_path / "new").exists()  # the run made it: it goes


def test_a_run_clears_the_temporary_files_a_killed_run_left(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with Run.start("softmax", settings={}, command="", output=folder):
        pass
    left = [".run.a1b2c3d4.json", ".history.a1b2c3d4.csv", ".model.a1b2c3d4.keras"]
    for name in left:
        (folder / name).write_text("partial")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / ".ckpt-000000100.a1b2c3d4.weights.h5").write_text("partial")

    Run.resume(folder, "softmax").close()

    assert sorted(path.name for path in folder.iterdir()) == ["checkpoints", "run.json"]
    assert list((folder / "checkpoints").iterdir()) == []


# ---------------------------------------------------------------- run.json and the history


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": 3}, "model 3"),
        ({"train_seconds": -1}, "train_seconds -1"),
        ({"settings": {"seed": "x"}}, "seed 'x'"),
        ({"settings": {"deterministic": "no"}}, "deterministic 'no'"),
        ({"settings": {"log_every": 0}}, "log_every 0"),
        ({"settings": {"strategy": "many"}}, "strategy 'many'"),
        ({"settings": {"recipe": {"steps": -3}}}, "recipe: Invalid value for argument `steps`"),
        ({"settings": []}, "another version of mnistkit"),
        ({"format": 1}, "another version of mnistkit"),
    ],
)
def test_every_field_of_run_json_is_checked(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with Run.start("softmax", settings={"seed": 1}, command="c", output=tmp_path / "run"):
        pass
    record = read_json(tmp_path / "run" / "run.json")
    record.update(change)
    write_json(tmp_path / "run" / "run.json", record)

    with pytest.raises(CheckpointError, match=re.escape(message)):
        read_run(tmp_path / "run")
    with pytest.raises(CheckpointError, match=re.escape(message)):
        Run.resume(tmp_path / "run", "softmax")


def test_a_folder_without_run_json_is_not_a_run_folder(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="not a run folder"):
        read_run(tmp_path)
    with pytest.raises(DataNotFoundError, match="no such run folder"):
        read_run(tmp_path / "absent")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"step,loss\n1,2,3,4\n", "more cells than the header"),
        (b"step,loss\n0,0.5\n\xff\xfe", "codec can't decode"),
        (b"step,loss\nten,0.5\n", "step 'ten' is not a whole number"),
        (b"step,loss\n-3,0.5\n", "step -3 is not a whole number"),
    ],
)
def test_an_unreadable_history_is_a_format_error(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(content)

    with pytest.raises(DataFormatError, match="not a training history") as caught:
        read_history(path)
    assert message in str(caught.value)


def test_read_json_of_a_folder_or_a_huge_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="is a folder"):
        read_json(tmp_path)
    (tmp_path / "big.json").write_bytes(b" " * (64 * 2**20 + 1))
    with pytest.raises(DataFormatError, match="longer than"):
        read_json(tmp_path / "big.json")
    (tmp_path / "deep.json").write_text("[" * 100_000)
    with pytest.raises(DataFormatError, match="not a JSON file"):
        read_json(tmp_path / "deep.json")


def test_training_time_is_saved_as_the_run_goes(tmp_path: Path) -> None:
    with Run.start("softmax", settings={}, command="", output=tmp_path / "run") as run:
        with run.training_clock():
            time.sleep(0.05)
            run.history_recorder(RunPlan.make(steps=10, log_every=5)).on_log(5, {"loss": 1.0})
            logged = read_json(run.folder / "run.json")["train_seconds"]
        finished = read_json(run.folder / "run.json")["train_seconds"]

    assert 0.05 <= logged <= finished


def test_json_output_writes_non_finite_numbers_as_null(capsys: pytest.CaptureFixture[str]) -> None:
    from mnistkit.cli.listing import print_json

    print_json([{"probability": math.nan, "loss": math.inf, "label": np.int64(3)}])

    assert json.loads(capsys.readouterr().out) == [{"probability": None, "loss": None, "label": 3}]
