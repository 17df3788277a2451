"""Keras layers of mnistkit, and the run-time ``keep_prob`` switch.

Importing this module imports Keras and registers the layers as Keras serializables
(package ``mnistkit``), so saved models load with ``safe_mode`` on.
"""

from __future__ import annotations

import random
from typing import Any

import keras
import tensorflow as tf

from mnistkit.errors import InvalidArgumentError

__all__ = ["KeepProbDropout", "get_keep_prob", "set_keep_prob", "validate_keep_prob"]


def validate_keep_prob(keep_prob: Any) -> float:
    """Return ``keep_prob`` as a float, or raise if it is not in (0, 1].

    Args:
        keep_prob: The probability that a unit is kept.

    Returns:
        The value as a float.

    Raises:
        InvalidArgumentError: If the value is not a number in (0, 1].

    Example:
        >>> validate_keep_prob(0.5)
        0.5
    """
    try:
        value = float(keep_prob)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(keep_prob, bool) or not 0.0 < value <= 1.0:
        raise InvalidArgumentError(
            "Invalid value for argument `keep_prob`. Expected a float in (0, 1]. "
            f"Received: keep_prob={keep_prob!r}"
        )
    return value


@keras.saving.register_keras_serializable(package="mnistkit")
class KeepProbDropout(keras.layers.Layer):
    """Dropout set by a keep probability held in a variable, as the tutorial's placeholder.

    In training mode each unit is kept with probability ``keep_prob`` and scaled by
    ``1 / keep_prob``; otherwise the layer passes its input through. ``keep_prob``
    lives in a non-trainable variable, saved with the model, that can be changed at
    run time (:func:`set_keep_prob`) without rebuilding, recompiling or retracing.
    The random stream is stateless and counted in a saved variable, so a resumed run
    draws the same masks as an uninterrupted one. Under a ``tf.distribute`` strategy
    each replica draws its own masks from the shared count.

    Args:
        keep_prob: The probability that a unit is kept, in (0, 1].
        seed: Seed of the dropout masks; ``None`` draws one (stored in the config).
        **kwargs: Passed to :class:`keras.layers.Layer`.

    Example:
        >>> import numpy as np
        >>> layer = KeepProbDropout(keep_prob=0.5, seed=1)
        >>> out = layer(np.ones((1, 1000), "float32"), training=True)
        >>> sorted(set(np.round(np.asarray(out).ravel(), 3).tolist()))
        [0.0, 2.0]
        >>> float(np.asarray(layer(np.ones((1, 3), "float32"))).sum())
        3.0
    """

    def __init__(self, keep_prob: float = 0.5, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.initial_keep_prob = validate_keep_prob(keep_prob)
        self.seed = int(seed) if seed is not None else random.randrange(2**31)
        self.supports_masking = True
        # Plain tf.Variables, not Keras weights: they are state, not parameters, so
        # count_params() matches the tutorial's; save/load_own_variables keep them.
        self.keep_prob = tf.Variable(self.initial_keep_prob, dtype=tf.float32, trainable=False)
        self.draws = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if not training:
            return inputs
        self.draws.assign_add(1)
        draw = tf.convert_to_tensor(self.draws)
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            # The counter is shared (ONLY_FIRST_REPLICA): number the draws per replica, or
            # every replica would drop the same units of its examples.
            replica_id = tf.cast(replica.replica_id_in_sync_group, tf.int64)
            draw = draw * replica.num_replicas_in_sync + replica_id
        seed = tf.stack([tf.constant(self.seed, tf.int64), draw])
        noise = tf.random.stateless_uniform(tf.shape(inputs), seed=seed, dtype=tf.float32)
        keep = tf.cast(noise < self.keep_prob, inputs.dtype)
        return inputs * keep / tf.cast(self.keep_prob, inputs.dtype)

    def save_own_variables(self, store: Any) -> None:
        store["keep_prob"] = self.keep_prob.numpy()
        store["draws"] = self.draws.numpy()

    def load_own_variables(self, store: Any) -> None:
        self.keep_prob.assign(store["keep_prob"])
        self.draws.assign(store["draws"])

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(keep_prob=self.initial_keep_prob, seed=self.seed)
        return config


def _dropout_layers(model: keras.layers.Layer) -> list[KeepProbDropout]:
    layers = model._flatten_layers(include_self=True, recursive=True)
    return [layer for layer in layers if isinstance(layer, KeepProbDropout)]


def get_keep_prob(model: keras.layers.Layer) -> float | None:
    """Return the keep probability a model's dropout layers now hold.

    Args:
        model: A Keras model or layer.

    Returns:
        The value of the first :class:`KeepProbDropout` layer's variable, or ``None``
        if the model has no such layer.

    Example:
        >>> from mnistkit import build
        >>> get_keep_prob(build("deep_cnn", keep_prob=0.75)), get_keep_prob(build("softmax"))
        (0.75, None)
    """
    layers = _dropout_layers(model)
    # Round away float32 noise: 0.3 is stored as 0.30000001192...
    return float(f"{layers[0].keep_prob.numpy():.7g}") if layers else None


def set_keep_prob(model: keras.layers.Layer, keep_prob: float) -> float | None:
    """Set the keep probability of every :class:`KeepProbDropout` layer of a model.

    Only a variable changes: compiled functions keep running without a retrace.

    Args:
        model: A Keras model or layer.
        keep_prob: The new keep probability, in (0, 1].

    Returns:
        The previous value (see :func:`get_keep_prob`), to restore later.

    Raises:
        InvalidArgumentError: If ``keep_prob`` is not in (0, 1].

    Example:
        >>> from mnistkit import build
        >>> model = build("deep_cnn")
        >>> set_keep_prob(model, 1.0), get_keep_prob(model)
        (0.5, 1.0)
    """
    value = validate_keep_prob(keep_prob)
    previous = get_keep_prob(model)
    for layer in _dropout_layers(model):
        layer.keep_prob.assign(value)
    return previous
