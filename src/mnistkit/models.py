"""The model registry, the tutorial's two models, and what a built model knows of itself.

Factories import Keras when they run, not when this module is imported, so listing
models stays fast. :func:`build` ends what a factory returns with a
:class:`~mnistkit.layers.ModelOutput` layer, so that the model carries its registered
name, the recipe it was built for and the kind of output it gives; :func:`model_info`
reads that back, from a model just built, loaded from a file or cloned.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mnistkit._factories import MODELS, F, output_card
from mnistkit.errors import InvalidArgumentError
from mnistkit.quiet import quiet_tensorflow
from mnistkit.recipes import Recipe, recipes_of, resolve_recipe, with_recipes
from mnistkit.registry import Entry
from mnistkit.tuning.space import Choice, Range, with_search_space
from mnistkit.validation import check_one_of, check_seed, invalid
from mnistkit.weights import Weights, resolve_weights, weights_of, with_weights

if TYPE_CHECKING:
    import keras

__all__ = [
    "IMAGE_SHAPE",
    "MODELS",
    "ModelInfo",
    "build",
    "check_one_output",
    "deep_cnn",
    "describe_models",
    "list_models",
    "model_info",
    "model_output",
    "model_recipes",
    "register_model",
    "softmax",
    "unregister_model",
    "with_model_info",
]

#: The shape of one image, as every registered model takes it.
IMAGE_SHAPE = (28, 28, 1)


@dataclass(frozen=True)
class ModelInfo:
    """What a model built by :func:`build` carries about itself.

    Attributes:
        name: The registered name of the model, such as ``"deep_cnn"``.
        output: ``"logits"`` or ``"probabilities"``.
        recipe: The recipe the model was built for, or ``None``.
    """

    name: str | None
    output: str
    recipe: Recipe | None

    @property
    def from_logits(self) -> bool:
        """Whether a loss should take the model's outputs with ``from_logits=True``."""
        return self.output == "logits"


