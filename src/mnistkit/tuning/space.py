"""Search spaces: which recipe settings a search varies, and over which values.

A model factory declares its default space with :func:`with_search_space`, as it
declares its recipes; a model that declares none gets :func:`default_space`, drawn from
its default recipe. A small JSON or TOML file narrows or widens a space: each key is a
recipe setting, and its value is a range (``{low = 1e-4, high = 1e-2, log = true}``),
a list of choices (``[64, 128, 256]``; ``"none"`` stands for no value, which TOML
cannot write), or one value, which fixes the setting. Nothing here imports Optuna.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnistkit._factories import F, declare, declared
from mnistkit.errors import DataFormatError, InvalidArgumentError
from mnistkit.recipe_files import read_settings_file
from mnistkit.recipes import Recipe
from mnistkit.validation import is_int

__all__ = [
    "SEARCHABLE",
    "Choice",
    "Dimension",
    "Range",
    "SearchSpace",
    "default_space",
    "read_space_file",
    "with_search_space",
]

#: The recipe settings a search may vary, which are every field but the recipe's name,
#: summary and precision (a search compares settings at one precision).
SEARCHABLE = tuple(
    field.name
    for field in dataclasses.fields(Recipe)
    if field.name not in ("name", "summary", "precision")
)
_INTEGER = {"batch_size", "steps", "epochs", "shift"}


@dataclass(frozen=True)
class Dimension:
    """One setting's values in a search: a range, a set of choices, or one fixed value.

    Make one with :func:`Range` or :func:`Choice`.

    Attributes:
        low: The smallest value of a range (``None`` for choices).
        high: The largest value of a range.
        log: Draw a range's values on a log scale.
        choices: The values to choose from (one value: the setting is fixed).
        name: The recipe setting (set when the dimension joins a space).
    """

    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None
    name: str | None = None

    def values(self) -> tuple[Any, ...]:
        """The values a recipe must accept: a range's ends, or every choice."""
        return (self.low, self.high) if self.choices is None else self.choices

    @property
    def fixed(self) -> bool:
        """Whether the dimension holds one value only (nothing to search)."""
        return self.choices is not None and len(self.choices) == 1

    def suggest(self, trial: Any) -> Any:
        """Draw this setting's value for an Optuna trial."""
        name = str(self.name)
        if self.choices is not None:
            return self.choices[0] if self.fixed else trial.suggest_categorical(name, self.choices)
        if name in _INTEGER:
            return trial.suggest_int(name, int(self.low or 0), int(self.high or 0), log=self.log)
        return trial.suggest_float(name, float(self.low or 0), float(self.high or 0), log=self.log)

    def describe(self) -> str:
        """The values in words: ``"0.01 to 1 (log)"``, ``"one of 64, 128"``, ``"0.5"``."""
        if self.choices is not None:
            shown = ", ".join("none" if value is None else f"{value:g}"
                              if isinstance(value, float) else str(value)
                              for value in self.choices)  # fmt: skip
            return shown if self.fixed else f"one of {shown}"
        return f"{self.low:g} to {self.high:g}{' (log)' if self.log else ''}"

    def as_json(self) -> Any:
        """The dimension as a search-space file writes it."""
        if self.choices is not None:
            return self.choices[0] if self.fixed else list(self.choices)
        return {"low": self.low, "high": self.high, "log": self.log}


def Range(low: float, high: float, *, log: bool = False) -> Dimension:  # noqa: N802
    """A range of values from ``low`` to ``high``; ``log`` draws them on a log scale.

    Example:
        >>> Range(1e-4, 1e-2, log=True).describe()
        '0.0001 to 0.01 (log)'
    """
    return Dimension(low=low, high=high, log=log)


def Choice(*values: Any) -> Dimension:  # noqa: N802
    """A choice among ``values`` (one value fixes the setting).

    Example:
        >>> Choice(64, 128, 256).describe()
        'one of 64, 128, 256'
    """
    return Dimension(choices=values)


