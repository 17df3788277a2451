"""Data loaders, their registry, and the splits they return.

A data loader is a function that takes keyword options and returns a :class:`Datasets`
(``train``, ``validation`` and ``test`` :class:`Split` objects). The built-in ``mnist``
loader reads the copy of MNIST embedded in the package, a Keras-layout ``mnist.npz``,
or a folder of the four original IDX files.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError
from mnistkit.idx import read_idx
from mnistkit.registry import Entry, Registry

if TYPE_CHECKING:
    import tensorflow as tf

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

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)

#: The four IDX files of MNIST, as the TensorFlow 1 tutorial's ``MNIST_data/`` holds
#: them (each may also be stored without the ``.gz``).
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

#: The registry of data loaders. ``DATASETS.entry(name)`` describes a name and
#: ``DATASETS.get(name)`` returns its loader (see :class:`~mnistkit.registry.Registry`).
DATASETS: Registry[Callable[..., Datasets]] = Registry(
    "dataset",
    group="mnistkit.datasets",
    lister="mnistkit.list_datasets() or `mnistkit datasets`",
)


class Split:
    """One split of a dataset: images, labels, and ways to iterate over them.

    It offers what the TensorFlow 1 tutorial used (:attr:`images`, :attr:`labels`,
    :attr:`num_examples`, :meth:`next_batch`) and what Keras users need (the arrays
    themselves for ``fit``, and :meth:`as_dataset` for a ``tf.data`` pipeline).

    Args:
        images: Images shaped (N, 28, 28, 1) or (N, 784): float32 in [0, 1], or raw
            uint8 pixels, which are scaled to float32 in [0, 1] on first use.
        labels: Integer labels (N,) or one-hot labels (N, 10).
        seed: Seed of the shuffling that :meth:`next_batch` does; ``None`` draws one.

    Raises:
        InvalidArgumentError: If images and labels differ in number.

    Example:
        >>> import numpy as np
        >>> split = Split(np.zeros((4, 784), np.float32), np.arange(4))
        >>> images, labels = split.next_batch(3, shuffle=False)
        >>> images.shape, labels.tolist(), split.num_examples
        ((3, 784), [0, 1, 2], 4)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, seed: int | None = None) -> None:
        if len(images) != len(labels):
            raise InvalidArgumentError(
                f"Images and labels differ in number: {len(images)} images, {len(labels)} labels."
            )
        self._images = images
        self._given = images  # what the checksum covers, before any scaling
        self._labels = labels
        self._checksum: str | None = None
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(images))
        self._index_in_epoch = 0
        self._epochs_completed = 0

    @property
    def images(self) -> np.ndarray:
        """The images, float32 in [0, 1]."""
        # Scaling 55,000 images costs more than reading them: do it once, when asked.
        self._images = scale_pixels(self._images)
        return self._images

    @property
    def raw_images(self) -> np.ndarray:
        """The images as given, unscaled (uint8 pixels for the built-in loaders)."""
        return self._given

    @property
    def labels(self) -> np.ndarray:
        """The labels, as integers (N,) or one-hot float32 (N, 10)."""
        return self._labels

    @property
    def checksum(self) -> str:
        """SHA-256 of the split's images and labels, as first given (computed once)."""
        if self._checksum is None:
            self._checksum = sha256_of(self._given, self._labels)
        return self._checksum

    @property
    def num_examples(self) -> int:
        """How many examples the split holds."""
        return len(self._images)

    @property
    def epochs_completed(self) -> int:
        """How many times :meth:`next_batch` has gone through the whole split."""
        return self._epochs_completed

    @property
    def one_hot(self) -> bool:
        """Whether the labels are one-hot vectors."""
        return self._labels.ndim == 2

    def __len__(self) -> int:
        return self.num_examples

    def __repr__(self) -> str:
        return f"Split(images={self._images.shape}, labels={self._labels.shape})"

    def next_batch(self, batch_size: int, *, shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Return the next ``batch_size`` examples, as the TensorFlow 1 ``DataSet`` did.

        The order is shuffled before the first batch and again at each epoch boundary;
        a batch that crosses the boundary takes the rest of the old epoch and the start
        of the new one. With the same seed the sequence of batches is the same.

        Args:
            batch_size: How many examples to return, from 1 to :attr:`num_examples`.
            shuffle: Shuffle at each epoch; ``False`` walks the split in order.

        Returns:
            A pair ``(images, labels)`` of arrays with ``batch_size`` rows.

        Raises:
            InvalidArgumentError: If ``batch_size`` is not in [1, num_examples].

        Example:
            >>> import numpy as np
            >>> split = Split(np.zeros((5, 784), np.float32), np.arange(5), seed=0)
            >>> sorted(split.next_batch(5)[1].tolist())
            [0, 1, 2, 3, 4]
        """
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or not 0 < batch_size <= len(self)
        ):
            raise InvalidArgumentError(
                "Invalid value for argument `batch_size`. Expected an integer in "
                f"[1, {len(self)}]. Received: batch_size={batch_size!r}"
            )
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._order = self._rng.permutation(len(self))
        if start + batch_size <= len(self):
            self._index_in_epoch = start + batch_size
            picked = self._order[start : start + batch_size]
        else:
            rest = self._order[start:]
            self._epochs_completed += 1
            if shuffle:
                self._order = self._rng.permutation(len(self))
            self._index_in_epoch = batch_size - len(rest)
            picked = np.concatenate([rest, self._order[: self._index_in_epoch]])
        return self.images[picked], self._labels[picked]

    def as_dataset(
        self,
        batch_size: int = 32,
        *,
        shuffle: bool = True,
        seed: int | None = None,
        repeat: bool = False,
        drop_remainder: bool = False,
    ) -> tf.data.Dataset:
        """Return a batched, shuffled, prefetched ``tf.data.Dataset`` of ``(images, labels)``.

        The arrays are placed in memory as tensors once; shuffling covers the whole
        split and differs at each pass, reproducibly for a given ``seed``.

        Args:
            batch_size: Examples per batch.
            shuffle: Shuffle the examples at each pass.
            seed: Seed of the shuffle; ``None`` draws one.
            repeat: Repeat indefinitely.
            drop_remainder: Drop a last batch smaller than ``batch_size``.

        Returns:
            The dataset.

        Raises:
            InvalidArgumentError: If ``batch_size`` is not a positive integer.

        Example:
            >>> import numpy as np
            >>> split = Split(np.zeros((10, 784), np.float32), np.arange(10))
            >>> [int(x.shape[0]) for x, _ in split.as_dataset(4, shuffle=False)]
            [4, 4, 2]
        """
        import tensorflow as tf

        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size <= 0
        ):
            raise InvalidArgumentError(
                "Invalid value for argument `batch_size`. Expected a positive integer. "
                f"Received: batch_size={batch_size!r}"
            )
        dataset = tf.data.Dataset.from_tensor_slices((self.images, self._labels))
        if shuffle:
            dataset = dataset.shuffle(max(len(self), 1), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            dataset = dataset.repeat()
        return dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


@dataclass(frozen=True)
class Datasets:
    """The three splits a data loader returns.

    Attributes:
        train: The training split.
        validation: The validation split, held out of the training images.
        test: The test split.
        source: Where the data was read from, in words.
        raw: The arrays as read (``x_train``, ``y_train``, ``x_test``, ``y_test``),
            kept for :attr:`checksum`.
    """

    train: Split
    validation: Split
    test: Split
    source: str = ""
    raw: tuple[np.ndarray, ...] = field(default=(), repr=False, compare=False)

    @functools.cached_property
    def checksum(self) -> str:
        """SHA-256 of the raw images and labels, identifying the data a run used.

        It covers ``x_train``, ``y_train``, ``x_test`` and ``y_test`` as read, before
        any split or conversion, so it does not depend on the layout they came in.
        """
        return sha256_of(*self.raw)

    @classmethod
    def from_arrays(
        cls,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_test: np.ndarray,
        y_test: np.ndarray,
        *,
        one_hot: bool = False,
        validation_size: int = 5000,
        flatten: bool = False,
        seed: int | None = None,
        source: str = "arrays",
    ) -> Datasets:
        """Build the three splits from raw MNIST-style arrays.

        This is the helper a custom data loader calls: it checks the arrays, scales
        the pixels to float32 in [0, 1], holds out the first ``validation_size``
        training examples (as the TensorFlow 1 tutorial did) and encodes the labels.

        Args:
            x_train: Training images, uint8 (N, 28, 28).
            y_train: Training labels, integers in 0..9, (N,).
            x_test: Test images, uint8 (M, 28, 28).
            y_test: Test labels, integers in 0..9, (M,).
            one_hot: Encode labels as one-hot float32 (N, 10) instead of int32 (N,).
            validation_size: How many training examples to hold out for validation.
            flatten: Shape images (N, 784) instead of (N, 28, 28, 1).
            seed: Seed of each split's :meth:`Split.next_batch` shuffling.
            source: Where the arrays came from, in words, for messages.

        Returns:
            The splits.

        Raises:
            DataFormatError: If the arrays have the wrong shapes or types, counts that
                differ, or labels outside 0..9.
            InvalidArgumentError: If ``validation_size`` is out of range.

        Example:
            >>> import numpy as np
            >>> x = np.zeros((6, 28, 28), np.uint8)
            >>> y = np.arange(6, dtype=np.uint8)
            >>> data = Datasets.from_arrays(x, y, x, y, validation_size=2, one_hot=True)
            >>> data.train.images.shape, data.validation.labels.shape
            ((4, 28, 28, 1), (2, 10))
        """
        _check_images(x_train, "x_train", source)
        _check_images(x_test, "x_test", source)
        _check_labels(y_train, len(x_train), "y_train", source)
        _check_labels(y_test, len(x_test), "y_test", source)
        if (
            isinstance(validation_size, bool)
            or not isinstance(validation_size, (int, np.integer))
            or not 0 <= validation_size <= len(x_train)
        ):
            raise InvalidArgumentError(
                "Invalid value for argument `validation_size`. Expected an integer in "
                f"[0, {len(x_train)}]. Received: validation_size={validation_size!r}"
            )
        seeds: list[int | None] = [None, None, None]
        if seed is not None:
            seeds = [int(s) for s in np.random.SeedSequence(seed).generate_state(3)]

        def make(images: np.ndarray, labels: np.ndarray, split_seed: int | None) -> Split:
            shape = (-1, 784) if flatten else (-1, *IMAGE_SHAPE)
            return Split(images.reshape(shape), _encode(labels, one_hot), seed=split_seed)

        return cls(
            train=make(x_train[validation_size:], y_train[validation_size:], seeds[0]),
            validation=make(x_train[:validation_size], y_train[:validation_size], seeds[1]),
            test=make(x_test, y_test, seeds[2]),
            source=source,
            raw=(x_train, y_train, x_test, y_test),
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
        PluginError: If the plugin that provides the loader fails to import.

    Example:
        >>> mnist = load_dataset("mnist")
        >>> mnist.train.images.shape, mnist.validation.num_examples, mnist.test.num_examples
        ((55000, 28, 28, 1), 5000, 10000)
    """
    return DATASETS.create(name, **options)  # type: ignore[no-any-return]


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
        InvalidArgumentError: If ``validation_size`` is out of range.

    Example:
        >>> data = mnist(one_hot=True, flatten=True, validation_size=0)
        >>> data.train.images.shape, data.train.labels.shape
        ((60000, 784), (60000, 10))
    """
    arrays, description = _read_arrays(source)
    return Datasets.from_arrays(
        *arrays,
        one_hot=one_hot,
        validation_size=validation_size,
        flatten=flatten,
        seed=seed,
        source=description,
    )


_Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


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
    if path is None:
        (x_train, y_train, x_test, y_test), _ = _read_arrays(None)
    elif not Path(path).exists():
        raise DataNotFoundError(
            f"{path}: no such file. Leave out `path` for the MNIST embedded in mnistkit "
            "(nothing is downloaded)."
        )
    else:
        x_train, y_train, x_test, y_test = read_npz(path)
    return (x_train, y_train), (x_test, y_test)


def _read_arrays(source: str | os.PathLike[str] | None) -> tuple[_Arrays, str]:
    if source is None:
        embedded = importlib.resources.files("mnistkit") / "data" / "mnist.npz"
        with importlib.resources.as_file(embedded) as path:
            return read_npz(path), "embedded MNIST"
    path = Path(source)
    if path.is_dir():
        return read_idx_folder(path), f"IDX folder {path}"
    if not path.exists():
        raise DataNotFoundError(
            f"{path}: no such file or folder. Expected a Keras-layout mnist.npz or a folder "
            "of the four MNIST IDX files."
        )
    return read_npz(path), str(path)


def read_npz(path: str | os.PathLike[str]) -> _Arrays:
    """Read a Keras-layout ``mnist.npz``: ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Args:
        path: The file.

    Returns:
        The four arrays, checked for shape, type and label range.

    Raises:
        DataNotFoundError: If the file does not exist.
        DataFormatError: If it is not a readable npz, lacks a key, or holds arrays of
            the wrong shape or type.
    """
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            raise DataFormatError(
                f"{path}: a single .npy array, not an npz archive; a Keras-layout mnist.npz "
                f"holds {', '.join(IDX_FILES)}."
            )
        with loaded as archive:
            missing = [key for key in IDX_FILES if key not in archive.files]
            if missing:
                raise DataFormatError(
                    f"{path}: missing array(s) {', '.join(missing)}; a Keras-layout mnist.npz "
                    f"holds {', '.join(IDX_FILES)}."
                )
            arrays = tuple(archive[key] for key in IDX_FILES)
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: no such file.") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        if isinstance(error, DataFormatError):
            raise
        raise DataFormatError(f"{path}: not a readable npz file ({error}).") from None
    return _checked(arrays, str(path))


def read_idx_folder(folder: str | os.PathLike[str]) -> _Arrays:
    """Read the four MNIST IDX files from a folder, such as the tutorial's ``MNIST_data/``.

    Each file may be gzipped (``train-images-idx3-ubyte.gz``) or not
    (``train-images-idx3-ubyte``).

    Args:
        folder: The folder.

    Returns:
        The arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``, checked.

    Raises:
        DataNotFoundError: If the folder is missing, or any of the files; the message
            names each missing file.
        DataFormatError: If a file is malformed or holds arrays of the wrong form.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder}: no such folder.")
    found = {name: _idx_file(folder, name) for name in IDX_FILES.values()}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise DataNotFoundError(
            f"{folder}: missing {', '.join(missing)} (each may also lack the .gz); an MNIST "
            f"IDX folder holds {', '.join(IDX_FILES.values())}."
        )
    arrays = tuple(read_idx(path) for path in found.values() if path is not None)
    return _checked(arrays, str(folder))


