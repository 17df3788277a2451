"""Ctrl-C and SIGTERM during training: stop between two steps, never in the middle of one.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be, which during
``fit`` may be deep inside TensorFlow's runtime code with input threads running. The
process can then crash on the way out instead of saving its checkpoint. Here the first
Ctrl-C is only noted, and the interrupt is raised at the start of the next call of the
training function (or at the end of training), when the weights are consistent; a
second Ctrl-C interrupts at once, as usual.

SIGTERM, which job schedulers, ``docker stop`` and Kubernetes send before they kill a
process, is treated the same way, as :class:`Terminated` (a ``KeyboardInterrupt``), so
that a terminated run saves its checkpoint too, where the default would end the process
at once with nothing saved.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

import keras

from mnistkit._signals import Terminated, raise_terminated

__all__ = ["DeferredInterrupt"]


class DeferredInterrupt(keras.callbacks.Callback):
    """A context manager and Keras callback that defers Ctrl-C and SIGTERM to a step boundary.

    Outside the main thread, or for a signal that the program handles itself, it
    changes nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending: type[KeyboardInterrupt] | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is not threading.main_thread():
            return self
        ours = {
            signal.SIGINT: (signal.default_int_handler,),
            signal.SIGTERM: (signal.SIG_DFL, raise_terminated),
        }
        for number, defaults in ours.items():
            if signal.getsignal(number) in defaults:
                self._previous[number] = signal.signal(number, self._note)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous = {}

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.pending = Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        # A second signal acts at once.
        if signal.SIGINT in self._previous:
            signal.signal(signal.SIGINT, self._previous[signal.SIGINT])
        if signal.SIGTERM in self._previous:
            signal.signal(signal.SIGTERM, raise_terminated)

    def raise_pending(self) -> None:
        """Raise the interrupt that a Ctrl-C (or SIGTERM) asked for, if one did."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            raise pending

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.raise_pending()

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.raise_pending()
