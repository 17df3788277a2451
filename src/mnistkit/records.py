"""Run records on disk: JSON objects and the CSV history, written atomically and read back.

JSON files (``run.json``, ``metrics.json``) are written indented with sorted keys, NumPy
values as plain numbers and non-finite floats as ``null``, so that any JSON reader takes
them; ``history.csv`` has one row per logged step or epoch. Each file is written through
a temporary file and a rename, so an interrupted write never leaves a half-written one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistkit._files import read_bounded, write_bytes_atomically
from mnistkit.errors import DataFormatError

__all__ = ["plain", "read_history", "read_json", "write_history", "write_json"]

# A run's record or metrics take kilobytes; a file much longer than this is not one.
_MAX_RECORD_BYTES = 64 * 2**20
_NUMBER_LIST = re.compile(r"\[\s*(-?[0-9][0-9.eE+-]*(?:,\s*-?[0-9][0-9.eE+-]*)*)\s*\]")


def write_json(path: str | os.PathLike[str], record: Mapping[str, Any]) -> Path:
    """Write a JSON object to a file, atomically, indented and with sorted keys.

    NumPy scalars and arrays are written as numbers and lists; non-finite floats as
    ``null``, so that any JSON reader accepts the file.

    Args:
        path: The file, such as ``metrics.json`` in a run folder.
        record: The object.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "metrics.json"
        >>> _ = write_json(path, {"test_accuracy": 0.92, "steps": 1000})
        >>> read_json(path)["steps"]
        1000
    """
    text = json.dumps(plain(record), indent=2, sort_keys=True, allow_nan=False)
    # A list of numbers (a confusion-matrix row) reads better on one line.
    text = _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text)
    write_bytes_atomically(Path(path), (text + "\n").encode())
    return Path(path)


def read_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a JSON object written by :func:`write_json`.

    Args:
        path: The file.

    Returns:
        The object.

    Raises:
        DataFormatError: If the file is not a JSON object, is a folder, or is longer
            than a record can be (64 MiB).
        FileNotFoundError: If the file does not exist.
    """
    path = Path(path)
    if path.is_dir():
        raise DataFormatError(f"{path}: is a folder, not a JSON file.")
    try:
        record = json.loads(read_bounded(path, _MAX_RECORD_BYTES).decode("utf-8"))
    except (ValueError, RecursionError) as error:
        raise DataFormatError(f"{path}: not a JSON file ({error}).") from None
    if not isinstance(record, dict):
        raise DataFormatError(f"{path}: expected a JSON object, found {type(record).__name__}.")
    return record


def write_history(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write training history rows to a CSV file, atomically.

    The columns are ``step`` or ``epoch`` first if present, then the others in sorted
    order; a row that lacks a column leaves its cell empty.

    Args:
        path: The file, such as ``history.csv`` in a run folder.
        rows: One mapping per logged step or epoch.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
        >>> _ = write_history(path, [{"step": 0, "train_accuracy": 0.1}])
        >>> print(path.read_text().strip())
        step,train_accuracy
        0,0.1
    """
    names = {name for row in rows for name in row}
    columns = sorted(names, key=lambda name: (name != "step", name != "epoch", name))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows({name: _cell(value) for name, value in row.items()} for row in rows)
    write_bytes_atomically(Path(path), buffer.getvalue().encode())
    return Path(path)


def read_history(path: str | os.PathLike[str]) -> list[dict[str, float]]:
    """Read the rows of a ``history.csv`` written by :func:`write_history`.

    Args:
        path: The file.

    Returns:
        One dictionary per row, numbers as floats (whole numbers as ints); empty
        cells are left out. An absent file gives an empty list.

    Raises:
        DataFormatError: If the file is not such a history: not UTF-8 text, a row with
            more cells than the header names, a ``step`` or ``epoch`` that is not a
            whole number, or longer than a history can be (64 MiB).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.csv"
        >>> read_history(write_history(path, [{"step": 100, "loss": 0.25}]))
        [{'step': 100, 'loss': 0.25}]
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        raw = read_bounded(path, _MAX_RECORD_BYTES)
        reader = csv.DictReader(io.StringIO(raw.decode("utf-8"), newline=""))
        return [_history_row(row, reader.line_num) for row in reader]
    except (ValueError, csv.Error) as error:
        raise DataFormatError(f"{path}: not a training history ({error}).") from None


def _history_row(row: dict[Any, str | None], line: int) -> dict[str, float]:
    if None in row:
        raise ValueError(f"line {line} has more cells than the header names")
    parsed = {str(name): _number(value) for name, value in row.items() if value not in ("", None)}
    for name in ("step", "epoch"):
        value = parsed.get(name)
        if name in parsed and (not isinstance(value, int) or value < 0):
            raise ValueError(f"line {line}: {name} {value!r} is not a whole number")
    return parsed


def plain(value: Any) -> Any:
    """Return ``value`` as JSON holds it: plain numbers and lists, non-finite floats as None.

    NaN and infinities have no JSON form (``json.dumps`` writes ``NaN``, which JSON
    readers refuse), so they become ``null``.

    Args:
        value: Mappings, sequences, NumPy scalars and arrays, paths, and JSON values.

    Returns:
        The value, made of dicts, lists, strings, numbers, booleans and None.

    Example:
        >>> import numpy as np
        >>> plain({"loss": np.float32(np.nan), "counts": np.arange(3)})
        {'loss': None, 'counts': [0, 1, 2]}
    """
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, (np.ndarray, np.generic)):
        return plain(value.tolist())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value: Any) -> Any:
    value = plain(value)
    return repr(value) if isinstance(value, float) else value


def _number(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number
