"""Training under tf.distribute: two replicas, two workers, the chief's files, scope checks.

The runs under a strategy go in subprocesses (distributed_run.py): logical devices and
the multi-worker runtime must be set up before TensorFlow initialises.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from distributed_run import (
    BATCH_SIZE,
    INTERRUPT_AT,
    LEARNING_RATE,
    LOG_EVERY,
    SEED,
    STEPS,
    evaluation_data,
    training_data,
)
from mnistkit import InvalidArgumentError, Trainer, build
from mnistkit.checkpoints import read_state
from mnistkit.cli import main
from mnistkit.distribute import STRATEGIES, check_scope, chief_path

SCRIPT = Path(__file__).with_name("distributed_run.py")
RUN_FILES = {"history.csv", "metrics.json", "model.keras", "run.json"}
PLOTS = {"confusion_matrix.png", "learning_curves.png", "misclassified.png"}  # with matplotlib
TIMEOUT = 120


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]


def weights_close(first: list[Any], second: list[Any], atol: float) -> float:
    """Return the largest difference between two lists of weights, checking it is <= atol."""
    difference = max(
        float(np.max(np.abs(np.subtract(a, b)))) for a, b in zip(first, second, strict=True)
    )
    assert difference <= atol, difference
    return difference


# ---------------------------------------------------------------- two replicas, one machine


@pytest.fixture(scope="module")
def mirrored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The results of distributed_run.py's runs on one device and on two logical CPUs."""
    result = tmp_path_factory.mktemp("mirrored") / "result.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "mirrored", str(result)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures: dict[str, Any] = json.loads(result.read_text())
    return figures


@pytest.mark.slow
def test_two_replicas_train_the_weights_of_one_device_at_the_same_global_batch(
    mirrored: dict[str, Any],
) -> None:
    one, two = mirrored["one_device"], mirrored["two_devices"]
    assert mirrored["replicas"] == 2
    assert one["metadata"] == {"strategy": None, "replicas": 1}
    assert two["metadata"] == {"strategy": "MirroredStrategy", "replicas": 2}
    weights_close(one["weights"], two["weights"], atol=1e-6)
    np.testing.assert_allclose(two["loss"], one["loss"], rtol=1e-5)
    assert two["evaluation"] == pytest.approx(one["evaluation"], rel=1e-5)


@pytest.mark.slow
def test_logged_accuracy_under_two_replicas_is_that_of_the_whole_global_batch(
    mirrored: dict[str, Any],
) -> None:
    one, two = mirrored["one_device"], mirrored["two_devices"]
    assert len(two["train_accuracy"]) == 4
    assert two["train_accuracy"] == one["train_accuracy"]


@pytest.mark.slow
def test_dropout_under_two_replicas_masks_each_replica_apart_and_resumes_exactly(
    mirrored: dict[str, Any],
) -> None:
    dropout = mirrored["dropout"]
    first, second = np.asarray(dropout["masks"])
    assert first.shape == (4, 32)
    assert (first != second).any()
    assert dropout["keep_prob_seen"] == pytest.approx([0.3] * 12)  # 6 steps, then 3 + 3
    whole, resumed = dropout["whole"], dropout["resumed"]
    assert whole["draws"] == resumed["draws"] == 6  # one draw a step, not one per replica
    assert whole["keep_prob_after"] == resumed["keep_prob_after"] == 0.3  # trained at
    weights_close(whole["weights"], resumed["weights"], atol=0.0)


# ---------------------------------------------------------------- two workers on localhost


