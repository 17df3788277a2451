"""Keras layers of mnistkit: dropout set by ``keep_prob``, and the output that names a model.

Importing this module imports Keras and registers the layers as Keras serializables
(package ``mnistkit``), so saved models load with ``safe_mode`` on. Importing
:mod:`mnistkit` is enough for that: the registration happens as soon as Keras is
imported, by whoever imports it first.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator, Mapping
from typing import Any

import keras
import numpy as np

from mnistkit.validation import check_one_of, check_probability, check_seed

__all__ = [
    "OUTPUT_KINDS",
    "KeepProbDropout",
    "ModelOutput",
    "apply_keep_prob",
    "copy_dropout_state",
    "drawn",
    "dropout_layers",
    "get_keep_prob",
    "mc_dropout",
    "parameter_count",
    "parameters",
    "set_keep_prob",
    "validate_keep_prob",
]

#: What a model's last layer can output, ``"logits"`` (what losses take with
#: ``from_logits=True``) or ``"probabilities"`` (a softmax, for code written for them).
OUTPUT_KINDS = ("logits", "probabilities")


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
    return check_probability(keep_prob, "keep_prob")


@keras.saving.register_keras_serializable(package="mnistkit")
class KeepProbDropout(keras.layers.Layer):
    """Dropout set by a keep probability held in a variable, as the tutorial's placeholder.

    In training mode each unit is kept with probability ``keep_prob`` and scaled by
    ``1 / keep_prob``; otherwise the layer passes its input through, unless
    :func:`mc_dropout` asks it to keep sampling (Monte-Carlo dropout) while every other
    layer stays in inference mode. ``keep_prob`` lives in a non-trainable Keras
    variable, saved with the model, that can be changed at run time
    (:func:`set_keep_prob`) without rebuilding, recompiling or retracing. The masks come
    from ``keras.random`` seed generators whose counts are saved, so a resumed run draws
    the same masks as an uninterrupted one. The layer is written in ``keras.ops`` and
    runs on every Keras backend.

    The keep probability and the sampling switch are state, not parameters:
    :func:`parameter_count` leaves them out, as the tutorial's count does.

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
        initial = validate_keep_prob(keep_prob)
        self.seed = check_seed(seed) if seed is not None else random.randrange(2**31)
        self.supports_masking = True
        self.keep_prob = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(initial),
            dtype="float32",
            trainable=False,
            autocast=False,  # compared in float32, whatever the compute dtype
            name="keep_prob",
        )
        self.sampling = self.add_weight(
            shape=(),
            initializer="zeros",
            dtype="float32",
            trainable=False,
            autocast=False,
            name="sampling",
        )
        #: The training masks' stream; its count is the number of masks drawn.
        self.draws = keras.random.SeedGenerator(self.seed)
        #: The Monte-Carlo masks' stream, started afresh by each :func:`mc_dropout`.
        self.samples = keras.random.SeedGenerator(_sampling_seed(self.seed))

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if training:
            return self._drop(inputs, self.draws)
        # A variable, not the graph, says whether to sample: switching needs no retrace.
        sampled = self._drop(inputs, self.samples)
        return keras.ops.where(self.sampling > 0.5, sampled, inputs)

    def _drop(self, inputs: Any, generator: keras.random.SeedGenerator) -> Any:
        noise = keras.random.uniform(keras.ops.shape(inputs), seed=generator)
        keep = keras.ops.cast(noise < self.keep_prob, inputs.dtype)
        return inputs * keep / keras.ops.cast(self.keep_prob, inputs.dtype)

    def save_own_variables(self, store: Any) -> None:
        store["keep_prob"] = keras.ops.convert_to_numpy(self.keep_prob)
        store["draws"] = np.int64(drawn(self))

    def load_own_variables(self, store: Any) -> None:
        self.keep_prob.assign(np.asarray(store["keep_prob"], "float32"))
        _restart(self.draws, self.seed, int(np.asarray(store["draws"])))

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        # The value in force, so that a copy made from the config (clone_model) drops
        # as the original does now.
        config.update(keep_prob=_rounded(self.keep_prob), seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="mnistkit")
