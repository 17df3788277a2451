"""Quiet TensorFlow: its start-up noise is held back, its real warnings and errors are not."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from mnistkit.quiet import DEBUG_VARIABLE, is_tensorflow_noise

STAMP = "0000 00:00:1796075361.314378   10862"
ABSL_LINE = re.compile(r"^[IWEF]\d{4} ", re.MULTILINE)
BANNER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"

# What a library user's script does: import mnistkit, maybe quiet TensorFlow, use Keras.
USE_KERAS = "import keras; keras.layers.Dense(1)(keras.ops.zeros((1, 2)))"
QUIET = "from mnistkit.quiet import quiet_tensorflow; quiet_tensorflow()"
# Stands in for a real failure while TensorFlow loads: an absl ERROR line written to file
# descriptor 2 by native code, and a Python warning written to sys.stderr.
FAIL_WHILE_LOADING = f"""
import builtins, os, sys
real_import = builtins.__import__
def failing_import(name, *args, **kwargs):
    if name == "keras" and "keras" not in sys.modules:
        os.write(2, b"E{STAMP} gpu_device.cc:7] Device memory is corrupt\\n")
        print("UserWarning: a real Python warning", file=sys.stderr)
    return real_import(name, *args, **kwargs)
builtins.__import__ = failing_import
"""


def run_python(code: str, **env: str) -> str:
    """Run ``code`` as a user would, TF_CPP_MIN_LOG_LEVEL unset, and return its stderr."""
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL",)}
    environment.pop(DEBUG_VARIABLE, None)
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**environment, **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    "line",
    [
        BANNER,
        f"I{STAMP} port.cc:153] oneDNN custom operations are on.",
        f"I{STAMP} cudart_stub.cc:31] Could not find cuda drivers on your machine.",
        f"W{STAMP} cudart_stub.cc:29] Could not load dynamic library 'libcudart.so.12'",
        f"E{STAMP} cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)",
        "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild",
    ],
)
def test_start_up_noise_is_recognised(line: str) -> None:
    assert is_tensorflow_noise(line)
    assert is_tensorflow_noise(line + "\n")


@pytest.mark.parametrize(
    "line",
    [
        f"W{STAMP} gpu_device.cc:2343] Cannot dlopen some GPU libraries.",
        f"E{STAMP} bfc_allocator.cc:485] Allocator ran out of memory trying to allocate",
        f"F{STAMP} check.cc:12] Check failed: shape.dims() == 4",
        "Traceback (most recent call last):",
        "/x/y.py:3: UserWarning: something real",
    ],
)
def test_warnings_errors_and_python_output_are_not_noise(line: str) -> None:
    assert not is_tensorflow_noise(line)


def test_the_level_hides_what_tensorflow_would_hide() -> None:
    warning = f"W{STAMP} gpu_device.cc:2343] Cannot dlopen some GPU libraries."
    info = f"I{STAMP} cpu_feature_guard.cc:227] This TensorFlow binary is optimized"

    assert [is_tensorflow_noise(warning, level=n) for n in range(4)] == [0, 0, 1, 1]
    assert [is_tensorflow_noise(info, level=n) for n in range(4)] == [0, 1, 1, 1]
    continued = "To enable the following instructions: AVX2 FMA, in other operations"
    assert [is_tensorflow_noise(continued, level=n) for n in range(4)] == [0, 1, 1, 1]


def test_cuinit_failure_is_an_error_where_there_is_a_driver() -> None:
    cuinit = f"E{STAMP} cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)"

    assert not is_tensorflow_noise(cuinit, gpu_driver=True)
    assert not is_tensorflow_noise(cuinit, level=0, gpu_driver=True)


def sources(stderr: str) -> set[tuple[str, str]]:
    """The severity and source file of each absl log line."""
    return set(re.findall(r"^([IWEF])\d{4} [\d:.]+\s+\d+ (\S+):\d+\] ", stderr, re.MULTILINE))


@pytest.fixture(scope="module")
def unquiet_stderr() -> str:
    """What a script that uses Keras prints on stderr without the switch."""
    stderr = run_python(f"import mnistkit; {USE_KERAS}")
    if not ABSL_LINE.search(stderr):
        pytest.skip("this TensorFlow prints no start-up log here: nothing to hold back")
    return stderr


@pytest.mark.slow
def test_quiet_tensorflow_leaves_stderr_empty(unquiet_stderr: str) -> None:
    stderr = run_python(f"import mnistkit; {QUIET}; {USE_KERAS}")

    assert not ABSL_LINE.search(stderr), stderr
    assert stderr == ""


@pytest.mark.slow
def test_quiet_tensorflow_still_shows_real_errors(unquiet_stderr: str) -> None:
    stderr = run_python(f"{FAIL_WHILE_LOADING}\nimport mnistkit; {QUIET}; {USE_KERAS}")

    assert stderr.splitlines() == [
        f"E{STAMP} gpu_device.cc:7] Device memory is corrupt",
        "UserWarning: a real Python warning",
    ]


@pytest.mark.slow
def test_debug_shows_everything(unquiet_stderr: str) -> None:
    stderr = run_python(f"import mnistkit; {QUIET}; {USE_KERAS}", **{DEBUG_VARIABLE: "1"})

    assert sources(stderr) == sources(unquiet_stderr)


@pytest.mark.slow
def test_mnistkit_holds_back_the_noise_when_it_imports_tensorflow(unquiet_stderr: str) -> None:
    stderr = run_python("import mnistkit; mnistkit.build('softmax'); mnistkit.Trainer")

    assert not ABSL_LINE.search(stderr), stderr
