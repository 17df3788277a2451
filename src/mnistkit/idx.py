"""Reading and writing IDX files, the format the original MNIST files use.

An IDX file is a 4-byte magic number (two zero bytes, a type code and the number of
dimensions), one big-endian 32-bit size per dimension, then the values in C order,
big-endian. Files may be gzip-compressed; the reader recognises gzip by its magic
bytes, whatever the file's name.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO, Protocol, cast

import numpy as np

from mnistkit._files import write_bytes_atomically
from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError
from mnistkit.validation import check_non_negative_int

__all__ = ["MAX_BYTES", "read_idx", "write_idx"]

#: The most bytes of values that :func:`read_idx` reads by default (1 GiB).
MAX_BYTES = 2**30

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
_CHUNK = 2**20


class _Readable(Protocol):
    """What the reader reads from: a file, the same sniffed, or the same gunzipped."""

    def read(self, size: int, /) -> bytes: ...


def read_idx(
    path: str | os.PathLike[str] | BinaryIO, *, max_bytes: int | None = MAX_BYTES
) -> np.ndarray:
    """Read an IDX file, gzip-compressed or not, into a NumPy array.

    The header says how many bytes of values follow; no more than that is read or
    decompressed, so a small file that would inflate to gigabytes (a "gzip bomb") is
    refused after reading only what its header promises.

    Args:
        path: The file to read: its path, or a binary file object open for reading,
            which is read to its end (and not closed).
        max_bytes: The most bytes of values a file may declare, 1 GiB by default
            (MNIST's training images take 47 MB); ``None`` for no limit.

    Returns:
        An array in native byte order with the file's shape and element type.

    Raises:
        DataNotFoundError: If the file does not exist.
        DataFormatError: If the file is not a well-formed IDX file: a truncated or
            corrupt gzip stream, a wrong magic number, an unknown type code, more
            dimensions than NumPy holds, values declared beyond ``max_bytes``, or data
            shorter or longer than its dimensions.

    Example:
        >>> import numpy as np, tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
        >>> write_idx(path, np.array([5, 0, 4], dtype=np.uint8))
        >>> read_idx(path)
        array([5, 0, 4], dtype=uint8)
    """
    if max_bytes is not None:
        check_non_negative_int(max_bytes, "max_bytes")
    if isinstance(path, (str, os.PathLike)):
        name = Path(path)
        opened: contextlib.AbstractContextManager[BinaryIO] = _open(name)
    else:  # the caller's file, left open
        name = Path(str(getattr(path, "name", "<file object>")))
        opened = contextlib.nullcontext(path)
    with opened as handle:
        try:
            return _parse(_uncompressed(handle), name, max_bytes)
        except (OSError, EOFError, zlib.error) as error:
            raise DataFormatError(f"{name}: truncated or corrupt gzip data ({error}).") from None


def _parse(stream: _Readable, path: Path, max_bytes: int | None) -> np.ndarray:
    magic = _read_up_to(stream, 4)
    if len(magic) < 4:
        raise DataFormatError(
            f"{path}: not an IDX file: {len(magic)} bytes, shorter than a header."
        )
    zero, code, ndim = struct.unpack(">HBB", magic)
    if zero != 0:
        raise DataFormatError(
            f"{path}: not an IDX file: wrong magic number 0x{magic.hex()} "
            "(an IDX file starts with two zero bytes)."
        )
    if code not in _TYPES:
        raise DataFormatError(f"{path}: unknown IDX type code 0x{code:02x} in the magic number.")
    sizes = _read_up_to(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataFormatError(
            f"{path}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes, "
            f"the file has {4 + len(sizes)}."
        )
    shape = struct.unpack(f">{ndim}I", sizes)
    dtype = _TYPES[code]
    # Python integers: a NumPy product of four sizes can wrap around 2**64 to match.
    expected = math.prod(shape) * dtype.itemsize
    if max_bytes is not None and expected > max_bytes:
        raise DataFormatError(
            f"{path}: the IDX header declares dimensions {shape} of {dtype.itemsize}-byte "
            f"values, {expected:,} bytes, more than the {max_bytes:,} allowed (max_bytes)."
        )
    data = _read_up_to(stream, expected)
    if len(data) < expected or _read_up_to(stream, 1):
        length = f"{len(data)}" if len(data) < expected else f"more than {expected}"
        raise DataFormatError(
            f"{path}: wrong IDX data length: dimensions {shape} of {dtype.itemsize}-byte "
            f"values need {expected} bytes, the file has {length}."
        )
    try:
        array = np.frombuffer(data, dtype=dtype).reshape(shape)
    except ValueError as error:  # more dimensions than NumPy holds
        raise DataFormatError(f"{path}: not an array NumPy can hold ({error}).") from None
    return array.astype(dtype.newbyteorder("="), copy=False)


def _open(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise DataFormatError(f"{path}: is a folder, not an IDX file.") from None
    except OSError as error:
        raise DataFormatError(f"{path}: cannot be read: {error.strerror or error}.") from None


def _read_up_to(stream: _Readable, count: int) -> bytearray:
    """Read ``count`` bytes, or fewer only at the end of the stream.

    The bytes are read a megabyte at a time into a buffer that grows as they come, so
    memory follows what the file holds, not what its header claims.
    """
    data = bytearray()
    while len(data) < count and (chunk := stream.read(min(count - len(data), _CHUNK))):
        data += chunk
    return data


def _uncompressed(handle: BinaryIO) -> _Readable:
    """The stream of the file's bytes, decompressed as they are read if it is gzipped."""
    head = bytes(_read_up_to(handle, 2))
    stream = _Prefixed(head, handle)
    if head != _GZIP_MAGIC:
        return stream
    return gzip.GzipFile(fileobj=cast(BinaryIO, stream), mode="rb")  # read, never sought


class _Prefixed:
    """A stream of ``head`` then the rest of ``rest``: what was read to sniff, put back."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = head, rest

    def read(self, size: int, /) -> bytes:
        if not self.head:
            return self.rest.read(size)
        chunk, self.head = self.head[:size], self.head[size:]
        return chunk


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
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=_TYPES[code]).tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        payload = gzip.compress(payload, mtime=0)
    write_bytes_atomically(path, payload)