def has_idx_files(folder: str | os.PathLike[str], *, every: bool = True) -> bool:
    """Return whether ``folder`` holds the MNIST IDX files, gzipped or not.

    Args:
        folder: The folder to look in.
        every: Ask for all four files; ``False`` asks whether any of them is there.

    Returns:
        ``True`` if each (or, with ``every=False``, any) of :data:`IDX_FILES` is
        there, with or without ``.gz``.
    """
    found = [_idx_file(Path(folder), name) is not None for name in IDX_FILES.values()]
    return all(found) if every else any(found)


def _idx_file(folder: Path, name: str) -> Path | None:
    candidates = (folder / name, folder / name.removesuffix(".gz"))
    return next((path for path in candidates if path.is_file()), None)


def _checked(arrays: Sequence[np.ndarray], source: str) -> _Arrays:
    x_train, y_train, x_test, y_test = arrays
    _check_images(x_train, "x_train", source)
    _check_images(x_test, "x_test", source)
    _check_labels(y_train, len(x_train), "y_train", source)
    _check_labels(y_test, len(x_test), "y_test", source)
    return x_train, y_train, x_test, y_test


def _check_images(images: np.ndarray, name: str, source: str) -> None:
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataFormatError(
            f"{source}: {name} must be uint8 images shaped (N, 28, 28); "
            f"found {images.dtype} shaped {images.shape}."
        )


