"""Training under a ``tf.distribute`` strategy: making one, and checking what is in its scope.

``tf.distribute`` strategies belong to Keras's TensorFlow backend: ``MirroredStrategy``
trains on the GPUs of one machine (:func:`check_backend` refuses a strategy on another
backend). The Trainer hands these helpers the strategy it was given. Under a strategy
the batch size stays the global batch: Keras splits each batch among the replicas, and
the data pipelines shard by example (:mod:`mnistkit.streams`), so every replica sees
its own share.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from mnistkit.errors import InvalidArgumentError

__all__ = [
    "STRATEGIES",
    "check_backend",
    "check_scope",
    "make_strategy",
]

#: The strategies the command line offers, by name.
STRATEGIES = ("mirrored",)


def check_backend() -> None:
    """Raise unless Keras runs on TensorFlow, the backend of ``tf.distribute`` strategies.

    Raises:
        InvalidArgumentError: On another Keras backend, naming it and what to do instead.

    Example:
        >>> check_backend()  # on the TensorFlow backend, nothing to say
    """
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise InvalidArgumentError(
            "tf.distribute strategies need the TensorFlow backend; this is Keras's "
            f"{backend!r} backend. Set KERAS_BACKEND=tensorflow, or train without a "
            "strategy (on JAX, `keras.distribution` spreads a model over devices)."
        )


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Return the strategy the command line names.

    ``"mirrored"`` mirrors the model on every GPU of this machine (or on its CPU when
    it has none).

    Args:
        name: One of :data:`STRATEGIES`.

    Returns:
        The ``tf.distribute.Strategy``.

    Raises:
        InvalidArgumentError: If ``name`` is unknown, or Keras runs on another backend
            than TensorFlow (:func:`check_backend`).
    """
    if name not in STRATEGIES:
        raise InvalidArgumentError(
            f"Invalid value for argument `strategy`. Expected one of {', '.join(STRATEGIES)}. "
            f"Received: strategy={name!r}"
        )
    check_backend()
    return tf.distribute.MirroredStrategy()


def check_scope(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    *,
    optimizer: Any = None,
    metrics: Sequence[Any] = (),
) -> None:
    """Raise if the strategy cannot train here, or a model, optimizer or metric is out of its scope.

    Variables made outside the scope are not mirrored: each replica would update a
    single copy, or Keras fails deep inside ``fit``.

    Args:
        strategy: The strategy to train under.
        model: The model; its variables include the state of its
            :class:`~mnistkit.KeepProbDropout` layers.
        optimizer: An optimizer instance, or a name (nothing to check).
        metrics: Metric names or instances.

    Raises:
        InvalidArgumentError: If Keras runs on another backend than TensorFlow
            (:func:`check_backend`), if ``strategy`` is a
            ``MultiWorkerMirroredStrategy``, which Keras 3 does not support, or naming
            what was built outside the scope and how to build it inside.
    """
    check_backend()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise InvalidArgumentError(
            "MultiWorkerMirroredStrategy is not supported: Keras 3 does not train under it "
            "(keras-team/keras#20585). Use tf.distribute.MirroredStrategy for the GPUs of "
            "one machine; across machines, keras.distribution on the JAX backend."
        )
    where = f"the scope of the {type(strategy).__name__} it is trained under"
    if not _created_in_scope(strategy, model.variables):
        raise InvalidArgumentError(
            f"The model {model.name!r} was built outside {where}, so its variables are not "
            "mirrored. Build it inside `with strategy.scope():`, or pass the name of a "
            'registered model (Trainer("deep_cnn", strategy=strategy)) and the Trainer '
            "builds it there."
        )
    if isinstance(optimizer, keras.optimizers.Optimizer) and not _created_in_scope(
        strategy, optimizer.variables
    ):
        raise InvalidArgumentError(
            f"The optimizer was created outside {where}. Create it inside "
            '`with strategy.scope():`, or pass its name (optimizer="adam").'
        )
    for metric in metrics:
        if isinstance(metric, keras.metrics.Metric) and not _created_in_scope(
            strategy, metric.variables
        ):
            raise InvalidArgumentError(
                f"The metric {metric.name!r} was created outside {where}. Create it inside "
                '`with strategy.scope():`, or pass its name (metrics=["accuracy"]).'
            )


def _created_in_scope(strategy: tf.distribute.Strategy, variables: Sequence[Any]) -> bool:
    # A Keras variable wraps the tf.Variable that the strategy made, in `.value`.
    return all(
        strategy.extended.variable_created_in_scope(
            variable.value if isinstance(variable, keras.Variable) else variable
        )
        for variable in variables
    )
