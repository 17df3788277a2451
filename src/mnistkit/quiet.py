"""Importing TensorFlow without its start-up chatter on stderr.

TensorFlow's C++ runtime writes to the process's stderr while it loads, partly before
its logging has read ``TF_CPP_MIN_LOG_LEVEL``, so that setting the variable does not
hide it all: an absl banner, INFO lines (oneDNN, CPU instructions, no CUDA driver), and
on a machine without a GPU an ERROR line, ``failed call to cuInit``, which only says
that there is no GPU to use (https://github.com/tensorflow/tensorflow/issues/37689).

:func:`quiet_tensorflow` imports TensorFlow and Keras with stderr's file descriptor
caught, and passes on every line that :func:`is_tensorflow_noise` does not know as
noise: warnings and errors still show. ``MNISTKIT_DEBUG=1`` in the environment, or
``debug=True``, shows everything. The ``mnistkit`` command line imports TensorFlow
this way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator

__all__ = ["DEBUG_VARIABLE", "is_tensorflow_noise", "quiet_tensorflow"]

#: The environment variable that, set to anything but ``""``, ``0``, ``false`` or ``no``,
#: makes :func:`quiet_tensorflow` (and the command line) show everything.
DEBUG_VARIABLE = "MNISTKIT_DEBUG"

# absl's log lines: severity letter, date, time, thread, source file and line, message.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ (\S+):\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
# The second line of cpu_feature_guard's INFO message, which carries no prefix.
_CPU_FEATURES_CONTINUED = "To enable the following instructions:"
_NO_DRIVER = "Could not find cuda drivers"
_DEFAULT_LEVEL = "1"

_lock = threading.Lock()
_imported = False


def is_tensorflow_noise(line: str, *, level: int = 1, gpu_driver: bool = False) -> bool:
    """Tell whether a line TensorFlow writes to stderr as it loads is known noise.

    Noise is absl's banner; a log line below ``level`` (as ``TF_CPP_MIN_LOG_LEVEL``
    counts: 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL), with the unprefixed second line of
    the INFO message about CPU instructions; a ``cudart_stub`` line, about the CUDA
    runtime's absence; and, where there is no NVIDIA driver, the ERROR line ``failed
    call to cuInit``. Anything else is not noise: other warnings and errors, Python's
    own warnings and tracebacks.

    Args:
        line: One line, with or without its line break.
        level: The lowest severity that is shown.
        gpu_driver: Whether an NVIDIA driver is installed, so that a failing ``cuInit``
            is a real error.

    Returns:
        True if the line can be dropped.

    Example:
        >>> stamp = "0000 00:00:1796075361.314378   10862"
        >>> is_tensorflow_noise(f"I{stamp} port.cc:153] oneDNN custom operations on.")
        True
        >>> cuinit = f"E{stamp} cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR"
        >>> is_tensorflow_noise(cuinit), is_tensorflow_noise(cuinit, gpu_driver=True)
        (True, False)
        >>> is_tensorflow_noise(f"E{stamp} bfc_allocator.cc:485] Allocator ran out of memory")
        False
    """
    if line.startswith(_ABSL_BANNER):
        return True
    if line.startswith(_CPU_FEATURES_CONTINUED):
        return level > _SEVERITY["I"]  # goes with the INFO line above it
    match = _ABSL_LINE.match(line)
    if match is None:
        return False
    if match.group(2).startswith("cudart_stub"):
        return True
    if "failed call to cuInit" in line and not gpu_driver:
        return True
    return _SEVERITY[match.group(1)] < level


def quiet_tensorflow(*, debug: bool | None = None) -> None:
    """Import TensorFlow and Keras, holding back the noise they write to stderr.

    Call it before anything imports TensorFlow (importing :mod:`mnistkit` does not):
    the lines :func:`is_tensorflow_noise` knows are dropped, the others are written to
    ``sys.stderr`` once the import is done. Unless ``TF_CPP_MIN_LOG_LEVEL`` is set, it
    is set to 1 for the rest of the process, so TensorFlow's later INFO lines stay
    quiet too. Called again, or once TensorFlow is loaded, it only catches what is left
    to load (such as the CUDA start-up).

    Args:
        debug: Show everything TensorFlow writes, and leave ``TF_CPP_MIN_LOG_LEVEL``
            alone. ``None`` reads :data:`DEBUG_VARIABLE` (``MNISTKIT_DEBUG``).

    Example:
        >>> quiet_tensorflow()
        >>> import keras  # already imported, and nothing was printed
        >>> keras.layers.Dense(1).units
        1
    """
    global _imported
    if debug is None:
        debug = os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")
    with _lock:
        if _imported:
            return
        if not debug and "tensorflow" not in sys.modules:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", _DEFAULT_LEVEL)
        with contextlib.nullcontext() if debug else held_back_stderr(_without_noise()):
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices()  # where CUDA, if installed, starts up
        _imported = True


def _without_noise() -> Callable[[list[str]], list[str]]:
    """What keeps the lines is_tensorflow_noise does not know, at the level set now."""
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", _DEFAULT_LEVEL))
    except ValueError:
        level = 0  # as TensorFlow reads a value that is not a number

    def kept(lines: list[str]) -> list[str]:
        driver = os.path.isdir("/proc/driver/nvidia") and not any(_NO_DRIVER in x for x in lines)
        noise = functools.partial(is_tensorflow_noise, level=level, gpu_driver=driver)
        return [line for line in lines if not noise(line)]

    return kept


@contextlib.contextmanager
def held_back_stderr(kept: Callable[[list[str]], list[str]]) -> Iterator[None]:
    """Catch what is written on stderr's file descriptor, then write the lines ``kept`` keeps.

    Lines written by C++ code (TensorFlow's log, libjpeg) are caught as well as Python's;
    without a file descriptor 2 to catch (a GUI program on Windows), nothing is held back.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.writelines(kept(lines))
            sys.stderr.flush()