def _check_labels(labels: np.ndarray, count: int, name: str, source: str) -> None:
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(
            f"{source}: {name} must be integer labels shaped (N,); "
            f"found {labels.dtype} shaped {labels.shape}."
        )
    if len(labels) != count:
        raise DataFormatError(
            f"{source}: {count} images but {len(labels)} labels in {name}; they must match."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(
            f"{source}: {name} holds labels outside 0..9 (from {labels.min()} to {labels.max()})."
        )


def sha256_of(*arrays: np.ndarray) -> str:
    """Return the SHA-256 of the arrays' raw bytes, one after the other.

    Args:
        *arrays: The arrays, in order.

    Returns:
        The hex digest of ``hashlib.sha256`` over each array's C-ordered bytes.

    Example:
        >>> import numpy as np
        >>> sha256_of(np.zeros(0, np.uint8))[:12]
        'e3b0c44298fc'
    """
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def scale_pixels(images: np.ndarray) -> np.ndarray:
    """Scale uint8 pixels to float32 in [0, 1]; other arrays pass unchanged.

    Args:
        images: An array of images.

    Returns:
        ``images / 255`` as float32 for uint8 input, else ``images`` itself.

    Example:
        >>> import numpy as np
        >>> scaled = scale_pixels(np.array([0, 51, 255], np.uint8))
        >>> scaled.dtype, [round(float(value), 6) for value in scaled]
        (dtype('float32'), [0.0, 0.2, 1.0])
    """
    if images.dtype != np.uint8:
        return images
    scaled = images.astype(np.float32)
    scaled *= np.float32(1.0 / 255.0)
    return scaled


def _encode(labels: np.ndarray, one_hot: bool) -> np.ndarray:
    labels = labels.astype(np.int32)
    if not one_hot:
        return labels
    encoded: np.ndarray = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    return encoded
