"""The splits a data loader returns: :class:`~mnistkit.Split` and :class:`~mnistkit.Datasets`.

:mod:`mnistkit.datasets` (and the package) offers them; they live here with the two
array helpers they use, :func:`sha256_of` and :func:`scale_pixels`.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mnistkit.errors import InvalidArgumentError
from mnistkit.mnist_files import NUM_CLASSES, check_mnist_arrays
from mnistkit.validation import check_bool, check_positive_int, check_seed, invalid, is_int

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = ["IMAGE_SHAPE", "Datasets", "Split", "scale_pixels", "sha256_of"]

#: The shape of one image in a split.
IMAGE_SHAPE = (28, 28, 1)


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
        InvalidArgumentError: If images and labels differ in number, or ``seed`` is not
            a seed (an integer from 0 to 2**32 - 1).

    Example:
        >>> import numpy as np
        >>> split = Split(np.zeros((4, 784), np.float32), np.arange(4))
        >>> images, labels = split.next_batch(3, shuffle=False)
        >>> images.shape, labels.tolist(), split.num_examples
        ((3, 784), [0, 1, 2], 4)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, seed: int | None = None) -> None:
        if seed is not None:
            check_seed(seed)
        if len(images) != len(labels):
            raise InvalidArgumentError(
                f"Images and labels differ in number: {len(images)} images, {len(labels)} labels."
            )
        self._given = images  # what the checksum covers, before any scaling
        self._labels = labels
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(images))
        self._index_in_epoch = 0
        self._epochs_completed = 0

    @functools.cached_property
    def images(self) -> np.ndarray:
        """The images, float32 in [0, 1]."""
        # Scaling 55,000 images costs more than reading them: do it once, when asked.
        return scale_pixels(self._given)

    @property
    def raw_images(self) -> np.ndarray:
        """The images as given, unscaled (uint8 pixels for the built-in loaders)."""
        return self._given

    @property
    def labels(self) -> np.ndarray:
        """The labels, as integers (N,) or one-hot float32 (N, 10)."""
        return self._labels

    @functools.cached_property
    def checksum(self) -> str:
        """SHA-256 of the split's images and labels, as first given (computed once)."""
        return sha256_of(self._given, self._labels)

    @property
    def num_examples(self) -> int:
        """How many examples the split holds."""
        return len(self._given)

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
        return f"Split(images={self._given.shape}, labels={self._labels.shape})"

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
        if not is_int(batch_size) or not 0 < batch_size <= len(self):
            raise invalid("batch_size", f"an integer in [1, {len(self)}]", batch_size)
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._order = self._rng.permutation(len(self))
        picked = self._order[start : start + batch_size]
        self._index_in_epoch = start + batch_size
        if self._index_in_epoch > len(self):  # the rest of this epoch, the start of the next
            self._epochs_completed += 1
            if shuffle:
                self._order = self._rng.permutation(len(self))
            self._index_in_epoch -= len(self)
            picked = np.concatenate([picked, self._order[: self._index_in_epoch]])
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

        batch_size = check_positive_int(batch_size, "batch_size")
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
            InvalidArgumentError: If ``validation_size`` is out of range, ``one_hot`` or
                ``flatten`` is not a boolean, or ``seed`` is not a seed.

        Example:
            >>> import numpy as np
            >>> x = np.zeros((6, 28, 28), np.uint8)
            >>> y = np.arange(6, dtype=np.uint8)
            >>> data = Datasets.from_arrays(x, y, x, y, validation_size=2, one_hot=True)
            >>> data.train.images.shape, data.validation.labels.shape
            ((4, 28, 28, 1), (2, 10))
        """
        check_bool(one_hot, "one_hot")
        check_bool(flatten, "flatten")
        check_mnist_arrays((x_train, y_train, x_test, y_test), source)
        if not is_int(validation_size) or not 0 <= validation_size <= len(x_train):
            raise invalid("validation_size", f"an integer in [0, {len(x_train)}]", validation_size)
        seeds: list[int | None] = [None, None, None]
        if seed is not None:
            seeds = [int(s) for s in np.random.SeedSequence(check_seed(seed)).generate_state(3)]

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
    return np.take(np.eye(NUM_CLASSES, dtype=np.float32), labels, axis=0) if one_hot else labels
