"""Saving and loading models as ``.keras`` files, with the metadata of their training run.

:func:`load_model` keeps Keras's ``safe_mode`` on. Custom layers that a model uses are
found through the Keras registry: mnistkit's own are registered on import, and a
plugin's are registered by importing the plugin module that the saved file names,
provided an installed distribution declares that plugin in the ``mnistkit.models``
entry-point group. No other module is imported.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistkit._capped_zip import check_declared, check_member, read_member
from mnistkit._files import atomic_path
from mnistkit.errors import DataFormatError, DataNotFoundError, MnistkitError, PluginError
from mnistkit.quiet import quiet_tensorflow
from mnistkit.validation import invalid

if TYPE_CHECKING:
    import keras

__all__ = ["load_model", "read_metadata", "save_model"]

_METADATA = "mnistkit.json"
# The most a JSON member of a model file may inflate to: a model's configuration takes
# kilobytes (a large one, a few megabytes), Keras's and mnistkit's metadata about two.
_MEMBER_LIMITS = {"config.json": 64 * 2**20, _METADATA: 2**20, "metadata.json": 2**20}
# All members together (the weights, mostly) may inflate to this many times the file's
# size, or to the floor if more: Keras stores them, about one byte on disk for one.
_INFLATION_RATIO = 100
_INFLATION_FLOOR = 64 * 2**20


def save_model(
    model: keras.Model, path: str | os.PathLike[str], *, metadata: dict[str, Any] | None = None
) -> Path:
    """Save a model to a ``.keras`` file, atomically, with optional run metadata inside.

    Args:
        model: The model.
        path: The destination; it must end in ``.keras``.
        metadata: JSON-serialisable facts about the run (seed, versions, steps...),
            stored in the archive and returned by :func:`read_metadata`.

    Returns:
        The path written.

    Raises:
        InvalidArgumentError: If ``path`` does not end in ``.keras``.

    Example:
        >>> import tempfile, pathlib
        >>> from mnistkit import build
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "softmax.keras"
        >>> _ = save_model(build("softmax"), path, metadata={"steps": 0})
        >>> read_metadata(path)
        {'steps': 0}
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise invalid("path", "a file name ending in `.keras`", str(path))
    with atomic_path(path) as temporary:
        model.save(temporary)
        if metadata is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(_METADATA, json.dumps(metadata, indent=2, sort_keys=True))
    return path


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the run metadata stored in a ``.keras`` file by :func:`save_model`.

    Args:
        path: The model file.

    Returns:
        The metadata, or an empty dictionary if the file carries none.

    Raises:
        DataNotFoundError: If the file does not exist.
        DataFormatError: If it is not a ``.keras`` archive, or its metadata is not a
            JSON object or declares or inflates to more than 1 MiB.
    """
    path = Path(path)
    with _open_archive(path) as archive:
        if _METADATA not in archive.namelist():
            return {}
        metadata = _read_json_member(archive, _METADATA, path)
    if not isinstance(metadata, dict):
        raise DataFormatError(
            f"{path}: its {_METADATA} holds a JSON {type(metadata).__name__}, not an object."
        )
    return metadata


def load_model(path: str | os.PathLike[str], *, compile: bool = True) -> keras.Model:
    """Load a ``.keras`` model saved from a model that a registered factory built.

    Keras's ``safe_mode`` stays on. Custom layers of installed plugins are resolved
    through the plugins' entry points, so the plugin need not be imported first. A
    model saved by mnistkit 0.1.0, which did not yet carry its registered name and
    recipe in its layers, gets them from the file's metadata (see
    :func:`~mnistkit.models.model_info`).

    Args:
        path: The ``.keras`` file.
        compile: Restore the training configuration (optimizer, loss, metrics) too.

    Returns:
        The model.

    Raises:
        DataNotFoundError: If the file does not exist.
        DataFormatError: If the file is not a readable ``.keras`` model, or a member
            of the archive declares or inflates to more than it may hold (64 MiB for
            the model's configuration, 1 MiB for the metadata, 100 times the file's
            size for all members together) or to other than it declares, or the model
            uses a class that no installed plugin registers or a ``Lambda`` layer
            (Python code, never run).
        PluginError: If the model needs a plugin module that fails to import.

    Example:
        >>> import tempfile, pathlib
        >>> from mnistkit import build
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "cnn.keras"
        >>> _ = save_model(build("deep_cnn", keep_prob=0.6), path)
        >>> load_model(path).get_layer("dropout").get_config()["keep_prob"]
        0.6
    """
    path = Path(path)
    with _open_archive(path) as archive:
        if "config.json" not in archive.namelist():
            raise DataFormatError(f"{path}: not a Keras model file (no config.json in it).")
        config = _read_json_member(archive, "config.json", path)
        _check_members(archive, path)  # Keras reads them whole, trusting their headers
    read_metadata(path)  # a broken one is refused before Keras loads
    quiet_tensorflow()
    import keras

    import mnistkit.layers  # noqa: F401  (registers mnistkit's layers with Keras)

    _import_plugin_modules(config, path)
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except (TypeError, ValueError, OSError, KeyError) as error:
        reason = _why_not_loaded(str(error), config)
        raise DataFormatError(f"{path}: the model could not be loaded: {reason}") from error
    return _with_saved_info(model, read_metadata(path), compile=compile)


def _with_saved_info(model: keras.Model, metadata: dict[str, Any], *, compile: bool) -> Any:
    """Give a model saved before models carried their info the info its metadata holds."""
    from mnistkit.models import model_info, with_model_info
    from mnistkit.recipes import Recipe

    name = metadata.get("model")
    if model_info(model) is not None or not isinstance(name, str):
        return model
    try:
        recipe = Recipe.from_dict(metadata["recipe"]) if "recipe" in metadata else None
    except (MnistkitError, TypeError):
        recipe = None
    output = metadata.get("output", "logits")
    described = with_model_info(model, model_name=name, output=output, recipe=recipe)
    if compile and model.compiled:
        described.compile_from_config(model.get_compile_config())
    return described


def _open_archive(path: Path) -> zipfile.ZipFile:
    if path.is_dir():
        raise DataFormatError(f"{path}: is a folder, not a .keras model file.")
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such model file.")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise DataFormatError(f"{path}: not a .keras model file ({error}).") from None


def _read_json_member(archive: zipfile.ZipFile, name: str, path: Path) -> Any:
    """Read a JSON member of the archive, inflated in chunks up to its limit."""
    text = read_member(archive, name, limit=_MEMBER_LIMITS[name], path=path)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise DataFormatError(f"{path}: its {name} is not valid JSON ({error}).") from None


def _check_members(archive: zipfile.ZipFile, path: Path) -> None:
    """Inflate every member within its limit and check it holds what it declares."""
    infos = archive.infolist()
    budget = max(_INFLATION_FLOOR, _INFLATION_RATIO * path.stat().st_size)
    for info in infos:  # each against its own limit first, so the message names it
        check_declared(info, limit=_MEMBER_LIMITS.get(info.filename, budget), path=path)
    declared = sum(info.file_size for info in infos)
    if declared > budget:
        raise DataFormatError(
            f"{path}: its members declare {declared:,} bytes in all, more than the "
            f"{budget:,} a model file of its size may inflate to."
        )
    for info in infos:
        check_member(archive, info, limit=_MEMBER_LIMITS.get(info.filename, budget), path=path)


def _why_not_loaded(message: str, config: Any) -> str:
    """Keras's reason in one line, with no advice to turn safe mode off.

    Keras names a class it cannot find in several lines with a dump of the config, and
    refuses a ``Lambda`` by suggesting ``safe_mode=False``, which would run the file's
    code: mnistkit never offers that.
    """
    unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", message)
    if unknown:
        name = unknown.group(1)
        module = next((found.get("module") for found in _of_class(config, name)), None)
        where = f" from module {module!r}" if isinstance(module, str) else ""
        return (
            f"it uses the class {name!r}{where}, which neither Keras, mnistkit nor any "
            "installed plugin registers; install the plugin that provides it "
            "(`mnistkit models` lists the installed models)."
        )
    if "safe_mode" in message or "unsafe_deserialization" in message:
        layers = [found.get("name") for found in _of_class(config, "Lambda")]
        named = f" (layer {layers[0]!r})" if layers and isinstance(layers[0], str) else ""
        return (
            f"it holds Python code{named}, a Lambda layer or function, which mnistkit never "
            "runs; build the model from registered layers instead."
        )
    return message.strip().split("\n")[0]


def _objects(config: Any) -> Iterator[dict[str, Any]]:
    """Every dictionary in a Keras config, the outer ones first."""
    if isinstance(config, dict):
        yield config
        config = list(config.values())
    if isinstance(config, list):
        for value in config:
            yield from _objects(value)


def _of_class(config: Any, class_name: str) -> list[dict[str, Any]]:
    """The serialized objects of a class in a Keras config, with their ``config`` merged."""
    found = [found for found in _objects(config) if found.get("class_name") == class_name]
    return [{**(o["config"] if isinstance(o.get("config"), dict) else {}), **o} for o in found]


def _import_plugin_modules(config: Any, path: Path) -> None:
    from mnistkit._factories import MODELS

    plugins = MODELS.plugin_modules()
    custom = {
        found["module"]
        for found in _objects(config)
        if isinstance(found.get("module"), str)
        and isinstance(registered := found.get("registered_name"), str)
        and ">" in registered
    }
    for module in sorted(custom):
        if module in sys.modules or module.split(".")[0] not in plugins:
            continue
        try:
            importlib.import_module(module)
        except Exception as error:
            raise PluginError(
                f"{path}: the model uses layers from plugin module {module!r}, which failed "
                f"to import: {type(error).__name__}: {error}"
            ) from error
