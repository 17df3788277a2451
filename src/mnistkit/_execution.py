"""Running several training steps in each call into TensorFlow.

Keras spends about a millisecond of Python per call of its training function: for a
small model such as softmax regression that is more than the step's math. Several steps
per call (Keras's ``steps_per_execution``) remove most of it, at the price of seeing the
logs, and so running batch-level callbacks, only once per call. The Trainer therefore
runs several steps per call only where that pays and nothing needs single steps: the
steps are small, the call's length divides every stretch of training it runs (so log
lines and checkpoints fall where they did), no user callback watches single batches,
and a :class:`LossWatch` still names the exact step where the loss stopped being finite.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import tensorflow as tf

__all__ = ["LARGE_STEP", "MAX_STEPS_PER_CALL", "LossWatch", "steps_per_call"]

#: The most steps one call runs. Softmax regression trains about 1.8 times as fast from
#: 10 on and no faster past it; Ctrl-C waits for the call under way.
MAX_STEPS_PER_CALL = 10

#: Parameters times batch size from which a step runs alone in its call: its arithmetic
#: dwarfs the overhead, and the deep CNN (3.3 million parameters, batches of 50) measured
#: 1.5% slower with several steps per call.
LARGE_STEP = 100_000_000

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")


def steps_per_call(
    lengths: Iterable[int],
    callbacks: Sequence[keras.callbacks.Callback],
    *,
    parameters: int,
    batch_size: int,
) -> int:
    """Return the most steps per call, up to the cap, that divides each of ``lengths``.

    It is 1 for a large step (see :data:`LARGE_STEP`), and when a callback overrides a
    batch-level hook: such a callback expects to see every step.
    """
    if parameters * batch_size >= LARGE_STEP:
        return 1
    for callback in callbacks:
        for hook in _BATCH_HOOKS:
            if getattr(type(callback), hook) is not getattr(keras.callbacks.Callback, hook):
                return 1
    common = math.gcd(*lengths)
    return max(n for n in range(1, MAX_STEPS_PER_CALL + 1) if common % n == 0)


class LossWatch:
    """A model's train step that records the first step whose loss is not finite.

    The loss Keras logs is the mean over the epoch so far, which stops being finite at
    the first step whose loss is not. With several steps per call, callbacks only see
    the last step's logs; this keeps, inside the training graph, the optimizer's step
    count after the first bad step (0 while there is none).
    """

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.step_function = type(model).train_step.__get__(model)
        self.first_bad = tf.Variable(0, dtype=tf.int64, trainable=False, name="first_bad_step")

    @classmethod
    def install(cls, model: keras.Model) -> LossWatch | None:
        """Wrap ``model``'s train step, unless its instance has a train step of its own."""
        current = model.__dict__.get("train_step")
        if isinstance(current, cls):
            return current
        if current is not None:
            return None
        watch = cls(model)
        model.train_step = watch
        model.train_function = None  # traced again, through the watch
        return watch

    def __call__(self, data: Any) -> Any:
        logs = self.step_function(data)
        loss = logs.get("loss") if isinstance(logs, dict) else None
        if loss is not None:
            bad = tf.logical_and(
                tf.equal(self.first_bad, 0), tf.logical_not(tf.math.is_finite(loss))
            )
            step = tf.cast(self.model.optimizer.iterations, tf.int64)
            self.first_bad.assign(tf.where(bad, step, self.first_bad))
        return logs
