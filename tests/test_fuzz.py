"""Property-based fuzzing of every reader of bytes that come from outside.

IDX files, npz archives, model files' metadata, checkpoint states, ``run.json``,
``history.csv`` and image files are given arbitrary, truncated and
adversarial content (headers that declare gigabytes, deep nesting, wrong types). Each
reader must either return its value or raise a :class:`~mnistkit.MnistkitError`, never
another exception, and must not allocate more than a few megabytes doing so, whatever
the content claims. Memory is measured with :mod:`tracemalloc`, which sees NumPy's
allocations too.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import struct
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnistkit import MnistkitError
from mnistkit.checkpoints import read_state
from mnistkit.idx import read_idx
from mnistkit.images import declared_pixels, read_image
from mnistkit.mnist_files import read_npz
from mnistkit.records import read_history, read_json
from mnistkit.run_folder import read_run
from mnistkit.saving import read_metadata

# No reader may take more than this much memory for inputs of a few kilobytes.
MEMORY_LIMIT = 16 * 2**20

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextlib.contextmanager
def bounded_memory(limit: int = MEMORY_LIMIT) -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < limit, f"{peak:,} bytes at the peak"


def only_mnistkit_errors(read: Callable[[], Any]) -> Any:
    """Call ``read``; return its value or the MnistkitError it raised. Anything else fails."""
    with bounded_memory():
        try:
            return read()
        except MnistkitError as error:
            return error


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


# ---------------------------------------------------------------- IDX


def _idx_header(code: int, shape: list[int]) -> bytes:
    return struct.pack(">HBB", 0, code, len(shape)) + struct.pack(f">{len(shape)}I", *shape)


IDX = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda code, shape, body: _idx_header(code, shape) + body,
        st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x07]),
        st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 9), max_size=6),
        st.binary(max_size=300),
    ),
    st.builds(  # as many dimensions as the format allows, each of size 1
        lambda ndim, body: _idx_header(0x08, [1] * ndim) + body,
        st.integers(0, 255),
        st.binary(max_size=4),
    ),
)


@FUZZ
@given(content=IDX, compress=st.booleans())
def test_fuzzed_idx_files(tmp_path: Path, content: bytes, compress: bool) -> None:
    path = tmp_path / "fuzz-idx-ubyte"
    path.write_bytes(gzip.compress(content, compresslevel=1) if compress else content)

    outcome = only_mnistkit_errors(lambda: read_idx(path))

    assert isinstance(outcome, (np.ndarray, MnistkitError))


# ---------------------------------------------------------------- npz


def _npy(shape: tuple[int, ...], descr: str, body: bytes, version: int) -> bytes:
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    buffer = io.BytesIO()
    if version == 1:
        np.lib.format.write_array_header_1_0(buffer, header)
    else:
        np.lib.format.write_array_header_2_0(buffer, header)
    return buffer.getvalue() + body


NPY = st.one_of(
    st.binary(max_size=200),
    st.builds(
        _npy,
        st.lists(st.integers(0, 2**40) | st.integers(0, 30), max_size=4).map(tuple),
        st.sampled_from(["|u1", "<i4", ">f8", "|O", "<U3", "|V4"]),
        st.binary(max_size=200),
        st.sampled_from([1, 2]),
    ),
)


@FUZZ
@given(members=st.lists(NPY, min_size=4, max_size=4), names=st.booleans())
def test_fuzzed_npz_archives(tmp_path: Path, members: list[bytes], names: bool) -> None:
    path = tmp_path / "fuzz.npz"
    keys = ["x_train", "y_train", "x_test", "y_test"] if names else ["a", "b", "c", "d"]
    with zipfile.ZipFile(path, "w") as archive:
        for key, content in zip(keys, members, strict=True):
            archive.writestr(f"{key}.npy", content)

    outcome = only_mnistkit_errors(lambda: read_npz(path))

    assert isinstance(outcome, (tuple, MnistkitError))


@FUZZ
@given(content=st.binary(max_size=400))
def test_fuzzed_bytes_as_an_npz(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fuzz.npz"
    path.write_bytes(content)

    assert isinstance(only_mnistkit_errors(lambda: read_npz(path)), MnistkitError)


# ---------------------------------------------------------------- model files' metadata


@FUZZ
@given(content=st.binary(max_size=200) | JSON.map(_json_bytes), stored=st.booleans())
def test_fuzzed_model_metadata(tmp_path: Path, content: bytes, stored: bool) -> None:
    path = tmp_path / "fuzz.keras"
    kind = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mnistkit.json", content, compress_type=kind)

    outcome = only_mnistkit_errors(lambda: read_metadata(path))

    assert isinstance(outcome, (dict, MnistkitError))


# ---------------------------------------------------------------- checkpoint state

STATE_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from([1, 2]) | JSON,
        "weights": st.just("ckpt-000000001.weights.h5") | JSON,
        "step": st.integers(-2, 10) | JSON,
        "total_steps": st.integers(-2, 10) | JSON,
        "seed": st.integers(-1, 2**33) | JSON,
        "stream_seed": st.integers(-1, 2**65) | JSON,
        "batch_size": st.integers(-1, 10) | JSON,
        "parameters": JSON,
        "model": JSON,
        "data_checksum": st.just("0" * 64) | JSON,
        "optimizer": JSON,
        "learning_rate": JSON,
    },
)


@FUZZ
@given(content=STATE_FIELDS.map(_json_bytes) | JSON.map(_json_bytes) | st.binary(max_size=200))
def test_fuzzed_checkpoint_states(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "state.json").write_bytes(content)
    (tmp_path / "ckpt-000000001.weights.h5").write_bytes(b"")

    outcome = only_mnistkit_errors(lambda: read_state(tmp_path))

    if isinstance(outcome, dict):  # what is accepted is what the Trainer needs
        assert 0 <= outcome["step"] <= outcome["total_steps"]
        assert isinstance(outcome["weights"], str)


# ---------------------------------------------------------------- run.json, history.csv

RUN_RECORDS = st.fixed_dictionaries(
    {"format": st.just(2) | JSON, "settings": st.dictionaries(st.text(max_size=12), JSON)},
    optional={"model": JSON, "command": JSON, "train_seconds": JSON},
)


@FUZZ
@given(content=RUN_RECORDS.map(_json_bytes) | JSON.map(_json_bytes) | st.binary(max_size=200))
def test_fuzzed_run_records(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "run.json").write_bytes(content)

    outcome = only_mnistkit_errors(lambda: read_run(tmp_path))

    assert isinstance(outcome, (dict, MnistkitError))
    assert isinstance(
        only_mnistkit_errors(lambda: read_json(tmp_path / "run.json")), (dict, MnistkitError)
    )


CSV_CELLS = st.text(alphabet='0123456789.,-e"\n\r abcnaif', max_size=120)


@FUZZ
@given(
    content=CSV_CELLS.map(lambda text: ("step,loss\n" + text).encode()) | st.binary(max_size=200)
)
def test_fuzzed_histories(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "history.csv").write_bytes(content)

    outcome = only_mnistkit_errors(lambda: read_history(tmp_path / "history.csv"))

    if isinstance(outcome, list):
        for row in outcome:
            assert all(isinstance(name, str) for name in row)
            assert not isinstance(row.get("step", 0), float)


# ---------------------------------------------------------------- images

MAGICS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8", b"GIF89a", b"GIF87a", b"BM", b""]


@FUZZ
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=300))
def test_fuzzed_image_headers_are_measured_without_decoding(magic: bytes, body: bytes) -> None:
    with bounded_memory():
        pixels = declared_pixels(magic + body)

    assert pixels is None or pixels >= 0


@pytest.mark.slow
@settings(FUZZ, max_examples=30)
@given(magic=st.sampled_from(MAGICS), body=st.binary(max_size=300))
def test_fuzzed_image_files(tmp_path: Path, magic: bytes, body: bytes) -> None:
    path = tmp_path / "fuzz.png"
    path.write_bytes(magic + body)

    try:
        image = read_image(path)
    except MnistkitError:
        return
    assert image.shape == (28, 28, 1)
