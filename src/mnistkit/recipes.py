"""Training recipes: the optimizer, learning rate, length and batch size a model trains with.

A recipe is data that a model factory carries, so a plugin ships its recipes with its
model. :func:`resolve_recipe` is the one place where a recipe is chosen and the settings
a user gives are applied to it; the Trainer, :func:`~mnistkit.build` and the command line
all go through it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mnistkit._factories import F, declare, declared
from mnistkit.errors import InvalidArgumentError, UnknownNameError
from mnistkit.validation import (
    check_in_range,
    check_non_negative_int,
    check_one_of,
    check_positive_float,
    check_positive_int,
    check_probability,
    invalid,
)

__all__ = [
    "DEFAULT_RECIPE",
    "GENERIC_RECIPE",
    "OPTIMIZERS",
    "OVERRIDABLE",
    "PRECISIONS",
    "SCHEDULES",
    "Recipe",
    "check_optimizer",
    "recipes_of",
    "resolve_recipe",
    "with_recipes",
]

#: The name of the recipe used when none is asked for.
DEFAULT_RECIPE = "default"

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
#: AVX512-BF16 under Keras's TensorFlow backend, GPUs of compute capability 8.0 and
#: up), ``"mixed_float16"`` on older GPUs with tensor cores, and ``"float32"`` elsewhere.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16", "auto")

#: The learning-rate schedules a recipe may name; ``None`` is a constant rate.
SCHEDULES = (None, "warmup_cosine")

#: The settings a user may override on top of a recipe, in the Trainer and on the command
#: line (``--learning-rate`` for ``learning_rate``...).
OVERRIDABLE = (
    "optimizer",
    "learning_rate",
    "batch_size",
    "steps",
    "epochs",
    "keep_prob",
    "precision",
)

# The largest value of each setting that runs from 0 (none) up.
_HIGHEST = {"rotation": 180.0, "scale": 0.9, "shear": 80.0, "label_smoothing": 0.99}


@dataclass(frozen=True)
class Recipe:
    """How to train a model: a plain, frozen record of settings, checked when made.

    Exactly one of ``steps`` and ``epochs`` is set.

    Attributes:
        optimizer: A Keras optimizer name, such as ``"sgd"`` or ``"adam"``.
        learning_rate: The (peak) learning rate.
        batch_size: Examples per training step.
        steps: Training steps, as the tutorial counted them.
        epochs: Passes over the training split.
        keep_prob: The dropout keep probability a model built for this recipe starts
            with (see :doc:`/training` for who wins when several are given); ``None``
            keeps the factory's default.
        schedule: ``None`` for a constant learning rate, or ``"warmup_cosine"``: a
            linear warm-up over the first tenth of training, then cosine decay to 0.
        precision: The computation precision, one of :data:`PRECISIONS`; ``None``
            leaves it to the Trainer (float32 unless told otherwise).
        shift: Move each training image by a random whole number of pixels, up to
            ``shift`` in each direction (a cheap augmentation); 0 for none. With
            ``rotation``, ``scale`` or ``shear``, the move is part of one affine
            transform, drawn continuously (see :func:`~mnistkit.streams.augment_images`).
        rotation: Rotate each training image by up to this many degrees either way.
        scale: Resize each training image by up to this share either way (0.1: from
            90% to 110%).
        shear: Shear each training image by up to this many degrees either way.
        label_smoothing: Train on labels smoothed by this share (Keras's
            ``label_smoothing``); 0 for none. Evaluation is not smoothed.
        ema: Average the weights along training with this momentum (Keras optimizers'
            ``use_ema``), and end the run with the averages; ``None`` for none.
        summary: One line on what the recipe is for.
        name: The name the model carries the recipe under (set by
            :func:`resolve_recipe`); ``None`` for a recipe made by hand.

    Raises:
        InvalidArgumentError: If a setting is out of range, or both or neither of
            ``steps`` and ``epochs`` are set.

    Example:
        >>> Recipe(optimizer="sgd", learning_rate=0.5, steps=1000, batch_size=100).steps
        1000
        >>> Recipe(optimizer="sgd", learning_rate=0.1, steps=10, batch_size=0)
        Traceback (most recent call last):
        ...
        mnistkit.errors.InvalidArgumentError: Invalid value for argument `batch_size`. ...
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
    rotation: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    label_smoothing: float = 0.0
    ema: float | None = None
    summary: str = ""
    name: str | None = None

    def __post_init__(self) -> None:
        check_optimizer(self.optimizer)
        set_ = object.__setattr__  # frozen: store the checked values in canonical types
        set_(self, "learning_rate", check_positive_float(self.learning_rate, "learning_rate"))
        set_(self, "batch_size", check_positive_int(self.batch_size, "batch_size"))
        if (self.steps is None) == (self.epochs is None):
            raise InvalidArgumentError(
                "A recipe sets exactly one of `steps` and `epochs`. "
                f"Received: steps={self.steps}, epochs={self.epochs}"
            )
        for length in ("steps", "epochs"):
            if getattr(self, length) is not None:
                set_(self, length, check_positive_int(getattr(self, length), length))
        if self.keep_prob is not None:
            set_(self, "keep_prob", check_probability(self.keep_prob, "keep_prob"))
        check_one_of(self.schedule, "schedule", SCHEDULES)
        if self.precision is not None:
            check_one_of(self.precision, "precision", PRECISIONS)
        set_(self, "shift", check_non_negative_int(self.shift, "shift"))
        for field, top in _HIGHEST.items():
            set_(self, field, check_in_range(getattr(self, field), field, 0.0, top))
        if self.ema is not None:
            set_(self, "ema", check_in_range(self.ema, "ema", 0.0, 0.99999))
        if not isinstance(self.summary, str):
            raise invalid("summary", "a string", self.summary)
        if self.name is not None and not isinstance(self.name, str):
            raise invalid("name", "a string or None", self.name)

    @property
    def label(self) -> str:
        """The recipe's name, or ``"custom"`` for one made by hand."""
        return self.name or "custom"

    def replace(self, **changes: Any) -> Recipe:
        """Return a copy with some settings changed; ``None`` values are ignored.

        Setting ``steps`` clears ``epochs`` and the other way round.

        Args:
            **changes: Settings to change.

        Returns:
            The new recipe, checked like any other.

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
            Every field by name; ``Recipe(**recipe.as_dict())`` is the same recipe.
        """
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> Recipe:
        """Make a recipe from :meth:`as_dict`'s dictionary, as run files record it.

        Args:
            settings: The fields by name; unknown keys are refused.

        Returns:
            The recipe.

        Raises:
            InvalidArgumentError: If a key is not a recipe field or a value is out of
                range.

        Example:
            >>> recipe = Recipe(optimizer="sgd", steps=5)
            >>> Recipe.from_dict(recipe.as_dict()) == recipe
            True
        """
        if not isinstance(settings, Mapping):
            raise invalid("settings", "a mapping of recipe fields", settings)
        fields = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(str(key) for key in settings if key not in fields)
        if unknown:
            raise InvalidArgumentError(
                f"Not recipe settings: {', '.join(unknown)}. "
                f"A recipe has {', '.join(sorted(fields))}."
            )
        return cls(**settings)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Recipe:
        """Read a recipe file (JSON or TOML), such as the one ``mnistkit tune`` writes.

        Args:
            path: The file; see :mod:`mnistkit.recipe_files` for its form.

        Returns:
            The recipe.

        Raises:
            DataNotFoundError: If there is no such file.
            DataFormatError: If the file is not a recipe file.
            InvalidArgumentError: If a setting is unknown or out of range.
        """
        from mnistkit.recipe_files import read_recipe_file

        return read_recipe_file(path)

    def describe(self) -> str:
        """Return the settings in one line, as the command line prints them.

        Returns:
            For example ``"adam at 0.0001, 20,000 steps of 50, keep_prob 0.5"``.

        Example:
            >>> recipe = Recipe(
            ...     optimizer="sgd", learning_rate=0.5, steps=1000, batch_size=100
            ... )
            >>> recipe.describe()
            'sgd at 0.5, 1,000 steps of 100'
        """
        length = f"{self.steps:,} steps" if self.steps else f"{self.epochs} epochs"
        parts = [f"{self.optimizer} at {self.learning_rate:g}", f"{length} of {self.batch_size}"]
        if self.keep_prob is not None:
            parts.append(f"keep_prob {self.keep_prob:g}")
        if self.schedule:
            parts.append(f"{self.schedule} schedule")
        if self.shift:
            parts.append(f"shifts of up to {self.shift} px")
        for field, unit in (("rotation", " degrees"), ("scale", ""), ("shear", " degrees")):
            if getattr(self, field):
                parts.append(f"{field} up to {getattr(self, field):g}{unit}")
        if self.label_smoothing:
            parts.append(f"label smoothing {self.label_smoothing:g}")
        if self.ema is not None:
            parts.append(f"weights averaged ({self.ema:g})")
        return ", ".join(parts)

    def augmentation(self) -> dict[str, Any]:
        """The augmentation settings, as :func:`~mnistkit.streams.augment_images` takes them.

        Returns:
            ``shift``, ``rotation``, ``scale`` and ``shear``.
        """
        return {name: getattr(self, name) for name in ("shift", "rotation", "scale", "shear")}


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
        raise invalid("optimizer", f"a Keras optimizer or one of {', '.join(OPTIMIZERS)}", name)
    return name


