"""Training under keras.distribution on JAX: several devices of one process, and several
processes on localhost started by ``mnistkit train --coordinator --processes --process-id``.

The runs go in subprocesses (distribution_run.py, the command line): JAX fixes its count
of CPU devices when it starts, from ``XLA_FLAGS=--xla_force_host_platform_device_count=N``,
and a process joins one cluster only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from mnistkit.run_folder import CHECKPOINT_DIR

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="keras.distribution trains on the JAX backend"
)

SCRIPT = Path(__file__).with_name("distribution_run.py")
TIMEOUT = 180


def run_script(*arguments: str, devices: int = 2) -> subprocess.CompletedProcess[str]:
    """Run distribution_run.py on JAX in a fresh process with ``devices`` CPU devices."""
    flags = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env={**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": flags},
    )


def jax_env(**extra: str) -> dict[str, str]:
    """The environment of a process on JAX with one CPU device."""
    env = {**os.environ, "KERAS_BACKEND": "jax", **extra}
    env.pop("XLA_FLAGS", None)
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def weights(result: Any, prefix: str) -> list[np.ndarray]:
    return [result[key] for key in sorted(k for k in result.files if k.startswith(prefix))]


@pytest.fixture(scope="module")
def two_devices(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The results of softmax on one device and under a DataParallel over two."""
    path = tmp_path_factory.mktemp("devices") / "result.npz"
    done = run_script("devices", str(path))
    assert done.returncode == 0, done.stderr[-3000:]
    return np.load(path)


@pytest.mark.slow
def test_two_devices_train_the_weights_of_one_at_the_same_global_batch(two_devices: Any) -> None:
    assert int(two_devices["devices"]) == 2
    assert int(two_devices["placed"]) == 2  # the variables live on both devices
    assert int(two_devices["replicas"]) == 2
    assert str(two_devices["strategy"]) == "DataParallel"
    one = weights(two_devices, "one_")
    for mine, theirs in zip(weights(two_devices, "given_"), one, strict=True):
        assert not np.array_equal(theirs, np.zeros_like(theirs))
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_distribution_set_globally_is_honoured(two_devices: Any) -> None:
    one = weights(two_devices, "one_")
    for mine, theirs in zip(weights(two_devices, "global_"), one, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_model_built_outside_the_scope_is_refused_with_the_fix(two_devices: Any) -> None:
    message = str(two_devices["refused"])
    assert "was built outside the scope of the DataParallel" in message
    assert "with distribution.scope():" in message
    assert "\n" not in message


# ---------------------------------------------------------------- two processes, localhost

TRAIN = ["-m", "mnistkit", "train", "softmax", "--steps", "100", "--seed", "0"]
TRAIN += ["--keep-checkpoints"]


def train_in_processes(tmp_path: Path, processes: int) -> list[subprocess.CompletedProcess[str]]:
    """Run ``mnistkit train`` as ``processes`` processes on localhost, each in a folder of
    its own (process I in tmp_path/process-I, writing --output tmp_path/output-I)."""
    cluster = ["--coordinator", f"127.0.0.1:{free_port()}", "--processes", str(processes)]
    started = []
    try:
        for index in range(processes):
            folder = tmp_path / f"process-{index}"
            folder.mkdir()
            output = ["--output", str(tmp_path / f"output-{index}")]
            command = [sys.executable, *TRAIN, *output, *cluster, "--process-id", str(index)]
            started.append(
                subprocess.Popen(
                    command,
                    cwd=folder,
                    env=jax_env(),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        done = []
        for process in started:
            out, err = process.communicate(timeout=TIMEOUT)
            done.append(subprocess.CompletedProcess(process.args, process.returncode, out, err))
        return done
    finally:
        for process in started:
            if process.poll() is None:
                process.kill()
                process.wait()


def model_weights(path: Path) -> list[np.ndarray]:
    from mnistkit import load_model

    return [np.asarray(w) for w in load_model(path).get_weights()]


@pytest.mark.slow
def test_two_processes_train_the_weights_of_one_and_only_the_chief_writes(
    tmp_path: Path,
) -> None:
    chief, worker = train_in_processes(tmp_path, 2)
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert worker.returncode == 0, worker.stderr[-3000:]
    assert "Test accuracy" in chief.stdout
    assert "as process 1 of 2" in worker.stdout
    assert not (tmp_path / "output-1").exists()  # the worker writes no run folder
    assert list((tmp_path / "process-1").iterdir()) == []  # nor anything beside it
    assert (tmp_path / "output-0" / CHECKPOINT_DIR / "state.json").exists()  # the chief's

    alone = subprocess.run(
        [sys.executable, *TRAIN, "--output", str(tmp_path / "alone")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=jax_env(),
    )
    assert alone.returncode == 0, alone.stderr[-3000:]
    two = model_weights(tmp_path / "output-0" / "model.keras")
    one = model_weights(tmp_path / "alone" / "model.keras")
    for mine, theirs in zip(two, one, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_process_that_never_comes_stops_the_chief_in_bounded_time_naming_it(
    tmp_path: Path,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    cluster = ["--coordinator", address, "--processes", "2", "--process-id", "0"]
    cluster += ["--join-timeout", "3"]
    started = time.monotonic()
    chief = subprocess.run(
        [sys.executable, *TRAIN, "--output", str(tmp_path / "run"), *cluster],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        env=jax_env(),
    )
    assert time.monotonic() - started < 60  # 3 s of waiting, the rest starting Python
    assert chief.returncode == 1
    errors = [line for line in chief.stderr.splitlines() if line.startswith("mnistkit:")]
    assert errors == [
        f"mnistkit: error: Process 1 did not join the cluster at {address} within 3 s (1 of 2 "
        f"came): start it with the same --coordinator, or check that it can reach {address}."
    ]
    assert "Traceback" not in chief.stderr
    assert not (tmp_path / "run").exists()  # nothing was trained: no run folder


@pytest.mark.slow
def test_ctrl_c_ends_the_wait_for_the_other_processes_at_once(tmp_path: Path) -> None:
    port = free_port()
    cluster = ["--coordinator", f"127.0.0.1:{port}", "--processes", "2", "--process-id", "0"]
    chief = subprocess.Popen(
        [sys.executable, *TRAIN, "--output", str(tmp_path / "run"), *cluster],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=jax_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the chief listens for the others
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.25)
        sent = time.monotonic()
        chief.send_signal(signal.SIGINT)
        _, err = chief.communicate(timeout=30)
        assert time.monotonic() - sent < 5  # not the 300 s of --join-timeout
    finally:
        if chief.poll() is None:
            chief.kill()
            chief.wait()
    assert chief.returncode == 130
    assert [line for line in err.splitlines() if line.startswith("mnistkit:")] == [
        "mnistkit: interrupted"
    ]
