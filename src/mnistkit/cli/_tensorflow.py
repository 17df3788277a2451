"""Importing TensorFlow for a command, without its C++ start-up chatter on the screen."""

from __future__ import annotations

import os
import re
import sys
import tempfile

# absl's log lines: severity letter, date, time, thread, source, message.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")
_ABSL_BANNER = "WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def import_tensorflow(*, debug: bool) -> None:
    """Import TensorFlow and Keras, holding back the C++ log lines TF_CPP_MIN_LOG_LEVEL hides.

    TensorFlow 2.21 writes its start-up lines before its logging reads the variable, so
    they are caught on the stderr file descriptor here and only the ones the level lets
    through are passed on. ``debug`` passes everything on.
    """
    if "keras" in sys.modules:
        return
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow as tf

            tf.config.list_physical_devices()  # where CUDA, if installed, starts up
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            for line in lines:
                if debug or not _is_log_noise(line, level):
                    sys.stderr.write(line)


def _is_log_noise(line: str, level: int) -> bool:
    if line.startswith(_ABSL_BANNER):
        return level >= 1
    match = _ABSL_LINE.match(line)
    if match is None:
        return False
    if level >= 2 and "failed call to cuInit" in line:
        return True  # no usable GPU: TensorFlow runs on the CPU, as its INFO line says
    return _SEVERITY[match.group(1)] < level
