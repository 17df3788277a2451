"""The model registry and the tutorial's two models.

Factories import Keras when they run, not when this module is imported, so listing
models stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mnistkit.recipes import Recipe, recipes_of, with_recipes
from mnistkit.registry import Entry, Registry

if TYPE_CHECKING:
    import keras

__all__ = [
    "build",
    "deep_cnn",
    "describe_models",
    "list_models",
    "model_recipes",
    "register_model",
    "softmax",
]

_registry: Registry[Callable[..., keras.Model]] = Registry(
    "model", group="mnistkit.models", lister="mnistkit.list_models() or `mnistkit models`"
)

#: The attribute :func:`build` sets on a model to remember its registered name.
NAME_ATTRIBUTE = "_mnistkit_name"


Factory = TypeVar("Factory", bound=Callable[..., Any])


def register_model(name: str, *, override: bool = False) -> Callable[[Factory], Factory]:
    """Register a model factory under ``name`` (a decorator).

    A factory takes keyword arguments only and returns a ``keras.Model`` that maps
    images shaped (28, 28, 1) to 10 logits. Attach recipes with
    :func:`~mnistkit.recipes.with_recipes`. ``register_model(name)(factory)`` works too.

    Args:
        name: The name users pass to :func:`build`; normalised with
            :func:`~mnistkit.registry.normalize_name`.
        override: Replace a factory already registered under that name.

    Returns:
        A decorator that registers the factory and returns it unchanged.

    Raises:
        InvalidArgumentError: If the name is taken and ``override`` is false.

    Example:
        >>> import keras
        >>> @register_model("tiny_mlp")
        ... def tiny_mlp(*, hidden_units: int = 32) -> keras.Model:
        ...     '''A one-hidden-layer perceptron.'''
        ...     return keras.Sequential([
        ...         keras.Input((28, 28, 1)), keras.layers.Flatten(),
        ...         keras.layers.Dense(hidden_units, activation="relu"), keras.layers.Dense(10),
        ...     ])
        >>> build("tiny_mlp", hidden_units=8).count_params()
        6370
    """
    return _registry.register(name, override=override)  # type: ignore[return-value]


def build(name: str, /, **kwargs: Any) -> keras.Model:
    """Build a registered model by name.

    Args:
        name: A registered name, such as ``"softmax"`` or ``"deep_cnn"``; see
            :func:`list_models`.
        **kwargs: The factory's keyword arguments, such as ``keep_prob``.

    Returns:
        A new, uncompiled ``keras.Model``.

    Raises:
        UnknownNameError: If no model is registered under ``name``; the message
            suggests close matches.
        InvalidArgumentError: If the factory does not accept an argument; the message
            lists those it accepts.
        PluginError: If the plugin that provides the model fails to import.

    Example:
        >>> build("softmax").count_params()
        7850
    """
    model = _registry.create(name, **kwargs)
    setattr(model, NAME_ATTRIBUTE, _registry.entry(name).name)
    return model


def list_models(pattern: str | None = None) -> list[str]:
    """Return the names of the registered models, sorted.

    Args:
        pattern: An :mod:`fnmatch` pattern such as ``"*cnn*"``; ``None`` keeps all.

    Returns:
        The names, built-in, registered at run time, and declared by installed
        plugins (listed without importing them).

    Example:
        >>> list_models("*cnn*")
        ['deep_cnn']
    """
    return _registry.names(pattern)


def describe_models(pattern: str | None = None) -> list[Entry]:
    """Return an :class:`~mnistkit.registry.Entry` for each model: origin and summary.

    Args:
        pattern: An :mod:`fnmatch` pattern to filter the names; ``None`` keeps all.

    Returns:
        The entries, sorted by name; plugins are described without being imported.

    Example:
        >>> entry = describe_models("softmax")[0]
        >>> entry.origin, entry.summary
        ('built-in', 'Softmax regression: one dense layer from 784 pixels to 10 logits.')
    """
    return _registry.entries(pattern)


def model_recipes(name: str) -> Mapping[str, Recipe]:
    """Return the training recipes a registered model carries, by name.

    Args:
        name: A registered model name.

    Returns:
        A read-only mapping; ``"default"`` is the recipe used unless told otherwise.

    Raises:
        UnknownNameError: If no model is registered under ``name``.
        PluginError: If the plugin that provides the model fails to import.

    Example:
        >>> recipe = model_recipes("softmax")["default"]
        >>> recipe.optimizer, recipe.learning_rate, recipe.steps, recipe.batch_size
        ('sgd', 0.5, 1000, 100)
    """
    return recipes_of(_registry.get(name))


def _check_keep_prob(keep_prob: float) -> float:
    from mnistkit.layers import validate_keep_prob

    return validate_keep_prob(keep_prob)


@register_model("softmax")
@with_recipes(
    default=Recipe(
        optimizer="sgd",
        learning_rate=0.5,
        steps=1000,
        batch_size=100,
        summary="The tutorial's: gradient descent at 0.5, 1,000 steps of 100.",
    )
)
def softmax() -> keras.Model:
    """Softmax regression: one dense layer from 784 pixels to 10 logits.

    The tutorial's first model, ``y = softmax(xW + b)`` with ``W`` and ``b`` zero at
    the start. The model outputs logits: the loss applies the softmax once (the
    tutorial applied it twice, in the model and again in the loss).

    Returns:
        A ``keras.Model`` with 7,850 parameters.

    Example:
        >>> softmax().output_shape
        (None, 10)
    """
    import keras

    inputs = keras.Input((28, 28, 1), name="image")
    flat = keras.layers.Flatten(name="flatten")(inputs)
    logits = keras.layers.Dense(
        10, kernel_initializer="zeros", bias_initializer="zeros", dtype="float32", name="logits"
    )(flat)
    return keras.Model(inputs, logits, name="softmax")


@register_model("deep_cnn")
@with_recipes(
    default=Recipe(
        optimizer="adam",
        learning_rate=1e-4,
        steps=20_000,
        batch_size=50,
        keep_prob=0.5,
        summary="The tutorial's: Adam at 1e-4, 20,000 steps of 50, keep_prob 0.5.",
    ),
    fast=Recipe(
        optimizer="adam",
        learning_rate=3e-3,
        epochs=4,
        batch_size=256,
        keep_prob=0.75,
        schedule="warmup_cosine",
        precision="auto",
        shift=1,
        summary="99.2% in a tenth of the time: 4 epochs of 256, images shifted by up to "
        "a pixel, Adam warm-up and cosine decay from 3e-3, keep_prob 0.75, bfloat16 where fast.",
    ),
)
def deep_cnn(*, keep_prob: float = 0.5, seed: int | None = None) -> keras.Model:
    """The tutorial's deep MNIST network: two conv/pool blocks, dense 1024, dropout, dense 10.

    Convolutions are 5x5 with SAME padding and ReLU (32 then 64 filters), each
    followed by 2x2 max-pooling with stride 2; then a 1024-unit ReLU layer, dropout
    set by ``keep_prob`` (a variable, see :class:`~mnistkit.layers.KeepProbDropout`)
    and a 10-unit output of logits. Weights start truncated-normal with standard
    deviation 0.1 and biases at 0.1, as in the tutorial.

    Args:
        keep_prob: Probability that a unit of the 1024-unit layer is kept in training.
        seed: Seed of the initial weights and dropout masks; ``None`` draws one.

    Returns:
        A ``keras.Model`` with 3,274,634 parameters.

    Raises:
        InvalidArgumentError: If ``keep_prob`` is not in (0, 1].

    Example:
        >>> deep_cnn().count_params()
        3274634
    """
    keep_prob = _check_keep_prob(keep_prob)
    import keras

    from mnistkit.layers import KeepProbDropout

    def weights(offset: int) -> keras.initializers.Initializer:
        return keras.initializers.TruncatedNormal(
            stddev=0.1, seed=None if seed is None else seed + offset
        )

    bias = keras.initializers.Constant(0.1)
    inputs = keras.Input((28, 28, 1), name="image")
    x = inputs
    for index, filters in enumerate((32, 64), start=1):
        x = keras.layers.Conv2D(
            filters,
            5,
            padding="same",
            activation="relu",
            kernel_initializer=weights(index),
            bias_initializer=bias,
            name=f"conv{index}",
        )(x)
        x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(
        1024, activation="relu", kernel_initializer=weights(3), bias_initializer=bias, name="fc1"
    )(x)
    x = KeepProbDropout(keep_prob, seed=seed, name="dropout")(x)
    # Logits stay float32 under a mixed-precision policy, so the loss is computed in full.
    logits = keras.layers.Dense(
        10, kernel_initializer=weights(4), bias_initializer=bias, dtype="float32", name="logits"
    )(x)
    return keras.Model(inputs, logits, name="deep_cnn")
