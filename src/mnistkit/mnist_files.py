"""Reading MNIST's arrays from files: the embedded copy, a Keras ``mnist.npz``, IDX files.

Every reader checks what it read (types, shapes, counts, label range) and names the file
and the problem when something is wrong. :mod:`mnistkit.datasets` offers these functions
too, and its ``mnist`` loader is built on them.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import math
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mnistkit.errors import DataFormatError, DataNotFoundError
from mnistkit.idx import MAX_BYTES, read_idx
from mnistkit.validation import check_non_negative_int, invalid

__all__ = [
    "IDX_FILES",
    "NUM_CLASSES",
    "check_images",
    "check_labels",
    "check_mnist_arrays",
    "has_idx_files",
    "read_idx_folder",
    "read_mnist",
    "read_npz",
]

#: How many classes MNIST has.
NUM_CLASSES = 10

#: The four IDX files of MNIST, as the TensorFlow 1 tutorial's ``MNIST_data/`` holds
#: them (each may also be stored without the ``.gz``).
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

#: The four arrays of MNIST: ``x_train``, ``y_train``, ``x_test``, ``y_test``.
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def read_mnist(source: str | os.PathLike[str] | None = None) -> tuple[Arrays, str]:
    """Read MNIST's four arrays from the embedded copy, an ``mnist.npz`` or an IDX folder.

    Args:
        source: ``None`` for the copy embedded in mnistkit, a Keras-layout
            ``mnist.npz``, or a folder of the four IDX files.

    Returns:
        The arrays, checked, and where they were read from, in words.

    Raises:
        DataNotFoundError: If ``source`` does not exist or lacks a file.
        DataFormatError: If a file is malformed or holds arrays of the wrong form.
        InvalidArgumentError: If ``source`` is not a path.
    """
    if source is None:
        embedded = importlib.resources.files("mnistkit") / "data" / "mnist.npz"
        with importlib.resources.as_file(embedded) as path:
            return read_npz(path), "embedded MNIST"
    if not isinstance(source, (str, os.PathLike)):
        raise invalid("source", "a path to an mnist.npz or to a folder of IDX files", source)
    path = Path(source)
    if path.is_dir():
        return read_idx_folder(path), f"IDX folder {path}"
    if not path.exists():
        raise DataNotFoundError(
            f"{path}: no such file or folder. Expected a Keras-layout mnist.npz or a folder "
            "of the four MNIST IDX files."
        )
    return read_npz(path), str(path)


def read_npz(path: str | os.PathLike[str], *, max_bytes: int | None = MAX_BYTES) -> Arrays:
    """Read a Keras-layout ``mnist.npz``: ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Each array's header is read and checked against the size the archive declares for
    it before its data is read, so a small file that claims gigabytes is refused at
    once; object arrays (pickles) are never loaded.

    Args:
        path: The file.
        max_bytes: The most bytes an array may take, 1 GiB by default (MNIST's training
            images take 47 MB); ``None`` for no limit.

    Returns:
        The four arrays, checked for shape, type and label range.

    Raises:
        DataNotFoundError: If the file does not exist.
        DataFormatError: If it is not an npz archive (a zip of ``.npy`` files), lacks a
            key, holds an array whose header disagrees with its size or declares more
            than ``max_bytes``, or holds arrays of the wrong shape or type.
    """
    path = Path(path)
    if max_bytes is not None:
        check_non_negative_int(max_bytes, "max_bytes")
    if path.is_dir():
        raise DataFormatError(f"{path}: is a folder, not an npz file.")
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: no such file.") from None
    except (OSError, zipfile.BadZipFile, ValueError, EOFError) as error:
        raise DataFormatError(_not_an_archive(path, error)) from None
    with archive:
        members = {info.filename.removesuffix(".npy"): info for info in archive.infolist()}
        missing = [key for key in IDX_FILES if key not in members]
        if missing:
            raise DataFormatError(
                f"{path}: missing array(s) {', '.join(missing)}; a Keras-layout mnist.npz "
                f"holds {', '.join(IDX_FILES)}."
            )
        arrays = tuple(_read_member(archive, members[key], path, max_bytes) for key in IDX_FILES)
    return check_mnist_arrays(arrays, str(path))


def _not_an_archive(path: Path, error: BaseException) -> str:
    with contextlib.suppress(OSError), path.open("rb") as handle:
        if handle.read(6) == b"\x93NUMPY":
            return (
                f"{path}: a single .npy array, not an npz archive; a Keras-layout mnist.npz "
                f"holds {', '.join(IDX_FILES)}."
            )
    return f"{path}: not an npz archive, a zip of .npy arrays ({error})."


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, max_bytes: int | None
) -> np.ndarray:
    """Read one ``.npy`` member, its declared shape checked before its data is read."""
    name = info.filename.removesuffix(".npy")
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f".npy format version {version} is not read here")
            if dtype.hasobject:
                raise ValueError("it holds Python objects, which are never loaded (pickles)")
            size = math.prod(shape) * dtype.itemsize
            if max_bytes is not None and size > max_bytes:
                raise ValueError(
                    f"its header declares {size:,} bytes, more than the {max_bytes:,} "
                    "allowed (max_bytes)"
                )
            held = info.file_size - member.tell()
            if size != held:
                raise ValueError(f"its header declares {size:,} bytes of data, it holds {held:,}")
            data = bytearray(member.read(size))
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise DataFormatError(f"{path}: array {name} cannot be read ({error}).") from None
    array: np.ndarray = np.frombuffer(data, dtype=dtype)
    return array.reshape(shape, order="F" if fortran else "C")


def read_idx_folder(folder: str | os.PathLike[str]) -> Arrays:
    """Read the four MNIST IDX files from a folder, such as the tutorial's ``MNIST_data/``.

    Each file may be gzipped (``train-images-idx3-ubyte.gz``) or not
    (``train-images-idx3-ubyte``).

    Args:
        folder: The folder.

    Returns:
        The arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``, checked.

    Raises:
        DataNotFoundError: If the folder is missing, or any of the files; the message
            names each missing file.
        DataFormatError: If a file is malformed or holds arrays of the wrong form.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(f"{folder}: no such folder.")
    found = {name: _idx_file(folder, name) for name in IDX_FILES.values()}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise DataNotFoundError(
            f"{folder}: missing {', '.join(missing)} (each may also lack the .gz); an MNIST "
            f"IDX folder holds {', '.join(IDX_FILES.values())}."
        )
    arrays = tuple(read_idx(path) for path in found.values() if path is not None)
    return check_mnist_arrays(arrays, str(folder))


