"""What the Trainer and the Predictor accept as data, checked once, behind one interface.

Arrays, :class:`~mnistkit.Split` objects and ``tf.data`` datasets become a
:class:`DataSource`, which answers the questions a training run asks (how many steps
make an epoch, the stream of batches from a step on, the batch a step trains on, what
to hash) so that the training loop never asks which kind of data it was given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from mnistkit import streams
from mnistkit.datasets import Split, scale_pixels, sha256_of
from mnistkit.errors import InvalidArgumentError
from mnistkit.streams import _plain_graph

#: Examples per batch when evaluating: it does not change the result.
EVALUATION_BATCH = 1000


@dataclass(frozen=True)
class Arrays:
    """Images shaped for the model and integer (or, with a custom loss, raw) labels.

    Images are float32 in [0, 1], or uint8 pixels that the pipelines scale on the fly:
    a quarter of the memory to hold and copy.
    """

    images: np.ndarray
    labels: np.ndarray
    split: Split | None = None

    @functools.cached_property
    def checksum(self) -> str:
        """SHA-256 of the data, computed when first asked for (only training records it)."""
        if self.split is not None:
            return self.split.checksum
        return sha256_of(self.images, self.labels)


def shape_images(
    images: Any, input_shape: tuple[int, ...], *, keep_pixels: bool = False
) -> np.ndarray:
    """Return images shaped (N, *input_shape), or raise a clear error.

    Float images become float32 and must lie in [0, 1], NaN and infinities refused with
    the index of the first image that holds one; uint8 pixels stay uint8 with
    ``keep_pixels``, else they are scaled to float32 in [0, 1].
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
        raise _invalid(
            "images", "float images in [0, 1] or uint8 pixels", f"images.dtype={images.dtype}"
        )
    if images.ndim == 0:
        raise _invalid("images", "an array of images", f"images.shape={images.shape}")
    size = math.prod(input_shape)
    if images.shape[1:] != input_shape:
        if math.prod(images.shape[1:]) == size and images.ndim in (2, 3, 4):
            images = images.reshape((-1, *input_shape))
        else:
            shapes = f"(N, {', '.join(map(str, input_shape))}) or flat (N, {size})"
            raise _invalid(
                "images", f"images shaped {shapes} for this model", f"images.shape={images.shape}"
            )
    if images.dtype == np.uint8:
        return np.asarray(images if keep_pixels else scale_pixels(images))
    images = np.asarray(images, dtype=np.float32)
    if images.size:
        low, high = float(images.min()), float(images.max())  # NaN if any is
        if not math.isfinite(low) or not math.isfinite(high):
            flat = images.reshape(len(images), -1)
            first = int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
            value = flat[first][~np.isfinite(flat[first])][0]
            raise _invalid("images", "finite float pixels in [0, 1]", f"{value} in images[{first}]")
        if low < -1e-6 or high > 1.0 + 1e-6:
            expected = "float pixels in [0, 1] (divide 0..255 pixels by 255)"
            raise _invalid("images", expected, f"values from {low:g} to {high:g}")
    return np.asarray(images)


def check_labels(labels: Any, count: int, num_classes: int, *, sparse: bool) -> np.ndarray:
    """Return labels checked against the images and the classes.

    With ``sparse``, one-hot labels become integers (the Trainer's own loss takes
    integers); without it (a user's loss), labels are passed on as given.
    """
    labels = np.asarray(labels)
    if labels.ndim == 0 or len(labels) != count:
        found = "a single value" if labels.ndim == 0 else f"{len(labels)} labels"
        raise InvalidArgumentError(f"Images and labels differ in number: {count} images, {found}.")
    if not sparse:
        return np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == num_classes:
        labels = labels.argmax(axis=1)
    elif labels.ndim != 1 or not (
        np.issubdtype(labels.dtype, np.integer)
        or (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)))
    ):
        expected = f"integer labels shaped (N,) or one-hot labels shaped (N, {num_classes})"
        raise _invalid(
            "labels", expected, f"labels.shape={labels.shape}, labels.dtype={labels.dtype}"
        )
    integers = np.asarray(labels, dtype=np.int32)
    if len(integers) and (integers.min() < 0 or integers.max() >= num_classes):
        found = f"labels from {integers.min()} to {integers.max()}"
        raise _invalid("labels", f"integers in [0, {num_classes - 1}]", found)
    return np.asarray(integers)


def to_arrays(
    data: Any,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    sparse: bool = True,
    name: str = "data",
) -> Arrays:
    """Check and convert a :class:`Split` or an ``(images, labels)`` pair.

    Flat (N, 784) images are reshaped for a model that takes (28, 28, 1) and the other
    way round; uint8 images stay uint8 (scaled on the fly); labels go through
    :func:`check_labels`. Empty data is refused.
    """
    split = data if isinstance(data, Split) else None
    if split is not None:
        images, labels = split.raw_images, split.labels
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = data
    else:
        expected = (
            "a Split from load_dataset(), an (images, labels) pair of arrays, or a tf.data.Dataset"
        )
        raise _invalid(name, expected, f"{name}={type(data).__name__}")
    images = shape_images(images, input_shape, keep_pixels=True)
    if len(images) == 0:
        raise _invalid(name, "at least one example", "no examples")
    labels = check_labels(labels, len(images), num_classes, sparse=sparse)
    return Arrays(images, labels, split)


