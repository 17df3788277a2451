"""The run plan: total steps, epochs, log steps, and how many steps go in one call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnistkit import InvalidArgumentError, RunPlan


@pytest.mark.parametrize(
    ("plan", "parameters", "expected"),
    [
        (RunPlan(1100, 550), 7850, 10),  # two epochs of 100 on 55,000 examples
        (RunPlan(1000, 550, log_every=100), 7850, 10),
        (RunPlan(430, 215), 7850, 5),
        (RunPlan(14, 7), 7850, 7),
        (RunPlan(13, None), 7850, 1),
        (RunPlan(1100, 550), 3_274_634, 1),  # the deep CNN's steps are large
        (RunPlan(1000, 550, start_step=3), 7850, 1),  # resumed off the grid
    ],
)
def test_steps_per_call_divide_every_stretch_and_spare_large_steps(
    plan: RunPlan, parameters: int, expected: int
) -> None:
    assert plan.steps_per_call(parameters=parameters, batch_size=100, every_step=False) == expected
    assert plan.steps_per_call(parameters=parameters, batch_size=100, every_step=True) == 1


def test_a_plan_by_epochs_counts_steps_per_pass() -> None:
    plan = RunPlan.make(epochs=4, steps_per_epoch=215)
    assert (plan.total_steps, plan.epochs, plan.epoch_ends()) == (860, 4, [215, 430, 645, 860])


def test_a_resumed_plan_keeps_the_stops_after_its_start() -> None:
    plan = RunPlan.make(steps=1000, steps_per_epoch=550, log_every=100, start_step=450)
    assert plan.log_steps() == [500, 600, 700, 800, 900]
    assert plan.epoch_ends() == [550, 1000]
    assert plan.epoch_of(450) == 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"steps": 2, "epochs": 1, "steps_per_epoch": 5}, "either `steps` or `epochs`"),
        ({"epochs": 1}, "unknown or infinite length"),
        ({"steps": 0}, "argument `steps`"),
        ({"steps": 5, "start_step": 6}, "past its end"),
        ({"steps": 5, "log_every": -1}, "argument `log_every`"),
    ],
)
def test_bad_plans_are_refused(settings: dict[str, int], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        RunPlan.make(**settings)


@given(
    total=st.integers(1, 5000),
    per_epoch=st.integers(1, 700),
    log_every=st.none() | st.integers(1, 600),
    start=st.integers(0, 5000),
)
def test_calls_never_cross_a_stop(
    total: int, per_epoch: int, log_every: int | None, start: int
) -> None:
    plan = RunPlan(total, per_epoch, start_step=min(start, total), log_every=log_every)
    calls = plan.steps_per_call(parameters=1, batch_size=1, every_step=False)
    for stop in [*plan.stops(), *plan.log_steps()]:
        assert (stop - plan.start_step) % calls == 0 or stop < plan.start_step
    assert plan.epoch_ends()[-1] == total
