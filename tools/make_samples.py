"""Make the sample digits that ship in ``src/mnistkit/data/samples/``.

Usage::

    python tools/make_samples.py                 # rewrites src/mnistkit/data/samples/
    python tools/make_samples.py --output DIR

For each class, the first image of that class in the embedded MNIST test set (but for
those in ``PASSED_OVER``) is saved twice: as it is (``7-mnist.png``, 28x28, white on
black), and made to look like a phone photo of the digit written on paper
(``7-photo.png``): dark ink on a light, unevenly lit paper with some grain, a larger
canvas, the digit enlarged, turned a little, off centre and slightly blurred.
``samples.json`` records each file's label and test-set index.

The script is deterministic: its random numbers come from a fixed hash (SplitMix64) of
a seed, not from a generator whose stream could change between NumPy releases, and the
test suite checks that the shipped files are what it makes.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "mnistkit" / "data" / "samples"
MANIFEST = "samples.json"
#: The photos' size, (height, width) in pixels.
CANVAS = (112, 96)
#: Test images passed over, with why: the first 3 of the test set (index 18) is written
#: half-way to an 8, which a first try of ``mnistkit predict`` should not meet.
PASSED_OVER = {18: "an ambiguous 3, half-way to an 8"}
_MASK = (1 << 64) - 1


def uniform(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    """Return numbers in [0, 1) drawn from ``seed`` by SplitMix64, the same on any machine."""
    start = (seed * 0x9E3779B97F4A7C15) & _MASK
    x = np.arange(math.prod(shape), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    x += np.uint64(start)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return ((x >> np.uint64(11)).astype(np.float64) / 2.0**53).reshape(shape)


def bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sample ``image`` at fractional coordinates; zero outside it."""
    padded = np.pad(image, 1)
    rows = np.clip(rows + 1, 0, padded.shape[0] - 1)
    cols = np.clip(cols + 1, 0, padded.shape[1] - 1)
    top, left = np.floor(rows).astype(int), np.floor(cols).astype(int)
    bottom = np.minimum(top + 1, padded.shape[0] - 1)
    right = np.minimum(left + 1, padded.shape[1] - 1)
    dr, dc = rows - top, cols - left
    upper = padded[top, left] * (1 - dc) + padded[top, right] * dc
    lower = padded[bottom, left] * (1 - dc) + padded[bottom, right] * dc
    return upper * (1 - dr) + lower * dr  # type: ignore[no-any-return]


def blur(image: np.ndarray) -> np.ndarray:
    """Blur the first two axes with the 3-tap binomial kernel [1, 2, 1] / 4."""
    for axis in (0, 1):
        padded = np.pad(image, [(1, 1) if a == axis else (0, 0) for a in range(image.ndim)], "edge")
        ahead = np.take(padded, range(2, padded.shape[axis]), axis=axis)
        behind = np.take(padded, range(padded.shape[axis] - 2), axis=axis)
        image = (behind + 2 * image + ahead) / 4
    return image


def photograph(digit: np.ndarray, seed: int) -> np.ndarray:
    """Render a 28x28 MNIST digit as a photo of ink on paper: (H, W, 3) uint8."""
    height, width = CANVAS
    turn, scale, shift_r, shift_c, ink_tone, light = uniform(seed, (6,))
    angle = math.radians(-10 + 20 * turn)
    scale = 2.6 + 0.7 * scale
    centre_r = (height - 1) / 2 + (shift_r - 0.5) * 14
    centre_c = (width - 1) / 2 + (shift_c - 0.5) * 12
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    dr, dc = rows - centre_r, cols - centre_c
    cos, sin = math.cos(angle), math.sin(angle)
    source_r = (cos * dr - sin * dc) / scale + 13.5
    source_c = (sin * dr + cos * dc) / scale + 13.5
    ink = np.clip(1.3 * bilinear(digit.astype(np.float64) / 255, source_r, source_c), 0, 1)

    # Paper: light, lit more from one side, with soft blotches and fine grain.
    direction = 2 * math.pi * light
    ramp = (math.cos(direction) * rows / height + math.sin(direction) * cols / width) * 0.07
    coarse = uniform(seed + 1, (5, 5))
    blotches = bilinear(coarse, rows * 3 / (height - 1) + 0.5, cols * 3 / (width - 1) + 0.5)
    paper = 0.86 + ramp + 0.03 * (blotches - 0.5)
    tint = np.array([1.0, 0.985, 0.94])
    pen = np.array([0.10, 0.11, 0.22]) if ink_tone < 0.5 else np.array([0.17, 0.17, 0.18])
    colour = paper[..., None] * tint * (1 - 0.92 * ink[..., None]) + pen * 0.92 * ink[..., None]
    colour = blur(colour)
    grain = uniform(seed + 2, (height, width, 1)) + uniform(seed + 3, (height, width, 1))
    colour += 0.025 * (grain - 1) + 0.008 * (uniform(seed + 4, (height, width, 3)) - 0.5)
    return np.round(np.clip(colour, 0, 1) * 255).astype(np.uint8)


def make_samples(images: np.ndarray, labels: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
    """Return the sample pictures by file name, and the manifest that describes them.

    Args:
        images: The MNIST test images, (10000, 28, 28) uint8.
        labels: Their labels.
    """
    pictures: dict[str, np.ndarray] = {}
    records = []
    for label in range(10):
        index = next(int(i) for i in np.flatnonzero(labels == label) if i not in PASSED_OVER)
        for style in ("mnist", "photo"):
            name = f"{label}-{style}.png"
            if style == "mnist":
                pictures[name] = images[index][..., None]
            else:
                pictures[name] = photograph(images[index], seed=1000 + label)
            records.append({"file": name, "label": label, "style": style, "test_index": index})
    manifest = {
        "source": "the MNIST test set embedded in mnistkit (mnistkit/data/mnist.npz)",
        "made_by": "tools/make_samples.py",
        "samples": records,
    }
    return pictures, manifest


def encode_png(picture: np.ndarray) -> bytes:
    """Encode an (H, W, 1) or (H, W, 3) uint8 picture as PNG."""
    import tensorflow as tf

    return bytes(tf.io.encode_png(picture, compression=9).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help=f"the folder to write to (default: {OUTPUT})"
    )
    output: Path = parser.parse_args().output

    from mnistkit import load_dataset

    _, _, x_test, y_test = load_dataset("mnist").raw
    pictures, manifest = make_samples(x_test, y_test)
    output.mkdir(parents=True, exist_ok=True)
    for name, picture in pictures.items():
        (output / name).write_bytes(encode_png(picture))
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum((output / name).stat().st_size for name in [*pictures, MANIFEST])
    print(f"wrote {len(pictures)} pictures and {MANIFEST} to {output} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
