"""Fixtures shared by the test modules: the embedded MNIST arrays, read once; Ctrl-C."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

# Set before any test imports TensorFlow, and inherited by the subprocesses tests start.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="session")
def mnist_arrays() -> Arrays:
    """The embedded ``x_train, y_train, x_test, y_test``, as the ``mnist`` loader reads them."""
    from mnistkit import load_dataset

    return load_dataset("mnist").raw  # type: ignore[return-value]


@pytest.fixture(scope="session")
def small_arrays(mnist_arrays: Arrays) -> Arrays:
    """The first 100 training and 50 test images and labels of the embedded MNIST."""
    x_train, y_train, x_test, y_test = mnist_arrays
    return x_train[:100].copy(), y_train[:100].copy(), x_test[:50].copy(), y_test[:50].copy()


@pytest.fixture(scope="session")
def trained_softmax() -> Any:
    """A softmax model trained for 200 steps: about 90% test accuracy in seconds."""
    from mnistkit import Trainer, load_dataset

    trainer = Trainer("softmax", seed=0)
    trainer.fit(load_dataset("mnist").train, steps=200, verbose=0)
    return trainer.model


@pytest.fixture(scope="session")
def trained_deep_cnn() -> Any:
    """A deep CNN trained for 400 steps (about 95% test accuracy, under a minute)."""
    from mnistkit import Trainer, load_dataset

    trainer = Trainer("deep_cnn", seed=0)
    trainer.fit(load_dataset("mnist").train, steps=400, verbose=0)
    return trainer.model


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` during the test, here and in the processes it starts.

    A runner started with SIGINT ignored (``tox &`` in a script, ``nohup``) passes the
    ignored disposition on, and Python then leaves it ignored at start-up. Installing
    Python's handler here undoes that in this process; a process the test starts gets
    SIGINT's default action back at ``exec``, as it does for every caught signal, so its
    Python installs its own handler too. The previous handler comes back afterwards.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
