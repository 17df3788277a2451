"""The Keras model that ``Trainer.fit`` runs: the user's layers, with two supported hooks.

The Trainer never patches a user's model. It trains a functional model built on the
user's model's layers (so the same weights, the same optimizer) whose class overrides
Keras's documented hooks, ``train_step`` and ``test_step``:

- ``train_step`` keeps, inside the training graph, the step at which the loss first
  stopped being finite, so that a run making several steps per call into TensorFlow
  still names that step exactly;
- under a multi-worker strategy, both give their scalar logs an axis of length 1,
  which Keras's cross-worker ``reduce(..., axis=0)`` needs (keras-team/keras#20585).

One hook has no public counterpart: under a multi-worker strategy Keras averages the
first batch across workers to learn its shapes, through a ``reduce`` that takes no
nested values, in the private ``_maybe_symbolic_build``. The engine overrides it only
there, after checking that this Keras still has it with the signature it expects, and
fails with a clear message otherwise.
"""

from __future__ import annotations

import inspect
from typing import Any

import keras
import tensorflow as tf

from mnistkit.errors import MnistkitError

#: Keras versions whose multi-worker path the engine was tested with.
TESTED_KERAS = "3.12 to 3.15"

_SYMBOLIC_BUILD = "_maybe_symbolic_build"


def is_multi_worker(strategy: tf.distribute.Strategy | None) -> bool:
    """Return whether ``strategy`` runs across several workers (machines or processes)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(jobs.get(job, ())) for job in ("chief", "worker")) > 1


def check_multi_worker_support() -> None:
    """Raise unless this Keras has the private hook the multi-worker path relies on."""
    hook = getattr(keras.Model, _SYMBOLIC_BUILD, None)
    parameters = list(inspect.signature(hook).parameters) if callable(hook) else []
    if parameters[1:] != ["iterator", "data_batch"]:
        raise MnistkitError(
            f"Training on several workers relies on a part of Keras's trainer "
            f"({_SYMBOLIC_BUILD}) that Keras {keras.__version__} does not have as expected; "
            f"mnistkit was tested with Keras {TESTED_KERAS}. Install one of those, or train "
            "on one worker."
        )


class Engine(keras.Model):
    """A functional model over ``model``'s layers, with the Trainer's hooks.

    Args:
        model: The model to train; its layers and weights are shared, not copied.
        multi_worker: Whether it runs under a multi-worker strategy.
    """

    def __init__(self, model: keras.Model, *, multi_worker: bool = False) -> None:
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError):  # a subclassed model: call it as a layer
            inputs = [keras.Input(model.input_shape[1:])]
            outputs = [model(inputs[0])]
        super().__init__(inputs=inputs[0], outputs=outputs[0], name=model.name)
        if multi_worker:
            check_multi_worker_support()
        self.multi_worker = multi_worker
        #: The optimizer's step count after the first step whose loss was not finite,
        #: or 0 while there is none.
        self.first_bad_step = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def train_step(self, data: Any) -> Any:
        logs = super().train_step(data)
        loss = logs.get("loss") if isinstance(logs, dict) else None
        if loss is not None:
            bad = tf.logical_and(
                tf.equal(self.first_bad_step, 0), tf.logical_not(tf.math.is_finite(loss))
            )
            step = tf.cast(self.optimizer.iterations, tf.int64)
            self.first_bad_step.assign(tf.where(bad, step, self.first_bad_step))
        return self._for_reduce(logs)

    def test_step(self, data: Any) -> Any:
        return self._for_reduce(super().test_step(data))

    def _for_reduce(self, logs: Any) -> Any:
        if not self.multi_worker:
            return logs
        return tf.nest.map_structure(_scalar_to_vector, logs)

    def _maybe_symbolic_build(self, iterator: Any = None, data_batch: Any = None) -> Any:
        if not (self.multi_worker and iterator is not None and data_batch is None):
            return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
        # This worker's own first batch, not a cross-worker average of it.
        strategy = self.distribute_strategy
        for _, _, batches in iterator:
            data_batch = tf.nest.map_structure(
                lambda value: strategy.experimental_local_results(value)[0], next(batches)
            )
            break
        return super()._maybe_symbolic_build(data_batch=data_batch)


def _scalar_to_vector(value: Any) -> Any:
    tensor = tf.convert_to_tensor(value)
    return tf.reshape(tensor, [1]) if tensor.shape.rank == 0 else tensor
