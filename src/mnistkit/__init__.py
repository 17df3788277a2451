"""mnistkit: the TensorFlow MNIST tutorials as a Keras 3 library.

Importing mnistkit is fast: Keras and TensorFlow are imported when a model is built,
trained or loaded, not before.

Example:
    >>> from mnistkit import build, load_dataset
    >>> load_dataset("mnist").train.num_examples
    55000
    >>> build("deep_cnn").count_params()
    3274634
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mnistkit.datasets import (
    Datasets,
    Split,
    describe_datasets,
    list_datasets,
    load_dataset,
    register_dataset,
)
from mnistkit.errors import (
    CheckpointError,
    DataFormatError,
    DataNotFoundError,
    InvalidArgumentError,
    MnistkitError,
    PluginError,
    TrainingDivergedError,
    UnknownNameError,
)
from mnistkit.models import build, describe_models, list_models, model_recipes, register_model
from mnistkit.recipes import Recipe, with_recipes
from mnistkit.registry import Entry, PluginConflictWarning
from mnistkit.saving import load_model, read_metadata, save_model

if TYPE_CHECKING:
    from mnistkit.layers import KeepProbDropout, get_keep_prob, set_keep_prob
    from mnistkit.training import Trainer

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "DataFormatError",
    "DataNotFoundError",
    "Datasets",
    "Entry",
    "InvalidArgumentError",
    "KeepProbDropout",
    "MnistkitError",
    "PluginConflictWarning",
    "PluginError",
    "Recipe",
    "Split",
    "Trainer",
    "TrainingDivergedError",
    "UnknownNameError",
    "__version__",
    "build",
    "describe_datasets",
    "describe_models",
    "get_keep_prob",
    "list_datasets",
    "list_models",
    "load_dataset",
    "load_model",
    "model_recipes",
    "read_metadata",
    "register_dataset",
    "register_model",
    "save_model",
    "set_keep_prob",
    "with_recipes",
]

# Names whose modules import Keras: loaded on first access (PEP 562).
_LAZY = {
    "KeepProbDropout": "mnistkit.layers",
    "get_keep_prob": "mnistkit.layers",
    "set_keep_prob": "mnistkit.layers",
    "Trainer": "mnistkit.training",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mnistkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
