"""Training recipes: the optimizer, learning rate, length and batch size a model trains with.

A recipe is data that a model factory carries, so a plugin ships its recipes with its
model. The Trainer and the command line start from a model's ``"default"`` recipe and
let any setting be overridden.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from mnistkit.errors import InvalidArgumentError, UnknownNameError

__all__ = [
    "DEFAULT_RECIPE",
    "OPTIMIZERS",
    "PRECISIONS",
    "Recipe",
    "check_optimizer",
    "recipes_of",
    "with_recipes",
]

F = TypeVar("F", bound=Callable[..., Any])

#: The name of the recipe used when none is asked for.
DEFAULT_RECIPE = "default"

_ATTRIBUTE = "mnistkit_recipes"

#: The Keras optimizers a recipe, the Trainer and the command line accept by name.
OPTIMIZERS = (
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamax",
    "adamw",
    "ftrl",
    "lion",
    "nadam",
    "rmsprop",
    "sgd",
)

#: The computation precisions a recipe or the Trainer accepts. ``"auto"`` picks
#: ``"mixed_bfloat16"`` where the hardware runs bfloat16 fast (CPUs with AMX or
#: AVX512-BF16, GPUs of compute capability 8.0 and up), ``"mixed_float16"`` on older
#: GPUs with tensor cores, and ``"float32"`` elsewhere.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")


@dataclass(frozen=True)
class Recipe:
    """How to train a model: a plain, frozen record of settings.

    Exactly one of ``steps`` and ``epochs`` is set.

    Attributes:
        optimizer: A Keras optimizer name, such as ``"sgd"`` or ``"adam"``.
        learning_rate: The (peak) learning rate.
        batch_size: Examples per training step.
        steps: Training steps, as the tutorial counted them.
        epochs: Passes over the training split.
        keep_prob: The dropout keep probability while training; ``None`` keeps the
            model's own.
        shift: Move each training image by a random whole number of pixels, up to
            ``shift`` in each direction (a cheap augmentation); 0 for none.
        precision: The computation precision, one of :data:`PRECISIONS`; ``None``
            leaves it to the Trainer (float32 unless told otherwise).
        schedule: ``None`` for a constant learning rate, or ``"warmup_cosine"``: a
            linear warm-up over the first tenth of training, then cosine decay to 0.
        summary: One line on what the recipe is for.

    Example:
        >>> Recipe(optimizer="sgd", learning_rate=0.5, steps=1000, batch_size=100).steps
        1000
    """

    optimizer: str = "adam"
    learning_rate: float = 1e-3
    batch_size: int = 32
    steps: int | None = None
    epochs: int | None = None
    keep_prob: float | None = None
    schedule: str | None = None
    precision: str | None = None
    shift: int = 0
    summary: str = ""

    def __post_init__(self) -> None:
        check_optimizer(self.optimizer)
        if (self.steps is None) == (self.epochs is None):
            raise InvalidArgumentError(
                "A recipe sets exactly one of `steps` and `epochs`. "
                f"Received: steps={self.steps}, epochs={self.epochs}"
            )
        if isinstance(self.shift, bool) or not isinstance(self.shift, int) or self.shift < 0:
            raise InvalidArgumentError(
                "Invalid value for argument `shift`. Expected a non-negative integer. "
                f"Received: shift={self.shift!r}"
            )
        if self.precision is not None and self.precision not in PRECISIONS:
            raise InvalidArgumentError(
                f"Invalid value for argument `precision`. Expected one of "
                f"{', '.join(PRECISIONS)}. Received: precision={self.precision!r}"
            )
        if self.schedule not in (None, "warmup_cosine"):
            raise InvalidArgumentError(
                "Invalid value for argument `schedule`. Expected None or 'warmup_cosine'. "
                f"Received: schedule={self.schedule!r}"
            )

    def replace(self, **changes: Any) -> Recipe:
        """Return a copy with some settings changed; ``None`` values are ignored.

        Setting ``steps`` clears ``epochs`` and the other way round.

        Args:
            **changes: Settings to change.

        Returns:
            The new recipe.

        Example:
            >>> Recipe(steps=10).replace(epochs=2, batch_size=None).epochs
            2
        """
        given = {key: value for key, value in changes.items() if value is not None}
        if "steps" in given:
            given.setdefault("epochs", None)
        elif "epochs" in given:
            given["steps"] = None
        return dataclasses.replace(self, **given)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as a plain dictionary, for JSON.

        Returns:
            Every field by name.
        """
        return dataclasses.asdict(self)


def check_optimizer(name: str) -> str:
    """Return ``name`` if it is one of :data:`OPTIMIZERS` (in any case), else raise.

    Args:
        name: A Keras optimizer name.

    Returns:
        The name, unchanged.

    Raises:
        InvalidArgumentError: If Keras has no optimizer of that name.

    Example:
        >>> check_optimizer("Adam")
        'Adam'
    """
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise InvalidArgumentError(
            "Invalid value for argument `optimizer`. Expected a Keras optimizer or one of "
            f"{', '.join(OPTIMIZERS)}. Received: optimizer={name!r}"
        )
    return name


def with_recipes(**recipes: Recipe) -> Callable[[F], F]:
    """Attach named recipes to a model factory (a decorator).

    Args:
        **recipes: Recipes by name; one should be called ``default``.

    Returns:
        A decorator that returns the factory unchanged but for the recipes it carries.

    Example:
        >>> from mnistkit.recipes import recipes_of
        >>> @with_recipes(default=Recipe(optimizer="sgd", learning_rate=0.1, steps=100))
        ... def my_model():
        ...     '''A model.'''
        >>> sorted(recipes_of(my_model))
        ['default']
    """

    def decorator(factory: F) -> F:
        setattr(factory, _ATTRIBUTE, MappingProxyType(dict(recipes)))
        return factory

    return decorator


def recipes_of(factory: Callable[..., Any]) -> Mapping[str, Recipe]:
    """Return the recipes a factory carries, by name (empty if it carries none).

    Args:
        factory: A model factory.

    Returns:
        A read-only mapping of recipe names to recipes.
    """
    return getattr(factory, _ATTRIBUTE, MappingProxyType({}))


def pick_recipe(owner: str, recipes: Mapping[str, Recipe], name: str | None) -> Recipe | None:
    """Return the recipe ``name`` (the default if ``None``) of a model's recipes.

    Raises:
        UnknownNameError: If a name is given that the model has no recipe for.
    """
    if name is None:
        return recipes.get(DEFAULT_RECIPE)
    if name not in recipes:
        known = ", ".join(sorted(recipes)) or "none"
        raise UnknownNameError(f"The model {owner!r} has no recipe {name!r}. Its recipes: {known}.")
    return recipes[name]
