"""The training data stream: an order that can be recomputed at any step."""

from __future__ import annotations

import numpy as np
import pytest

from mnistkit._pipeline import batch_indices, index_stream


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
