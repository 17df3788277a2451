"""Tests of the TensorBoard callback: the event files are read back, as TensorBoard reads them."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def read_events(folder: Path) -> tuple[dict[str, dict[int, float]], list[str], bool]:
    """Return the scalars of every event file in ``folder`` (tag -> step -> value), the
    text summaries' tags, and whether a graph was written."""
    import tensorflow as tf

    scalars: dict[str, dict[int, float]] = defaultdict(dict)
    texts: list[str] = []
    graph = False
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            graph = graph or bool(event.graph_def)
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    scalars[value.tag][event.step] = float(tf.make_ndarray(value.tensor))
                elif plugin == "text":
                    texts.append(value.tag)
    return dict(scalars), texts, graph


@pytest.fixture(scope="module")
def softmax_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from mnistkit import Trainer, load_dataset
    from mnistkit.tensorboard import TensorBoardLog

    data = load_dataset("mnist")
    log_dir = tmp_path_factory.mktemp("tensorboard")
    trainer = Trainer("softmax", seed=0)
    history = trainer.fit(
        data.train,
        steps=60,
        log_every=20,
        validation_data=(data.validation.images[:500], data.validation.labels[:500]),
        callbacks=[TensorBoardLog(log_dir)],
        verbose=0,
    )
    return log_dir, history


def test_logged_steps_are_written_with_the_values_of_the_run_history(
    softmax_run: tuple[Path, Any],
) -> None:
    log_dir, history = softmax_run
    train, _, _ = read_events(log_dir / "train")
    validation, _, _ = read_events(log_dir / "validation")
    logged = {int(record["step"]): record for record in history.log}

    assert sorted(train["steps/batch_accuracy"]) == [0, 20, 40]
    for step, value in train["steps/batch_accuracy"].items():
        assert value == pytest.approx(logged[step]["train_accuracy"], abs=1e-6)
    assert sorted(train["steps/loss"]) == [20, 40, 60]
    for step in (20, 40, 60):
        assert train["steps/loss"][step] == pytest.approx(logged[step]["loss"], rel=1e-5)
        assert train["steps/accuracy"][step] == pytest.approx(logged[step]["accuracy"], rel=1e-5)
        assert validation["steps/loss"][step] == pytest.approx(logged[step]["val_loss"], rel=1e-5)
        assert validation["steps/accuracy"][step] == pytest.approx(
            logged[step]["val_accuracy"], rel=1e-5
        )


def test_the_learning_rate_and_epoch_figures_are_written(softmax_run: tuple[Path, Any]) -> None:
    log_dir, history = softmax_run
    train, _, _ = read_events(log_dir / "train")
    validation, _, _ = read_events(log_dir / "validation")

    rates = train["steps/learning_rate"]
    assert sorted(rates) == [0, 20, 40, 60]
    assert list(rates.values()) == pytest.approx([0.5] * 4)  # the recipe's constant rate
    # 60 steps of 100 end inside the first epoch: one (partial) epoch, closed at step 60.
    assert train["epochs/loss"] == {60: pytest.approx(history.history["loss"][0], rel=1e-5)}
    assert validation["epochs/accuracy"] == {
        60: pytest.approx(history.history["val_accuracy"][0], rel=1e-5)
    }


def test_the_graph_and_a_model_summary_are_written_once(softmax_run: tuple[Path, Any]) -> None:
    log_dir, _ = softmax_run
    _, texts, graph = read_events(log_dir / "train")
    _, _, validation_graph = read_events(log_dir / "validation")

    assert graph
    assert not validation_graph
    assert texts == ["model"]


def test_a_decaying_learning_rate_is_written_as_it_falls(tmp_path: Path) -> None:
    from mnistkit import Recipe, Trainer
    from mnistkit.tensorboard import TensorBoardLog

    rng = np.random.default_rng(0)
    images = rng.random((64, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    recipe = Recipe(learning_rate=0.1, steps=20, batch_size=8, schedule="warmup_cosine")
    Trainer("softmax", recipe=recipe, seed=0).fit(
        (images, labels), log_every=5, callbacks=[TensorBoardLog(tmp_path, graph=False)], verbose=0
    )
    train, _, graph = read_events(tmp_path / "train")

    rates = [train["steps/learning_rate"][step] for step in sorted(train["steps/learning_rate"])]
    assert not graph
    assert max(rates) <= 0.1 + 1e-7
    assert rates[-1] < max(rates) / 2  # cosine decay towards 0 by the end


@pytest.mark.slow
def test_train_tensorboard_writes_event_files_into_the_run_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mnistkit", "train", "softmax", "--steps", "30",
         "--log-every", "10", "--seed", "0", "--output", str(tmp_path), "--tensorboard"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    train, _, graph = read_events(tmp_path / "tensorboard" / "train")
    validation, _, _ = read_events(tmp_path / "tensorboard" / "validation")
    assert graph
    assert sorted(train["steps/batch_accuracy"]) == [0, 10, 20]
    assert sorted(validation["steps/loss"]) == [10, 20, 30]


def test_without_tensorboard_the_error_names_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['tensorboard'] = None\n"
        "from mnistkit.tensorboard import TensorBoardLog\n"
        "from mnistkit.errors import MissingDependencyError\n"
        "try:\n"
        f"    TensorBoardLog({str(tmp_path / 'logs')!r})\n"
        "except MissingDependencyError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "pip install 'mnistkit[tensorboard]'" in result.stdout
    assert not (tmp_path / "logs").exists()
