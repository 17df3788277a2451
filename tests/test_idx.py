"""Reading and writing IDX files: round trips, malformed files, atomic writes."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistkit.errors import DataFormatError, DataNotFoundError, InvalidArgumentError, MnistkitError
from mnistkit.idx import read_idx, write_idx

SHARED_DATA = Path(__file__).parents[2] / "shared" / "data"
IDX_DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def _idx_bytes(code: int, shape: tuple[int, ...], payload: bytes) -> bytes:
    return (
        struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape) + payload
    )


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
@pytest.mark.parametrize("dtype", IDX_DTYPES)
def test_write_then_read_gives_the_same_array(tmp_path: Path, dtype: str, compress: bool) -> None:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
    array = np.array([[info.min, 0, 1], [2, 3, info.max]], dtype=dtype)
    path = tmp_path / ("array.gz" if compress else "array")

    write_idx(path, array)
    result = read_idx(path)

    assert path.read_bytes().startswith(b"\x1f\x8b" if compress else b"\x00\x00")
    assert result.dtype == np.dtype(dtype)  # native byte order, not the file's big-endian
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize(
    "shape", [(), (0,), (7,), (2, 0, 3), (3, 28, 28)], ids=["scalar", "empty", "1d", "zero", "3d"]
)
def test_round_trip_keeps_any_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    write_idx(tmp_path / "a", array)
    result = read_idx(tmp_path / "a")
    assert result.shape == shape
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_read_idx_reads_an_open_file_object(tmp_path: Path, compress: bool) -> None:
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    path = tmp_path / "array"
    write_idx(path, array, compress=compress)

    with path.open("rb") as handle:
        result = read_idx(handle)

    np.testing.assert_array_equal(result, array)


def test_malformed_file_object_raises_data_format_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x08")
    with path.open("rb") as handle, pytest.raises(DataFormatError, match="labels-idx1-ubyte"):
        read_idx(handle)


def test_write_idx_stores_big_endian_values_after_the_magic_and_sizes(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.array([258, -2], dtype=np.int16))
    assert (tmp_path / "a").read_bytes() == b"\x00\x00\x0b\x01" + b"\x00\x00\x00\x02" + (
        b"\x01\x02\xff\xfe"
    )


def test_write_idx_accepts_big_endian_input(tmp_path: Path) -> None:
    array = np.array([1, 2, 3], dtype=">i4")
    write_idx(tmp_path / "a", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), [1, 2, 3])


def test_compress_argument_overrides_the_file_name(tmp_path: Path) -> None:
    array = np.arange(5, dtype=np.uint8)
    write_idx(tmp_path / "gzipped-idx1-ubyte", array, compress=True)
    write_idx(tmp_path / "plain.gz", array, compress=False)
    assert (tmp_path / "gzipped-idx1-ubyte").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "plain.gz").read_bytes()[:2] == b"\x00\x00"
    # The reader trusts the content, not the name.
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped-idx1-ubyte"), array)
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    try:
        write_idx(tmp_path / "labels-idx1-ubyte", np.arange(3, dtype=np.uint8))
    finally:
        os.umask(mask)
    assert (tmp_path / "labels-idx1-ubyte").stat().st_mode & 0o777 == 0o644


def test_write_idx_creates_missing_folders(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "labels-idx1-ubyte"
    write_idx(path, np.zeros(3, np.uint8))
    assert read_idx(path).tolist() == [0, 0, 0]


@pytest.mark.parametrize(
    "array",
    [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.complex64), np.array(["a"])],
    ids=["int64", "bool", "complex", "str"],
)
def test_write_idx_rejects_types_idx_cannot_store(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Invalid value for argument `array`\. "):
        write_idx(tmp_path / "a", array)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("short", b"\x00\x00\x08", "shorter than a header"),
        (
            "wrong-magic",
            _idx_bytes(0x08, (2,), b"ab").replace(b"\x00\x00", b"\x01\x02", 1),
            "wrong magic number",
        ),
        ("unknown-type", _idx_bytes(0x0A, (2,), b"ab"), "unknown IDX type code 0x0a"),
        ("truncated-header", _idx_bytes(0x08, (2, 3, 4), b"")[:10], "truncated IDX header"),
        ("too-short", _idx_bytes(0x08, (2, 3), b"x" * 5), "wrong IDX data length"),
        ("too-long", _idx_bytes(0x08, (2, 3), b"x" * 7), "wrong IDX data length"),
        ("wrong-itemsize", _idx_bytes(0x0C, (2,), b"x" * 6), "wrong IDX data length"),
        (
            "truncated-gzip",
            gzip.compress(_idx_bytes(0x08, (300,), bytes(300)))[:-9],
            "truncated or corrupt gzip",
        ),
        ("gzip-magic-only", b"\x1f\x8b", "truncated or corrupt gzip"),
        (
            "gzip-wrapped-wrong-magic",
            gzip.compress(b"\x01\x02\x08\x01\x00\x00\x00\x01a"),
            "wrong magic number",
        ),
    ],
)
def test_malformed_file_raises_data_format_error_naming_it(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / f"{name}-idx1-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message) as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


def test_corrupt_gzip_raises_data_format_error_naming_it(tmp_path: Path) -> None:
    content = bytearray(gzip.compress(_idx_bytes(0x08, (1000,), bytes(1000)), mtime=0))
    content[15] ^= 0xFF  # inside the deflate stream
    path = tmp_path / "corrupt-idx1-ubyte.gz"
    path.write_bytes(bytes(content))
    with pytest.raises(DataFormatError, match="truncated or corrupt gzip") as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


def test_sizes_whose_product_overflows_64_bits_are_a_format_error(tmp_path: Path) -> None:
    # 65536**4 == 2**64, which wraps to 0 in int64 and would match an empty payload.
    path = tmp_path / "overflow-idx4-ubyte"
    path.write_bytes(_idx_bytes(0x08, (65536, 65536, 65536, 65536), b""))
    with pytest.raises(DataFormatError, match="wrong IDX data length") as caught:
        read_idx(path, max_bytes=None)
    assert str(path) in str(caught.value)


def test_a_header_declaring_more_than_max_bytes_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big-idx3-ubyte"
    path.write_bytes(_idx_bytes(0x08, (3, 28, 28), bytes(3 * 28 * 28)))

    assert read_idx(path, max_bytes=3 * 28 * 28).shape == (3, 28, 28)
    with pytest.raises(DataFormatError, match=r"2,352 bytes, more than the 2,000 allowed"):
        read_idx(path, max_bytes=2000)
    with pytest.raises(InvalidArgumentError, match="max_bytes"):
        read_idx(path, max_bytes=-1)


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_data_beyond_what_the_header_declares_is_refused_without_reading_it(
    tmp_path: Path, compress: bool
) -> None:
    # Labels for 10 images, then 64 MiB more: only 11 bytes past the header are read.
    content = _idx_bytes(0x08, (10,), bytes(10)) + bytes(64 * 2**20)
    path = tmp_path / "long-idx1-ubyte"
    path.write_bytes(gzip.compress(content, compresslevel=1) if compress else content)

    with pytest.raises(DataFormatError, match="need 10 bytes, the file has more than 10"):
        read_idx(path)


def test_more_dimensions_than_numpy_holds_are_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "deep-idx-ubyte"
    path.write_bytes(_idx_bytes(0x08, (1,) * 100, b"\x07"))

    with pytest.raises(DataFormatError, match="not an array NumPy can hold"):
        read_idx(path)


def test_folder_instead_of_file_raises_data_format_error(tmp_path: Path) -> None:
    folder = tmp_path / "train-images-idx3-ubyte"
    folder.mkdir()
    with pytest.raises(DataFormatError, match="is a folder") as caught:
        read_idx(folder)
    assert str(folder) in str(caught.value)


def test_missing_file_raises_data_not_found_error(tmp_path: Path) -> None:
    path = tmp_path / "nothing-idx1-ubyte.gz"
    with pytest.raises(DataNotFoundError) as caught:
        read_idx(path)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("interruption", [OSError("disk full"), KeyboardInterrupt()])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_failed_write_leaves_no_partial_or_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool, interruption: BaseException
) -> None:
    path = tmp_path / "labels-idx1-ubyte.gz"
    if existing:
        write_idx(path, np.array([7, 7], np.uint8))
    before = path.read_bytes() if existing else None
    original_write = Path.write_bytes

    def write_half_then_fail(self: Path, data: bytes) -> int:
        original_write(self, data[: len(data) // 2])
        raise interruption

    monkeypatch.setattr(Path, "write_bytes", write_half_then_fail)
    with pytest.raises(type(interruption)):
        write_idx(path, np.arange(100, dtype=np.uint8))
    monkeypatch.undo()

    assert [p.name for p in tmp_path.iterdir()] == ([path.name] if existing else [])
    if existing:
        assert path.read_bytes() == before


@pytest.fixture(scope="module")
def shared_idx_folder() -> Path:
    folder = SHARED_DATA / "MNIST_data"
    if not (folder / "train-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"the shared MNIST IDX files are not at {folder} (../shared beside the repo)")
    return folder


def test_shared_mnist_labels_start_with_the_published_digits(shared_idx_folder: Path) -> None:
    labels = read_idx(shared_idx_folder / "train-labels-idx1-ubyte.gz")
    assert labels.dtype == np.uint8
    assert labels.shape == (60000,)
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_shared_mnist_idx_files_hold_the_embedded_arrays(
    shared_idx_folder: Path, mnist_arrays: tuple[np.ndarray, ...]
) -> None:
    names = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    for name, embedded in zip(names, mnist_arrays, strict=True):
        array = read_idx(shared_idx_folder / name)
        assert array.dtype == np.uint8, name
        np.testing.assert_array_equal(array, embedded, err_msg=name)


_HEADER = st.builds(
    lambda code, shape: _idx_bytes(code, shape, b""),
    st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
    st.lists(st.integers(0, 6), min_size=0, max_size=3).map(tuple),
)
_GARBAGE = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda b: b"\x1f\x8b" + b),
    st.binary(max_size=200).map(lambda b: gzip.compress(b, mtime=0)),
    st.tuples(_HEADER, st.binary(max_size=200)).map(b"".join),
    st.tuples(_HEADER, st.binary(max_size=200)).map(lambda p: gzip.compress(b"".join(p))),
)


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=_GARBAGE)
def test_arbitrary_bytes_never_raise_anything_but_mnistkit_errors(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "fuzz-idx-ubyte"
    path.write_bytes(content)
    outcome: object
    try:
        outcome = read_idx(path)
    except MnistkitError as error:
        outcome = str(error)
    if isinstance(outcome, str):
        assert str(path) in outcome
    else:
        assert isinstance(outcome, np.ndarray)
        assert outcome.dtype.isnative
