"""Ctrl-C during training: stop between two steps, never in the middle of one.

Python raises ``KeyboardInterrupt`` wherever the main thread happens to be, which during
``fit`` may be deep inside TensorFlow's runtime code with input threads running. The
process can then crash on the way out instead of saving its checkpoint. Here the first
Ctrl-C is only noted, and the interrupt is raised at the start of the next call of the
training function (or at the end of training), when the weights are consistent; a
second Ctrl-C interrupts at once, as usual.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any

import keras

__all__ = ["DeferredInterrupt"]


class DeferredInterrupt(keras.callbacks.Callback):
    """A context manager and Keras callback that defers Ctrl-C to a step boundary.

    Outside the main thread, or where the program has its own SIGINT handler, it
    changes nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending = False
        self._previous: Any = None

    def __enter__(self) -> DeferredInterrupt:
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            self._previous = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.pending = True
        signal.signal(signal.SIGINT, self._previous)  # a second Ctrl-C interrupts at once

    def raise_pending(self) -> None:
        """Raise the ``KeyboardInterrupt`` that a Ctrl-C asked for, if one did."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.raise_pending()

    def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.raise_pending()
