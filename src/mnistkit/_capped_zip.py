"""Reading zip members with a cap on the bytes they actually inflate to.

A member's headers declare its size, but nothing makes its data agree: a member that
declares 100 bytes may inflate to gigabytes, and ``ZipFile.read`` (as Keras's loader
calls it) asks zlib for everything at once before the difference is seen. Here a member
is inflated from its raw bytes a megabyte at a time, and refused as soon as it gives more
than its cap or more than it declares, so reading costs memory of one chunk and time in
proportion to the cap.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from mnistkit.errors import DataFormatError

CHUNK = 2**20
_LOCAL_HEADER = struct.Struct("<4s22xHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"


def read_member(archive: zipfile.ZipFile, name: str, *, limit: int, path: Path) -> bytes:
    """Return a member's bytes, inflated in chunks and refused past ``limit``.

    Raises:
        DataFormatError: If the member declares or inflates to more than ``limit``
            bytes, inflates to other than it declares, or fails its CRC-32 check;
            the message names the member.
    """
    return b"".join(_inflate(archive, archive.getinfo(name), limit=limit, path=path))


def check_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int, path: Path
) -> None:
    """Inflate a member and discard it, raising as :func:`read_member` does."""
    for _ in _inflate(archive, info, limit=limit, path=path):
        pass


def check_declared(info: zipfile.ZipInfo, *, limit: int, path: Path) -> None:
    """Raise if a member declares more than ``limit`` bytes, naming it."""
    if info.file_size > limit:
        raise DataFormatError(
            f"{path}: its {info.filename} declares {info.file_size:,} bytes, more than the "
            f"{limit:,} it may hold."
        )


def _inflate(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int, path: Path
) -> Iterator[bytes]:
    name = info.filename
    check_declared(info, limit=limit, path=path)
    if info.flag_bits & 0x1:
        raise DataFormatError(f"{path}: its {name} is encrypted, which a model file never is.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise DataFormatError(
            f"{path}: its {name} is compressed with zip method {info.compress_type}; a "
            "model file's members are stored or deflated."
        )
    produced = crc = 0
    try:
        with path.open("rb") as handle:
            for chunk in _raw_chunks(handle, info, path):
                produced += len(chunk)
                if produced > info.file_size:
                    raise DataFormatError(
                        f"{path}: its {name} inflates to more than the {info.file_size:,} "
                        "bytes its header declares; the file is damaged or forged."
                    )
                crc = zlib.crc32(chunk, crc)
                yield chunk
    except OSError as error:
        raise DataFormatError(f"{path}: its {name} cannot be read ({error}).") from None
    if produced != info.file_size or crc != info.CRC:
        found = f"{produced:,} bytes" if produced != info.file_size else "a bad CRC-32"
        raise DataFormatError(
            f"{path}: its {name} is damaged: {found} where its header declares "
            f"{info.file_size:,} bytes."
        )


def _raw_chunks(handle: BinaryIO, info: zipfile.ZipInfo, path: Path) -> Iterator[bytes]:
    """The member's data, inflated at most :data:`CHUNK` bytes at a time."""
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) < _LOCAL_HEADER.size or header[:4] != _LOCAL_SIGNATURE:
        raise DataFormatError(f"{path}: its {info.filename} has no local header where it should.")
    _, name_length, extra_length = _LOCAL_HEADER.unpack(header)
    handle.seek(name_length + extra_length, 1)
    stored = _stored_chunks(handle, info.compress_size)
    if info.compress_type == zipfile.ZIP_STORED:
        yield from stored  # if truncated, the size check after reports it
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        for data in stored:
            while data and not inflater.eof:
                yield inflater.decompress(data, CHUNK)
                data = inflater.unconsumed_tail
            if inflater.eof:
                break
        yield inflater.flush()
    except zlib.error as error:
        raise DataFormatError(f"{path}: its {info.filename} is damaged ({error}).") from None
    if not inflater.eof:
        raise DataFormatError(f"{path}: its {info.filename} is truncated.")


def _stored_chunks(handle: BinaryIO, left: int) -> Iterator[bytes]:
    """The next ``left`` bytes of ``handle``, :data:`CHUNK` at a time, fewer at its end."""
    while left > 0 and (chunk := handle.read(min(CHUNK, left))):
        left -= len(chunk)
        yield chunk
