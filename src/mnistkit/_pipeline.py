"""Turning what users pass to the Trainer into checked arrays and fast ``tf.data`` pipelines.

Training data is kept in memory as tensors. The order of examples is a stream of
per-epoch permutations drawn from ``(seed, epoch)`` with a stateless shuffle, so the
batch at any step can be recomputed without replaying the steps before it: this is what
makes logging on the current batch and exact resume cheap.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import numpy as np
import tensorflow as tf

from mnistkit.datasets import Split, scale_pixels, sha256_of
from mnistkit.errors import InvalidArgumentError


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


def is_dataset(data: Any) -> bool:
    """Return whether ``data`` is a ``tf.data.Dataset``."""
    return isinstance(data, tf.data.Dataset)


def to_arrays(
    data: Any, input_shape: tuple[int, ...], num_classes: int, *, sparse: bool, name: str = "data"
) -> Arrays:
    """Check and convert a :class:`Split` or an ``(images, labels)`` pair.

    Flat (N, 784) images are reshaped for a model that takes (28, 28, 1) and the other
    way round; uint8 images are scaled to [0, 1]; labels go through :func:`check_labels`.
    """
    split = data if isinstance(data, Split) else None
    if split is not None:
        images, labels = split.raw_images, split.labels
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        images, labels = np.asarray(data[0]), np.asarray(data[1])
    else:
        raise InvalidArgumentError(
            f"Invalid value for argument `{name}`. Expected a Split from load_dataset(), an "
            f"(images, labels) pair of arrays, or a tf.data.Dataset. Received: {name}="
            f"{type(data).__name__}"
        )
    images = shape_images(images, input_shape, keep_pixels=True)
    labels = check_labels(labels, len(images), num_classes, sparse=sparse)
    return Arrays(images, labels, split)


def shape_images(
    images: Any, input_shape: tuple[int, ...], *, keep_pixels: bool = False
) -> np.ndarray:
    """Return images shaped (N, *input_shape), or raise a clear error.

    Float images become float32; uint8 pixels stay uint8 with ``keep_pixels``, else
    they are scaled to float32 in [0, 1].
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        if not keep_pixels:
            images = scale_pixels(images)
    elif not np.issubdtype(images.dtype, np.floating):
        raise InvalidArgumentError(
            "Invalid value for argument `images`. Expected float images in [0, 1] or uint8 "
            f"pixels. Received: images.dtype={images.dtype}"
        )
    size = int(np.prod(input_shape))
    if images.ndim >= 1 and images.shape[1:] != input_shape:
        if int(np.prod(images.shape[1:])) == size and images.ndim in (2, 3, 4):
            images = images.reshape((-1, *input_shape))
        else:
            raise InvalidArgumentError(
                "Invalid value for argument `images`. Expected images shaped "
                f"(N, {', '.join(map(str, input_shape))}) or flat (N, {size}) for this "
                f"model. Received: images.shape={images.shape}"
            )
    if images.ndim == 0:
        raise InvalidArgumentError(
            f"Invalid value for argument `images`. Expected an array of images. "
            f"Received: images.shape={images.shape}"
        )
    return images if images.dtype == np.uint8 else np.asarray(images, dtype=np.float32)


_Function = TypeVar("_Function", bound=Callable[..., Any])


def _plain_graph(function: _Function) -> _Function:
    """Have ``tf.data`` trace ``function`` as it is written, skipping AutoGraph.

    No function of the pipeline has tensor-dependent Python control flow, and converting
    them took a tenth of a second each time a training stream was built.
    """
    return cast(_Function, tf.autograph.experimental.do_not_convert(function))


@_plain_graph
def _scale_pair(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    return _scale_tensor(images), labels


def _scale_tensor(images: tf.Tensor) -> tf.Tensor:
    # The same two float32 operations as scale_pixels, so both give the same bits.
    if images.dtype == tf.uint8:
        return tf.cast(images, tf.float32) * tf.constant(1.0 / 255.0, tf.float32)
    return images


def _in_memory(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Return ``dataset``, a pipeline over arrays in memory, with options to match.

    - Split among workers by example, not by file: under a multi-worker strategy each
      worker then keeps its share of every global batch. There are no files to split
      by, and TensorFlow's default would look for them first and warn.
    - No autotuner. Its background thread wakes on a period that doubles up to a
      minute, and deleting the iterator at the end of ``fit`` could wait for the next
      wake-up: ``fit`` then returned up to a minute after its last step. Its work also
      competes with the training steps for the CPU. The pipeline's few light
      operations do not need tuning: without it, training measured as fast or faster.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.autotune.enabled = False
    return dataset.with_options(options)


def check_labels(labels: Any, count: int, num_classes: int, *, sparse: bool) -> np.ndarray:
    """Return labels checked against the images and the classes.

    With ``sparse``, one-hot labels become integers (the Trainer's own loss takes
    integers); without it (a user's loss), labels are passed on as given.
    """
    labels = np.asarray(labels)
    if len(labels) != count:
        raise InvalidArgumentError(
            f"Images and labels differ in number: {count} images, {len(labels)} labels."
        )
    if not sparse:
        return np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == num_classes:
        labels = labels.argmax(axis=1)
    elif labels.ndim != 1 or not (
        np.issubdtype(labels.dtype, np.integer)
        or (np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)))
    ):
        raise InvalidArgumentError(
            "Invalid value for argument `labels`. Expected integer labels shaped (N,) or "
            f"one-hot labels shaped (N, {num_classes}). Received: labels.shape="
            f"{labels.shape}, labels.dtype={labels.dtype}"
        )
    integers = np.asarray(labels, dtype=np.int32)
    if len(integers) and (integers.min() < 0 or integers.max() >= num_classes):
        raise InvalidArgumentError(
            f"Invalid value for argument `labels`. Expected integers in [0, {num_classes - 1}]. "
            f"Received: labels from {integers.min()} to {integers.max()}"
        )
    return integers


