"""Small files that would take gigabytes: each refused in one line, at once, in little memory.

Each bomb is built here as users found them: a 3 MB gzip IDX file that inflates to
3 GiB (once behind an honest MNIST header, once behind a header that declares it all),
a 400 KB PNG of 20000x20000 pixels, a 7 MB ``.keras`` file whose ``mnistkit.json``
inflates to 1.5 GB, and 1.5 MB ``.keras`` files whose ``mnistkit.json``,
``config.json`` or weights inflate to 1.5 GB while their zip headers (local and
central, plain or zip64) declare 100 bytes. A fresh Python process reads each with
mnistkit's public reader and reports the error, the seconds the read took and the
process's peak resident memory: a :class:`~mnistkit.DataFormatError` within 1 s and
under 300 MB, imports included.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest

pytest.importorskip("resource", reason="peak memory is read with the resource module")

GiB = 2**30
BLOCK = 64 * 2**20
PEAK_LIMIT_MB = 300
SECONDS_LIMIT = 1.0

MEASURE = """
import json, resource, sys, time
from pathlib import Path
import mnistkit
from mnistkit.{module} import {reader}
path = Path(sys.argv[1])
started = time.perf_counter()
try:
    {reader}(path)
    error, kind = None, None
except Exception as caught:
    error, kind = str(caught), type(caught).__name__
seconds = time.perf_counter() - started
try:  # this program's own high-water mark (ru_maxrss may count the parent's, before exec)
    status = Path("/proc/self/status").read_text()
    peak = int(status.split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError):
    scale = 1 if sys.platform == "darwin" else 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20
print(json.dumps({{"error": error, "kind": kind, "seconds": seconds, "peak_mb": peak}}))
"""


def _idx_bomb(path: Path, shape: tuple[int, ...]) -> Path:
    """An IDX file of ``shape`` (uint8) followed by zeros up to 3 GiB, gzipped."""
    header = struct.pack(f">HBB{len(shape)}I", 0, 0x08, len(shape), *shape)
    first = gzip.compress(header + bytes(BLOCK - len(header)), compresslevel=9, mtime=0)
    rest = gzip.compress(bytes(BLOCK), compresslevel=9, mtime=0)  # gzip members concatenate
    path.write_bytes(first + rest * (3 * GiB // BLOCK - 1))
    return path


def _png_bomb(path: Path, side: int = 20000) -> Path:
    """A valid grayscale PNG of side x side black pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = bytes(side + 1) * 500  # each row: a filter byte, then the pixels
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(rows) for _ in range(side // 500)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def _keras_bomb(path: Path) -> Path:
    """A model file whose mnistkit.json inflates to 1.5 GB of spaces."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("config.json", "{}")
        with archive.open("mnistkit.json", "w", force_zip64=True) as member:
            block = b" " * BLOCK
            for _ in range(24):
                member.write(block)
    return path


def _deflated_spaces(size: int) -> tuple[bytes, int]:
    """Raw deflate data of ``size`` spaces, and its CRC-32."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block, crc = b" " * BLOCK, 0
    parts = []
    for _ in range(size // BLOCK):
        parts.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    return b"".join(parts) + compressor.flush(), crc


def _lying_zip(
    path: Path, members: dict[str, bytes | tuple[bytes, int, int]], *, zip64: bool
) -> Path:
    """A zip whose members are stored bytes, or (deflate data, CRC, declared size) triples.

    Written by hand, so that both the local and the central header of a deflated member
    declare the size given, not the size its data inflates to.
    """
    local, central = bytearray(), bytearray()
    for name, member in members.items():
        if isinstance(member, bytes):
            data, crc, declared, method = member, zlib.crc32(member), len(member), 0
        else:
            (data, crc, declared), method = member, 8
        encoded = name.encode()
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (len(data), declared)
        extra = struct.pack("<HHQQ", 1, 16, declared, len(data)) if zip64 else b""
        fields = struct.pack("<HHHHHI", 45, 0, method, 0, 0x21, crc)
        offset = len(local)
        local += b"PK\x03\x04" + fields + struct.pack("<IIHH", *sizes, len(encoded), len(extra))
        local += encoded + extra + data
        central += b"PK\x01\x02" + struct.pack("<H", 45) + fields
        central += struct.pack("<IIHHHHHII", *sizes, len(encoded), len(extra), 0, 0, 0, 0, offset)
        central += encoded + extra
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), len(central), len(local), 0
    )
    path.write_bytes(bytes(local + central + end))
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    data, crc = _deflated_spaces(24 * BLOCK)
    lie = (data, crc, 100)
    return {
        "idx-behind-an-mnist-header": _idx_bomb(folder / "images-idx3-ubyte.gz", (60000, 28, 28)),
        "idx-declaring-3-gib": _idx_bomb(folder / "declared-idx1-ubyte.gz", (3 * GiB,)),
        "png-20000x20000": _png_bomb(folder / "huge.png"),
        "keras-metadata": _keras_bomb(folder / "model.keras"),
        "lying-metadata": _lying_zip(
            folder / "lying_meta.keras", {"config.json": b"{}", "mnistkit.json": lie}, zip64=False
        ),
        "lying-zip64-metadata": _lying_zip(
            folder / "lying_zip64.keras", {"config.json": b"{}", "mnistkit.json": lie}, zip64=True
        ),
        "lying-config": _lying_zip(
            folder / "lying_config.keras", {"config.json": lie}, zip64=False
        ),
        "lying-weights": _lying_zip(
            folder / "lying_weights.keras",
            {"config.json": b"{}", "metadata.json": b"{}", "model.weights.h5": lie},
            zip64=False,
        ),
    }


