"""Training under keras.distribution on JAX: several devices of one process.

The runs go in subprocesses (distribution_run.py): JAX fixes its count of CPU devices
when it starts, from ``XLA_FLAGS=--xla_force_host_platform_device_count=N``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

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
