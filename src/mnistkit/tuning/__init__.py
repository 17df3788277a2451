"""Searching a model's recipe with Optuna: :func:`mnistkit.tune`, its search spaces and studies.

``mnistkit tune MODEL`` on the command line, :func:`mnistkit.tune` in Python. A search
trains each trial on the training split and scores it on the validation split only;
the test split waits for the winner, which is tested once, at the end. Optuna is an
optional dependency: ``pip install 'mnistkit[tune]'``. Importing this package imports
neither Optuna nor TensorFlow; :func:`tune` does.

Example:
    >>> from mnistkit.tuning import SearchSpace, search_space
    >>> space = search_space("softmax")
    >>> isinstance(space, SearchSpace), space.describe().split(",")[0]
    (True, 'learning_rate 0.05 to 2 (log)')
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from mnistkit.tuning.space import (
    SEARCHABLE,
    Choice,
    Dimension,
    Range,
    SearchSpace,
    default_space,
    with_search_space,
)

if TYPE_CHECKING:
    from mnistkit.recipes import Recipe
    from mnistkit.tuning.search import TuneResult, tune

__all__ = [
    "SEARCHABLE",
    "Choice",
    "Dimension",
    "Range",
    "SearchSpace",
    "TuneResult",
    "default_space",
    "search_space",
    "tune",
    "with_search_space",
]


def search_space(
    model: Any, recipe: str | Recipe | None = None, file: str | os.PathLike[str] | None = None
) -> SearchSpace:
    """Return the search space of a model: declared, or drawn from its default recipe.

    Args:
        model: A registered model's name, or a model factory.
        recipe: The recipe the search starts from (a name or a
            :class:`~mnistkit.Recipe`); ``None`` for the default.
        file: A search-space file that changes the space.

    Returns:
        The space, not yet checked against a dataset.
    """
    from mnistkit.models import MODELS
    from mnistkit.recipes import recipes_of, resolve_recipe

    factory = MODELS.get(model) if isinstance(model, str) else model
    name = MODELS.entry(model).name if isinstance(model, str) else None
    base = resolve_recipe(recipes_of(factory), recipe, model=name)
    return SearchSpace.of(factory, base, file)


def __getattr__(name: str) -> Any:
    if name in ("tune", "TuneResult"):
        from mnistkit.quiet import quiet_tensorflow

        quiet_tensorflow()
        return getattr(importlib.import_module("mnistkit.tuning.search"), name)
    raise AttributeError(f"module 'mnistkit.tuning' has no attribute {name!r}")
