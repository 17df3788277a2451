"""Turning a photo, scan or drawing of a digit into an image shaped like MNIST's.

MNIST's digits are white on black, fit into a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in a 28x28 field so that their centre of mass is at its
centre. :func:`prepare_image` does the same to any picture of one digit, with numpy
alone; :func:`read_image` first decodes a PNG, JPEG, GIF, BMP or WebP file with
TensorFlow.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError
from mnistkit.validation import check_positive_int

__all__ = ["FORMATS", "MAX_PIXELS", "declared_pixels", "prepare_image", "read_image"]

#: The most pixels :func:`read_image` decodes by default, a 5000 x 5000 picture, which
#: takes at most about 300 MB while it is read.
MAX_PIXELS = 25_000_000
#: The formats :func:`read_image` reads, by the first bytes of their files.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WebP")

#: The side of the square box that the digit is scaled to fit, as in MNIST.
BOX = 20
#: The side of the field the box is placed in.
FIELD = 28
# MNIST's mean centre of mass, in pixel-index coordinates of the 28x28 field.
_CENTRE = 14.0
# Ink below this share of the strongest ink is background noise (paper grain, JPEG).
_NOISE = 0.1
# Only ink above this share of the strongest ink decides where the digit is.
_SOLID = 0.25
# An image whose ink is fainter than this against its background holds no digit.
_MIN_CONTRAST = 0.1
# A larger picture is first averaged over blocks of whole pixels down to about this many,
# a band of rows at a time: the digit ends up 20 pixels high, and no float copy of a
# photo's full size is ever made.
_WORKING_PIXELS = 2_000_000
# Bytes of one band of rows, as float64, while a large picture is averaged down.
_BAND_BYTES = 32 * 2**20
# The first bytes of the files of each format, and of formats named but not read.
_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8": "JPEG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
# The JPEG markers that start a frame header, which holds the image's size.
_JPEG_FRAMES = {*range(0xC0, 0xC4), *range(0xC5, 0xC8), *range(0xC9, 0xCC), *range(0xCD, 0xD0)}
# A line of TensorFlow's C++ log (severity letter, date, time, thread, source, message),
# or one of libjpeg's own messages.
_LOG_LINE = re.compile(
    r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] |Improper call to JPEG library|"
    r"Premature end of JPEG file|Corrupt JPEG data|Invalid JPEG file structure)"
)


def prepare_image(image: np.ndarray) -> np.ndarray:
    """Prepare a picture of one digit as MNIST's images were prepared.

    The picture is made grayscale and white-on-black (inverted when the border is
    light, as in a photo or scan of ink), its background level is subtracted, it is
    cropped to the digit, scaled to fit a 20x20 box keeping its aspect ratio (area
    averaging when shrinking, bilinear when enlarging), and placed in a 28x28 field
    with its centre of mass at the field's centre.

    Args:
        image: Pixels shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (RGBA, composited
            over a background that contrasts with the ink). uint8 and other unsigned
            integer pixels are scaled by their maximum; floats are taken as [0, 1], or
            as [0, 255] if any exceeds 1.

    Returns:
        A float32 array shaped (28, 28, 1) with values in [0, 1], ready for a model.

    Raises:
        InvalidArgumentError: If ``image`` does not have one of the shapes above, is
            not numeric, or holds NaN or infinite values.
        DataFormatError: If the image is blank: no ink stands out from the background.

    Example:
        >>> import numpy as np
        >>> page = np.full((90, 70), 255, np.uint8)  # white paper
        >>> page[10:50, 40:48] = 0  # a dark stroke, a "1", off-centre
        >>> digit = prepare_image(page)
        >>> digit.shape, digit.dtype, float(digit.max())
        ((28, 28, 1), dtype('float32'), 1.0)
        >>> rows = np.flatnonzero(digit[..., 0].any(axis=1))
        >>> int(rows[0]), int(rows[-1])  # 20 rows high, centred
        (4, 23)
    """
    gray = _grayscale(image)
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    if np.median(border) > 0.5:
        gray = 1.0 - gray
        border = 1.0 - border
    ink = gray - np.median(border)
    strongest = float(ink.max())
    if strongest < _MIN_CONTRAST:
        raise DataFormatError(
            "The image holds no digit: nothing stands out from its background "
            f"(contrast {max(strongest, 0.0):.3f})."
        )
    ink = np.clip(ink / strongest, 0.0, 1.0)
    ink[ink < _NOISE] = 0.0
    rows = np.flatnonzero((ink > _SOLID).any(axis=1))
    cols = np.flatnonzero((ink > _SOLID).any(axis=0))
    digit = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = _fit_box(digit, BOX)
    digit /= digit.max()
    return _centre(digit, FIELD)[..., np.newaxis]


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = MAX_PIXELS) -> np.ndarray:
    """Read a picture of one digit and prepare it with :func:`prepare_image`.

    PNG, JPEG, GIF, BMP and WebP files are read (:data:`FORMATS`), decoded by
    ``tf.io.decode_image``. The size the file's header declares is checked first: a
    small file that would decode to gigabytes of pixels is refused before it is decoded,
    and a picture at the limit takes at most about 300 MB to read.

    Args:
        path: The image file.
        max_pixels: The most pixels an image may have (width times height, times the
            frames of a GIF), 25 million by default; ``None`` for no limit.

    Returns:
        A float32 array shaped (28, 28, 1) with values in [0, 1].

    Raises:
        DataNotFoundError: If the file does not exist or is a folder.
        DataFormatError: If the file is not a regular file or cannot be read, is not
            in one of :data:`FORMATS`, is truncated or damaged, declares more than
            ``max_pixels`` pixels, or is blank.

    Example:
        >>> import tempfile, pathlib
        >>> import numpy as np, tensorflow as tf
        >>> pixels = np.zeros((40, 40, 1), np.uint8)
        >>> pixels[5:35, 18:22] = 255  # a white "1" on black
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "one.png"
        >>> _ = path.write_bytes(tf.io.encode_png(pixels).numpy())
        >>> read_image(path).shape
        (28, 28, 1)
    """
    path = Path(path)
    if max_pixels is not None:
        check_positive_int(max_pixels, "max_pixels")
    if path.is_dir():
        raise DataNotFoundError(f"{path}: is a folder, not an image file.")
    if path.exists() and not path.is_file():
        raise DataFormatError(f"{path}: not a regular file (a device, a pipe or a socket).")
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: no such image file.") from None
    except OSError as error:
        raise DataFormatError(f"{path}: cannot be read ({error.strerror or error}).") from None
    kind = _format_of(payload)
    if kind not in FORMATS:
        read = ", ".join(FORMATS)
        if kind is None:
            raise DataFormatError(f"{path}: not an image in a format read here ({read}).")
        raise DataFormatError(f"{path}: a {kind} image, a format not read here ({read} are).")
    pixels = declared_pixels(payload)
    if max_pixels is not None and pixels is not None and pixels > max_pixels:
        raise DataFormatError(
            f"{path}: the image declares {pixels:,} pixels, more than the {max_pixels:,} "
            "allowed (max_pixels); a digit needs far fewer, so scale the picture down."
        )
    try:
        return prepare_image(_decode(payload))
    except DataFormatError as error:
        raise DataFormatError(f"{path}: {error}") from None
    except ValueError as error:
        state = "truncated" if _truncated(payload, kind) else "damaged"
        raise DataFormatError(f"{path}: a {state} {kind} image ({error}).") from None


def _format_of(payload: bytes) -> str | None:
    """The format a file's first bytes name, or ``None``."""
    if payload[:4] == b"RIFF" and payload[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _MAGIC.items() if payload.startswith(magic)), None)