#: The recipe of a model that carries none, a :class:`Recipe`'s defaults (Adam at 1e-3,
#: batches of 32) for one epoch.
GENERIC_RECIPE = Recipe(
    epochs=1, summary="Generic settings for a model without recipes.", name="generic"
)


def with_recipes(**recipes: Recipe) -> Callable[[F], F]:
    """Attach named recipes to a model factory (a decorator).

    Args:
        **recipes: Recipes by name; one should be called ``default``.

    Returns:
        A decorator that returns the factory unchanged but for the recipes it carries.

    Raises:
        InvalidArgumentError: If a value is not a :class:`Recipe`.

    Example:
        >>> from mnistkit.recipes import recipes_of
        >>> @with_recipes(default=Recipe(optimizer="sgd", learning_rate=0.1, steps=100))
        ... def my_model():
        ...     '''A model.'''
        >>> sorted(recipes_of(my_model)), recipes_of(my_model)["default"].name
        (['default'], 'default')
    """
    return declare("recipes", Recipe, recipes)


def recipes_of(factory: Callable[..., Any]) -> Mapping[str, Recipe]:
    """Return the recipes a factory carries, by name (empty if it carries none).

    Args:
        factory: A model factory.

    Returns:
        A read-only mapping of recipe names to recipes.
    """
    return declared(factory, "recipes")