def has_idx_files(folder: str | os.PathLike[str], *, every: bool = True) -> bool:
    """Return whether ``folder`` holds the MNIST IDX files, gzipped or not.

    Args:
        folder: The folder to look in.
        every: Ask for all four files; ``False`` asks whether any of them is there.

    Returns:
        ``True`` if each (or, with ``every=False``, any) of :data:`IDX_FILES` is
        there, with or without ``.gz``.
    """
    found = [_idx_file(Path(folder), name) is not None for name in IDX_FILES.values()]
    return all(found) if every else any(found)


def _idx_file(folder: Path, name: str) -> Path | None:
    candidates = (folder / name, folder / name.removesuffix(".gz"))
    return next((path for path in candidates if path.is_file()), None)


def check_mnist_arrays(arrays: Sequence[np.ndarray], source: str) -> Arrays:
    """Return the four arrays if they have MNIST's types and shapes, else raise.

    Raises:
        DataFormatError: Naming ``source`` and what is wrong.
    """
    x_train, y_train, x_test, y_test = arrays
    check_images(x_train, "x_train", source)
    check_images(x_test, "x_test", source)
    check_labels(y_train, len(x_train), "y_train", source)
    check_labels(y_test, len(x_test), "y_test", source)
    return x_train, y_train, x_test, y_test


def check_images(images: np.ndarray, name: str, source: str) -> None:
    """Raise unless ``images`` are uint8 images shaped (N, 28, 28)."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataFormatError(
            f"{source}: {name} must be uint8 images shaped (N, 28, 28); "
            f"found {images.dtype} shaped {images.shape}."
        )


def check_labels(labels: np.ndarray, count: int, name: str, source: str) -> None:
    """Raise unless ``labels`` are ``count`` integers from 0 to 9."""
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(
            f"{source}: {name} must be integer labels shaped (N,); "
            f"found {labels.dtype} shaped {labels.shape}."
        )
    if len(labels) != count:
        raise DataFormatError(
            f"{source}: {count} images but {len(labels)} labels in {name}; they must match."
        )
    if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise DataFormatError(
            f"{source}: {name} holds labels outside 0..9 (from {labels.min()} to {labels.max()})."
        )
