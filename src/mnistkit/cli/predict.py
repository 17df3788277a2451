"""``mnistkit predict``: the digit a saved model reads in each image."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mnistkit.cli._models import add_model_files, load_predictor
from mnistkit.cli._parser import EXIT_OK, add_command
from mnistkit.cli.listing import print_json
from mnistkit.errors import DataNotFoundError

_EPILOG = """\
Each image should show one digit, on a plain background: a photo or scan of ink on
paper, or a white digit drawn on black. It is prepared as MNIST's digits were:
grayscale, inverted if the digit is dark on light, cropped to the digit, scaled to fit
20x20 and centred by its centre of mass in 28x28.

examples:
  mnistkit predict runs/cnn/model.keras seven.png
  mnistkit predict runs/cnn/model.keras scans/*.jpg --json"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``predict`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="read the digit in PNG or JPEG images",
        description="Print the digit a saved model reads in each image, with its probability.",
        epilog=_EPILOG,
        handler=run,
    )
    add_model_files(parser, several=False)
    parser.add_argument(
        "images",
        type=Path,
        nargs="+",
        metavar="IMAGE",
        help="PNG or JPEG files, each showing one digit",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list with one object per image (file, label, probability, "
        "probabilities)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the digit read in each image."""
    import numpy as np

    from mnistkit.images import read_image

    for path in args.images:
        if not path.is_file():
            raise DataNotFoundError(f"{path}: no such image file.")
    predictor = load_predictor([args.model_file], debug=args.debug)
    images = np.stack([read_image(path) for path in args.images])
    probabilities = predictor.predict(images)
    records: list[dict[str, Any]] = [
        {
            "file": str(path),
            "label": int(row.argmax()),
            "probability": float(row.max()),
            "probabilities": [round(float(p), 6) for p in row],
        }
        for path, row in zip(args.images, probabilities, strict=True)
    ]
    if args.json:
        print_json(records)
        return EXIT_OK
    width = max(len(record["file"]) for record in records)
    for record in records:
        print(
            f"{record['file']:<{width}}  {record['label']}  "
            f"(probability {record['probability']:.3f})"
        )
    return EXIT_OK