def resolve_recipe(
    recipes: Mapping[str, Recipe],
    recipe: str | Recipe | None = None,
    *,
    model: str | None = None,
    **overrides: Any,
) -> Recipe:
    """Choose a recipe and apply the settings a user gave: the one place this is done.

    Args:
        recipes: The recipes the model carries (:func:`recipes_of`; empty for a model
            built by hand).
        recipe: A recipe name, a :class:`Recipe`, or ``None`` for the model's
            ``"default"`` (:data:`GENERIC_RECIPE` if it has none).
        model: The model's registered name, for messages; ``None`` for a model built
            by hand, which can take a :class:`Recipe` but no recipe name.
        **overrides: Settings of :data:`OVERRIDABLE` to change; ``None`` values are
            ignored.

    Returns:
        The recipe in force, with its ``name`` set; its summary says what was changed.

    Raises:
        UnknownNameError: If ``recipe`` names a recipe the model does not carry.
        InvalidArgumentError: If a setting is not overridable or out of range, or a
            recipe name is given for a model built by hand.

    Example:
        >>> from mnistkit import model_recipes
        >>> fast = resolve_recipe(model_recipes("deep_cnn"), "fast", model="deep_cnn",
        ...                       keep_prob=0.6)
        >>> fast.name, fast.keep_prob, fast.epochs
        ('fast', 0.6, 4)
    """
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise InvalidArgumentError(
            f"Not settings a recipe lets you override: {', '.join(unknown)}. "
            f"Overridable: {', '.join(OVERRIDABLE)}."
        )
    if isinstance(recipe, Recipe):
        base = recipe
    elif recipe is None:
        base = recipes.get(DEFAULT_RECIPE, GENERIC_RECIPE)
    elif not isinstance(recipe, str):
        raise invalid("recipe", "a recipe name, a Recipe or None", recipe)
    elif model is None:
        raise InvalidArgumentError(
            "Invalid value for argument `recipe`. A model built by hand carries no named "
            f"recipes; pass a Recipe. Received: recipe={recipe!r}"
        )
    elif recipe not in recipes:
        known = ", ".join(sorted(recipes)) or "none"
        raise UnknownNameError(
            f"The model {model!r} has no recipe {recipe!r}. Its recipes: {known}."
        )
    else:
        base = recipes[recipe]
    if isinstance(overrides.get("optimizer"), str):
        overrides["optimizer"] = overrides["optimizer"].lower()
    resolved = base.replace(**overrides)
    if resolved == base:
        return resolved
    changed = ", ".join(
        f"{key}={getattr(resolved, key)!r}"
        for key in OVERRIDABLE
        if getattr(resolved, key) != getattr(base, key)
    )
    owner = f" of {model!r}" if model else ""
    return dataclasses.replace(
        resolved, summary=f"The {base.label!r} recipe{owner}, with {changed}."
    )