def training_stream(
    arrays: Arrays, *, batch_size: int, seed: int, start_step: int, shift: int = 0
) -> tf.data.Dataset:
    """Return the endless batches of training data from ``start_step`` on.

    Epoch ``e`` visits the examples in the order of a stateless shuffle seeded by
    ``(seed, e)``; batches run on across epoch boundaries, as the tutorial's
    ``next_batch`` did. With ``shift``, each image of step ``s`` moves by a whole
    number of pixels, up to ``shift`` each way, drawn from ``(seed, s)``: the same
    shifts again on a resumed run.
    """
    count = len(arrays.images)
    images = tf.constant(arrays.images)
    labels = tf.constant(arrays.labels)
    indices = index_stream(count, batch_size=batch_size, seed=seed, start_step=start_step)
    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)

    @_plain_graph
    def gather(step: tf.Tensor, picked: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = _scale_tensor(tf.gather(images, picked))
        if shift:
            batch = shift_images(batch, shift=shift, seed=seed, step=step)
        return batch, tf.gather(labels, picked)

    batches = tf.data.Dataset.zip((steps, indices)).map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return _in_memory(batches.prefetch(tf.data.AUTOTUNE))


def shift_images(images: tf.Tensor, *, shift: int, seed: int, step: Any) -> tf.Tensor:
    """Move each image of a (N, H, W, C) batch by up to ``shift`` whole pixels each way.

    The offsets come from a stateless draw of ``(seed, -1 - step)`` (negative, so
    never the pair of an epoch's order); pixels moved in from outside are 0.
    """
    count = tf.shape(images)[0]
    pair = tf.stack([tf.constant(seed, tf.int64), -1 - tf.cast(step, tf.int64)])
    offsets = tf.random.stateless_uniform(
        (count, 2), seed=pair, minval=-shift, maxval=shift + 1, dtype=tf.int32
    )
    offsets = tf.cast(offsets, tf.float32)
    ones, zeros = tf.ones((count,)), tf.zeros((count,))
    # Each row maps an output pixel (x, y) to the input pixel (x - dx, y - dy).
    transforms = tf.stack(
        [ones, zeros, -offsets[:, 0], zeros, ones, -offsets[:, 1], zeros, zeros], axis=1
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=tf.constant(0.0, images.dtype),
        interpolation="NEAREST",
        fill_mode="CONSTANT",
    )


def epoch_order(count: int, seed: int, epoch: Any) -> tf.Tensor:
    """Return the order of the examples in ``epoch``: a stateless shuffle of (seed, epoch)."""
    pair = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=pair)


def index_stream(count: int, *, batch_size: int, seed: int, start_step: int) -> tf.data.Dataset:
    """Return the batches of example indices that :func:`training_stream` gathers.

    The stream is the concatenation of the epochs' orders, cut into batches. Each epoch
    yields, as whole tensors, the batches that start in it, so the pipeline's work is
    per batch, not per example.
    """
    orders = 2 + batch_size // count  # enough epochs to cover a batch that starts late

    @_plain_graph
    def batches_of(epoch: tf.Tensor) -> tf.Tensor:
        first = (epoch * count + batch_size - 1) // batch_size
        end = ((epoch + 1) * count + batch_size - 1) // batch_size
        local = first * batch_size - epoch * count
        stream = tf.concat([epoch_order(count, seed, epoch + i) for i in range(orders)], 0)
        return tf.reshape(stream[local : local + (end - first) * batch_size], (-1, batch_size))

    first_epoch = start_step * batch_size // count
    first_step = (first_epoch * count + batch_size - 1) // batch_size
    epochs = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max // (2 * count))
    return epochs.map(batches_of).unbatch().skip(start_step - first_step)


def batch_indices(count: int, *, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Return the example indices of the batch of ``step``, as :func:`index_stream` has them."""
    offset, parts, needed = step * batch_size, [], batch_size
    while needed:
        epoch, position = divmod(offset, count)
        taken = epoch_order(count, seed, epoch).numpy()[position : position + needed]
        parts.append(taken)
        offset, needed = offset + len(taken), needed - len(taken)
    return np.concatenate(parts)


def batch_at(arrays: Arrays, *, batch_size: int, seed: int, step: int) -> tuple[Any, Any]:
    """Return the training batch of ``step``, as :func:`training_stream` yields it."""
    picked = batch_indices(len(arrays.images), batch_size=batch_size, seed=seed, step=step)
    return scale_pixels(arrays.images[picked]), arrays.labels[picked]


def evaluation_batches(arrays: Arrays, batch_size: int) -> tf.data.Dataset:
    """Return the examples in order, in batches, for evaluation."""
    dataset = tf.data.Dataset.from_tensor_slices((arrays.images, arrays.labels))
    batches = dataset.batch(batch_size).map(_scale_pair)
    return _in_memory(batches.prefetch(tf.data.AUTOTUNE))