def _truncated(payload: bytes, kind: str) -> bool:
    """Whether the file stops before the end its format marks (PNG, JPEG, GIF)."""
    if kind == "PNG":
        return b"IEND" not in payload[-12:]
    end = {"JPEG": b"\xff\xd9", "GIF": b"\x3b"}.get(kind)
    return end is not None and not payload.rstrip(b"\x00").endswith(end)


def _decode(payload: bytes) -> np.ndarray:
    from mnistkit.quiet import held_back_stderr, quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    try:
        # The decoder's verdict is in its error: its own log lines on stderr are dropped.
        with held_back_stderr(lambda lines: [x for x in lines if not _LOG_LINE.match(x)]):
            decoded = tf.io.decode_image(payload, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        # TensorFlow's own message names a function, an op and a node; the rest is news.
        reason = str(error.message).split("\n")[0].split("[Op:")[0]
        reason = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", reason).strip()
        raise ValueError(reason or "undecodable") from None
    return np.asarray(decoded)


def declared_pixels(payload: bytes) -> int | None:
    r"""Return how many pixels an image file's header declares, without decoding it.

    Args:
        payload: The file's bytes (its first few kilobytes are enough, except for GIF,
            whose frames are counted).

    Returns:
        Width times height (times the frames of a GIF) for PNG, JPEG, GIF, BMP and
        WebP; for other formats, or a header too short to say, ``None``.

    Example:
        >>> header = b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IHDR" + (20000).to_bytes(4, "big") * 2
        >>> declared_pixels(header)
        400000000
    """
    pixels = _PIXELS.get(_format_of(payload) or "")
    try:
        return None if pixels is None else pixels(payload)
    except (struct.error, IndexError):
        return None


def _jpeg_pixels(payload: bytes) -> int | None:
    """Width times height from a JPEG's frame header (SOF), found by walking its segments."""
    at = 2
    while at + 4 <= len(payload):
        if payload[at] != 0xFF:
            return None
        marker = payload[at + 1]
        if marker in _JPEG_FRAMES:
            return int(math.prod(struct.unpack(">HH", payload[at + 5 : at + 9])))
        if marker == 0xFF:  # fill byte
            at += 1
        elif marker in (0x01, *range(0xD0, 0xDA)):  # markers without a length
            at += 2
        else:
            at += 2 + int.from_bytes(payload[at + 2 : at + 4], "big")
    return None


def _webp_pixels(payload: bytes) -> int | None:
    """Width times height from a WebP's first chunk: extended, lossy or lossless."""
    chunk = payload[12:16]
    if chunk == b"VP8X":  # the canvas, 24-bit sizes less one
        return math.prod(int.from_bytes(payload[at : at + 3], "little") + 1 for at in (24, 27))
    if chunk == b"VP8 " and payload[23:26] == b"\x9d\x01\x2a":  # 14-bit sizes
        return math.prod(int(size & 0x3FFF) for size in struct.unpack("<HH", payload[26:30]))
    if chunk == b"VP8L" and payload[20] == 0x2F:  # 14-bit sizes less one
        bits = int.from_bytes(payload[21:25], "little")
        return ((bits & 0x3FFF) + 1) * (((bits >> 14) & 0x3FFF) + 1)
    return None


def _gif_frames(payload: bytes) -> int:
    """The number of images in a GIF, counted by walking its blocks."""
    flags = payload[10]
    at = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while at < len(payload) and payload[at] in (0x21, 0x2C):  # not the trailer, 0x3B
        if payload[at] == 0x21:  # extension: label, then sub-blocks
            at += 2
        else:  # image descriptor, a local colour table, the LZW code size
            frames += 1
            local = payload[at + 9]
            at += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
        while at < len(payload) and payload[at]:  # sub-blocks, ended by a zero length
            at += payload[at] + 1
        at += 1
    return frames


# How each format's header declares its size, read by declared_pixels.
_PIXELS: dict[str, Callable[[bytes], int | None]] = {
    "PNG": lambda data: (
        math.prod(struct.unpack(">II", data[16:24])) if data[12:16] == b"IHDR" else None
    ),
    "JPEG": _jpeg_pixels,
    "GIF": lambda data: math.prod(struct.unpack("<HH", data[6:10])) * max(1, _gif_frames(data)),
    "BMP": lambda data: abs(math.prod(struct.unpack("<ii", data[18:26]))),
    "WebP": _webp_pixels,
}


def _grayscale(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (1, 3, 4))):
        raise InvalidArgumentError(
            "Invalid value for argument `image`. Expected pixels shaped (H, W), (H, W, 1), "
            f"(H, W, 3) or (H, W, 4). Received: image.shape={array.shape}"
        )
    if array.size == 0 or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidArgumentError(
            "Invalid value for argument `image`. Expected a non-empty array of numbers. "
            f"Received: image.dtype={array.dtype}, image.shape={array.shape}"
        )
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise InvalidArgumentError(
            "Invalid value for argument `image`. Expected finite pixel values. "
            f"Received: {int((~np.isfinite(array)).sum())} NaN or infinite pixels"
        )
    if np.issubdtype(array.dtype, np.unsignedinteger):
        scale = float(np.iinfo(array.dtype).max)
    else:
        scale = 255.0 if np.max(array) > 1.0 else 1.0
    pixels = np.clip(_averaged_down(array) / scale, 0.0, 1.0)
    channels = array.shape[2] if array.ndim == 3 else 0
    if channels < 3:
        return pixels[..., 0] if channels else pixels
    # ITU-R 601-2 luma, as PIL's "L" mode and the MNIST scans' grayscale.
    gray: np.ndarray = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])
    if channels == 4:
        alpha = pixels[..., 3]
        # A drawing on a transparent canvas: put it on the background its ink stands out on.
        opaque_mean = (gray * alpha).sum() / max(alpha.sum(), 1e-12)
        background = 1.0 if opaque_mean < 0.5 else 0.0
        gray = gray * alpha + background * (1.0 - alpha)
    return gray