def with_search_space(**dimensions: Dimension) -> Callable[[F], F]:
    """Declare a model factory's default search space (a decorator).

    Args:
        **dimensions: A :func:`Range` or :func:`Choice` for each recipe setting that
            a search varies; the others keep the recipe's value.

    Example:
        >>> from mnistkit.tuning import search_space
        >>> @with_search_space(learning_rate=Range(1e-3, 1e-1, log=True))
        ... def my_model():
        ...     '''A model.'''
        >>> search_space(my_model).describe()
        'learning_rate 0.001 to 0.1 (log)'
    """
    return declare("search_space", Dimension, dimensions)


def default_space(recipe: Recipe) -> dict[str, Dimension]:
    """The space of a model that declares none, drawn from its default recipe.

    The learning rate from a tenth to ten times the recipe's, the batch size halved,
    kept or doubled, the schedule, label smoothing up to 0.2, and the keep probability
    from 0.3 to 1 where the recipe sets one (the model has dropout).

    Example:
        >>> sorted(default_space(Recipe(epochs=1)))
        ['batch_size', 'label_smoothing', 'learning_rate', 'schedule']
    """
    rate, batch = recipe.learning_rate, recipe.batch_size
    space = {
        "learning_rate": Range(rate / 10, rate * 10, log=True),
        "batch_size": Choice(*sorted({max(1, batch // 2), batch, batch * 2})),
        "schedule": Choice(None, "warmup_cosine"),
        "label_smoothing": Range(0.0, 0.2),
    }
    if recipe.keep_prob is not None:
        space["keep_prob"] = Range(0.3, 1.0)
    return space


@dataclass(frozen=True)
class SearchSpace:
    """The dimensions of a search, by recipe setting, each checked against a recipe.

    Attributes:
        dimensions: The dimensions, each named by its setting.
    """

    dimensions: tuple[Dimension, ...]

    @classmethod
    def of(
        cls, factory: Callable[..., Any], recipe: Recipe, file: str | os.PathLike[str] | None
    ) -> SearchSpace:
        """The space of a model: its declared (or default) space, changed by ``file``."""
        dimensions = dict(declared(factory, "search_space")) or default_space(recipe)
        if file is not None:
            dimensions.update(read_space_file(file))
        return cls.from_mapping(dimensions)

    @classmethod
    def from_mapping(cls, dimensions: Mapping[str, Dimension]) -> SearchSpace:
        """Make a space from dimensions by setting name, refusing unknown settings."""
        for name in dimensions:
            if name not in SEARCHABLE:
                raise InvalidArgumentError(
                    f"The search space names {name!r}, which is not a setting a search can "
                    f"vary; those are: {', '.join(SEARCHABLE)}."
                )
        return cls(tuple(dataclasses.replace(d, name=n) for n, d in dimensions.items()))

    def check(self, recipe: Recipe, train_examples: int) -> None:
        """Refuse, in one line naming the setting, a space no trial could train with.

        An empty range or list, a value the recipe refuses (each end of a range and
        every choice is tried), a batch larger than the training split, or both
        ``steps`` and ``epochs``.

        Raises:
            InvalidArgumentError: Naming the setting and what was expected.
        """
        names = [str(d.name) for d in self.dimensions]
        if "steps" in names and "epochs" in names:
            raise InvalidArgumentError(
                "The search space varies both `steps` and `epochs`; a recipe sets one of them."
            )
        for dimension in self.dimensions:
            name = str(dimension.name)
            if dimension.choices is not None and not dimension.choices:
                raise InvalidArgumentError(f"The search space's {name!r} has no values.")
            if dimension.choices is None and not (
                _number(dimension.low) and _number(dimension.high)
            ):
                raise InvalidArgumentError(
                    f"The search space's {name!r} range needs numbers for low and high; "
                    f"received low={dimension.low!r}, high={dimension.high!r}."
                )
            if dimension.choices is None and float(dimension.low or 0) > float(dimension.high or 0):
                raise InvalidArgumentError(
                    f"The search space's {name!r} range is empty: low {dimension.low:g} is "
                    f"above high {dimension.high:g}."
                )
            if dimension.log and float(dimension.low or 0) <= 0:
                raise InvalidArgumentError(
                    f"The search space's {name!r} is drawn on a log scale, so its low end "
                    f"must be above 0; received {dimension.low:g}."
                )
            whole = is_int(dimension.low) and is_int(dimension.high)
            if name in _INTEGER and dimension.choices is None and not whole:
                raise InvalidArgumentError(
                    f"The search space's {name!r} takes whole numbers; received "
                    f"{dimension.describe()}."
                )
            for value in dimension.values():
                try:
                    recipe.replace(**{name: value}) if value is not None else None
                except InvalidArgumentError as error:
                    raise InvalidArgumentError(
                        f"The search space's {name!r} holds {value!r}, which a recipe "
                        f"refuses: {error}"
                    ) from None
            if name == "batch_size" and max(dimension.values()) > train_examples:
                raise InvalidArgumentError(
                    f"The search space's 'batch_size' goes up to {max(dimension.values())}, "
                    f"more than the {train_examples:,} training images."
                )

    def suggest(self, trial: Any) -> dict[str, Any]:
        """Draw every setting's value for an Optuna trial."""
        return {str(d.name): d.suggest(trial) for d in self.dimensions}

    def apply(self, recipe: Recipe, settings: Mapping[str, Any]) -> Recipe:
        """Return ``recipe`` with the drawn ``settings`` (a ``None`` drawn clears a setting)."""
        values = {**recipe.as_dict(), **settings}
        if "epochs" in settings:
            values["steps"] = None
        if "steps" in settings:
            values["epochs"] = None
        return Recipe.from_dict(values)

    def without(self, *names: str) -> SearchSpace:
        """The space without the dimensions of ``names`` (the settings fixed elsewhere)."""
        return SearchSpace(tuple(d for d in self.dimensions if d.name not in names))

    def as_json(self) -> dict[str, Any]:
        """The space as a search-space file writes it (and a study records it)."""
        return {str(d.name): d.as_json() for d in self.dimensions}

    def describe(self) -> str:
        """The space in one line: ``"learning_rate 0.05 to 2 (log), batch_size one of..."``."""
        return ", ".join(f"{d.name} {d.describe()}" for d in self.dimensions) or "nothing"


def read_space_file(path: str | os.PathLike[str]) -> dict[str, Dimension]:
    """Read a search-space file (JSON or TOML) into dimensions by setting.

    Raises:
        DataNotFoundError: If there is no such file.
        DataFormatError: If it is not JSON or TOML, or a value is neither a range, a
            list nor a single value.
    """
    path = Path(path)
    content = read_settings_file(path, "Search space file")
    return {str(name): _dimension(path, str(name), value) for name, value in content.items()}


def _dimension(path: Path, name: str, value: Any) -> Dimension:
    if isinstance(value, dict):
        unknown = set(value) - {"low", "high", "log"}
        if (
            unknown
            or not {"low", "high"} <= set(value)
            or not isinstance(value.get("log", False), bool)
        ):
            raise DataFormatError(
                f"Search space file {path}: {name!r} must be a range with low, high and "
                f"optionally log = true/false; received {value!r}."
            )
        return Range(value["low"], value["high"], log=value.get("log", False))
    if isinstance(value, list):
        return Choice(*(_scalar(path, name, v) for v in value))
    return Choice(_scalar(path, name, value))


def _scalar(path: Path, name: str, value: Any) -> Any:
    if value == "none" or value is None:
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    raise DataFormatError(
        f"Search space file {path}: {name!r} holds {value!r}; expected a number, a string, "
        '"none", a list of those, or a range {low, high, log}.'
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
