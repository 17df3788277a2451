"""The training data stream: an order that can be recomputed at any step."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistkit import InvalidArgumentError, Recipe
from mnistkit.streams import (
    affine_images,
    batch_indices,
    evaluation_batches,
    index_stream,
    shift_images,
    stream_seed,
    training_stream,
)


def batches(count: int, batch_size: int, seed: int, start: int, number: int) -> list[list[int]]:
    stream = index_stream(count, batch_size=batch_size, seed=seed, start_step=start)
    return [batch.numpy().tolist() for batch in stream.take(number)]


@pytest.mark.parametrize(("count", "batch_size"), [(7, 3), (10, 5), (5, 7)])
def test_any_batch_can_be_recomputed_without_replaying_the_stream(count, batch_size) -> None:
    streamed = batches(count, batch_size, seed=3, start=0, number=12)
    for step, expected in enumerate(streamed):
        assert batch_indices(count, batch_size=batch_size, seed=3, step=step).tolist() == expected


def test_a_stream_started_at_a_step_continues_the_whole_stream() -> None:
    whole = batches(7, 3, seed=1, start=0, number=10)
    assert batches(7, 3, seed=1, start=4, number=6) == whole[4:]


def test_each_epoch_visits_every_example_once_in_a_new_order() -> None:
    flat = np.concatenate(batches(8, 4, seed=2, start=0, number=6))
    epochs = flat.reshape(3, 8)
    for epoch in epochs:
        assert sorted(epoch.tolist()) == list(range(8))
    assert len({tuple(epoch) for epoch in epochs}) == 3


def test_the_order_depends_on_the_seed() -> None:
    assert batches(50, 10, seed=1, start=0, number=5) != batches(50, 10, seed=2, start=0, number=5)


def test_shifted_images_move_by_whole_pixels_within_the_limit() -> None:
    images = np.zeros((64, 28, 28, 1), np.float32)
    images[:, 14, 14, 0] = 1.0  # one bright pixel in the middle of each image
    shifted = shift_images(tf.constant(images), shift=2, seed=5, step=3).numpy()
    assert shifted.sum() == pytest.approx(64.0)  # nothing falls off an edge from the middle
    rows, columns = np.nonzero(shifted[..., 0])[1:]
    assert set(rows - 14) <= {-2, -1, 0, 1, 2}
    assert set(columns - 14) <= {-2, -1, 0, 1, 2}
    assert len(set(zip(rows, columns, strict=True))) > 5  # the images move differently


def test_shifts_are_drawn_from_the_seed_and_step() -> None:
    images = tf.constant(np.random.default_rng(0).random((32, 28, 28, 1), np.float32))
    first = shift_images(images, shift=1, seed=1, step=7).numpy()
    np.testing.assert_array_equal(first, shift_images(images, shift=1, seed=1, step=7).numpy())
    assert not np.array_equal(first, shift_images(images, shift=1, seed=1, step=8).numpy())


def test_a_shifted_stream_started_at_a_step_continues_the_whole_stream() -> None:
    rng = np.random.default_rng(1)
    pixels, labels = rng.integers(0, 256, (20, 28, 28, 1), np.uint8), np.arange(20) % 10

    def images(start: int, number: int) -> list[np.ndarray]:
        stream = training_stream(pixels, labels, batch_size=6, seed=2, start_step=start, shift=2)
        return [batch.numpy() for batch, _ in stream.take(number)]

    whole, resumed = images(0, 7), images(4, 3)
    for expected, actual in zip(whole[4:], resumed, strict=True):
        np.testing.assert_array_equal(expected, actual)


def test_a_negative_shift_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="argument `shift`"):
        Recipe(steps=1, shift=-1)


def test_the_pipelines_over_memory_shard_by_example_and_run_without_the_autotuner() -> None:
    # The autotuner's thread could hold up the deletion of an iterator, and so the end
    # of fit, until its next wake-up: up to a minute.
    pixels, labels = np.zeros((8, 28, 28, 1), np.uint8), np.arange(8) % 10
    for dataset in (
        training_stream(pixels, labels, batch_size=4, seed=0, start_step=0, shift=1),
        evaluation_batches(pixels, labels, 4),
    ):
        options = dataset.options()
        assert options.autotune.enabled is False
        policy = options.experimental_distribute.auto_shard_policy
        assert policy == tf.data.experimental.AutoShardPolicy.DATA
        images, _ = next(iter(dataset))
        assert images.dtype == tf.float32
        assert tuple(images.shape) == (4, 28, 28, 1)


@settings(max_examples=25, deadline=None)
@given(count=st.integers(1, 40), batch_size=st.integers(1, 50), start=st.integers(0, 30))
def test_every_epoch_is_a_permutation_and_any_step_is_recomputed(
    count: int, batch_size: int, start: int
) -> None:
    """Invariants of the order, on any size of data and batch, from any step."""
    steps = -(-3 * count // batch_size)  # three epochs' worth
    streamed = batches(count, batch_size, seed=7, start=start, number=steps)
    assert all(len(batch) == batch_size for batch in streamed)
    flat = np.concatenate(
        [batch_indices(count, batch_size=batch_size, seed=7, step=s) for s in range(start + steps)]
    )
    for epoch in range(len(flat) // count):
        assert sorted(flat[epoch * count : (epoch + 1) * count].tolist()) == list(range(count))
    assert np.concatenate(streamed).tolist() == flat[start * batch_size :].tolist()


def test_each_fit_of_a_trainer_draws_its_own_order() -> None:
    assert len({stream_seed(3, run) for run in range(5)}) == 5
    with pytest.raises(InvalidArgumentError, match="argument `seed`"):
        stream_seed(-1)


def test_an_affine_stream_started_at_a_step_continues_the_whole_stream() -> None:
    rng = np.random.default_rng(2)
    pixels, labels = rng.integers(0, 256, (20, 28, 28, 1), np.uint8), np.arange(20) % 10
    settings = {"rotation": 12.0, "scale": 0.1, "shear": 5.0, "shift": 2}

    def images(start: int, number: int) -> list[np.ndarray]:
        stream = training_stream(pixels, labels, batch_size=6, seed=3, start_step=start, **settings)
        return [batch.numpy() for batch, _ in stream.take(number)]

    whole, resumed = images(0, 6), images(3, 3)
    for expected, actual in zip(whole[3:], resumed, strict=True):
        np.testing.assert_array_equal(expected, actual)
    plain = training_stream(pixels, labels, batch_size=6, seed=3)
    assert not np.array_equal(next(iter(plain))[0].numpy(), whole[0])


def test_affine_images_keep_the_ink_near_the_centre_and_differ_per_image() -> None:
    images = np.zeros((16, 28, 28, 1), np.float32)
    images[:, 8:20, 12:16] = 1.0  # a stroke in the middle: nothing leaves the frame
    moved = affine_images(images, seed=1, step=0, rotation=10.0, scale=0.1, shift=2.0)
    moved = moved.numpy()
    ink = moved.sum(axis=(1, 2, 3)) / images[0].sum()
    assert (np.abs(ink - 1.0) < 0.25).all()  # sizes change by at most 10% each way
    assert len({moved[i].tobytes() for i in range(16)}) == 16
    again = affine_images(images, seed=1, step=0, rotation=10.0, scale=0.1, shift=2.0)
    np.testing.assert_array_equal(again.numpy(), moved)


def test_one_hot_labels_for_a_smoothed_loss() -> None:
    pixels, labels = np.zeros((8, 28, 28, 1), np.uint8), np.arange(8) % 10
    _, targets = next(iter(training_stream(pixels, labels, batch_size=4, seed=0, one_hot=10)))
    assert targets.shape == (4, 10)
    np.testing.assert_array_equal(targets.numpy().sum(axis=1), 1.0)
