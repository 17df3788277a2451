"""SIGTERM as an interrupt: what job schedulers, ``docker stop`` and Kubernetes send.

By default SIGTERM ends a Python process at once, so a training run would save nothing
and say nothing. Inside :func:`terminate_as_interrupt` it raises :class:`Terminated`
instead, a ``KeyboardInterrupt``, so that the run stops as on Ctrl-C: the Trainer saves
its checkpoint and the command line prints the command that resumes it. Nothing here
imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

__all__ = ["Terminated", "raise_terminated", "terminate_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """The process was sent SIGTERM: an interrupt, which ends the run as Ctrl-C does."""


def raise_terminated(signum: int, frame: FrameType | None) -> None:
    """The SIGTERM handler that raises :class:`Terminated`."""
    raise Terminated


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread.

    Outside the main thread, or where the program has its own SIGTERM handler, it
    changes nothing.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
