"""TensorFlow 1's ``DataSet``: one split of MNIST and its ``next_batch``, reproduced.

:mod:`mnistkit.compat.input_data` offers it under its TensorFlow 1 name; it lives here so
that each module stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mnistkit.errors import InvalidArgumentError, InvalidTypeError
from mnistkit.validation import invalid

__all__ = ["CLASSES", "FAKE_EXAMPLES", "FAKE_PIXELS", "DataSet", "image_dtype", "integer", "not_a"]

#: Examples in each of the fake data sets that ``fake_data=True`` serves.
FAKE_EXAMPLES = 10000
#: Pixels of a fake image.
FAKE_PIXELS = 784
#: Classes of MNIST.
CLASSES = 10
_MAXINT32 = 2**31 - 1


class DataSet:
    """One split of images and labels, batched as TensorFlow 1's ``DataSet`` batched it.

    The constructor converts the images once: it flattens them (``reshape``) and, for
    float32, scales them by 1/255. :meth:`next_batch` shuffles the examples before the
    first batch and at each epoch boundary, reordering :attr:`images` and
    :attr:`labels` themselves, as TensorFlow 1 did. The attributes TensorFlow 1 code
    reads are there too: ``_images``, ``_labels``, ``_num_examples``,
    ``_epochs_completed``, ``_index_in_epoch`` and, here for every data set, ``one_hot``.

    Attributes:
        one_hot (bool): Whether fake batches have one-hot labels; set from ``one_hot``.

    Args:
        images: Images shaped (N, rows, columns, 1), as :func:`extract_images` returns
            them, or (N, rows, columns). Ignored with ``fake_data``.
        labels: N labels: integers (N,) or one-hot rows (N, classes). Ignored with
            ``fake_data``.
        fake_data: Hold no examples and serve fake ones (see :meth:`next_batch`):
            :attr:`num_examples` is then 10,000, as the tests of the tutorials expect.
        one_hot: Whether fake labels are one-hot; real labels stay as given.
        dtype: ``float32`` converts the images to float32 and multiplies them by
            1/255, whatever their type; ``uint8`` keeps them as given. A NumPy type, a
            type name, or a TensorFlow type such as ``tf.uint8``.
        reshape: Flatten each image to one row of rows x columns values.
        seed: Seed of the shuffling, taken modulo 2**31 - 1 as TensorFlow 1 took it;
            ``None`` draws one from the operating system. Each data set shuffles with
            a generator of its own, and NumPy's global one is left alone.

    Raises:
        InvalidTypeError: If ``dtype`` is neither uint8 nor float32, or ``seed`` is
            not an integer.
        InvalidArgumentError: If images and labels differ in number, or ``reshape``
            is asked of images not shaped (N, rows, columns[, 1]).

    Example:
        >>> import numpy as np
        >>> images = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2, 1)
        >>> data = DataSet(images, np.arange(4, dtype=np.uint8), seed=1)
        >>> data.images.shape, data.images.dtype, data.num_examples
        ((4, 4), dtype('float32'), 4)
        >>> data.next_batch(3, shuffle=False)[1].tolist()
        [0, 1, 2]
    """

    def __init__(
        self,
        images: np.ndarray | Sequence[Any],
        labels: np.ndarray | Sequence[Any],
        fake_data: bool = False,
        one_hot: bool = False,
        dtype: Any = np.float32,
        reshape: bool = True,
        seed: int | None = None,
    ) -> None:
        self._dtype = image_dtype(dtype)
        self._rng = np.random.RandomState(truncated_seed(seed))
        self._fake = bool(fake_data)
        self.one_hot = one_hot
        images, labels = np.asarray(images), np.asarray(labels)
        if self._fake:
            self._num_examples = FAKE_EXAMPLES
        else:
            self._num_examples = count_examples(images, labels)
            if reshape:
                images = flattened(images)
            if self._dtype == np.float32:
                images = images.astype(np.float32)
                images *= np.float32(1.0 / 255.0)
        self._images: np.ndarray = images
        self._labels: np.ndarray = labels
        self._epochs_completed = 0
        self._index_in_epoch = 0

    @property
    def images(self) -> np.ndarray:
        """The images, in the order of the current epoch once batching has begun."""
        return self._images

    @property
    def labels(self) -> np.ndarray:
        """The labels, in the same order as :attr:`images`."""
        return self._labels

    @property
    def num_examples(self) -> int:
        """How many examples the data set holds (10,000 for fake data)."""
        return self._num_examples

    @property
    def epochs_completed(self) -> int:
        """How many times :meth:`next_batch` has gone past the last example."""
        return self._epochs_completed

    def next_batch(
        self, batch_size: int, fake_data: bool = False, shuffle: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the next ``batch_size`` examples, as TensorFlow 1 did.

        Before the first batch the examples are shuffled (with ``shuffle``). A batch
        that reaches past the last example completes an epoch: it takes the rest of
        the old order, then the examples are shuffled again and the batch ends with
        the start of the new order. With the same seed, the batches are TensorFlow 1's.

        Args:
            batch_size: How many examples, from 0 to :attr:`num_examples`; 0 gives
                empty arrays.
            fake_data: Return fake examples instead: images of 784 ones, and labels
                0, or one-hot ``[1, 0, ..., 0]`` if the data set is ``one_hot``.
            shuffle: Shuffle at the start and at each epoch boundary; ``False`` keeps
                the current order.

        Returns:
            A pair ``(images, labels)`` of arrays with ``batch_size`` rows.

        Raises:
            InvalidTypeError: If ``batch_size`` is not an integer.
            InvalidArgumentError: If ``batch_size`` is negative or more than
                :attr:`num_examples`, or real examples are asked of a data set made
                with ``fake_data``.

        Example:
            >>> import numpy as np
            >>> data = DataSet(np.zeros((5, 28, 28, 1), np.uint8), np.arange(5), seed=0)
            >>> sorted(data.next_batch(5)[1].tolist()), data.epochs_completed
            ([0, 1, 2, 3, 4], 0)
            >>> _ = data.next_batch(2)
            >>> data.epochs_completed
            1
        """
        if fake_data:
            return self._fake_batch(checked_batch_size(batch_size, None))
        if self._fake:
            raise InvalidArgumentError(
                "Invalid value for argument `fake_data`. Expected True: this DataSet was made "
                "with fake_data=True and holds no examples. Received: fake_data=False"
            )
        batch_size = checked_batch_size(batch_size, self._num_examples)
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._reorder()
        images, labels = self._images[start:], self._labels[start:]
        if start + batch_size <= self._num_examples:
            self._index_in_epoch += batch_size
            return images[:batch_size], labels[:batch_size]
        self._epochs_completed += 1
        if shuffle:
            self._reorder()
        end = self._index_in_epoch = batch_size - (self._num_examples - start)
        return (
            np.concatenate((images, self._images[:end])),
            np.concatenate((labels, self._labels[:end])),
        )

    def _reorder(self) -> None:
        # TensorFlow 1 shuffled numpy.arange with the legacy generator: the same stream.
        order = np.arange(self._num_examples)
        self._rng.shuffle(order)
        self._images = self._images[order]
        self._labels = self._labels[order]

    def _fake_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.ones((batch_size, FAKE_PIXELS), dtype=self._dtype)
        if not self.one_hot:
            return images, np.zeros(batch_size, dtype=np.uint8)
        return images, np.eye(CLASSES)[np.zeros(batch_size, dtype=np.intp)]