def _averaged_down(array: np.ndarray) -> np.ndarray:
    """The pixels as float64, averaged over blocks if more than :data:`_WORKING_PIXELS`.

    Blocks of k x k pixels (smaller at the right and bottom edges) become one, a band
    of rows at a time, so memory stays that of the result and one band.
    """
    height, width = array.shape[:2]
    factor = math.ceil(math.sqrt(height * width / _WORKING_PIXELS))
    if factor <= 1:
        return array.astype(np.float64)
    columns = np.arange(0, width, factor)
    widths = np.diff(np.append(columns, width))
    extra = (1,) * (array.ndim - 2)  # the channel axis, if any
    row_bytes = 8 * array[0].size
    band = max(1, _BAND_BYTES // (row_bytes * factor)) * factor
    out = np.empty((math.ceil(height / factor), len(columns), *array.shape[2:]))
    for top in range(0, height, band):
        rows = array[top : top + band].astype(np.float64)
        starts = np.arange(0, len(rows), factor)
        heights = np.diff(np.append(starts, len(rows)))
        sums = np.add.reduceat(np.add.reduceat(rows, starts, axis=0), columns, axis=1)
        counts = np.multiply.outer(heights, widths).reshape(len(starts), -1, *extra)
        out[top // factor : top // factor + len(starts)] = sums / counts
    return out


def _resampling(size_in: int, size_out: int) -> np.ndarray:
    """Return the (size_out, size_in) matrix that resamples one axis."""
    scale = size_in / size_out
    if size_out <= size_in:
        # Area averaging: each output pixel is the mean of the input it covers.
        edges = np.arange(size_out + 1) * scale
        starts, ends = edges[:-1, None], edges[1:, None]
        pixels = np.arange(size_in)[None, :]
        overlap = np.clip(np.minimum(ends, pixels + 1) - np.maximum(starts, pixels), 0, None)
        return overlap / overlap.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]
    # Bilinear, with pixel centres aligned as in image libraries.
    where = np.clip((np.arange(size_out) + 0.5) * scale - 0.5, 0, size_in - 1)
    low = np.floor(where).astype(int)
    high = np.minimum(low + 1, size_in - 1)
    weight = where - low
    matrix = np.zeros((size_out, size_in))
    matrix[np.arange(size_out), low] += 1.0 - weight
    matrix[np.arange(size_out), high] += weight
    return matrix


def _fit_box(digit: np.ndarray, box: int) -> np.ndarray:
    height, width = digit.shape
    scale = box / max(height, width)
    rows, cols = (min(box, max(1, round(side * scale))) for side in (height, width))
    resized: np.ndarray = _resampling(height, rows) @ digit @ _resampling(width, cols).T
    return resized


def _centre(digit: np.ndarray, field: int) -> np.ndarray:
    height, width = digit.shape
    total = digit.sum()
    centre_row = (digit.sum(axis=1) @ np.arange(height)) / total
    centre_col = (digit.sum(axis=0) @ np.arange(width)) / total
    # Shift by whole pixels, as MNIST did, but never push the digit out of the field.
    top = int(np.clip(round(_CENTRE - float(centre_row)), 0, field - height))
    left = int(np.clip(round(_CENTRE - float(centre_col)), 0, field - width))
    out = np.zeros((field, field), np.float32)
    out[top : top + height, left : left + width] = digit
    return out