class ModelOutput(keras.layers.Layer):
    """The last layer of a model that :func:`~mnistkit.build` made: its output, and its card.

    It passes the logits of the layer before through (``kind="logits"``) or turns them
    into probabilities with a softmax (``kind="probabilities"``), always in float32. Its
    config records what the model is: its registered name, the recipe it was built
    for, and the kind of output. That record travels with the model wherever Keras
    takes it (``keras.saving.load_model``, ``keras.models.clone_model``), and is what
    :func:`~mnistkit.models.model_info` reads; nothing is guessed from a model's name or
    its activations.

    Args:
        kind: One of :data:`OUTPUT_KINDS`.
        model: The registered name of the model, or ``None``.
        recipe: The settings of the recipe the model was built for
            (:meth:`~mnistkit.Recipe.as_dict`), or ``None``.
        **kwargs: Passed to :class:`keras.layers.Layer`.

    Example:
        >>> import numpy as np
        >>> layer = ModelOutput("probabilities", model="softmax")
        >>> np.round(np.asarray(layer(np.zeros((1, 2), "float32"))), 2).tolist()
        [[0.5, 0.5]]
    """

    def __init__(
        self,
        kind: str = "logits",
        model: str | None = None,
        recipe: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)
        self.kind = check_one_of(kind, "output", OUTPUT_KINDS)
        self.model_name = model
        self.recipe = None if recipe is None else dict(recipe)

    def call(self, inputs: Any) -> Any:
        if self.kind == "logits":
            return inputs
        return keras.ops.softmax(inputs, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(kind=self.kind, model=self.model_name, recipe=self.recipe)
        return config


def dropout_layers(model: keras.layers.Layer) -> list[KeepProbDropout]:
    """Return the :class:`KeepProbDropout` layers of a model, nested models included.

    Args:
        model: A Keras model or layer.

    Returns:
        The layers, in the order the models list them (``Model.layers``, depth first).

    Example:
        >>> from mnistkit import build
        >>> [layer.name for layer in dropout_layers(build("deep_cnn"))]
        ['dropout']
    """
    found, stack = [], [model]
    while stack:
        layer = stack.pop()
        if isinstance(layer, KeepProbDropout):
            found.append(layer)
        stack.extend(reversed(list(getattr(layer, "layers", None) or [])))
    return found


def parameters(model: keras.layers.Layer) -> list[Any]:
    """Return a model's weights without its dropout layers' state: its parameters.

    The keep probability and the sampling switch of :class:`KeepProbDropout` are
    variables saved with the model, but no parameter of it.

    Args:
        model: A Keras model or layer.

    Returns:
        The variables, in the order of ``model.weights``.

    Example:
        >>> from mnistkit import build
        >>> [variable.path for variable in parameters(build("softmax"))]
        ['logits/kernel', 'logits/bias']
    """
    state = {id(variable) for layer in dropout_layers(model) for variable in layer.weights}
    return [variable for variable in model.weights if id(variable) not in state]


def parameter_count(model: keras.layers.Layer) -> int:
    """Return how many numbers a model's :func:`parameters` hold, as the tutorial counts.

    Args:
        model: A Keras model or layer.

    Returns:
        The count.

    Example:
        >>> from mnistkit import build
        >>> parameter_count(build("deep_cnn"))
        3274634
    """
    return sum(int(np.prod(variable.shape)) for variable in parameters(model))


def drawn(layer: KeepProbDropout) -> int:
    """Return how many training masks a :class:`KeepProbDropout` layer has drawn.

    Args:
        layer: The layer.

    Returns:
        The count, which a saved model and a checkpoint keep.
    """
    return int(keras.ops.convert_to_numpy(layer.draws.state)[1])


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
    layers = dropout_layers(model)
    return _rounded(layers[0].keep_prob) if layers else None


def apply_keep_prob(model: keras.layers.Layer, keep_prob: float | None) -> float | None:
    """Set a model's keep probability where one is given; return the one it trains at.

    This is the one place that decides a run's keep probability: the value given, else
    the value the model carries (a model built by name carries its recipe's).

    Args:
        model: A Keras model or layer.
        keep_prob: The keep probability asked for, or ``None`` for the model's own.

    Returns:
        The keep probability in force, or ``None`` for a model without
        :class:`KeepProbDropout` layers.

    Raises:
        InvalidArgumentError: If ``keep_prob`` is out of (0, 1], or given for a model
            without such layers.

    Example:
        >>> from mnistkit import build
        >>> apply_keep_prob(build("deep_cnn", keep_prob=0.75), None)
        0.75
        >>> apply_keep_prob(build("deep_cnn"), 0.123456789)
        0.123456789
    """
    from mnistkit.errors import InvalidArgumentError

    if keep_prob is None:
        return get_keep_prob(model)
    value = validate_keep_prob(keep_prob)
    if not dropout_layers(model):
        raise InvalidArgumentError(
            f"Invalid value for argument `keep_prob`. The model {model.name!r} has no "
            f"KeepProbDropout layer, so keep_prob does not apply. Received: "
            f"keep_prob={keep_prob!r}"
        )
    set_keep_prob(model, value)
    return value


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
    for layer in dropout_layers(model):
        layer.keep_prob.assign(value)
    return previous


def copy_dropout_state(source: keras.layers.Layer, target: keras.layers.Layer) -> None:
    """Copy the keep probability and the training draw counts of one model's dropout to another.

    ``keras.models.clone_model`` copies the layers' configs (the seed and the keep
    probability) and ``set_weights`` the weights, but not the count of masks drawn so
    far, which is state rather than a weight: call this after them, and the clone drops
    the same units in its next training step as the original would.

    Args:
        source: The model to copy from.
        target: A model with the same :class:`KeepProbDropout` layers, in the same order.

    Raises:
        InvalidArgumentError: If the two models have different numbers of such layers.

    Example:
        >>> import keras
        >>> from mnistkit import build
        >>> model = build("deep_cnn", seed=1)
        >>> clone = keras.models.clone_model(model)
        >>> clone.set_weights(model.get_weights())
        >>> copy_dropout_state(model, clone)
    """
    from mnistkit.errors import InvalidArgumentError

    sources, targets = dropout_layers(source), dropout_layers(target)
    if len(sources) != len(targets):
        raise InvalidArgumentError(
            f"The models have {len(sources)} and {len(targets)} KeepProbDropout layers; "
            "copy_dropout_state needs the same layers in both."
        )
    for giver, taker in zip(sources, targets, strict=True):
        taker.keep_prob.assign(giver.keep_prob)
        _restart(taker.draws, taker.seed, drawn(giver))


@contextlib.contextmanager
def mc_dropout(model: keras.layers.Layer, keep_prob: float | None = None) -> Iterator[None]:
    """Make a model's :class:`KeepProbDropout` layers sample in inference, inside the block.

    Monte-Carlo dropout without ``training=True``: only the dropout layers sample,
    every other layer (batch normalization, say) stays in inference mode. The samples
    come from a stream of their own that starts afresh in each block, so the same calls
    give the same samples, and the training stream is left where it was.

    Args:
        model: A Keras model or layer.
        keep_prob: The keep probability to sample at; ``None`` keeps the model's.

    Yields:
        Nothing; on exit the layers stop sampling and get their keep probability back.

    Raises:
        InvalidArgumentError: If ``keep_prob`` is not in (0, 1].

    Example:
        >>> import numpy as np
        >>> from mnistkit import build
        >>> model = build("deep_cnn", seed=0)
        >>> images = np.random.default_rng(0).random((2, 28, 28, 1), "float32")
        >>> with mc_dropout(model, keep_prob=0.5):
        ...     sampled = np.asarray(model(images))
        >>> bool(np.allclose(sampled, np.asarray(model(images))))
        False
    """
    value = None if keep_prob is None else validate_keep_prob(keep_prob)
    layers = dropout_layers(model)
    previous = [keras.ops.convert_to_numpy(layer.keep_prob) for layer in layers]
    for layer in layers:
        _restart(layer.samples, _sampling_seed(layer.seed), 0)
        layer.sampling.assign(1.0)
        if value is not None:
            layer.keep_prob.assign(value)
    try:
        yield
    finally:
        for layer, kept in zip(layers, previous, strict=True):
            layer.sampling.assign(0.0)
            layer.keep_prob.assign(kept)


def _sampling_seed(seed: int) -> int:
    # Another stream than the training masks' for the same seed.
    return (seed + 1) % 2**31


def _restart(generator: keras.random.SeedGenerator, seed: int, count: int) -> None:
    state = generator.state
    state.assign(np.array([seed, count], dtype=keras.backend.standardize_dtype(state.dtype)))


def _rounded(variable: Any) -> float:
    # The shortest decimal that is the same float32: 0.3, not 0.30000001192...
    return float(str(np.float32(keras.ops.convert_to_numpy(variable))))
