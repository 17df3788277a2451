"""The training data stream: which examples each step trains on, and how they are shifted.

Training data is kept in memory as tensors. The order of examples is a stream of
per-epoch permutations drawn from ``(seed, epoch)`` with a stateless shuffle, and any
augmentation of step ``s`` is drawn from ``(seed, s)``, so the batch at any step can be
recomputed without replaying the steps before it. This is what makes logging on the
current batch and exact resume cheap: a run resumed at step ``s`` reads the same
batches from ``s`` on as the run that was interrupted.

The Trainer builds these pipelines for you; the functions are public so that the order
can be inspected (which step first sees example 0?) and reused.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
import tensorflow as tf

from mnistkit.datasets import scale_pixels
from mnistkit.validation import check_non_negative_int, check_positive_int, check_seed

__all__ = [
    "affine_images",
    "augment_images",
    "batch_at",
    "batch_indices",
    "encode_labels",
    "epoch_order",
    "evaluation_batches",
    "index_stream",
    "shift_images",
    "stream_seed",
    "training_stream",
]


def stream_seed(seed: int, run: int = 0) -> int:
    """Return the seed of the data order of a Trainer's ``run``-th ``fit`` (from 0).

    Each ``fit`` of a Trainer draws its batches in an order of its own, from the
    Trainer's seed and how many runs came before; this is that order's seed, as
    :attr:`Trainer.metadata <mnistkit.Trainer.metadata>` records it (``data_seed``).

    Args:
        seed: The Trainer's seed.
        run: How many ``fit`` calls the Trainer made before this one.

    Returns:
        A seed for :func:`training_stream` and :func:`batch_indices`.

    Example:
        >>> stream_seed(0) == stream_seed(0, run=0) != stream_seed(0, run=1)
        True
    """
    state = np.random.SeedSequence([check_seed(seed), check_non_negative_int(run, "run")])
    return int(state.generate_state(1)[0])


_Function = TypeVar("_Function", bound=Callable[..., Any])


def _plain_graph(function: _Function) -> _Function:
    """Have ``tf.data`` trace ``function`` as it is written, skipping AutoGraph.

    No function of the pipeline has tensor-dependent Python control flow, and converting
    them took a tenth of a second each time a training stream was built.
    """
    return cast(_Function, tf.autograph.experimental.do_not_convert(function))


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


def training_stream(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    seed: int,
    start_step: int = 0,
    shift: int = 0,
    rotation: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
    one_hot: int | None = None,
    label_smoothing: float = 0.0,
) -> tf.data.Dataset:
    """Return the endless batches of training data from ``start_step`` on.

    Epoch ``e`` visits the examples in the order of a stateless shuffle seeded by
    ``(seed, e)``; batches run on across epoch boundaries, as the tutorial's
    ``next_batch`` did. The images of step ``s`` are augmented (see
    :func:`augment_images`) with random draws from ``(seed, s)``: the same again on a
    resumed run.

    Args:
        images: The images, uint8 pixels (scaled on the fly) or float32 in [0, 1].
        labels: Their labels, one per image.
        batch_size: Examples per step.
        seed: The seed of the order and of the shifts (see :func:`stream_seed`).
        start_step: The step of the first batch.
        shift: The largest shift, in pixels; 0 for none.
        rotation: The largest rotation, in degrees.
        scale: The largest relative change of size (0.1: from 90% to 110%).
        shear: The largest shear, in degrees.
        one_hot: Give the labels as one-hot rows of this many classes; ``None`` keeps
            them as they are.
        label_smoothing: With ``one_hot``, mix each row with the uniform distribution
            by this much, as Keras's ``label_smoothing`` does inside a loss.

    Returns:
        A ``tf.data.Dataset`` of ``(images, labels)`` batches, float32 images.

    Example:
        >>> import numpy as np
        >>> images = np.zeros((5, 28, 28, 1), np.uint8)
        >>> stream = training_stream(images, np.arange(5), batch_size=2, seed=0)
        >>> firsts = [labels.numpy().tolist() for _, labels in stream.take(3)]
        >>> sorted(sum(firsts, [])[:5])  # the first epoch visits every example once
        [0, 1, 2, 3, 4]
    """
    check_positive_int(batch_size, "batch_size")
    check_non_negative_int(shift, "shift")
    affine = {"rotation": rotation, "scale": scale, "shear": shear}
    indices = index_stream(len(images), batch_size=batch_size, seed=seed, start_step=start_step)
    images = tf.constant(images)
    labels = tf.constant(labels)
    steps = tf.data.Dataset.range(start_step, np.iinfo(np.int64).max)

    @_plain_graph
    def gather(step: tf.Tensor, picked: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        batch = _scale_tensor(tf.gather(images, picked))
        batch = augment_images(batch, seed=seed, step=step, shift=shift, **affine)
        return batch, encode_labels(tf.gather(labels, picked), one_hot, label_smoothing)

    batches = tf.data.Dataset.zip((steps, indices)).map(
        gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return _in_memory(batches.prefetch(tf.data.AUTOTUNE))


def augment_images(
    images: tf.Tensor,
    *,
    seed: int,
    step: Any,
    shift: int = 0,
    rotation: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
) -> tf.Tensor:
    """Transform each image of a (N, H, W, C) batch at random, reproducibly.

    With only ``shift``, each image moves by a whole number of pixels (:func:`shift_images`,
    exact and fast). With ``rotation``, ``scale`` or ``shear`` too, each image gets an
    affine transform of its own about its centre (rotated, scaled, sheared, moved by up to
    ``shift`` pixels in each direction), sampled bilinearly (:func:`affine_images`).
    Every random number comes from ``(seed, step)``.

    Args:
        images: A float batch shaped (N, H, W, C), background 0.
        seed: The seed of the stream.
        step: The step the batch is trained at.
        shift: The largest shift, in pixels.
        rotation: The largest rotation, in degrees.
        scale: The largest relative change of size.
        shear: The largest shear, in degrees.

    Returns:
        The transformed batch (the batch itself when every range is 0).
    """
    if rotation or scale or shear:
        return affine_images(
            images, seed=seed, step=step, shift=shift, rotation=rotation, scale=scale,
            shear=shear,
        )  # fmt: skip
    if shift:
        return shift_images(images, shift=shift, seed=seed, step=step)
    return images


def affine_images(
    images: tf.Tensor,
    *,
    seed: int,
    step: Any,
    shift: float = 0.0,
    rotation: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
) -> tf.Tensor:
    """Give each image of a (N, H, W, C) batch a random affine transform about its centre.

    Each image draws, uniformly and independently, a rotation in ``[-rotation,
    rotation]`` degrees, a size factor in ``[1 - scale, 1 + scale]``, a horizontal shear
    in ``[-shear, shear]`` degrees and a move in ``[-shift, shift]`` pixels along each
    axis, from a stateless draw of ``(seed, -1 - step)``; the image is resampled
    bilinearly, pixels brought in from outside being 0.

    Args:
        images: A float batch shaped (N, H, W, C).
        seed: The seed of the stream.
        step: The step the batch is trained at.
        shift: The largest move, in pixels.
        rotation: The largest rotation, in degrees.
        scale: The largest relative change of size.
        shear: The largest shear, in degrees.

    Returns:
        The transformed batch, of the same shape and type.

    Example:
        >>> import numpy as np
        >>> images = np.zeros((4, 28, 28, 1), np.float32)
        >>> images[:, 10:18, 12:16] = 1.0
        >>> first = affine_images(images, seed=0, step=7, rotation=12.0, scale=0.1)
        >>> again = affine_images(images, seed=0, step=7, rotation=12.0, scale=0.1)
        >>> bool(np.array_equal(first, again)), bool(np.array_equal(first, images))
        (True, False)
    """
    images = tf.convert_to_tensor(images)
    count = tf.shape(images)[0]
    height, width = int(images.shape[1]), int(images.shape[2])
    pair = tf.stack([tf.constant(seed, tf.int64), -1 - tf.cast(step, tf.int64)])
    draws = tf.random.stateless_uniform((count, 5), seed=pair, minval=-1.0, maxval=1.0)
    theta = draws[:, 0] * (rotation * math.pi / 180.0)
    zoom = 1.0 + draws[:, 1] * scale
    dx, dy = draws[:, 2] * shift, draws[:, 3] * shift
    tangent = tf.tan(draws[:, 4] * (shear * math.pi / 180.0))
    cos, sin = tf.cos(theta), tf.sin(theta)
    # The forward map zoom * R(theta) * [[1, tangent], [0, 1]], inverted: the transform
    # op maps each output pixel to the input pixel it reads.
    a00, a01 = zoom * cos, zoom * (cos * tangent - sin)
    a10, a11 = zoom * sin, zoom * (sin * tangent + cos)
    det = a00 * a11 - a01 * a10
    m00, m01, m10, m11 = a11 / det, -a01 / det, -a10 / det, a00 / det
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    off_x = cx - (m00 * (cx + dx) + m01 * (cy + dy))
    off_y = cy - (m10 * (cx + dx) + m11 * (cy + dy))
    zeros = tf.zeros_like(m00)
    transforms = tf.stack([m00, m01, off_x, m10, m11, off_y, zeros, zeros], axis=1)
    return _transformed(images, transforms, tf.stack([height, width]), "BILINEAR")


def shift_images(images: tf.Tensor, *, shift: int, seed: int, step: Any) -> tf.Tensor:
    """Move each image of a (N, H, W, C) batch by up to ``shift`` whole pixels each way.

    The offsets come from a stateless draw of ``(seed, -1 - step)`` (negative, so
    never the pair of an epoch's order); pixels moved in from outside are 0.

    Args:
        images: A float batch shaped (N, H, W, C).
        shift: The largest shift, in pixels.
        seed: The seed of the stream.
        step: The step the batch is trained at.

    Returns:
        The shifted batch.
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
    return _transformed(images, transforms, tf.shape(images)[1:3], "NEAREST")


def _transformed(
    images: tf.Tensor, transforms: tf.Tensor, output_shape: tf.Tensor, interpolation: str
) -> tf.Tensor:
    """Each image mapped by its row of ``transforms`` (output pixel to input pixel), 0 outside."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=output_shape,
        fill_value=tf.constant(0.0, images.dtype),
        interpolation=interpolation,
        fill_mode="CONSTANT",
    )


def epoch_order(count: int, seed: int, epoch: Any) -> tf.Tensor:
    """Return the order of the examples in ``epoch``: a stateless shuffle of (seed, epoch).

    Args:
        count: How many examples there are.
        seed: The seed of the order.
        epoch: The epoch, from 0.

    Returns:
        A permutation of ``range(count)``, as an int64 tensor.
    """
    pair = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=pair)


def index_stream(count: int, *, batch_size: int, seed: int, start_step: int) -> tf.data.Dataset:
    """Return the batches of example indices that :func:`training_stream` gathers.

    The stream is the concatenation of the epochs' orders, cut into batches. Each epoch
    yields, as whole tensors, the batches that start in it, so the pipeline's work is
    per batch, not per example.

    Args:
        count: How many examples there are.
        batch_size: Examples per step.
        seed: The seed of the order.
        start_step: The step of the first batch.

    Returns:
        An endless ``tf.data.Dataset`` of int64 index vectors, one per step.
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
    """Return the example indices of the batch of ``step``, as :func:`index_stream` has them.

    Args:
        count: How many examples there are.
        batch_size: Examples per step.
        seed: The seed of the order.
        step: The step.

    Returns:
        The indices, an int64 array of ``batch_size``.

    Example:
        >>> import numpy as np
        >>> first_two = np.concatenate([batch_indices(4, batch_size=2, seed=0, step=s)
        ...                             for s in (0, 1)])
        >>> sorted(first_two.tolist())  # the first epoch visits every example once
        [0, 1, 2, 3]
    """
    start = step * batch_size
    first, last = start // count, (start + batch_size - 1) // count
    orders = [epoch_order(count, seed, epoch).numpy() for epoch in range(first, last + 1)]
    return np.concatenate(orders)[start - first * count :][:batch_size]


def encode_labels(labels: Any, one_hot: int | None, label_smoothing: float = 0.0) -> Any:
    """Return integer labels as (smoothed) one-hot rows of ``one_hot`` classes, or as they are.

    Args:
        labels: A tensor of integer labels.
        one_hot: The number of classes, or ``None`` to leave the labels alone.
        label_smoothing: How much of each row goes to the uniform distribution.

    Returns:
        The labels, float32 rows where ``one_hot`` is given.

    Example:
        >>> import numpy as np
        >>> np.round(np.asarray(encode_labels(np.array([1]), 2, 0.2), np.float64), 3).tolist()
        [[0.1, 0.9]]
    """
    if one_hot is None:
        return labels
    rows = tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), one_hot, dtype=tf.float32)
    return rows * (1.0 - label_smoothing) + label_smoothing / one_hot


def batch_at(
    images: np.ndarray, labels: np.ndarray, *, batch_size: int, seed: int, step: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return the training batch of ``step``, as :func:`training_stream` yields it.

    Before any shift: this is the batch that the tutorial's log line measures.

    Args:
        images: The images.
        labels: Their labels.
        batch_size: Examples per step.
        seed: The seed of the order.
        step: The step.

    Returns:
        The batch's images, as float32 in [0, 1], and labels.
    """
    picked = batch_indices(len(images), batch_size=batch_size, seed=seed, step=step)
    return scale_pixels(images[picked]), labels[picked]


def evaluation_batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int, one_hot: int | None = None
) -> tf.data.Dataset:
    """Return the examples in order, in batches of float32 images, for evaluation.

    Args:
        images: The images, uint8 or float32.
        labels: Their labels.
        batch_size: Examples per batch.
        one_hot: Give the labels as one-hot rows of this many classes; ``None`` keeps
            them as they are.

    Returns:
        The ``tf.data.Dataset``.
    """

    @_plain_graph
    def scaled(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return _scale_tensor(images), encode_labels(labels, one_hot)

    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).map(scaled)
    return _in_memory(batches.prefetch(tf.data.AUTOTUNE))
