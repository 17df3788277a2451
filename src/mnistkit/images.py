"""Turning a photo, scan or drawing of a digit into an image shaped like MNIST's.

MNIST's digits are white on black, fit into a 20x20 box with their aspect ratio kept,
anti-aliased, and placed in a 28x28 field so that their centre of mass is at its
centre. :func:`prepare_image` does the same to any picture of one digit, with numpy
alone; :func:`read_image` first decodes a PNG or JPEG file with TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError

__all__ = ["prepare_image", "read_image"]

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
        InvalidArgumentError: If ``image`` does not have one of the shapes above or is
            not numeric.
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


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a PNG or JPEG picture of one digit and prepare it with :func:`prepare_image`.

    Decoding uses ``tf.io.decode_image``, so GIF and BMP files are read too.

    Args:
        path: The image file.

    Returns:
        A float32 array shaped (28, 28, 1) with values in [0, 1].

    Raises:
        DataNotFoundError: If the file does not exist or is a folder.
        DataFormatError: If the file cannot be read, is not an image TensorFlow
            decodes, or is blank.

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
    if path.is_dir():
        raise DataNotFoundError(f"{path}: is a folder, not an image file.")
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise DataNotFoundError(f"{path}: no such image file.") from None
    except OSError as error:
        raise DataFormatError(f"{path}: cannot be read ({error.strerror or error}).") from None
    try:
        return prepare_image(_decode(payload))
    except DataFormatError as error:
        raise DataFormatError(f"{path}: {error}") from None
    except ValueError as error:
        raise DataFormatError(f"{path}: not a PNG or JPEG image ({error}).") from None


def _decode(payload: bytes) -> np.ndarray:
    from mnistkit.quiet import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    try:
        decoded = tf.io.decode_image(payload, channels=0, dtype=tf.uint8, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        # TensorFlow's own message names an op and a node; its first line is the news.
        reason = str(error.message).split("\n")[0].split("[Op:")[0].strip()
        raise ValueError(reason or "undecodable") from None
    return np.asarray(decoded)


def _grayscale(image: np.ndarray) -> np.ndarray:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        channels = array.shape[2]
    elif array.ndim == 2:
        channels = 0
    else:
        raise InvalidArgumentError(
            "Invalid value for argument `image`. Expected pixels shaped (H, W), (H, W, 1), "
            f"(H, W, 3) or (H, W, 4). Received: image.shape={array.shape}"
        )
    if array.size == 0 or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise InvalidArgumentError(
            "Invalid value for argument `image`. Expected a non-empty array of numbers. "
            f"Received: image.dtype={array.dtype}, image.shape={array.shape}"
        )
    if np.issubdtype(array.dtype, np.unsignedinteger):
        pixels = array.astype(np.float64) / np.iinfo(array.dtype).max
    else:
        pixels = array.astype(np.float64)
        if np.max(pixels) > 1.0:
            pixels /= 255.0
    pixels = np.clip(pixels, 0.0, 1.0)
    if channels == 0:
        return pixels
    if channels == 1:
        return pixels[..., 0]
    # ITU-R 601-2 luma, as PIL's "L" mode and the MNIST scans' grayscale.
    gray: np.ndarray = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])
    if channels == 4:
        alpha = pixels[..., 3]
        # A drawing on a transparent canvas: put it on the background its ink stands out on.
        opaque_mean = (gray * alpha).sum() / max(alpha.sum(), 1e-12)
        background = 1.0 if opaque_mean < 0.5 else 0.0
        gray = gray * alpha + background * (1.0 - alpha)
    return gray


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
    new_height = min(box, max(1, round(height * scale)))
    new_width = min(box, max(1, round(width * scale)))
    resized: np.ndarray = _resampling(height, new_height) @ digit @ _resampling(width, new_width).T
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