def _invalid(name: str, expected: str, received: str) -> InvalidArgumentError:
    """The error for argument ``name``, in Keras's words, ``received`` saying what came."""
    return InvalidArgumentError(
        f"Invalid value for argument `{name}`. Expected {expected}. Received: {received}"
    )


class ArraySource:
    """Arrays in memory: shuffled by the stateless stream of :mod:`mnistkit.streams`.

    With :class:`DatasetSource`, it answers what a training run asks of its data; the
    two take the same arguments, by the same names.
    """

    def __init__(self, arrays: Arrays) -> None:
        self.arrays = arrays

    def steps_per_epoch(self, batch_size: int) -> int | None:
        """Steps of ``batch_size`` in one pass, or ``None`` if unknown."""
        return math.ceil(len(self.arrays.images) / batch_size)

    def training_stream(self, *, augmentation: dict[str, Any], **settings: Any) -> tf.data.Dataset:
        """The endless stream of training batches from ``start_step`` on.

        ``settings`` are those of :func:`mnistkit.streams.training_stream`: ``batch_size``,
        ``seed``, ``start_step``, ``one_hot`` and ``label_smoothing``; ``augmentation``
        holds its ``shift``, ``rotation``, ``scale`` and ``shear``.
        """
        arrays = self.arrays
        return streams.training_stream(arrays.images, arrays.labels, **settings, **augmentation)

    def evaluation_batches(self, batch_size: int, one_hot: int | None) -> tf.data.Dataset:
        """The examples once, in order, in batches."""
        arrays = self.arrays
        return streams.evaluation_batches(arrays.images, arrays.labels, batch_size, one_hot)

    def batch_at(self, **settings: Any) -> tuple[Any, Any] | None:
        """The batch that ``step`` trains on, given ``batch_size``, ``seed`` and ``step``."""
        return streams.batch_at(self.arrays.images, self.arrays.labels, **settings)

    def checksum(self) -> str | None:
        """SHA-256 of the data, or ``None`` when it cannot be hashed."""
        return self.arrays.checksum


class DatasetSource:
    """A ``tf.data.Dataset`` of batches, used as it comes (one-hot labels made integers)."""

    def __init__(self, dataset: tf.data.Dataset, convert: Callable[..., Any] | None) -> None:
        self.dataset = dataset if convert is None else dataset.map(convert)

    def steps_per_epoch(self, batch_size: int) -> int | None:
        cardinality = int(self.dataset.cardinality())
        return cardinality if cardinality > 0 else None

    def training_stream(
        self, *, one_hot: int | None, label_smoothing: float, **_: Any
    ) -> tf.data.Dataset:
        return self._encoded(one_hot, label_smoothing).repeat()

    def evaluation_batches(self, batch_size: int, one_hot: int | None) -> tf.data.Dataset:
        return self._encoded(one_hot, 0.0)

    def _encoded(self, one_hot: int | None, label_smoothing: float) -> tf.data.Dataset:
        if one_hot is None:
            return self.dataset

        @_plain_graph
        def encode(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return images, streams.encode_labels(labels, one_hot, label_smoothing)

        return self.dataset.map(encode)

    def batch_at(self, **_: Any) -> None:
        """``None``: a dataset's batches cannot be recomputed from a step."""
        return None

    def checksum(self) -> str | None:
        """``None``: a dataset is not hashed."""
        return None


#: Training or evaluation data, whatever form it was given in.
DataSource = ArraySource | DatasetSource


def data_source(
    data: Any,
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    sparse: bool,
    name: str = "data",
) -> DataSource:
    """Return ``data`` as a :class:`DataSource`, checked.

    Args:
        data: A :class:`~mnistkit.Split`, an ``(images, labels)`` pair, or a
            ``tf.data.Dataset`` of ``(images, labels)`` batches.
        input_shape: The shape of one image, as the model takes it.
        num_classes: How many classes the model scores.
        sparse: Whether labels should become integers (the Trainer's own loss).
        name: The argument's name, for messages.

    Raises:
        InvalidArgumentError: If the data has the wrong form.
    """
    if isinstance(data, tf.data.Dataset):
        return DatasetSource(data, _sparse_labels(num_classes) if sparse else None)
    return ArraySource(to_arrays(data, input_shape, num_classes, sparse=sparse, name=name))


def _sparse_labels(num_classes: int) -> Callable[[tf.Tensor, tf.Tensor], Any]:
    @_plain_graph
    def sparse(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        if labels.shape.rank == 2 and labels.shape[-1] == num_classes:
            labels = tf.argmax(labels, axis=-1)
        return images, labels

    return sparse
