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

from mnistkit.compat._dataset import CLASSES, DataSet, image_dtype, integer, not_a
from mnistkit.datasets import IDX_FILES, has_idx_files, load_data, read_idx_folder
from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError
from mnistkit.idx import read_idx
from mnistkit.validation import invalid

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
    others of :data:`~mnistkit.mnist_files.IDX_FILES`, gzipped or not), they are read,
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
    image_dtype(dtype)
    options: dict[str, Any] = {"one_hot": one_hot, "dtype": dtype, "seed": seed}
    if fake_data:
        return Datasets(*(DataSet([], [], fake_data=True, **options) for _ in range(3)))
    integer(validation_size, "validation_size")
    x_train, y_train, x_test, y_test = _read_arrays(train_dir, source_url or DEFAULT_SOURCE_URL)
    if not 0 <= validation_size <= len(x_train):
        raise invalid("validation_size", f"an integer in [0, {len(x_train)}]", validation_size)

    def split(images: np.ndarray, labels: np.ndarray) -> DataSet:
        labels = labels.astype(np.uint8)
        encoded = dense_to_one_hot(labels, CLASSES) if one_hot else labels
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
    if integer(num_classes, "num_classes", "a positive integer") <= 0:
        raise invalid("num_classes", "a positive integer", num_classes)
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
        raise not_a("train_dir", "a folder path", train_dir)
    if not isinstance(source_url, str):
        raise not_a("source_url", "a URL string", source_url)
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
    address = url.strip().lower().removeprefix("https://").removeprefix("http://")
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
