"""A drop-in for TensorFlow 1's ``input_data`` module, which TensorFlow 2 removed.

``tensorflow.examples.tutorials.mnist.input_data`` served the functions of
``tensorflow/contrib/learn/python/learn/datasets/mnist.py``. This module offers the
same names with the same signatures, types and behaviour: :func:`read_data_sets`
returns a named tuple of three :class:`DataSet` objects whose :meth:`DataSet.next_batch`
gives, for the same seed, the batches TensorFlow 1 gave. Code written for the
TensorFlow 1 tutorials keeps working with one changed import::

    # from tensorflow.examples.tutorials.mnist import input_data
    from mnistkit.compat import input_data

    mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)
    batch_xs, batch_ys = mnist.train.next_batch(100)

Nothing is downloaded. The IDX files in ``train_dir`` are read, whatever MNIST-format
data they hold; without them the MNIST copy embedded in mnistkit stands in, and a
line logged on the ``mnistkit.compat.input_data`` logger says so. The guide,
:ref:`read-data-sets`, lists what differs from TensorFlow 1 on purpose, and why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from mnistkit.datasets import IDX_FILES, has_idx_files, load_data, read_idx_folder
from mnistkit.errors import (
    DataFormatError,
    DataNotFoundError,
    InvalidArgumentError,
    InvalidTypeError,
)
from mnistkit.idx import read_idx

__all__ = [
    "DEFAULT_SOURCE_URL",
    "DataSet",
    "Datasets",
    "dense_to_one_hot",
    "extract_images",
    "extract_labels",
    "load_mnist",
    "read_data_sets",
]

#: TensorFlow 1's address for the MNIST files, Google's mirror of
#: ``http://yann.lecun.com/exdb/mnist/``.
DEFAULT_SOURCE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"

# The addresses that serve MNIST itself, so that the embedded copy may stand in for them.
_MNIST_ADDRESSES = ("storage.googleapis.com/cvdf-datasets/mnist", "yann.lecun.com/exdb/mnist")
_MAXINT32 = 2**31 - 1
_FAKE_EXAMPLES = 10000
_FAKE_PIXELS = 784
_CLASSES = 10
_logger = logging.getLogger(__name__)


class Datasets(NamedTuple):
    """The ``train``, ``validation`` and ``test`` :class:`DataSet` objects, as a named tuple.

    It is TensorFlow 1's ``Datasets`` named tuple: ``train, validation, test = data``,
    ``data[0]``, ``len(data)`` and ``data._replace(test=...)`` work as they did.

    Example:
        >>> data = read_data_sets("MNIST_data/", fake_data=True)
        >>> train, validation, test = data
        >>> len(data), data[0] is train, test.num_examples
        (3, True, 10000)
    """

    train: DataSet
    validation: DataSet
    test: DataSet


Datasets.train.__doc__ = "The training examples, after the first ``validation_size``."
Datasets.validation.__doc__ = "The first ``validation_size`` training examples."
Datasets.test.__doc__ = "The test examples."


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
        self._dtype = _image_dtype(dtype)
        self._rng = np.random.RandomState(_truncated_seed(seed))
        self._fake = bool(fake_data)
        self.one_hot = one_hot
        images, labels = np.asarray(images), np.asarray(labels)
        if self._fake:
            self._num_examples = _FAKE_EXAMPLES
        else:
            self._num_examples = _count_examples(images, labels)
            if reshape:
                images = _flattened(images)
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
            return self._fake_batch(_checked_batch_size(batch_size, None))
        if self._fake:
            raise InvalidArgumentError(
                "Invalid value for argument `fake_data`. Expected True: this DataSet was made "
                "with fake_data=True and holds no examples. Received: fake_data=False"
            )
        batch_size = _checked_batch_size(batch_size, self._num_examples)
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._reorder()
        if start + batch_size > self._num_examples:
            self._epochs_completed += 1
            images_rest, labels_rest = self._images[start:], self._labels[start:]
            if shuffle:
                self._reorder()
            self._index_in_epoch = batch_size - (self._num_examples - start)
            end = self._index_in_epoch
            return (
                np.concatenate((images_rest, self._images[:end]), axis=0),
                np.concatenate((labels_rest, self._labels[:end]), axis=0),
            )
        self._index_in_epoch += batch_size
        end = self._index_in_epoch
        return self._images[start:end], self._labels[start:end]

    def _reorder(self) -> None:
        # TensorFlow 1 shuffled numpy.arange with the legacy generator: the same stream.
        order = np.arange(self._num_examples)
        self._rng.shuffle(order)
        self._images = self._images[order]
        self._labels = self._labels[order]

    def _fake_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.ones((batch_size, _FAKE_PIXELS), dtype=self._dtype)
        if not self.one_hot:
            return images, np.zeros(batch_size, dtype=np.uint8)
        labels = np.zeros((batch_size, _CLASSES))
        labels[:, 0] = 1.0
        return images, labels


def read_data_sets(
    train_dir: str | os.PathLike[str],
    fake_data: bool = False,
    one_hot: bool = False,
    dtype: Any = np.float32,
    reshape: bool = True,
    validation_size: int = 5000,
    seed: int | None = None,
    source_url: str | None = DEFAULT_SOURCE_URL,
) -> Datasets:
    """Read an MNIST-format data set as TensorFlow 1 did, without downloading.

    If ``train_dir`` holds the four IDX files (``train-images-idx3-ubyte.gz`` and the
    others of :data:`~mnistkit.datasets.IDX_FILES`, gzipped or not), they are read,
    whatever MNIST-format data they hold: Fashion-MNIST's files, for one. If it holds
    none of them, or does not exist, the MNIST embedded in mnistkit stands in, and a
    warning is logged on the ``mnistkit.compat.input_data`` logger; but only for
    MNIST's own ``source_url``, since nothing else can be served without a download.
    Nothing is written: ``train_dir`` is not created.

    Args:
        train_dir: The folder of the IDX files, such as ``"MNIST_data/"``.
        fake_data: Serve three fake data sets of 10,000 examples each, read nothing:
            see :meth:`DataSet.next_batch` with ``fake_data=True``.
        one_hot: Labels as one-hot float64 rows (N, 10) instead of uint8 (N,).
        dtype: ``float32`` for pixels scaled to [0, 1], ``uint8`` for raw pixels; a
            NumPy type, a type name, or a TensorFlow type such as ``tf.float32``.
        reshape: Images as rows of 784 pixels (N, 784) instead of (N, 28, 28, 1).
        validation_size: How many of the first training examples to hold out for
            validation.
        seed: Seed of each data set's shuffling; see :class:`DataSet`.
        source_url: Where TensorFlow 1 would have downloaded the files from. Any
            address serves when the files are in ``train_dir``; without them, only
            MNIST's (:data:`DEFAULT_SOURCE_URL`, or ``http://yann.lecun.com/exdb/mnist/``).
            Empty or ``None`` means :data:`DEFAULT_SOURCE_URL`.

    Returns:
        ``Datasets(train, validation, test)``.

    Raises:
        DataNotFoundError: If ``train_dir`` holds some of the four files but not all
            (the message names those missing), or none of them while ``source_url`` is
            not MNIST's (the message says where to place the files).
        DataFormatError: If a file is malformed or holds no MNIST-format arrays.
        InvalidArgumentError: If ``train_dir`` is a file, or ``validation_size`` is
            not between 0 and the number of training examples.
        InvalidTypeError: If ``dtype`` is neither uint8 nor float32, or an argument
            has the wrong type.

    Example:
        >>> mnist = read_data_sets("MNIST_data/", one_hot=True)
        >>> batch_xs, batch_ys = mnist.train.next_batch(100)
        >>> batch_xs.shape, batch_ys.shape, batch_ys.dtype, mnist.test.images.shape
        ((100, 784), (100, 10), dtype('float64'), (10000, 784))
    """
    _image_dtype(dtype)
    options: dict[str, Any] = {"one_hot": one_hot, "dtype": dtype, "seed": seed}
    if fake_data:
        return Datasets(*(DataSet([], [], fake_data=True, **options) for _ in range(3)))
    if isinstance(validation_size, bool) or not isinstance(validation_size, (int, np.integer)):
        raise InvalidTypeError(
            "Invalid value for argument `validation_size`. Expected an integer. "
            f"Received: validation_size={validation_size!r}"
        )
    x_train, y_train, x_test, y_test = _read_arrays(train_dir, source_url or DEFAULT_SOURCE_URL)
    if not 0 <= validation_size <= len(x_train):
        raise InvalidArgumentError(
            "Invalid value for argument `validation_size`. Expected an integer in "
            f"[0, {len(x_train)}]. Received: validation_size={validation_size!r}"
        )

    def split(images: np.ndarray, labels: np.ndarray) -> DataSet:
        labels = labels.astype(np.uint8)
        encoded = dense_to_one_hot(labels, _CLASSES) if one_hot else labels
        return DataSet(images[..., np.newaxis], encoded, reshape=reshape, **options)

    return Datasets(
        train=split(x_train[validation_size:], y_train[validation_size:]),
        validation=split(x_train[:validation_size], y_train[:validation_size]),
        test=split(x_test, y_test),
    )


def load_mnist(train_dir: str | os.PathLike[str] = "MNIST-data") -> Datasets:
    """Return ``read_data_sets(train_dir)``, as TensorFlow 1's ``load_mnist`` did.

    Args:
        train_dir: The folder of the IDX files.

    Returns:
        The three data sets, with :func:`read_data_sets`' defaults.

    Raises:
        DataNotFoundError: As :func:`read_data_sets`.
        DataFormatError: As :func:`read_data_sets`.

    Example:
        >>> load_mnist().validation.num_examples
        5000
    """
    return read_data_sets(train_dir)


def extract_images(f: BinaryIO) -> np.ndarray:
    """Read the images of an IDX image file into a uint8 array (N, rows, columns, 1).

    Args:
        f: The file, open in binary mode, gzipped or not.

    Returns:
        The images, with a last dimension of 1 (the depth).

    Raises:
        DataFormatError: If the file is not an IDX file of uint8 values in three
            dimensions (magic number 2051); it is a :class:`ValueError`, as
            TensorFlow 1 raised.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np
        >>> from mnistkit.idx import write_idx
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t10k-images-idx3-ubyte.gz"
        >>> write_idx(path, np.zeros((2, 28, 28), np.uint8))
        >>> with open(path, "rb") as f:
        ...     extract_images(f).shape
        (2, 28, 28, 1)
    """
    data = _extract(f, ndim=3, magic=2051, kind="image")
    return data.reshape(*data.shape, 1)


def extract_labels(f: BinaryIO, one_hot: bool = False, num_classes: int = 10) -> np.ndarray:
    """Read the labels of an IDX label file into a uint8 array (N,).

    Args:
        f: The file, open in binary mode, gzipped or not.
        one_hot: Return one-hot float64 rows (N, ``num_classes``) instead.
        num_classes: The number of classes of the one-hot rows.

    Returns:
        The labels.

    Raises:
        DataFormatError: If the file is not an IDX file of uint8 values in one
            dimension (magic number 2049); it is a :class:`ValueError`, as
            TensorFlow 1 raised.
        InvalidArgumentError: If ``one_hot`` is asked and a label is not below
            ``num_classes``.

    Example:
        >>> import pathlib, tempfile
        >>> import numpy as np
        >>> from mnistkit.idx import write_idx
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "t10k-labels-idx1-ubyte.gz"
        >>> write_idx(path, np.array([5, 0, 4], np.uint8))
        >>> with open(path, "rb") as f:
        ...     extract_labels(f)
        array([5, 0, 4], dtype=uint8)
        >>> with open(path, "rb") as f:
        ...     extract_labels(f, one_hot=True).shape
        (3, 10)
    """
    labels = _extract(f, ndim=1, magic=2049, kind="label")
    return dense_to_one_hot(labels, num_classes) if one_hot else labels


def dense_to_one_hot(labels_dense: np.ndarray | Sequence[int], num_classes: int) -> np.ndarray:
    """Convert class labels to one-hot rows of float64, as TensorFlow 1 did.

    Args:
        labels_dense: N integer labels, each in [0, ``num_classes``).
        num_classes: The length of each row.

    Returns:
        A float64 array (N, ``num_classes``) with a 1 in each row, at the label.

    Raises:
        InvalidArgumentError: If ``num_classes`` is not a positive integer, or a
            label is not an integer in [0, ``num_classes``).

    Example:
        >>> dense_to_one_hot([2, 0], 3)
        array([[0., 0., 1.],
               [1., 0., 0.]])
    """
    labels = np.asarray(labels_dense)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise InvalidTypeError(
            "Invalid value for argument `num_classes`. Expected a positive integer. "
            f"Received: num_classes={num_classes!r}"
        )
    if num_classes <= 0:
        raise InvalidArgumentError(
            "Invalid value for argument `num_classes`. Expected a positive integer. "
            f"Received: num_classes={num_classes!r}"
        )
    if labels.size and (
        not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise InvalidArgumentError(
            "Invalid value for argument `labels_dense`. Expected integers in "
            f"[0, {num_classes}). Received: labels from {labels.min()} to {labels.max()}"
        )
    count = labels.shape[0] if labels.ndim else 0
    one_hot = np.zeros((count, num_classes))
    one_hot.flat[np.arange(count) * num_classes + labels.ravel().astype(np.intp)] = 1
    return one_hot


def _read_arrays(
    train_dir: str | os.PathLike[str], source_url: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(train_dir, (str, os.PathLike)):
        raise InvalidTypeError(
            "Invalid value for argument `train_dir`. Expected a folder path. "
            f"Received: train_dir={train_dir!r}"
        )
    if not isinstance(source_url, str):
        raise InvalidTypeError(
            "Invalid value for argument `source_url`. Expected a URL string. "
            f"Received: source_url={source_url!r}"
        )
    folder = Path(train_dir)
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentError(
            "Invalid value for argument `train_dir`. Expected a folder (it may not exist "
            f"yet), not a file. Received: train_dir={os.fspath(train_dir)!r}"
        )
    if has_idx_files(folder, every=False):
        _logger.info("Reading the IDX files in %s", folder)
        return read_idx_folder(folder)
    if not _is_mnist_address(source_url):
        raise DataNotFoundError(
            f"No IDX files in {folder}, and nothing is downloaded: mnistkit's embedded "
            f"copy is MNIST, not the data of source_url={source_url!r}. Download "
            f"{', '.join(IDX_FILES.values())} from that address into {folder}."
        )
    _logger.warning(
        "No MNIST files in %s: using the MNIST embedded in mnistkit (nothing is downloaded).",
        folder,
    )
    (x_train, y_train), (x_test, y_test) = load_data()
    return x_train, y_train, x_test, y_test


def _is_mnist_address(url: str) -> bool:
    address = url.strip().lower()
    for scheme in ("https://", "http://"):
        address = address.removeprefix(scheme)
    return address.rstrip("/") in _MNIST_ADDRESSES


def _extract(f: BinaryIO, *, ndim: int, magic: int, kind: str) -> np.ndarray:
    name = getattr(f, "name", "<file object>")
    _logger.info("Extracting %s", name)
    data = read_idx(f)
    if data.dtype != np.uint8 or data.ndim != ndim:
        raise DataFormatError(
            f"Invalid magic number in MNIST {kind} file {name}: expected {magic} (uint8 "
            f"values in {ndim} dimension(s)), found {data.dtype} values in {data.ndim}."
        )
    return data


def _image_dtype(dtype: Any) -> np.dtype[Any]:
    # A TensorFlow DType names its NumPy type; reading it needs no TensorFlow import.
    wanted = getattr(dtype, "as_numpy_dtype", dtype)
    try:
        found = None if wanted is None else np.dtype(wanted)
    except (TypeError, ValueError):
        found = None
    for allowed in (np.dtype(np.uint8), np.dtype(np.float32)):
        if found == allowed:
            return allowed
    raise InvalidTypeError(
        "Invalid value for argument `dtype`. Expected uint8 or float32, as a NumPy or "
        f"TensorFlow type. Received: dtype={dtype!r}"
    )


def _truncated_seed(seed: int | None) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InvalidTypeError(
            "Invalid value for argument `seed`. Expected an integer or None. "
            f"Received: seed={seed!r}"
        )
    return int(seed) % _MAXINT32


def _count_examples(images: np.ndarray, labels: np.ndarray) -> int:
    if images.ndim == 0 or labels.ndim == 0 or images.shape[0] != labels.shape[0]:
        raise InvalidArgumentError(
            "Invalid value for argument `labels`. Expected one label per image. Received: "
            f"images.shape={images.shape}, labels.shape={labels.shape}"
        )
    return int(images.shape[0])


def _flattened(images: np.ndarray) -> np.ndarray:
    if (images.ndim == 4 and images.shape[3] == 1) or images.ndim == 3:
        return images.reshape(images.shape[0], images.shape[1] * images.shape[2])
    raise InvalidArgumentError(
        "Invalid value for argument `images`. Expected (N, rows, columns, 1) or (N, rows, "
        f"columns) to reshape. Received: images.shape={images.shape}"
    )


def _checked_batch_size(batch_size: int, limit: int | None) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InvalidTypeError(
            "Invalid value for argument `batch_size`. Expected an integer. "
            f"Received: batch_size={batch_size!r}"
        )
    if batch_size < 0 or (limit is not None and batch_size > limit):
        upper = "" if limit is None else f", at most {limit}"
        raise InvalidArgumentError(
            f"Invalid value for argument `batch_size`. Expected an integer from 0{upper}. "
            f"Received: batch_size={batch_size!r}"
        )
    return int(batch_size)
