"""Reading and writing IDX files, the format the original MNIST files use.

An IDX file is a 4-byte magic number (two zero bytes, a type code and the number of
dimensions), one big-endian 32-bit size per dimension, then the values in C order,
big-endian. Files may be gzip-compressed; the reader recognises gzip by its magic
bytes, whatever the file's name.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from mnistkit._files import write_bytes_atomically
from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError

__all__ = ["read_idx", "write_idx"]

_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype.newbyteorder("="): code for code, dtype in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike[str] | BinaryIO) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a NumPy array.

    Args:
        path: The file to read: its path, or a binary file object open for reading,
            which is read to its end (and not closed).

    Returns:
        An array in native byte order with the file's shape and element type.

    Raises:
        DataNotFoundError: If the file does not exist.
        DataFormatError: If the file is not a well-formed IDX file: a truncated or
            corrupt gzip stream, a wrong magic number, an unknown type code, or a
            length that does not match its dimensions.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
        >>> write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
        >>> read_idx(path)
        array([5, 0, 4], dtype=uint8)
    """
    if isinstance(path, (str, os.PathLike)):
        path = Path(path)
        raw = _decompressed(_read_bytes(path), path)
    else:
        stream, path = path, Path(str(getattr(path, "name", "<file object>")))
        raw = _decompressed(stream.read(), path)
    if len(raw) < 4:
        raise DataFormatError(f"{path}: not an IDX file: {len(raw)} bytes, shorter than a header.")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise DataFormatError(
            f"{path}: not an IDX file: wrong magic number 0x{raw[:4].hex()} "
            "(an IDX file starts with two zero bytes)."
        )
    if code not in _TYPES:
        raise DataFormatError(f"{path}: unknown IDX type code 0x{code:02x} in the magic number.")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataFormatError(
            f"{path}: truncated IDX header: {ndim} dimensions need {header} bytes, "
            f"the file has {len(raw)}."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _TYPES[code]
    # Python integers: a NumPy product of four sizes can wrap around 2**64 to match.
    expected = math.prod(shape) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataFormatError(
            f"{path}: wrong IDX data length: dimensions {shape} of {dtype.itemsize}-byte "
            f"values need {expected} bytes, the file has {len(raw) - header}."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(
    path: str | os.PathLike[str], array: np.ndarray, *, compress: bool | None = None
) -> None:
    """Write an array as an IDX file, atomically.

    The file is written beside its destination under a temporary name and renamed
    into place, so an interrupted write leaves no partial file.

    Args:
        path: The file to write.
        array: The values; their type must be one IDX stores (uint8, int8, int16,
            int32, float32 or float64) and they must have at most 255 dimensions.
        compress: Gzip the file. ``None`` (the default) compresses when the name ends
            in ``.gz``.

    Raises:
        InvalidArgumentError: If the array's type or shape cannot be stored as IDX.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "images-idx3-ubyte"
        >>> write_idx(path, np.zeros((2, 28, 28), dtype=np.uint8))
        >>> read_idx(path).shape
        (2, 28, 28)
    """
    path = Path(path)
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise InvalidArgumentError(
            "Invalid value for argument `array`. Expected one of the IDX types uint8, int8, "
            f"int16, int32, float32, float64. Received: array.dtype={array.dtype}"
        )
    if array.ndim > 255 or any(size >= 2**32 for size in array.shape):
        raise InvalidArgumentError(
            "Invalid value for argument `array`. Expected at most 255 dimensions of fewer "
            f"than 2**32 values. Received: array.shape={array.shape}"
        )
    payload = (
        struct.pack(">HBB", 0, code, array.ndim)
        + struct.pack(f">{array.ndim}I", *array.shape)
        + np.ascontiguousarray(array, dtype=_TYPES[code]).tobytes()
    )
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        payload = gzip.compress(payload, mtime=0)
    write_bytes_atomically(path, payload)


def _read_bytes(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise DataFormatError(f"{path}: is a folder, not an IDX file.") from None
    except OSError as error:
        raise DataFormatError(f"{path}: cannot be read: {error.strerror or error}.") from None
    return raw


def _decompressed(raw: bytes, path: Path) -> bytes:
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise DataFormatError(f"{path}: truncated or corrupt gzip data ({error}).") from None