def run_two_workers(tmp_path: Path, *command: str) -> list[str]:
    """Run ``command`` as both workers of a cluster on localhost; return their outputs.

    ``{index}`` in an argument becomes the worker's number. Each worker gets its own
    temporary folder, ``tmp_path / "tmp<index>"``. Both are killed if either overruns.
    """
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = []
    try:
        for index in range(2):
            scratch = tmp_path / f"tmp{index}"
            scratch.mkdir()
            config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            env = {**os.environ, "TF_CONFIG": json.dumps(config), "TMPDIR": str(scratch)}
            arguments = [argument.format(index=index) for argument in command]
            with (tmp_path / f"out{index}.txt").open("w") as out:
                workers.append(
                    subprocess.Popen(arguments, env=env, stdout=out, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + TIMEOUT
        for worker in workers:
            worker.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    outputs = [(tmp_path / f"out{index}.txt").read_text() for index in range(2)]
    assert [worker.returncode for worker in workers] == [0, 0], "\n".join(outputs)[-3000:]
    return outputs


@pytest.mark.slow
def test_two_workers_share_the_chiefs_seed_train_alike_and_its_checkpoint_resumes(
    tmp_path: Path,
) -> None:
    checkpoints = tmp_path / "checkpoints"
    result = str(tmp_path / "result{index}.npz")
    outputs = run_two_workers(
        tmp_path, sys.executable, str(SCRIPT), "worker", str(checkpoints), result
    )

    chief, other = (np.load(tmp_path / f"result{index}.npz") for index in range(2))
    assert [bool(chief["chief"]), bool(other["chief"])] == [True, False]
    assert [bool(chief["interrupted"]), bool(other["interrupted"])] == [True, True]
    assert [int(chief["seed"]), int(other["seed"])] == [SEED, SEED]
    weights = sorted(name for name in chief.files if name.startswith("arr_"))
    for name in weights:
        np.testing.assert_array_equal(chief[name], other[name])
    assert float(chief["accuracy"]) == float(other["accuracy"])
    # The chief alone printed the tutorial's lines and wrote the checkpoint; the other
    # worker's copies went to its temporary folder and are gone.
    assert "step 0, training accuracy" in outputs[0]
    assert "training accuracy" not in outputs[1]
    assert sorted(path.name for path in checkpoints.iterdir()) == [
        f"ckpt-{INTERRUPT_AT:09d}.weights.h5",
        "state.json",
    ]
    assert not list((tmp_path / "tmp1").glob("mnistkit-worker-*"))

    # On one device: the first half alone, the second resumed from the chief's
    # checkpoint, and the whole run uninterrupted.
    data = training_data()
    settings = {"steps": STEPS, "batch_size": BATCH_SIZE, "log_every": LOG_EVERY, "verbose": 0}
    half = Trainer("softmax", seed=SEED, learning_rate=LEARNING_RATE)
    half.fit(data, **{**settings, "steps": INTERRUPT_AT})
    weights_close(half.model.get_weights(), [chief[name] for name in weights], atol=1e-6)
    assert half.evaluate(evaluation_data())["accuracy"] == pytest.approx(float(chief["accuracy"]))

    assert read_state(checkpoints)["step"] == INTERRUPT_AT
    resumed = Trainer("softmax", seed=SEED, learning_rate=LEARNING_RATE)
    history = resumed.fit(data, checkpoint_dir=checkpoints, resume=True, **settings)
    assert history.log[0]["step"] == INTERRUPT_AT
    whole = Trainer("softmax", seed=SEED, learning_rate=LEARNING_RATE)
    whole_history = whole.fit(data, **settings)
    weights_close(resumed.model.get_weights(), whole.model.get_weights(), atol=1e-6)
    logged = [
        f"step {row['step']}, training accuracy {row['train_accuracy']:g}"
        for row in whole_history.log
        if "train_accuracy" in row and row["step"] < INTERRUPT_AT
    ]
    assert [line for line in outputs[0].splitlines() if "training accuracy" in line] == logged


# ---------------------------------------------------------------- in this process


@pytest.fixture(scope="module")
def one_cpu() -> tf.distribute.Strategy:
    return tf.distribute.MirroredStrategy(["/cpu:0"])


def test_a_model_built_outside_the_strategys_scope_is_refused_with_the_fix(one_cpu) -> None:
    with pytest.raises(InvalidArgumentError, match=r"inside `with strategy.scope\(\):`"):
        Trainer(build("softmax"), strategy=one_cpu)
    with one_cpu.scope():
        model = build("softmax")
    with pytest.raises(InvalidArgumentError, match=r'pass its name \(optimizer="adam"\)'):
        Trainer(model, optimizer=keras.optimizers.SGD(0.1), strategy=one_cpu)
    with pytest.raises(InvalidArgumentError, match="metric 'precision' was created outside"):
        Trainer(model, metrics=[keras.metrics.Precision(name="precision")], strategy=one_cpu)
    trainer = Trainer(model, strategy=one_cpu)
    assert trainer.model is model


def test_a_model_given_by_name_is_built_in_the_strategys_scope(one_cpu) -> None:
    trainer = Trainer("deep_cnn", strategy=one_cpu, seed=0)
    check_scope(one_cpu, trainer.model)  # its KeepProbDropout variables included
    weight = trainer.model.weights[0]
    assert one_cpu.extended.variable_created_in_scope(weight.value)


def test_only_the_chief_keeps_what_it_writes(tmp_path: Path) -> None:
    other_worker = SimpleNamespace(extended=SimpleNamespace(should_checkpoint=False))
    target = tmp_path / "checkpoints"
    with chief_path(target, other_worker) as where:  # type: ignore[arg-type]
        where.mkdir()
        (where / "state.json").write_text("{}")
    assert where != target
    assert not where.exists()
    assert not target.exists()
    with chief_path(target, None) as where:
        assert where == target


# ---------------------------------------------------------------- command line


def test_the_command_line_offers_the_strategies_the_library_makes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "--help"]) == 0
    assert "--strategy {" + ",".join(STRATEGIES) + "}" in capsys.readouterr().out


def test_multiworker_needs_an_output_folder_and_tf_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "softmax", "--strategy", "multiworker"]) == 2
    assert "multiworker needs --output DIR" in capsys.readouterr().err
    monkeypatch.delenv("TF_CONFIG", raising=False)
    args = ["train", "softmax", "--strategy", "multiworker", "--output", str(tmp_path / "run")]
    assert main(args) == 2
    error = capsys.readouterr().err
    assert "TF_CONFIG" in error
    assert '"cluster"' in error  # with an example
    monkeypatch.setenv("TF_CONFIG", "{not json")
    assert main(args) == 2
    assert "TF_CONFIG is not valid JSON" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_of_the_command_line_leave_one_run_folder_written_by_the_chief(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    outputs = run_two_workers(
        tmp_path,
        sys.executable,
        "-m",
        "mnistkit",
        "train",
        "softmax",
        "--steps",
        "3",
        "--strategy",
        "multiworker",
        "--output",
        str(run),
    )
    names = {path.name for path in run.iterdir()}
    assert RUN_FILES <= names <= RUN_FILES | PLOTS, outputs
    # Each worker names the recipe and the seed, the chief's; the other's copy is gone.
    recipes = [[line for line in out.splitlines() if line.startswith("Recipe ")] for out in outputs]
    assert recipes[0] == recipes[1]
    assert len(recipes[0]) == 1, outputs
    assert not list((tmp_path / "tmp1").glob("mnistkit-worker-*"))
