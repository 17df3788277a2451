"""``mnistkit samples``: copy the sample digit pictures out, to try ``predict`` on."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mnistkit.cli._parser import EXIT_OK, add_command
from mnistkit.samples import STYLES, write_samples

_EPILOG = """\
The pictures are the first test image of each digit (for 3, the second) as MNIST stores
it (7-mnist.png), and the same digit made to look like a photo of ink on paper (7-photo.png).

examples:
  mnistkit samples digits
  mnistkit predict runs/softmax/model.keras digits/*.png"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``samples`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="copy twenty sample digit pictures into a folder, to try predict on",
        description="Copy the sample digit pictures that ship with mnistkit into a folder.",
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument(
        "folder", type=Path, metavar="FOLDER", help="where to write them (made if needed)"
    )
    parser.add_argument(
        "--style", choices=STYLES, help="only the MNIST pictures, or only the photo-like ones"
    )


def run(args: argparse.Namespace) -> int:
    """Write the samples and say what each one shows."""
    written = write_samples(args.folder, style=args.style)
    for sample in written:
        print(f"{sample.path}  {sample.label}")
    print(
        f"\nTry them: mnistkit predict MODEL {args.folder / '*.png'}\n"
        "  MODEL: a .keras file, or a model name such as deep_cnn (its pretrained weights)"
    )
    return EXIT_OK