LIE = "its {} inflates to more than the 100 bytes its header declares"
CASES = [
    ("idx-behind-an-mnist-header", "idx", "read_idx", "need 47040000 bytes, the file has more"),
    ("idx-declaring-3-gib", "idx", "read_idx", "more than the 1,073,741,824 allowed"),
    ("png-20000x20000", "images", "read_image", "declares 400,000,000 pixels"),
    ("keras-metadata", "saving", "read_metadata", "mnistkit.json declares 1,610,612,736 bytes"),
    ("keras-metadata", "saving", "load_model", "mnistkit.json declares 1,610,612,736 bytes"),
    ("lying-metadata", "saving", "read_metadata", LIE.format("mnistkit.json")),
    ("lying-metadata", "saving", "load_model", LIE.format("mnistkit.json")),
    ("lying-zip64-metadata", "saving", "read_metadata", LIE.format("mnistkit.json")),
    ("lying-zip64-metadata", "saving", "load_model", LIE.format("mnistkit.json")),
    ("lying-config", "saving", "load_model", LIE.format("config.json")),
    ("lying-weights", "saving", "load_model", LIE.format("model.weights.h5")),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bomb", "module", "reader", "message"), CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES]
)
def test_a_bomb_is_refused_at_once_in_little_memory(
    bombs: dict[str, Path], bomb: str, module: str, reader: str, message: str
) -> None:
    path = bombs[bomb]
    assert path.stat().st_size < 8 * 2**20  # small on disk

    result = subprocess.run(
        [sys.executable, "-c", MEASURE.format(module=module, reader=reader), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])

    assert measured["kind"] == "DataFormatError", measured
    assert message in measured["error"]
    assert "\n" not in measured["error"]
    assert measured["seconds"] < SECONDS_LIMIT, measured
    assert measured["peak_mb"] < PEAK_LIMIT_MB, measured


def test_a_lying_zip_declares_100_bytes_in_both_headers(bombs: dict[str, Path]) -> None:
    for bomb in ("lying-metadata", "lying-zip64-metadata"):
        with zipfile.ZipFile(bombs[bomb]) as archive:
            info = archive.getinfo("mnistkit.json")
            assert info.file_size == 100
            # zipfile finds the local header and stops at the declared 100 bytes
            with pytest.raises(zipfile.BadZipFile, match="CRC"), archive.open(info) as member:
                member.read(50)


MEASURE_ACCEPTED = """
import json, sys, time
from pathlib import Path
from mnistkit.images import read_image

def peak_mb():
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024

read_image(sys.argv[2])  # TensorFlow and its decoders loaded and warm
before = peak_mb()
started = time.perf_counter()
digit = read_image(sys.argv[1])
seconds = time.perf_counter() - started
print(json.dumps({"shape": list(digit.shape), "seconds": seconds, "grown_mb": peak_mb() - before}))
"""


def _rgba_digit_png(path: Path, side: int) -> Path:
    """An RGBA PNG of side x side pixels: a white bar, opaque, on a transparent field."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    blank = bytes(1 + 4 * side)
    bar = bytearray(blank)
    bar[1 + 4 * (side // 2 - side // 20) : 1 + 4 * (side // 2 + side // 20)] = b"\xff" * (
        4 * 2 * (side // 20)
    )
    compressor = zlib.compressobj(6)
    parts = [
        compressor.compress(blank if row < side // 4 or row >= 3 * side // 4 else bytes(bar))
        for row in range(side)
    ]
    idat = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.slow
def test_the_largest_picture_accepted_is_read_in_bounded_memory(tmp_path: Path) -> None:
    large = _rgba_digit_png(tmp_path / "large.png", 5000)  # 25 million pixels, the limit
    small = _rgba_digit_png(tmp_path / "small.png", 100)

    result = subprocess.run(
        [sys.executable, "-c", MEASURE_ACCEPTED, str(large), str(small)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])

    assert measured["shape"] == [28, 28, 1]
    assert measured["grown_mb"] < PEAK_LIMIT_MB, measured  # 100 MB of it is the decoded RGBA