def register_model(name: str, *, override: bool = False) -> Callable[[F], F]:
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
        ...         keras.Input((28, 28, 1)),
        ...         keras.layers.Flatten(),
        ...         keras.layers.Dense(hidden_units, activation="relu"),
        ...         keras.layers.Dense(10),
        ...     ])
        >>> build("tiny_mlp", hidden_units=8).count_params()
        6370
        >>> unregister_model("tiny_mlp")
    """
    return MODELS.register(name, override=override)  # type: ignore[return-value]


def unregister_model(name: str) -> None:
    """Remove a model registered in this process (installed plugins stay).

    Args:
        name: The registered name.

    Raises:
        UnknownNameError: If no model of that name was registered in this process.
    """
    MODELS.unregister(name)


def build(
    model: str,
    /,
    *,
    name: str | None = None,
    output: str = "logits",
    recipe: str | Recipe | None = None,
    weights: str | Weights | None = None,
    **kwargs: Any,
) -> keras.Model:
    """Build a registered model by name, untrained or with the trained weights it ships.

    The model outputs logits unless ``output="probabilities"`` is asked for. Keras code
    written for probabilities (``loss="categorical_crossentropy"``, or
    ``"sparse_categorical_crossentropy"`` without ``from_logits=True``) needs that: on
    logits it trains to chance without a word. A factory that takes ``keep_prob`` is
    given the recipe's, unless ``keep_prob`` is passed here.

    With ``weights``, the model is built for the recipe the weights were trained with
    (unless ``recipe`` is given) and their arrays are loaded into it, after a check of
    their SHA-256 (see :doc:`/pretrained`).

    Args:
        model: A registered name, such as ``"softmax"`` or ``"deep_cnn"``; see
            :func:`list_models`.
        name: The Keras name of the model; by default the registered name, numbered as
            Keras numbers its layers (``deep_cnn``, ``deep_cnn_1``...), so that several
            models fit in one Keras model.
        output: ``"logits"``, or ``"probabilities"`` (a softmax at the end).
        recipe: The name of the model's recipe (or a :class:`~mnistkit.Recipe`) to
            build for; ``None`` for the default one, or the one ``weights`` were
            trained with.
        weights: The name of one of the model's trained weight sets, such as
            ``"mnist"`` (see :func:`~mnistkit.model_weights`), or a
            :class:`~mnistkit.Weights`; ``None`` for fresh, untrained weights.
        **kwargs: The factory's keyword arguments, such as ``keep_prob``.

    Returns:
        A new, uncompiled ``keras.Model`` whose last layer is a
        :class:`~mnistkit.layers.ModelOutput` (see :func:`model_info`).

    Raises:
        UnknownNameError: If no model (or recipe, or weight set) is registered under
            that name; the message suggests close matches.
        InvalidArgumentError: If the factory does not accept an argument (the message
            lists those it accepts), ``output`` is not one of the two kinds, or the
            factory returns something other than a Keras model with one output.
        PluginError: If the plugin that provides the model fails to import.
        DataFormatError: If the weights file fails its SHA-256 check or does not fit
            the model.

    Example:
        >>> build("softmax").count_params()
        7850
        >>> build("deep_cnn", weights="mnist").get_layer("dropout").get_config()["keep_prob"]
        0.5
        >>> build("deep_cnn", recipe="fast").get_layer("dropout").get_config()["keep_prob"]
        0.75
        >>> build("softmax", output="probabilities", name="mine").name
        'mine'
    """
    check_one_of(output, "output", ("logits", "probabilities"))
    if name is not None and (not isinstance(name, str) or not name):
        raise invalid("name", "a non-empty string", name)
    quiet_tensorflow()  # before the factory imports Keras
    entry = MODELS.entry(model)
    factory = MODELS.get(entry.name)
    trained = None
    if weights is not None:
        trained = resolve_weights(weights_of(factory), weights, model=entry.name)
        recipe = trained.recipe if recipe is None else recipe
        kwargs = {**trained.arguments, **kwargs}
    chosen = resolve_recipe(recipes_of(factory), recipe, model=entry.name)
    if chosen.keep_prob is not None and _accepts(factory, "keep_prob"):
        kwargs.setdefault("keep_prob", chosen.keep_prob)
    made = MODELS.create(entry.name, **kwargs)
    built = with_model_info(
        made, model_name=entry.name, output=output, recipe=chosen, name=name or _unique(entry.name)
    )
    return built if trained is None else trained.load_into(built)


def with_model_info(
    model: keras.Model,
    *,
    model_name: str | None = None,
    output: str = "logits",
    recipe: Recipe | None = None,
    name: str | None = None,
) -> keras.Model:
    """Return ``model`` with a :class:`~mnistkit.layers.ModelOutput` layer at its end.

    :func:`build` calls it on what a factory returns, and :func:`~mnistkit.load_model`
    on a model saved by mnistkit 0.1.0, which carried no such layer. The layers (and so
    the weights) are those of ``model``: a functional or sequential model is extended at
    its output, any other model is called as one layer of the result.

    Args:
        model: A Keras model that outputs logits, with one output.
        model_name: Its registered name, if it has one.
        output: ``"logits"``, or ``"probabilities"`` to end with a softmax.
        recipe: The recipe it was built for, if any.
        name: The Keras name of the result; ``model.name`` by default.

    Returns:
        The model that :func:`model_info` describes.

    Raises:
        InvalidArgumentError: If ``model`` is not a Keras model with one output.

    Example:
        >>> import keras
        >>> plain = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
        ...                           keras.layers.Dense(10)])
        >>> model_info(with_model_info(plain, output="probabilities")).output
        'probabilities'
    """
    import keras

    from mnistkit.layers import ModelOutput

    described = f"The model {model_name!r}" if model_name else "The model"
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(
            f"{described} is not a keras.Model: its factory returned a "
            f"{type(model).__name__}. A model factory returns a keras.Model."
        )
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):  # a subclassed model: no graph to extend
        inputs = outputs = []
    if len(outputs) > 1 or len(inputs) > 1:
        raise InvalidArgumentError(
            f"{described} has {len(inputs)} inputs and {len(outputs)} outputs; mnistkit "
            "trains models with one input of images and one output of class scores."
        )
    settings = None if recipe is None else recipe.as_dict()
    card = ModelOutput(output, model=model_name, recipe=settings, name=f"output_{output}")
    if not outputs:
        inputs = [keras.Input(IMAGE_SHAPE, name="image")]
        outputs = [model(inputs[0])]
    return keras.Model(inputs[0], card(outputs[0]), name=name or model.name)


def model_info(model: keras.Model) -> ModelInfo | None:
    """Return what a model built by :func:`build` carries about itself.

    Args:
        model: A Keras model.

    Returns:
        The model's registered name, output kind and recipe; ``None`` for a model that
        :func:`build` did not make (one built by hand).

    Example:
        >>> info = model_info(build("deep_cnn", recipe="fast"))
        >>> info.name, info.output, info.recipe.name
        ('deep_cnn', 'logits', 'fast')
        >>> import keras
        >>> model_info(keras.Sequential([keras.Input((2,)), keras.layers.Dense(3)])) is None
        True
    """
    card = output_card(model)
    if card is None:
        return None
    recipe = None if card.recipe is None else Recipe.from_dict(card.recipe)
    return ModelInfo(name=card.model_name, output=card.kind, recipe=recipe)


def check_one_output(model: keras.Model, name: str = "model") -> None:
    """Raise unless ``model`` has one input (images) and one output (class scores).

    Args:
        model: A Keras model.
        name: The argument the model was given as, for the message.

    Raises:
        InvalidArgumentError: If the model has several inputs or outputs.
    """
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError):  # a subclassed model, not yet called: no graph
        return
    if len(inputs) != 1 or len(outputs) != 1:
        raise InvalidArgumentError(
            f"Invalid value for argument `{name}`. Expected a model with one input of images "
            f"and one output of class scores. Received: a model {model.name!r} with "
            f"{len(inputs)} inputs and {len(outputs)} outputs"
        )


def model_output(model: keras.Model, output: str | None = None) -> str:
    """Return what a model outputs, ``"logits"`` or ``"probabilities"``: the one answer.

    The Trainer, the :class:`~mnistkit.Predictor` and export all ask this. ``output``
    wins where given; else a model that :func:`build` made says what it outputs; else a
    model whose last layer is a softmax (a ``Softmax`` layer, or a layer with the
    softmax activation) outputs probabilities, and any other logits.

    Args:
        model: A Keras model.
        output: What the caller says the model outputs, or ``None``.

    Returns:
        ``"logits"`` or ``"probabilities"``.

    Raises:
        InvalidArgumentError: If ``output`` is neither.

    Example:
        >>> import keras
        >>> hand_built = keras.Sequential(
        ...     [keras.Input((784,)), keras.layers.Dense(10, activation="softmax")])
        >>> model_output(hand_built), model_output(build("softmax"))
        ('probabilities', 'logits')
    """
    import keras

    from mnistkit.layers import OUTPUT_KINDS

    if output is not None:
        return check_one_of(output, "output", OUTPUT_KINDS)
    info = model_info(model)
    if info is not None:
        return info.output
    last = model.layers[-1] if getattr(model, "layers", None) else None
    softmax = isinstance(last, keras.layers.Softmax) or (
        getattr(last, "activation", None) is keras.activations.softmax
    )
    return "probabilities" if softmax else "logits"


def list_models(pattern: str | None = None, *, pretrained: bool = False) -> list[str]:
    """Return the names of the registered models, sorted.

    Args:
        pattern: An :mod:`fnmatch` pattern such as ``"*cnn*"``; ``None`` keeps all.
        pretrained: Keep only the models that ship trained weights (see
            :func:`~mnistkit.model_weights`); this imports the plugins that declare
            models, to read their factories, and leaves out one that fails to import
            with a :class:`~mnistkit.PluginLoadWarning` naming it.

    Returns:
        The names, built-in, registered at run time, and declared by installed
        plugins (listed without importing them, unless ``pretrained``).

    Example:
        >>> list_models("*cnn*")
        ['deep_cnn']
        >>> list_models(pretrained=True)
        ['deep_cnn', 'softmax']
    """
    if not pretrained:
        return MODELS.names(pattern)
    return [
        name
        for name, factory in MODELS.loadable(pattern, stacklevel=2).items()
        if weights_of(factory)
    ]


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
    return MODELS.entries(pattern)


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
    return recipes_of(MODELS.get(name))


def _accepts(factory: Callable[..., Any], parameter: str) -> bool:
    try:
        inspect.signature(factory).bind_partial(**{parameter: None})
    except (TypeError, ValueError):
        return False
    return True


def _unique(name: str) -> str:
    import keras

    # Keras's own numbering of layer names: a Softmax layer put on top of a softmax
    # model, or two deep_cnn in one ensemble, then get names of their own.
    uid = keras.backend.get_uid(name)
    return name if uid == 1 else f"{name}_{uid - 1}"


@register_model("softmax")
@with_search_space(
    learning_rate=Range(0.05, 2.0, log=True),
    batch_size=Choice(50, 100, 200),
    schedule=Choice(None, "warmup_cosine"),
)
@with_recipes(
    default=Recipe(
        optimizer="sgd",
        learning_rate=0.5,
        steps=1000,
        batch_size=100,
        summary="The tutorial's: gradient descent at 0.5, 1,000 steps of 100.",
    )
)
@with_weights(mnist=Weights("mnistkit", "data/weights/softmax-mnist.npz"))
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

    inputs = keras.Input(IMAGE_SHAPE, name="image")
    flat = keras.layers.Flatten(name="flatten")(inputs)
    logits = keras.layers.Dense(
        10, kernel_initializer="zeros", bias_initializer="zeros", dtype="float32", name="logits"
    )(flat)
    return keras.Model(inputs, logits, name="softmax")


# deep_cnn's keep_prob, unless told otherwise, is the one it trains with in the tutorial.
_TUTORIAL = Recipe(
    optimizer="adam",
    learning_rate=1e-4,
    steps=20_000,
    batch_size=50,
    keep_prob=0.5,
    summary="The tutorial's: Adam at 1e-4, 20,000 steps of 50, keep_prob 0.5.",
)


@register_model("deep_cnn")
@with_search_space(
    optimizer=Choice("adam", "nadam"),
    learning_rate=Range(3e-4, 5e-3, log=True),
    batch_size=Choice(64, 128, 256),
    keep_prob=Range(0.3, 0.9),
    schedule=Choice(None, "warmup_cosine"),
    shift=Choice(0, 1, 2, 3),
    rotation=Range(0.0, 20.0),
    scale=Range(0.0, 0.2),
    shear=Range(0.0, 15.0),
    label_smoothing=Range(0.0, 0.2),
    ema=Choice(None, 0.99, 0.999),
)
@with_recipes(
    default=_TUTORIAL,
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
        "a pixel, Adam warm-up and cosine decay from 3e-3, keep_prob 0.75, "
        "bfloat16 where fast.",
    ),
    best=Recipe(
        optimizer="adam",
        learning_rate=2e-3,
        epochs=15,
        batch_size=128,
        keep_prob=0.5,
        schedule="warmup_cosine",
        precision="auto",
        shift=3,
        rotation=15.0,
        scale=0.15,
        shear=10.0,
        label_smoothing=0.1,
        ema=0.999,
        summary="About 99.55%: 15 epochs of 128, images moved, rotated, scaled and "
        "sheared, label smoothing 0.1, weights averaged, Adam warm-up and cosine decay "
        "from 2e-3.",
    ),
)
@with_weights(mnist=Weights("mnistkit", "data/weights/deep_cnn-mnist.npz"))
def deep_cnn(*, keep_prob: float = _TUTORIAL.keep_prob, seed: int | None = None) -> keras.Model:  # type: ignore[assignment]
    """The tutorial's deep MNIST network: conv/pool twice, dense 1024, dropout, dense 10.

    Convolutions are 5x5 with SAME padding and ReLU (32 then 64 filters), each
    followed by 2x2 max-pooling with stride 2; then a 1024-unit ReLU layer, dropout
    set by ``keep_prob`` (a variable, see :class:`~mnistkit.layers.KeepProbDropout`)
    and a 10-unit output of logits. Weights start truncated-normal with standard
    deviation 0.1 and biases at 0.1, as in the tutorial.

    Args:
        keep_prob: Probability that a unit of the 1024-unit layer is kept in training;
            by default the tutorial's 0.5, that of the ``default`` recipe.
        seed: Seed of the initial weights and dropout masks; ``None`` draws one.

    Returns:
        A ``keras.Model`` with 3,274,634 parameters.

    Raises:
        InvalidArgumentError: If ``keep_prob`` is not in (0, 1].

    Example:
        >>> from mnistkit.layers import parameter_count
        >>> parameter_count(deep_cnn())
        3274634
    """
    seed = None if seed is None else check_seed(seed)  # before the initializers add to it
    import keras

    from mnistkit.layers import KeepProbDropout

    def weights(offset: int) -> keras.initializers.Initializer:
        return keras.initializers.TruncatedNormal(
            stddev=0.1, seed=None if seed is None else seed + offset
        )

    bias = keras.initializers.Constant(0.1)
    x = inputs = keras.Input(IMAGE_SHAPE, name="image")
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
