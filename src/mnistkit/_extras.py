"""Importing an optional dependency, with an error that names the extra bringing it."""

from __future__ import annotations

import importlib
from types import ModuleType

from mnistkit.errors import MissingDependencyError


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise a one-line error naming the extra that installs it.

    Args:
        module: The module to import, such as ``"onnxruntime"``.
        extra: The mnistkit extra that installs it, such as ``"onnx"``.
        purpose: What needs it, to begin the message: ``"Exporting to ONNX"``.

    Returns:
        The module.

    Raises:
        MissingDependencyError: If the module (or one it imports) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = (error.name or module).split(".")[0]
        raise MissingDependencyError(
            f"{purpose} needs {missing}, which is not installed: pip install 'mnistkit[{extra}]'",
            name=missing,
        ) from None
