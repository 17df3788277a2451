"""Registering mnistkit's layers with Keras as soon as Keras is imported, by anyone.

``import mnistkit`` must stay fast, so it does not import Keras. But a user who then
calls ``keras.saving.load_model`` on a saved ``deep_cnn`` needs mnistkit's layers
registered with Keras. So, if Keras is not imported yet, a one-shot import hook waits
for it: when the ``keras`` package has finished importing, :mod:`mnistkit.layers` is
imported too, which registers the layers.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

_LAYERS = "mnistkit.layers"


def register_when_keras_loads() -> None:
    """Register mnistkit's layers with Keras now if Keras is loaded, else when it is."""
    keras = sys.modules.get("keras")
    if keras is not None and getattr(keras, "saving", None) is not None:
        importlib.import_module(_LAYERS)
    elif not any(isinstance(finder, _KerasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KerasFinder())


class _KerasFinder(importlib.abc.MetaPathFinder):
    """Finds ``keras`` through the other finders and wraps its loader, once."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _ThenRegister(spec.loader)
        return spec


class _ThenRegister(importlib.abc.Loader):
    """Runs the Keras package's own loader, then registers the layers.

    Module creation is left to :class:`~importlib.abc.Loader`'s default, as Keras's
    source loader leaves it.
    """

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        importlib.import_module(_LAYERS)

    def __getattr__(self, name: str) -> Any:  # resource readers and the like
        return getattr(self.loader, name)
