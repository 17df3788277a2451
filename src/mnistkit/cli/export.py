"""``mnistkit export``: write a model as a SavedModel, a TFLite file or an ONNX file, checked.

A thin layer over :func:`mnistkit.export.export_model`, which is imported (with
TensorFlow) only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mnistkit.cli._models import add_model_argument, load_models, resolve_model
from mnistkit.cli._parser import EXIT_OK, add_command, option_type, usage_error
from mnistkit.cli.listing import print_json
from mnistkit.export import FORMATS
from mnistkit.validation import check_positive_int

_SUFFIXES = {".tflite": "tflite", ".onnx": "onnx"}

_EPILOG = """\
Every export takes float32 images (N, 28, 28, 1) with values in [0, 1], white digits on
black, and gives float32 probabilities (N, 10); an int8 TFLite file takes and gives
them quantized, as the report says. After writing, the export is loaded with its own
runtime and checked on the 10,000 MNIST test images against the Keras model. TFLite
needs `pip install 'mnistkit[tflite]'`, ONNX `pip install 'mnistkit[onnx]'`.

examples:
  mnistkit export deep_cnn serving/deep_cnn       a SavedModel in serving/deep_cnn/1
  mnistkit export deep_cnn digits.tflite --quantize int8
  mnistkit export runs/cnn/model.keras digits.onnx --json"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``export`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="export a model for TF Serving, LiteRT (TFLite) or ONNX, checked after writing",
        description=(
            "Write a model as a SavedModel for TF Serving, a LiteRT (TFLite) file or an ONNX\n"
            "file, then load it with its own runtime and check it against the Keras model."
        ),
        epilog=_EPILOG,
        handler=run,
    )
    add_model_argument(parser)
    parser.add_argument(
        "destination",
        type=Path,
        metavar="DEST",
        help="a folder for a SavedModel (its versions go in numbered folders inside), or a "
        "file ending in .tflite or .onnx",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        help="the format (default: tflite for a DEST ending in .tflite, onnx for .onnx, "
        "else saved_model)",
    )
    parser.add_argument(
        "--quantize",
        choices=("int8",),
        help="int8: full-integer TFLite (DEST ending in .tflite), calibrated on 500 MNIST "
        "training images",
    )
    parser.add_argument(
        "--version",
        type=option_type(int, check_positive_int, "version"),
        metavar="N",
        help="the SavedModel's version folder (default: one more than the highest there, or 1)",
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the check against the Keras model on the test images",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON object (path, size_bytes, input contract, "
        "accuracy, keras_accuracy, max_difference...)",
    )


def run(args: argparse.Namespace) -> int:
    """Export the model and print what was written and how it was checked."""
    form = args.format or _SUFFIXES.get(args.destination.suffix, "saved_model")
    if args.quantize and form != "tflite":
        usage_error(args, f"argument --quantize: int8 is for the tflite format only, not {form}")
    if args.version is not None and form != "saved_model":
        usage_error(args, f"argument --version: for the saved_model format only, not {form}")
    source = resolve_model(args.model)
    (model,) = load_models([source], debug=args.debug)
    from mnistkit.export import export_model

    report = export_model(
        model,
        args.destination,
        format=form,
        quantize=args.quantize,
        version=args.version,
        verify=args.verify,
    )
    if args.json:
        print_json({"model": source.label, **report.as_dict()})
    else:
        print(report.summary())
    return EXIT_OK
