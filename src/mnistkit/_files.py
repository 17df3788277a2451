"""Writing files so that an interruption or a full disk never leaves a partial one behind.

Every file mnistkit writes goes through a temporary file beside its destination, named
``.<stem>.<random>.<suffixes>`` (a dot file), and a rename. A failed write removes the
temporary file, leaves the destination as it was, and raises
:class:`~mnistkit.StorageError` naming the destination; a process killed mid-write may
leave the temporary file, which :func:`remove_temporaries` clears.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from mnistkit.errors import MnistkitError, StorageError

# The operating system's words for the errors that mean "no room for this file".
_NO_ROOM = {
    errno.ENOSPC: "No space left on device",
    errno.EFBIG: "File size limit exceeded",
    getattr(errno, "EDQUOT", errno.ENOSPC): "Disk quota exceeded",
}


def storage_error(error: OSError, path: Path) -> StorageError:
    """Return the :class:`~mnistkit.StorageError` for ``error``, raised writing ``path``.

    Its message says what went wrong while writing which file, in one line: "No space
    left on device while writing runs/cnn/model.keras."
    """
    if isinstance(error, StorageError):
        return error
    reason = _NO_ROOM.get(error.errno or 0) or error.strerror or str(error)
    result = StorageError(f"{reason} while writing {path}.")
    result.errno, result.strerror, result.filename = error.errno, reason, str(path)
    return result


def restate(error: StorageError, message: str) -> StorageError:
    """Return a :class:`~mnistkit.StorageError` like ``error``, with another message."""
    result = StorageError(message)
    result.errno, result.strerror, result.filename = error.errno, error.strerror, error.filename
    return result


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary file keeps the destination's suffixes (``.weights.h5``), since some
    writers (Keras) choose the format from them. On any exception, the temporary file
    is removed and ``path`` is left as it was; an ``OSError`` (a full disk, a size
    limit, no permission) becomes a :class:`~mnistkit.StorageError` naming ``path``.
    """
    suffix = "".join(path.suffixes)
    stem = path.name.removesuffix(suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{stem}.", suffix=suffix)
    except OSError as error:
        raise storage_error(error, path) from None
    os.close(handle)
    temporary = Path(name)
    try:
        temporary.chmod(0o666 & ~_umask())  # mkstemp makes it private; give it the usual mode
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        if isinstance(error, MnistkitError):
            raise
        raise storage_error(error, path) from error
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield a new temporary folder beside ``path``; rename it to ``path`` if the block succeeds.

    ``path`` must not exist yet. On any exception, the temporary folder and all that was
    written into it are removed, and ``path`` is not created; nor is its parent folder,
    if this made it and it is left empty.
    """
    made_parent = not path.parent.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    temporary.chmod(0o777 & ~_umask())  # mkdtemp makes it private; give it the usual mode
    try:
        yield temporary
        os.rename(temporary, path)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        if made_parent and not path.exists():
            with contextlib.suppress(OSError):  # not empty: leave it
                path.parent.rmdir()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes_atomically(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename.

    Raises:
        StorageError: If the file cannot be written; ``path`` is left as it was.
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(payload)


def remove_temporaries(folder: Path, names: Iterable[str]) -> list[Path]:
    """Remove the temporary files that :func:`atomic_path` left in ``folder`` for ``names``.

    Call it only while no other process writes those files (a run holds its folder's
    lock). Folders are left alone.

    Args:
        folder: The folder.
        names: The destinations' names; a ``*`` in a name's stem stands for any text
            (``"ckpt-*.weights.h5"``).

    Returns:
        The files removed.
    """
    removed = []
    for name in names:
        suffix = "".join(Path(name).suffixes)
        stem = glob.escape(name.removesuffix(suffix)).replace("[*]", "*")
        for path in folder.glob(f".{stem}.*{glob.escape(suffix)}"):
            if path.is_file() and not path.is_symlink():
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def read_bounded(path: Path, limit: int) -> bytes:
    """Return the bytes of ``path``, or raise ``ValueError`` if it holds more than ``limit``.

    Memory follows the file's size, not the limit.

    Raises:
        ValueError: If the file is longer than ``limit`` bytes.
        OSError: If the file cannot be read.
    """
    with path.open("rb") as handle:
        if os.fstat(handle.fileno()).st_size > limit:
            raise ValueError(f"longer than {limit:,} bytes")
        raw = handle.read()
    if len(raw) > limit:
        raise ValueError(f"longer than {limit:,} bytes")
    return raw