def image_dtype(dtype: Any) -> np.dtype[Any]:
    # A TensorFlow DType names its NumPy type; reading it needs no TensorFlow import.
    wanted = getattr(dtype, "as_numpy_dtype", dtype)
    try:
        found = None if wanted is None else np.dtype(wanted)
    except (TypeError, ValueError):
        found = None
    for allowed in (np.dtype(np.uint8), np.dtype(np.float32)):
        if found == allowed:
            return allowed
    raise not_a("dtype", "uint8 or float32, as a NumPy or TensorFlow type", dtype)


def not_a(name: str, expected: str, value: Any) -> InvalidTypeError:
    """The error for an argument of a type not accepted, in :func:`invalid`'s words."""
    return InvalidTypeError(str(invalid(name, expected, value)))


def integer(value: Any, name: str, expected: str = "an integer") -> int:
    """Return ``value`` as an ``int`` if it is an integer (NumPy's too, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise not_a(name, expected, value)
    return int(value)


def truncated_seed(seed: int | None) -> int | None:
    return None if seed is None else integer(seed, "seed", "an integer or None") % _MAXINT32


def count_examples(images: np.ndarray, labels: np.ndarray) -> int:
    if images.ndim == 0 or labels.ndim == 0 or images.shape[0] != labels.shape[0]:
        raise InvalidArgumentError(
            "Invalid value for argument `labels`. Expected one label per image. Received: "
            f"images.shape={images.shape}, labels.shape={labels.shape}"
        )
    return int(images.shape[0])


def flattened(images: np.ndarray) -> np.ndarray:
    if (images.ndim == 4 and images.shape[3] == 1) or images.ndim == 3:
        return images.reshape(images.shape[0], images.shape[1] * images.shape[2])
    raise InvalidArgumentError(
        "Invalid value for argument `images`. Expected (N, rows, columns, 1) or (N, rows, "
        f"columns) to reshape. Received: images.shape={images.shape}"
    )


def checked_batch_size(batch_size: int, limit: int | None) -> int:
    size = integer(batch_size, "batch_size")
    if size < 0 or (limit is not None and size > limit):
        upper = "" if limit is None else f", at most {limit}"
        raise invalid("batch_size", f"an integer from 0{upper}", batch_size)
    return size
