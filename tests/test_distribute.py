"""Training under tf.distribute: two replicas on one machine, scope and backend checks.

The runs under a strategy go in subprocesses (distributed_run.py): logical devices must
be set up before TensorFlow initialises.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnistkit import InvalidArgumentError, Trainer, build
from mnistkit.cli import main
from mnistkit.distribute import STRATEGIES, check_scope

SCRIPT = Path(__file__).with_name("distributed_run.py")
TIMEOUT = 120


def run_python(*arguments: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run Python in a fresh process with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, **env},
    )


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
    done = run_python(str(SCRIPT), "mirrored", str(result))
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
def test_dropout_under_two_replicas_trains_at_its_keep_prob_and_resumes_exactly(
    mirrored: dict[str, Any],
) -> None:
    dropout = mirrored["dropout"]
    first, _ = np.asarray(dropout["masks"])
    assert first.shape == (4, 32)
    assert dropout["keep_prob_seen"] == pytest.approx([0.3] * 12)  # 6 steps, then 3 + 3
    whole, resumed = dropout["whole"], dropout["resumed"]
    assert whole["draws"] == resumed["draws"] == 6  # one draw a step, not one per replica
    assert whole["keep_prob_after"] == resumed["keep_prob_after"] == 0.3  # trained at
    weights_close(whole["weights"], resumed["weights"], atol=0.0)


@pytest.mark.slow
def test_keras_own_fit_evaluate_and_predict_run_a_built_model_under_two_replicas(
    tmp_path: Path,
) -> None:
    result = tmp_path / "result.npz"
    done = run_python(str(SCRIPT), "keras", str(result))
    assert done.returncode == 0, done.stderr[-3000:]
    figures = np.load(result)

    assert int(figures["replicas"]) == 2
    assert figures["fit_loss"].shape == (2,)
    assert np.isfinite(figures["fit_loss"]).all()
    assert figures["fit_loss"][1] < figures["fit_loss"][0]
    assert np.isfinite(figures["loss"])
    assert float(figures["accuracy"]) > 0.15  # eight steps at 1e-4: past chance (0.1)
    assert figures["predictions"].shape == (256, 10)
    np.testing.assert_allclose(
        figures["predictions"], figures["plain_predictions"], rtol=1e-5, atol=1e-5
    )


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


# ---------------------------------------------------------------- command line


def test_the_command_line_offers_the_strategies_the_library_makes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["train", "--help"]) == 0
    assert "--strategy {" + ",".join(STRATEGIES) + "}" in capsys.readouterr().out


# ---------------------------------------------------------------- what a strategy cannot run on


@pytest.mark.slow
def test_a_strategy_on_another_backend_is_refused_naming_the_backend() -> None:
    code = """
import tensorflow as tf
from mnistkit import InvalidArgumentError, build
from mnistkit.distribute import check_scope, make_strategy
for attempt in (lambda: make_strategy("mirrored"),
                lambda: check_scope(tf.distribute.MirroredStrategy(["/cpu:0"]), build("softmax"))):
    try:
        attempt()
    except InvalidArgumentError as error:
        print(error)
"""
    done = run_python("-c", code, KERAS_BACKEND="jax")

    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith(
            "tf.distribute strategies need the TensorFlow backend; this is Keras's 'jax' "
            "backend. Set KERAS_BACKEND=tensorflow"
        )


@pytest.mark.slow
def test_a_multi_worker_strategy_is_refused_with_what_to_use_instead() -> None:
    code = """
import os
os.environ.pop("TF_CONFIG", None)  # a cluster of this one process
import tensorflow as tf
strategy = tf.distribute.MultiWorkerMirroredStrategy()
from mnistkit import InvalidArgumentError, Trainer
try:
    Trainer("softmax", strategy=strategy)
except InvalidArgumentError as error:
    print(error)
"""
    done = run_python("-c", code)

    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        "MultiWorkerMirroredStrategy is not supported: Keras 3 does not train under it "
        "(keras-team/keras#20585). Use tf.distribute.MirroredStrategy for the GPUs of one "
        "machine; across machines, keras.distribution on the JAX backend."
    ]


# ---------------------------------------------------------------- keras.distribution (JAX)


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="refused on the other backends")
def one_device_data_parallel() -> Any:
    """A ``DataParallel`` on one CPU, or a skip where this Keras cannot make one here."""
    try:
        return keras.distribution.DataParallel(devices=["cpu:0"])
    except AttributeError as error:  # Keras 3.12 on TensorFlow: no num_processes
        pytest.skip(f"Keras {keras.__version__} makes no DataParallel on this backend: {error}")


def test_a_keras_distribution_on_another_backend_is_refused_naming_the_backend() -> None:
    distribution = one_device_data_parallel()
    backend = keras.backend.backend()
    with pytest.raises(InvalidArgumentError) as caught:
        Trainer("softmax", distribution=distribution)
    assert str(caught.value).startswith(
        f"keras.distribution needs the JAX backend; this is Keras's {backend!r} backend."
    )
    keras.distribution.set_distribution(distribution)
    try:
        with pytest.raises(InvalidArgumentError, match="needs the JAX backend"):
            Trainer("softmax")  # one set globally is honoured, so refused too
    finally:
        keras.distribution.set_distribution(None)


def test_a_strategy_and_a_distribution_together_are_refused(one_cpu) -> None:
    distribution = one_device_data_parallel()
    with pytest.raises(InvalidArgumentError, match=r"either `strategy` .* or `distribution`"):
        Trainer("softmax", strategy=one_cpu, distribution=distribution)


def test_a_distribution_that_is_not_one_is_refused_naming_what_is_expected() -> None:
    with pytest.raises(InvalidArgumentError, match=r"Expected a keras.distribution.DataParallel"):
        Trainer("softmax", distribution="data_parallel")
