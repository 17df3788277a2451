"""Recipe files: a :class:`~mnistkit.Recipe` written down, with where it came from.

A recipe file is JSON or TOML: a ``recipe`` table of settings (the fields of
:class:`~mnistkit.Recipe`) and, optionally, a ``provenance`` table that says how the
recipe was found (``mnistkit tune`` writes one). A hand-written TOML file needs only
the settings it changes from a :class:`~mnistkit.Recipe`'s defaults::

    [recipe]
    optimizer = "sgd"
    learning_rate = 0.5
    steps = 1000
    batch_size = 100

TOML has no null: leave a setting out to keep its default. On the command line, one
rule tells a file from a recipe's name (:func:`is_recipe_file`), as for models.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from mnistkit._files import read_bounded, write_bytes_atomically
from mnistkit.errors import DataFormatError, DataNotFoundError
from mnistkit.recipes import Recipe

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "RECIPE_FILE_FORMAT",
    "RECIPE_SUFFIXES",
    "is_recipe_file",
    "read_provenance",
    "read_recipe_file",
    "read_settings_file",
    "write_recipe_file",
]

#: The suffixes of recipe files.
RECIPE_SUFFIXES = (".json", ".toml")
#: The ``format`` a recipe file written by mnistkit records.
RECIPE_FILE_FORMAT = "mnistkit-recipe/1"
# A recipe file is a few hundred bytes; anything far larger is not one.
_LIMIT = 1 << 20


def is_recipe_file(text: str) -> bool:
    """Whether a ``--recipe`` value names a file rather than one of a model's recipes.

    The rule: an existing file, or a name ending in ``.json`` or ``.toml``, is a file
    (so a missing one is reported as missing); anything else is a recipe's name.

    Example:
        >>> is_recipe_file("fast"), is_recipe_file("runs/tune/best_recipe.json")
        (False, True)
    """
    return Path(text).suffix.lower() in RECIPE_SUFFIXES or Path(text).is_file()


def read_recipe_file(path: str | os.PathLike[str]) -> Recipe:
    """Read the recipe of a recipe file (its ``provenance`` is left aside).

    Args:
        path: A ``.json`` or ``.toml`` file with a ``recipe`` table.

    Returns:
        The recipe, checked as any other.

    Raises:
        DataNotFoundError: If there is no such file.
        DataFormatError: If it is not JSON or TOML, or has no ``recipe`` table.
        InvalidArgumentError: If a setting is unknown or out of range.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "sgd.toml"
        >>> _ = path.write_text('[recipe]\\noptimizer = "sgd"\\nsteps = 100\\n')
        >>> read_recipe_file(path).describe()
        'sgd at 0.001, 100 steps of 32'
    """
    return Recipe.from_dict(_table(_read(Path(path)), "recipe", Path(path)))


def read_provenance(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the ``provenance`` table of a recipe file (empty if it has none).

    Raises:
        DataNotFoundError: If there is no such file.
        DataFormatError: If it is not a recipe file.
    """
    content = _read(Path(path))
    _table(content, "recipe", Path(path))
    return dict(content.get("provenance") or {})


def write_recipe_file(
    path: str | os.PathLike[str], recipe: Recipe, provenance: dict[str, Any] | None = None
) -> Path:
    """Write ``recipe`` (and its provenance) as a JSON recipe file, whole or not at all.

    Returns:
        The path written.

    Raises:
        StorageError: If the file cannot be written; an older file is left as it was.
    """
    path = Path(path)
    content = {"format": RECIPE_FILE_FORMAT, "recipe": recipe.as_dict()}
    if provenance:
        content["provenance"] = provenance
    write_bytes_atomically(path, (json.dumps(content, indent=2) + "\n").encode())
    return path


def read_settings_file(path: str | os.PathLike[str], kind: str) -> dict[str, Any]:
    """Read a small JSON or TOML file of settings (TOML for a ``.toml`` suffix).

    The one reader of mnistkit's settings files: recipe files and search spaces.

    Args:
        path: The file.
        kind: What the file is, for messages: ``"Recipe file"``.

    Returns:
        The file's top-level table.

    Raises:
        DataNotFoundError: If there is no such file.
        DataFormatError: If it is not valid JSON or TOML, is over 1 MiB, or holds no
            table at its top.
    """
    path = Path(path)
    if not path.is_file():
        what = f"a folder, not a {kind.lower()}" if path.is_dir() else "no such file"
        raise DataNotFoundError(f"{kind} {path}: {what}.")
    toml = path.suffix.lower() == ".toml"
    try:
        text = read_bounded(path, _LIMIT).decode()
        content = tomllib.loads(text) if toml else json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:  # JSON, TOML and size errors alike
        raise DataFormatError(
            f"{kind} {path} is not valid {'TOML' if toml else 'JSON'}: {error}."
        ) from None
    if not isinstance(content, dict):
        raise DataFormatError(f"{kind} {path} holds no table of settings.")
    return content


def _read(path: Path) -> dict[str, Any]:
    return read_settings_file(path, "Recipe file")


def _table(content: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    table = content.get(key)
    if not isinstance(table, dict):
        raise DataFormatError(
            f"Recipe file {path} has no [{key}] table of settings (such as "
            f'optimizer = "adam", epochs = 4).'
        )
    return table
