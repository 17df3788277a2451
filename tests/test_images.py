"""Tests of mnistkit.images: pictures of digits prepared the way MNIST's were."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from mnistkit import DataFormatError, DataNotFoundError, InvalidArgumentError
from mnistkit.images import prepare_image, read_image


def _bbox(image: np.ndarray) -> tuple[int, int, int, int]:
    """Return (top, bottom, left, right) of the non-zero pixels, inclusive."""
    rows = np.flatnonzero(image.any(axis=1))
    cols = np.flatnonzero(image.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    rows, cols = np.indices(image.shape)
    total = image.sum()
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def _on_paper(digit: np.ndarray, *, shape: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    """Draw a white-on-black uint8 digit as dark ink on white paper, scaled up 2x."""
    big = np.kron(digit, np.ones((2, 2), np.uint8))
    canvas = np.zeros(shape, np.uint8)
    top, left = at
    canvas[top : top + big.shape[0], left : left + big.shape[1]] = big
    return 255 - canvas


def test_prepared_image_is_28x28x1_float32_in_unit_range() -> None:
    page = np.full((50, 40), 255, np.uint8)
    page[10:40, 15:22] = 30

    digit = prepare_image(page)

    assert digit.shape == (28, 28, 1)
    assert digit.dtype == np.float32
    assert digit.min() == 0.0
    assert digit.max() == 1.0


def test_dark_ink_on_light_paper_becomes_white_on_black() -> None:
    page = np.full((60, 60), 240, np.uint8)
    page[10:50, 28:34] = 20

    digit = prepare_image(page)[..., 0]

    assert digit[0, 0] == 0.0
    assert digit[14, 14] == 1.0  # the stroke, centred


def test_white_on_black_is_not_inverted() -> None:
    image = np.zeros((60, 60), np.uint8)
    image[10:50, 28:34] = 255

    digit = prepare_image(image)[..., 0]

    assert digit[0, 0] == 0.0
    assert digit[14, 14] == 1.0


def test_tall_digit_is_scaled_to_20_rows_keeping_its_aspect_ratio() -> None:
    page = np.full((200, 100), 255, np.uint8)
    page[20:180, 40:80] = 0  # 160 x 40: 4 to 1

    top, bottom, left, right = _bbox(prepare_image(page)[..., 0] > 0.5)

    assert bottom - top + 1 == 20
    assert right - left + 1 == 5


def test_wide_digit_is_scaled_to_20_columns() -> None:
    page = np.full((100, 200), 255, np.uint8)
    page[40:60, 20:180] = 0  # 20 x 160: 1 to 8

    top, bottom, left, right = _bbox(prepare_image(page)[..., 0] > 0.5)

    assert right - left + 1 == 20
    assert bottom - top + 1 in (2, 3)


def test_small_digit_is_enlarged_to_fill_the_box() -> None:
    image = np.zeros((28, 28), np.uint8)
    image[3:8, 20:23] = 255  # 5 x 3 pixels in a corner

    top, bottom, _, _ = _bbox(prepare_image(image)[..., 0] > 0.5)

    assert bottom - top + 1 == 20


def test_centre_of_mass_is_moved_to_the_centre_of_the_field() -> None:
    page = np.full((120, 90), 255, np.uint8)
    page[5:60, 60:66] = 0  # a lopsided "7" near the top right corner
    page[5:11, 40:66] = 0

    row, col = _centre_of_mass(prepare_image(page)[..., 0])

    assert abs(row - 14.0) <= 0.5
    assert abs(col - 14.0) <= 0.5


def test_gray_paper_and_its_grain_are_removed() -> None:
    rng = np.random.default_rng(0)
    page = rng.normal(200, 6, size=(80, 80)).clip(0, 255).astype(np.uint8)
    page[15:65, 35:43] = 60

    digit = prepare_image(page)[..., 0]
    strokes = digit > 0

    assert _bbox(strokes) == _bbox(digit > 0.5)  # no speck of grain outside the stroke


def test_colour_and_transparent_images_are_read_as_gray_ink() -> None:
    rgb = np.full((60, 60, 3), 255, np.uint8)
    rgb[10:50, 28:34] = (20, 20, 120)  # blue ink
    rgba = np.zeros((60, 60, 4), np.uint8)  # transparent canvas
    rgba[10:50, 28:34] = (0, 0, 0, 255)  # black, opaque strokes
    gray = np.full((60, 60), 255, np.uint8)
    gray[10:50, 28:34] = 0

    expected = prepare_image(gray)

    np.testing.assert_allclose(prepare_image(rgb), expected)
    np.testing.assert_allclose(prepare_image(rgba), expected)


def test_float_images_in_unit_range_or_0_255_give_the_same_result() -> None:
    image = np.zeros((40, 40))
    image[5:35, 15:25] = 1.0

    np.testing.assert_allclose(prepare_image(image), prepare_image(image * 255))


def test_mnist_digits_drawn_in_ink_off_centre_come_back_as_they_were(
    mnist_arrays: tuple[np.ndarray, ...],
) -> None:
    x_test = mnist_arrays[2]
    for index, at in zip(range(8), [(2, 3), (30, 10), (12, 0), (34, 14)] * 2, strict=True):
        page = _on_paper(x_test[index], shape=(90, 70), at=at)

        prepared = prepare_image(page)[..., 0]

        original = x_test[index] / 255.0
        assert np.corrcoef(prepared.ravel(), original.ravel())[0, 1] > 0.9, index


def test_blank_image_has_no_digit() -> None:
    with pytest.raises(DataFormatError, match="no digit"):
        prepare_image(np.full((30, 30), 128, np.uint8))


@pytest.mark.parametrize("shape", [(28,), (28, 28, 2), (2, 28, 28, 1), (0, 5)])
def test_wrong_shape_is_an_invalid_argument(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidArgumentError, match="image"):
        prepare_image(np.zeros(shape, np.uint8))


def _encode(pixels: np.ndarray, kind: str) -> bytes:
    import tensorflow as tf

    encode = tf.io.encode_png if kind == "png" else tf.io.encode_jpeg
    return bytes(encode(pixels[..., np.newaxis]).numpy())


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_read_image_decodes_and_prepares_png_and_jpeg(kind: str, tmp_path: Path) -> None:
    page = np.full((64, 48), 250, np.uint8)
    page[8:56, 20:28] = 10
    path = tmp_path / f"digit.{kind}"
    path.write_bytes(_encode(page, kind))

    digit = read_image(path)

    assert digit.shape == (28, 28, 1)
    np.testing.assert_allclose(digit, prepare_image(page), atol=0.1)  # JPEG is lossy


def test_read_image_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no such image file"):
        read_image(tmp_path / "nothing.png")


def test_read_image_of_a_text_file_says_it_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("not an image")

    with pytest.raises(DataFormatError, match=r"notes\.png: not an image in a format read"):
        read_image(path)


def test_an_unread_format_is_named_with_the_formats_that_are_read(tmp_path: Path) -> None:
    path = tmp_path / "scan.tif"
    path.write_bytes(b"II*\x00" + bytes(64))

    with pytest.raises(DataFormatError) as caught:
        read_image(path)
    assert str(caught.value).endswith(
        "scan.tif: a TIFF image, a format not read here (PNG, JPEG, GIF, BMP, WebP are)."
    )


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_truncated_png_or_jpeg_is_called_truncated(kind: str, tmp_path: Path) -> None:
    page = np.full((64, 48), 250, np.uint8)
    page[8:56, 20:28] = 10
    encoded = _encode(page, kind)
    path = tmp_path / f"digit.{kind}"
    path.write_bytes(encoded[: len(encoded) // 2])

    with pytest.raises(DataFormatError, match=f"digit.{kind}: a truncated {kind.upper()} image"):
        read_image(path)


def test_a_bmp_is_read(tmp_path: Path) -> None:
    page = np.full((8, 8), 255, np.uint8)
    page[1:7, 3:5] = 0
    rows = b"".join(bytes(np.repeat(row, 3)) + bytes(0) for row in page[::-1])  # BGR, bottom up
    header = struct.pack("<2sIHHI", b"BM", 54 + len(rows), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, 8, 8, 1, 24, 0, len(rows), 2835, 2835, 0, 0)
    path = tmp_path / "one.bmp"
    path.write_bytes(header + info + rows)

    np.testing.assert_allclose(read_image(path), prepare_image(page), atol=1e-6)


def test_a_picture_over_the_pixel_limit_is_refused_saying_to_scale_it_down(
    tmp_path: Path,
) -> None:
    path = tmp_path / "huge.png"  # a header of 7000 x 7000 pixels is enough
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4) + b"IHDR" + struct.pack(">II", 7000, 7000))

    with pytest.raises(DataFormatError) as caught:
        read_image(path)
    assert "declares 49,000,000 pixels, more than the 25,000,000 allowed" in str(caught.value)
    assert "scale the picture down" in str(caught.value)


def test_a_device_or_a_pipe_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        with pytest.raises(DataFormatError, match=f"{path}: not a regular file"):
            read_image(path)


def test_predict_reports_a_pipe_as_not_a_regular_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mnistkit.cli import main

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)

    assert main(["predict", "softmax", str(fifo)]) == 1
    assert f"{fifo}: not a regular file" in capsys.readouterr().err
