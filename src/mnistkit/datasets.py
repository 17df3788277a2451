"""Data loaders, their registry, and the splits they return.

A data loader is a function that takes keyword options and returns a :class:`Datasets`
(``train``, ``validation`` and ``test`` :class:`Split` objects). The built-in ``mnist``
loader reads the copy of MNIST embedded in the package, a Keras-layout ``mnist.npz``,
or a folder of the four original IDX files. The splits are defined in
:mod:`mnistkit.splits` and the file readers in :mod:`mnistkit.mnist_files`; this module
offers them too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mnistkit.errors import DataNotFoundError, InvalidTypeError
from mnistkit.mnist_files import IDX_FILES, has_idx_files, read_idx_folder, read_mnist, read_npz
from mnistkit.registry import Entry, Registry
from mnistkit.splits import Datasets, Split, scale_pixels, sha256_of
from mnistkit.validation import check_bool, check_seed

__all__ = [
    "DATASETS",
    "IDX_FILES",
    "Datasets",
    "Split",
    "describe_datasets",
    "has_idx_files",
    "list_datasets",
    "load_data",
    "load_dataset",
    "mnist",
    "read_idx_folder",
    "read_npz",
    "register_dataset",
    "scale_pixels",
    "sha256_of",
    "unregister_dataset",
]

#: The registry of data loaders. ``DATASETS.entry(name)`` describes a name and
#: ``DATASETS.get(name)`` returns its loader (see :class:`~mnistkit.registry.Registry`).
DATASETS: Registry[Callable[..., Datasets]] = Registry(
    "dataset",
    group="mnistkit.datasets",
    lister="mnistkit.list_datasets() or `mnistkit datasets`",
)


Loader = TypeVar("Loader", bound=Callable[..., Datasets])


def register_dataset(name: str, *, override: bool = False) -> Callable[[Loader], Loader]:
    """Register a data loader under ``name`` (a decorator).

    A loader takes keyword options and returns a :class:`Datasets`; it usually reads
    arrays and hands them to :meth:`Datasets.from_arrays`.

    Args:
        name: The name users pass to :func:`load_dataset`.
        override: Replace a loader already registered under that name.

    Returns:
        A decorator that registers the loader and returns it unchanged.

    Raises:
        InvalidArgumentError: If the name is taken and ``override`` is false.

    Example:
        >>> import numpy as np
        >>> @register_dataset("blank_digits")
        ... def blank_digits(*, one_hot: bool = False) -> Datasets:
        ...     '''Ten blank images per split.'''
        ...     x, y = np.zeros((10, 28, 28), np.uint8), np.arange(10, dtype=np.uint8)
        ...     return Datasets.from_arrays(x, y, x, y, validation_size=0, one_hot=one_hot)
        >>> load_dataset("blank_digits").test.num_examples
        10
    """
    return DATASETS.register(name, override=override)  # type: ignore[return-value]


def unregister_dataset(name: str) -> None:
    """Remove a data loader registered in this process (installed plugins stay).

    Args:
        name: The registered name.

    Raises:
        UnknownNameError: If no loader of that name was registered in this process.
    """
    DATASETS.unregister(name)


def load_dataset(name: str, /, **options: Any) -> Datasets:
    """Load a registered dataset by name.

    Args:
        name: A registered name, such as ``"mnist"``; see :func:`list_datasets`.
        **options: The loader's keyword options; for ``"mnist"``, those of
            :func:`~mnistkit.datasets.mnist`.

    Returns:
        The ``train``, ``validation`` and ``test`` splits.

    Raises:
        UnknownNameError: If no loader is registered under ``name``; the message lists
            close matches.
        InvalidArgumentError: If the loader does not accept an option.
        InvalidTypeError: If the loader returns something other than a
            :class:`Datasets`.
        PluginError: If the plugin that provides the loader fails to import or to load.

    Example:
        >>> mnist = load_dataset("mnist")
        >>> mnist.train.images.shape, mnist.validation.num_examples, mnist.test.num_examples
        ((55000, 28, 28, 1), 5000, 10000)
    """
    loaded = DATASETS.create(name, **options)
    if not isinstance(loaded, Datasets):
        entry = DATASETS.entry(name)
        where = f" from plugin {entry.distribution}" if entry.distribution else ""
        raise InvalidTypeError(
            f"The dataset {entry.name!r}{where} returned a {type(loaded).__name__}, not a "
            "Datasets; a data loader returns Datasets.from_arrays(...)."
        )
    return loaded


def list_datasets(pattern: str | None = None) -> list[str]:
    """Return the names of the registered datasets, sorted.

    Args:
        pattern: An :mod:`fnmatch` pattern to filter the names; ``None`` keeps all.

    Returns:
        The names, built-in, registered at run time and from installed plugins.

    Example:
        >>> "mnist" in list_datasets()
        True
    """
    return DATASETS.names(pattern)


def describe_datasets(pattern: str | None = None) -> list[Entry]:
    """Return an :class:`~mnistkit.registry.Entry` (origin, summary) for each dataset.

    Args:
        pattern: An :mod:`fnmatch` pattern to filter the names; ``None`` keeps all.

    Returns:
        The entries, sorted by name. Plugins are described without being imported.

    Example:
        >>> [entry.origin for entry in describe_datasets("mnist")]
        ['built-in']
    """
    return DATASETS.entries(pattern)


@register_dataset("mnist")
def mnist(
    *,
    one_hot: bool = False,
    validation_size: int = 5000,
    flatten: bool = False,
    source: str | os.PathLike[str] | None = None,
    seed: int | None = None,
) -> Datasets:
    """MNIST handwritten digits: 55,000 training, 5,000 validation and 10,000 test images.

    By default the copy embedded in mnistkit is read: no network, no file outside the
    package. The first ``validation_size`` training images are held out for
    validation, as the TensorFlow 1 tutorial's ``read_data_sets`` did.

    Args:
        one_hot: Encode labels as one-hot float32 (N, 10) instead of int32 (N,).
        validation_size: How many training images to hold out, 0 to 60,000.
        flatten: Shape images (N, 784), as the tutorial fed them, instead of
            (N, 28, 28, 1).
        source: Read another copy instead: a Keras-layout ``mnist.npz`` file, or a
            folder holding the four IDX files (gzipped or not; see :data:`IDX_FILES`).
        seed: Seed of the :meth:`Split.next_batch` shuffling of each split.

    Returns:
        The three splits, images float32 in [0, 1].

    Raises:
        DataNotFoundError: If ``source`` does not exist or lacks one of the files.
        DataFormatError: If a file is corrupt or holds arrays of the wrong form.
        InvalidArgumentError: If ``validation_size`` is out of range, ``one_hot`` or
            ``flatten`` is not a boolean, ``seed`` is not a seed, or ``source`` is not a
            path.

    Example:
        >>> data = mnist(one_hot=True, flatten=True, validation_size=0)
        >>> data.train.images.shape, data.train.labels.shape
        ((60000, 784), (60000, 10))
    """
    check_bool(one_hot, "one_hot")
    check_bool(flatten, "flatten")
    if seed is not None:
        check_seed(seed)
    arrays, description = read_mnist(source)
    return Datasets.from_arrays(
        *arrays,
        one_hot=one_hot,
        validation_size=validation_size,
        flatten=flatten,
        seed=seed,
        source=description,
    )


def load_data(
    path: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return MNIST as ``keras.datasets.mnist.load_data()`` does, from the embedded copy.

    Code written against Keras keeps working with one changed import::

        # from keras.datasets import mnist
        from mnistkit import datasets as mnist

        (x_train, y_train), (x_test, y_test) = mnist.load_data()

    The arrays are those Keras returns, with the same types and shapes: all 60,000
    training images (no validation split), raw pixels, integer labels.

    Args:
        path: Read this Keras-layout ``mnist.npz`` instead of the embedded copy. The
            path is taken as given (absolute, or relative to the working folder);
            Keras looks for it under ``~/.keras/datasets/`` and downloads it if
            absent, while mnistkit downloads nothing.

    Returns:
        The pairs ``(x_train, y_train), (x_test, y_test)`` of uint8 images shaped
        (60000, 28, 28) and (10000, 28, 28) and uint8 labels shaped (60000,) and
        (10000,). Each call returns new arrays, so changing them changes nothing else.

    Raises:
        DataNotFoundError: If ``path`` does not exist.
        DataFormatError: If ``path`` is not a readable Keras-layout MNIST npz.

    Example:
        >>> (x_train, y_train), (x_test, y_test) = load_data()
        >>> x_train.shape, x_train.dtype, y_train.shape, y_train.dtype
        ((60000, 28, 28), dtype('uint8'), (60000,), dtype('uint8'))
        >>> x_test.shape, y_test[:10].tolist()
        ((10000, 28, 28), [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])
    """
    if path is not None and not Path(path).exists():
        raise DataNotFoundError(
            f"{path}: no such file. Leave out `path` for the MNIST embedded in mnistkit "
            "(nothing is downloaded)."
        )
    x_train, y_train, x_test, y_test = read_mnist(None)[0] if path is None else read_npz(path)
    return (x_train, y_train), (x_test, y_test)
