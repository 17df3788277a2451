"""A drop-in for ``tensorflow.examples.tutorials.mnist.input_data``, removed in TensorFlow 2.

Code written for the TensorFlow 1 tutorials keeps working with one changed import::

    from mnistkit.compat import input_data
    mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)
    batch_xs, batch_ys = mnist.train.next_batch(100)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from mnistkit.datasets import Datasets, has_idx_files, mnist
from mnistkit.errors import InvalidArgumentError

__all__ = ["read_data_sets"]


def read_data_sets(
    train_dir: str | os.PathLike[str],
    fake_data: bool = False,
    one_hot: bool = False,
    dtype: Any = np.float32,
    reshape: bool = True,
    validation_size: int = 5000,
    seed: int | None = None,
    source_url: str | None = None,
) -> Datasets:
    """Load MNIST as the TensorFlow 1 ``read_data_sets`` did, without downloading.

    If ``train_dir`` holds the four IDX files (gzipped or not), they are read; if it
    holds none of them (or does not exist), the copy embedded in mnistkit is used. A
    folder with only some of the files is an error rather than a silent switch to the
    embedded copy. Nothing is downloaded and nothing is written: ``train_dir`` is not
    created if it does not exist.

    Args:
        train_dir: The folder of the IDX files, such as ``"MNIST_data/"``.
        fake_data: Not supported; must be ``False``.
        one_hot: Encode labels as one-hot float32 (N, 10) instead of integers (N,).
        dtype: Must be float32 (pixels scaled to [0, 1]), as a NumPy or TensorFlow
            type; the tutorial's other choice, raw uint8 pixels, is not offered.
        reshape: Flatten images to (N, 784), as the tutorial fed them; ``False``
            gives (N, 28, 28, 1).
        validation_size: How many training images to hold out for validation.
        seed: Seed of the ``next_batch`` shuffling.
        source_url: Accepted for compatibility and ignored: nothing is downloaded.

    Returns:
        An object with ``train``, ``validation`` and ``test`` splits, each with
        ``images``, ``labels``, ``num_examples`` and ``next_batch(n)``.

    Raises:
        InvalidArgumentError: If ``fake_data`` is true or ``dtype`` is not float32.
        DataNotFoundError: If ``train_dir`` holds some of the IDX files but not all.
        DataFormatError: If a file in ``train_dir`` is malformed.

    Example:
        >>> mnist = read_data_sets("MNIST_data/", one_hot=True)
        >>> batch_xs, batch_ys = mnist.train.next_batch(100)
        >>> batch_xs.shape, batch_ys.shape, mnist.test.images.shape
        ((100, 784), (100, 10), (10000, 784))
    """
    del source_url
    if fake_data:
        raise InvalidArgumentError(
            "Invalid value for argument `fake_data`. mnistkit always serves the real MNIST. "
            "Received: fake_data=True"
        )
    wanted = np.dtype(getattr(dtype, "as_numpy_dtype", dtype))
    if wanted != np.dtype(np.float32):
        raise InvalidArgumentError(
            f"Invalid value for argument `dtype`. Expected float32. Received: dtype={dtype!r}"
        )
    # With any of the files present the folder is read, and the loader names a missing one.
    source = train_dir if has_idx_files(train_dir, every=False) else None
    return mnist(
        one_hot=one_hot, validation_size=validation_size, flatten=reshape, source=source, seed=seed
    )
