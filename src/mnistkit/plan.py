"""The plan of a training run: how many steps, where epochs end, when to log and save.

A :class:`RunPlan` is plain Python, worked out once from the recipe, the data's size
and the options of ``fit``; the Trainer runs it, and the command line asks it for the
same figures (the total steps it prints, the steps its history rows fall on) instead
of working them out again.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from mnistkit.errors import InvalidArgumentError
from mnistkit.validation import check_non_negative_int, check_positive_int

__all__ = ["LARGE_STEP", "MAX_STEPS", "MAX_STEPS_PER_CALL", "RunPlan"]

#: The most steps one call into TensorFlow runs. Softmax regression trains about 1.8
#: times as fast from 10 on and no faster past it; Ctrl-C waits for the call under way.
MAX_STEPS_PER_CALL = 10
#: The most steps a run may have, far past any real run and within what every step
#: counter (Keras's, TensorFlow's, the data stream's) holds.
MAX_STEPS = 2**31 - 1

#: Parameters times batch size from which a step runs alone in its call, since its
#: arithmetic dwarfs the overhead; the deep CNN (3.3 million parameters, batches of 50)
#: measured 1.5% slower with several steps per call.
LARGE_STEP = 100_000_000


@dataclass(frozen=True)
class RunPlan:
    """The steps of one run of ``fit``, and the steps at which something happens.

    Steps are counted over the whole run, a resumed one included: a run of 1,000 steps
    resumed at step 400 has ``start_step=400`` and ``total_steps=1000``.

    Attributes:
        total_steps: The step the run ends at.
        steps_per_epoch: Steps in one pass over the training data (``ceil(N / batch)``),
            or ``None`` when the data's length is unknown.
        start_step: The step the run starts (or resumes) at.
        log_every: Steps between log lines, or ``None`` for none.
        checkpoint_every: Steps between periodic checkpoints, or ``None``.

    Example:
        >>> plan = RunPlan.make(epochs=2, steps_per_epoch=215, log_every=100)
        >>> plan.total_steps, plan.epochs, plan.epoch_ends()
        (430, 2, [215, 430])
        >>> plan.log_steps()
        [0, 100, 200, 300, 400]
    """

    total_steps: int
    steps_per_epoch: int | None
    start_step: int = 0
    log_every: int | None = None
    checkpoint_every: int | None = None

    def __post_init__(self) -> None:
        check_positive_int(self.total_steps, "total_steps")
        if self.steps_per_epoch is not None:
            check_positive_int(self.steps_per_epoch, "steps_per_epoch")
        check_non_negative_int(self.start_step, "start_step")
        for name in ("log_every", "checkpoint_every"):
            if getattr(self, name) is not None:
                check_positive_int(getattr(self, name), name)
        if self.start_step > self.total_steps:
            raise InvalidArgumentError(
                f"The run starts at step {self.start_step}, past its end at step "
                f"{self.total_steps}."
            )

    @classmethod
    def make(
        cls,
        *,
        steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        start_step: int = 0,
        log_every: int | None = None,
        checkpoint_every: int | None = None,
    ) -> RunPlan:
        """Make the plan of a run of ``steps``, or of ``epochs`` passes over the data.

        Args:
            steps: The run's length in steps.
            epochs: The run's length in passes; needs ``steps_per_epoch``.
            steps_per_epoch: Steps in one pass, or ``None`` if unknown.
            start_step: The step to start (or resume) at.
            log_every: Steps between log lines.
            checkpoint_every: Steps between periodic checkpoints.

        Returns:
            The plan.

        Raises:
            InvalidArgumentError: If both or neither length is given, a value is out of
                range, the run would have more than :data:`MAX_STEPS` steps, or
                ``epochs`` is given for data of unknown length.
        """
        if (steps is None) == (epochs is None):
            raise InvalidArgumentError(
                f"Pass either `steps` or `epochs`, not both. Received: steps={steps}, "
                f"epochs={epochs}"
            )
        if steps is None:
            if steps_per_epoch is None:
                raise InvalidArgumentError(
                    "Training a tf.data.Dataset of unknown or infinite length needs `steps`."
                )
            total = check_positive_int(epochs, "epochs") * steps_per_epoch
        else:
            total = check_positive_int(steps, "steps")
        if total > MAX_STEPS:
            raise InvalidArgumentError(
                f"A run of {total:,} steps is longer than the {MAX_STEPS:,} steps a run may "
                f"have. Received: steps={steps}, epochs={epochs}"
            )
        return cls(total, steps_per_epoch, start_step, log_every, checkpoint_every)

    @staticmethod
    def default_log_every(total_steps: int) -> int:
        """The command line's log interval for a run by steps: ten lines a run.

        Args:
            total_steps: The run's length.

        Returns:
            ``total_steps // 10``, at least 1.

        Example:
            >>> RunPlan.default_log_every(1000)
            100
        """
        return max(1, total_steps // 10)

    @property
    def epochs(self) -> int:
        """How many epochs the run touches, the last one possibly partial (1 if unknown)."""
        if self.steps_per_epoch is None:
            return 1
        return math.ceil(self.total_steps / self.steps_per_epoch)

    def epoch_of(self, step: int) -> int:
        """The epoch (from 0) that ``step`` trains in."""
        return 0 if self.steps_per_epoch is None else step // self.steps_per_epoch

    def epoch_ends(self) -> list[int]:
        """The steps after which an epoch ends, the run's last step included."""
        if self.steps_per_epoch is None:
            return [self.total_steps]
        ends = list(range(self.steps_per_epoch, self.total_steps, self.steps_per_epoch))
        return [step for step in ends if step > self.start_step] + [self.total_steps]

    def log_steps(self) -> list[int]:
        """The steps, from the start to the end, whose batch a log line measures."""
        if self.log_every is None:
            return []
        first = -(-self.start_step // self.log_every) * self.log_every
        return list(range(first, self.total_steps, self.log_every))

    def fits(self) -> list[tuple[int, int, int, int]]:
        """The ``keras.Model.fit`` calls that run the plan, in Keras's own epochs.

        Whole epochs run in one call; the rest of an epoch that a resumed run starts
        inside, and the part of an epoch that a run by steps stops inside, each in a
        short call of its own.

        Returns:
            ``(start_step, initial_epoch, epochs, steps_per_epoch)`` for each call.

        Example:
            >>> RunPlan(1000, 550).fits()
            [(0, 0, 1, 550), (550, 1, 2, 450)]
            >>> RunPlan(1000, 300, start_step=400).fits()
            [(400, 1, 2, 200), (600, 2, 3, 300), (900, 3, 4, 100)]
        """
        start, total, per = self.start_step, self.total_steps, self.steps_per_epoch
        if per is None:
            return [(start, 0, 1, total - start)]
        calls = []
        whole = -(-start // per)  # the first epoch that starts at or after the start
        if start % per:
            epoch = start // per
            calls.append((start, epoch, epoch + 1, min((epoch + 1) * per, total) - start))
        if total // per > whole:
            calls.append((whole * per, whole, total // per, per))
        if total % per and total // per >= whole:
            epoch = total // per
            calls.append((epoch * per, epoch, epoch + 1, total - epoch * per))
        return calls

    def stops(self) -> list[int]:
        """Every step after ``start_step`` where an epoch, a log stretch or a save ends."""
        found = set(self.epoch_ends())
        for every in (self.log_every, self.checkpoint_every):
            if every is not None:
                first = (self.start_step // every + 1) * every
                found.update(range(first, self.total_steps, every))
        return sorted(found)

    def steps_per_call(self, *, parameters: int, batch_size: int, every_step: bool) -> int:
        """How many steps each call into TensorFlow may run without moving a stop.

        Args:
            parameters: The model's parameter count.
            batch_size: Examples per step.
            every_step: Whether something (a callback's batch hook, a strategy) must see
                each step.

        Returns:
            1 for large steps (see :data:`LARGE_STEP`) or when every step is watched;
            else the most steps, up to :data:`MAX_STEPS_PER_CALL`, that divide every
            stretch between two stops.

        Example:
            >>> RunPlan(1000, 550, log_every=100).steps_per_call(
            ...     parameters=7850, batch_size=100, every_step=False)
            10
        """
        if every_step or parameters * batch_size >= LARGE_STEP:
            return 1
        points = [self.start_step, *self.stops()]
        common = math.gcd(*(b - a for a, b in itertools.pairwise(points)))
        return max(n for n in range(1, MAX_STEPS_PER_CALL + 1) if common % n == 0)
