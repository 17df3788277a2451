"""mnistkit: the TensorFlow MNIST tutorials as a Keras 3 library.

Importing mnistkit is fast: Keras and TensorFlow are imported when a model is built,
trained or loaded, not before. Whoever imports Keras first, mnistkit's layers are then
registered with it, so ``keras.saving.load_model`` reads mnistkit's models once
``mnistkit`` is imported. When mnistkit is the one to import TensorFlow, it holds back
TensorFlow's start-up log (see :mod:`mnistkit.quiet`); ``MNISTKIT_DEBUG=1`` shows it.

Example:
    >>> from mnistkit import build, load_dataset
    >>> load_dataset("mnist").train.num_examples
    55000
    >>> from mnistkit import parameter_count
    >>> parameter_count(build("deep_cnn"))
    3274634
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mnistkit._keras_hook import register_when_keras_loads
from mnistkit._version import __version__
from mnistkit.datasets import (
    Datasets,
    Split,
    describe_datasets,
    list_datasets,
    load_dataset,
    register_dataset,
    unregister_dataset,
)
from mnistkit.errors import (
    CheckpointError,
    ClusterError,
    DataFormatError,
    DataNotFoundError,
    ExportError,
    InvalidArgumentError,
    InvalidTypeError,
    MissingDependencyError,
    MnistkitError,
    PluginError,
    StorageError,
    TrainingDivergedError,
    UnknownNameError,
)
from mnistkit.models import (
    ModelInfo,
    build,
    describe_models,
    list_models,
    model_info,
    model_output,
    model_recipes,
    register_model,
    unregister_model,
)
from mnistkit.plan import RunPlan
from mnistkit.quiet import quiet_tensorflow
from mnistkit.recipes import Recipe, resolve_recipe, with_recipes
from mnistkit.registry import Entry, PluginConflictWarning, PluginLoadWarning
from mnistkit.saving import load_model, read_metadata, save_model
from mnistkit.weights import Weights, model_weights, with_weights

if TYPE_CHECKING:
    from mnistkit.layers import (
        KeepProbDropout,
        get_keep_prob,
        mc_dropout,
        parameter_count,
        set_keep_prob,
    )
    from mnistkit.predictor import Predictor
    from mnistkit.training import Trainer
    from mnistkit.tuning.search import tune

register_when_keras_loads()

__all__ = [
    "CheckpointError",
    "ClusterError",
    "DataFormatError",
    "DataNotFoundError",
    "Datasets",
    "Entry",
    "ExportError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "KeepProbDropout",
    "MissingDependencyError",
    "MnistkitError",
    "ModelInfo",
    "PluginConflictWarning",
    "PluginError",
    "PluginLoadWarning",
    "Predictor",
    "Recipe",
    "RunPlan",
    "Split",
    "StorageError",
    "Trainer",
    "TrainingDivergedError",
    "UnknownNameError",
    "Weights",
    "__version__",
    "build",
    "describe_datasets",
    "describe_models",
    "get_keep_prob",
    "list_datasets",
    "list_models",
    "load_dataset",
    "load_model",
    "mc_dropout",
    "model_info",
    "model_output",
    "model_recipes",
    "model_weights",
    "parameter_count",
    "read_metadata",
    "register_dataset",
    "register_model",
    "resolve_recipe",
    "save_model",
    "set_keep_prob",
    "tune",
    "unregister_dataset",
    "unregister_model",
    "with_recipes",
    "with_weights",
]

# Names whose modules import Keras: loaded on first access (PEP 562).
_LAZY = {
    "KeepProbDropout": "mnistkit.layers",
    "get_keep_prob": "mnistkit.layers",
    "set_keep_prob": "mnistkit.layers",
    "mc_dropout": "mnistkit.layers",
    "parameter_count": "mnistkit.layers",
    "Predictor": "mnistkit.predictor",
    "Trainer": "mnistkit.training",
    "tune": "mnistkit.tuning.search",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mnistkit' has no attribute {name!r}")
    quiet_tensorflow()
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
