"""Tests of mnistkit.runs: the files of a run folder."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from mnistkit import DataFormatError
from mnistkit.runs import new_run_folder, read_history, read_json, write_history, write_json


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
