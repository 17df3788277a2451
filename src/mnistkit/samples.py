"""Sample pictures of digits, shipped with mnistkit, to try a trained model on.

For each digit 0 to 9, the package holds the first image of that class in the MNIST
test set (for 3, the second: the first is half-way to an 8) twice: as MNIST stores it
(``7-mnist.png``, 28x28, white on black), and made to look like a photo of the digit
written on paper (``7-photo.png``: dark ink on light, unevenly lit paper, a larger
canvas, the digit turned a little and slightly blurred).
:func:`mnistkit.images.read_image` prepares either kind as MNIST's digits were::

    mnistkit predict runs/softmax/model.keras samples/*.png

The pictures are made by ``tools/make_samples.py`` in mnistkit's source tree.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import os
from pathlib import Path

from mnistkit._files import write_bytes_atomically
from mnistkit.errors import DataNotFoundError
from mnistkit.validation import invalid

__all__ = ["STYLES", "Sample", "sample_images", "write_samples"]

#: The styles of sample picture, MNIST's own image and a photo-like rendering of it.
STYLES = ("mnist", "photo")
_MANIFEST = "samples.json"


@dataclasses.dataclass(frozen=True)
class Sample:
    """One sample picture of a digit.

    Attributes:
        path: The PNG file.
        label: The digit it shows, 0 to 9.
        style: ``"mnist"`` (the test image as MNIST stores it, 28x28) or ``"photo"``
            (the same digit rendered as a photo of ink on paper, in colour, 112
            pixels high and 96 wide).
        test_index: The index of its image in the MNIST test set (the tutorial's
            ``mnist.test``, and ``load_dataset("mnist").test``).
    """

    path: Path
    label: int
    style: str
    test_index: int


def sample_images(style: str | None = None) -> list[Sample]:
    """Return the sample pictures shipped in the package, sorted by label then style.

    Args:
        style: ``"mnist"`` or ``"photo"`` for one style only; ``None`` for both.

    Returns:
        The samples. Their paths lie inside the installed package, to be read or
        copied elsewhere with :func:`write_samples`.

    Raises:
        InvalidArgumentError: If ``style`` is not one of :data:`STYLES` or ``None``.
        DataNotFoundError: If the package's sample files are missing.

    Example:
        >>> samples = sample_images()
        >>> len(samples), samples[0].path.name, samples[0].label
        (20, '0-mnist.png', 0)
        >>> [sample.path.name for sample in sample_images("photo")][:3]
        ['0-photo.png', '1-photo.png', '2-photo.png']
    """
    if style is not None and style not in STYLES:
        raise invalid("style", "one of 'mnist', 'photo' or None", style)
    folder = importlib.resources.files("mnistkit") / "data" / "samples"
    try:
        records = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))["samples"]
    except FileNotFoundError:
        raise DataNotFoundError(
            f"{folder}: the sample pictures are missing from this installation of mnistkit."
        ) from None
    samples = [
        Sample(
            path=Path(str(folder / record["file"])),
            label=int(record["label"]),
            style=str(record["style"]),
            test_index=int(record["test_index"]),
        )
        for record in records
        if style is None or record["style"] == style
    ]
    return sorted(samples, key=lambda sample: (sample.label, STYLES.index(sample.style)))


def write_samples(folder: str | os.PathLike[str], *, style: str | None = None) -> list[Sample]:
    """Copy the sample pictures into a folder, to pass them to ``mnistkit predict``.

    The folder is created if needed; files of the same names in it are replaced.

    Args:
        folder: Where to write the PNG files.
        style: ``"mnist"`` or ``"photo"`` for one style only; ``None`` for both.

    Returns:
        The samples, with the paths of the copies.

    Raises:
        InvalidArgumentError: If ``style`` is not one of :data:`STYLES` or ``None``.
        OSError: If the folder cannot be created or written to.

    Example:
        >>> import tempfile
        >>> copies = write_samples(tempfile.mkdtemp(), style="photo")
        >>> copies[7].path.name, copies[7].label, copies[7].path.is_file()
        ('7-photo.png', 7, True)
    """
    samples = sample_images(style)
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    for sample in samples:
        write_bytes_atomically(target / sample.path.name, sample.path.read_bytes())
    return [dataclasses.replace(sample, path=target / sample.path.name) for sample in samples]
