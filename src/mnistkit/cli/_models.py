"""What the commands that take a model share: the one rule that reads MODEL, and loading it.

The rule, for ``predict``, ``evaluate``, ``export`` and ``demo`` alike: an existing path,
or a name ending in ``.keras``, is a model file; anything else is the name of a
registered model, which stands for its pretrained weights (``mnistkit predict deep_cnn
digit.png``). Whatever can be checked without TensorFlow (a missing file, an unknown
name, a model without weights) is checked before TensorFlow loads.
"""

from __future__ import annotations

import argparse
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistkit.cli._parser import registered, usage_error
from mnistkit.datasets import DATASETS
from mnistkit.errors import DataFormatError, DataNotFoundError, UnknownNameError
from mnistkit.models import MODELS, list_models
from mnistkit.registry import normalize_name
from mnistkit.weights import DEFAULT_WEIGHTS, model_weights

if TYPE_CHECKING:
    import keras
    import numpy as np

    from mnistkit.predictor import Predictor

#: How the help of every command that takes a model describes the argument.
MODEL_HELP = (
    "a .keras file (such as the model.keras of a run folder), or the name of a model with "
    "pretrained weights, such as deep_cnn or softmax (see `mnistkit models --pretrained`)"
)


@dataclass(frozen=True)
class ModelSource:
    """A model as the command line names it: a file, or a registered name with weights."""

    text: str
    path: Path | None = None
    name: str | None = None
    weights: str | None = None

    @property
    def label(self) -> str:
        """How output names the model: the file as given, or the registered name."""
        return self.text if self.path is not None else str(self.name)


def add_model_argument(
    parser: argparse.ArgumentParser, *, several: bool = False, default: str | None = None
) -> None:
    """Add the MODEL argument: one model, several (an ensemble), or one with a default."""
    if several:
        nargs: Any = "+"
        extra = "; several are evaluated as an ensemble (their probabilities averaged)"
    else:
        nargs = "?" if default is not None else None
        extra = f" (default: {default}, its pretrained weights)" if default else ""
    parser.add_argument(
        "models" if several else "model",
        nargs=nargs,
        default=default,
        metavar="MODEL",
        help=MODEL_HELP + extra,
    )


def add_dataset_option(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--dataset NAME``."""
    parser.add_argument(
        "--dataset",
        type=registered("dataset", DATASETS.entry),
        default=None,
        metavar="NAME",
        help=f"the dataset {what}, from `mnistkit datasets` (default: mnist)",
    )


def resolve_model(text: str) -> ModelSource:
    """Apply the rule to a MODEL argument, and check what can be checked without TensorFlow.

    Raises:
        DataNotFoundError: If it names a folder, or a model's weights files are missing.
        DataFormatError: If a model file is not a ``.keras`` archive.
        UnknownNameError: If it is neither a file nor a registered name, or names a model
            without pretrained weights.
    """
    path = Path(text)
    if path.is_dir():
        inside = path / "model.keras"
        hint = f" (did you mean {inside}?)" if inside.is_file() else ""
        raise DataNotFoundError(f"{path}: is a folder, not a .keras model file{hint}.")
    if path.exists() or text.endswith(".keras"):
        from mnistkit.saving import read_metadata

        read_metadata(path)  # a missing file, or one that is not an archive, fails here
        return ModelSource(text, path=path)
    name = _registered_name(text)
    weights = model_weights(name)
    if DEFAULT_WEIGHTS not in weights and len(weights) != 1:
        have = ", ".join(list_models(pretrained=True)) or "none"
        what = "no pretrained weights" if not weights else f"no {DEFAULT_WEIGHTS!r} weights"
        raise UnknownNameError(
            f"The model {name!r} has {what}: train it (`mnistkit train {name}`) and give the "
            f"model.keras of its run folder. Models with pretrained weights: {have}."
        )
    chosen = DEFAULT_WEIGHTS if DEFAULT_WEIGHTS in weights else next(iter(weights))
    _ = weights[chosen].meta  # missing or unreadable metadata fails here, before TensorFlow
    return ModelSource(text, name=name, weights=chosen)


def _registered_name(text: str) -> str:
    try:
        return MODELS.entry(text).name
    except (UnknownNameError, ValueError):
        pass
    try:
        key = normalize_name(text)
    except ValueError:
        key = text
    known = MODELS.names()
    close = difflib.get_close_matches(key, known, n=3)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    have = ", ".join(list_models(pretrained=True)) or "none"
    raise UnknownNameError(
        f"{text}: neither a model file (no such file) nor a registered model name.{hint} "
        f"Give a .keras file, or a model with pretrained weights: {have}."
    )


def load_models(sources: list[ModelSource], *, debug: bool) -> list[keras.Model]:
    """Load the models for inference: a file as saved, a name with its pretrained weights."""
    from mnistkit.quiet import quiet_tensorflow

    quiet_tensorflow(debug=debug)
    from mnistkit.models import build
    from mnistkit.saving import load_model

    return [
        load_model(source.path, compile=False)
        if source.path is not None
        else build(str(source.name), weights=source.weights)
        for source in sources
    ]


def load_predictor(sources: list[ModelSource], *, debug: bool) -> Predictor:
    """Load the models as one :class:`~mnistkit.Predictor` (no Trainer: no seed is set)."""
    models = load_models(sources, debug=debug)
    from mnistkit.predictor import Predictor

    return Predictor(models)


def refuse_non_finite(probabilities: np.ndarray, what: str) -> None:
    """Raise if any probability is NaN or infinite: a model with broken weights."""
    import numpy as np

    bad = ~np.isfinite(probabilities).all(axis=1)
    if bad.any():
        raise DataFormatError(
            f"{what} gives non-finite probabilities (NaN or infinity) for {int(bad.sum()):,} "
            f"of {len(bad):,} images; its weights are probably not finite (a training that "
            "diverged?)."
        )


def load_data(name: str) -> Any:
    """Load a registered dataset by name."""
    from mnistkit.datasets import load_dataset

    return load_dataset(name)


def recipe_argument(args: argparse.Namespace, recipes: Any) -> Any:
    """Apply the rule to a ``--recipe`` value: a recipe file is read, a name is checked.

    The rule (:func:`~mnistkit.recipe_files.is_recipe_file`): an existing file, or a name
    ending in ``.json`` or ``.toml``, is a recipe file; anything else names one of the
    model's recipes.

    Returns:
        ``None``, the recipe's name, or the :class:`~mnistkit.Recipe` the file holds.
    """
    from mnistkit.recipe_files import is_recipe_file, read_recipe_file

    if args.recipe is None or not isinstance(args.recipe, str):
        return args.recipe
    if is_recipe_file(args.recipe):
        return read_recipe_file(args.recipe)
    if args.recipe not in recipes:
        known = ", ".join(sorted(recipes)) or "none"
        usage_error(args, f"argument --recipe: the model {args.model!r} has no recipe "
                    f"{args.recipe!r}; its recipes: {known} (or give a .json or .toml "
                    "recipe file)")  # fmt: skip
    return args.recipe
