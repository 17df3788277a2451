"""``mnistkit predict``: the digit a model reads in each image."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from mnistkit.cli._models import ModelSource, add_model_argument, load_predictor, resolve_model
from mnistkit.cli._parser import EXIT_FAILURE, EXIT_OK, PROG, add_command
from mnistkit.cli.listing import print_json
from mnistkit.errors import MnistkitError

_EPILOG = """\
Each image should show one digit, on a plain background: a photo or scan of ink on
paper, or a white digit drawn on black. It is prepared as MNIST's digits were:
grayscale, inverted if the digit is dark on light, cropped to the digit, scaled to fit
20x20 and centred by its centre of mass in 28x28. An image that cannot be read is
reported on a line of its own, the others are still read, and the exit status is 1.

examples:
  mnistkit predict deep_cnn seven.png             the shipped pretrained weights
  mnistkit predict runs/cnn/model.keras seven.png
  mnistkit predict softmax scans/*.jpg --json"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``predict`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="read the digit in PNG or JPEG images",
        description="Print the digit a model reads in each image, with its probability.",
        epilog=_EPILOG,
        handler=run,
    )
    add_model_argument(parser)
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
        help="print a JSON list with one object per image read (file, label, probability, "
        "probabilities); the images that could not be read are reported on stderr",
    )


def run(args: argparse.Namespace) -> int:
    """Print the digit read in each image; report each image that cannot be read."""
    failures: dict[int, str] = {}
    for index, path in enumerate(args.images):
        if path.is_dir():
            failures[index] = f"{path}: is a folder, not an image file."
        elif not path.exists():  # a device or a pipe is refused when read
            failures[index] = f"{path}: no such image file."
    records = []
    if len(failures) < len(args.images):
        source = resolve_model(args.model)
        records = _predict(source, args.images, failures, debug=args.debug)
    if args.json:
        print_json(records)
    elif records:
        width = max(len(record["file"]) for record in records)
        for record in records:
            print(
                f"{record['file']:<{width}}  {record['label']}  "
                f"(probability {record['probability']:.3f})"
            )
    sys.stdout.flush()
    for _, failure in sorted(failures.items()):
        print(f"{PROG}: error: {failure}", file=sys.stderr)
    return EXIT_FAILURE if failures else EXIT_OK


def _predict(
    source: ModelSource, paths: list[Path], failures: dict[int, str], *, debug: bool
) -> list[dict[str, Any]]:
    """Read the images not failed yet, predict them, and record each failure by index."""
    import numpy as np

    from mnistkit.quiet import quiet_tensorflow

    quiet_tensorflow(debug=debug)
    from mnistkit.images import read_image

    read: dict[int, np.ndarray] = {}
    for index, path in enumerate(paths):
        if index in failures:
            continue
        try:
            read[index] = read_image(path)
        except (MnistkitError, OSError) as error:
            failures[index] = str(error)
    if not read:
        return []
    predictor = load_predictor([source], debug=debug)
    probabilities = dict(zip(read, predictor.predict(np.stack(list(read.values()))), strict=True))
    broken = [index for index, row in probabilities.items() if not np.isfinite(row).all()]
    said = f"the model {source.label} gives non-finite probabilities (NaN or infinity)"
    why = "; its weights are probably not finite."
    if len(broken) == len(probabilities) > 1:  # the model, not the images: say it once
        failures[broken[0]] = f"{said} for all {len(broken)} images{why}"
    else:
        failures.update({index: f"{paths[index]}: {said}{why}" for index in broken})
    return [
        {
            "file": str(paths[index]),
            "label": int(row.argmax()),
            "probability": float(row.max()),
            "probabilities": [round(float(p), 6) for p in row],
        }
        for index, row in probabilities.items()
        if index not in broken
    ]
