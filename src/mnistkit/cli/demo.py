"""``mnistkit demo``: serve the draw-a-digit page for a model, on this computer by default.

A thin layer over :func:`mnistkit.demo.serve_demo`, which is imported (with TensorFlow)
only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from mnistkit.cli._models import add_model_argument, load_models, resolve_model
from mnistkit.cli._parser import EXIT_OK, add_command, option_type
from mnistkit.validation import check_non_negative_int, invalid

_EPILOG = """\
Open the address it prints in a browser, draw a digit with the mouse, a finger or a
pen, and watch the model read it: the class, the ten probabilities, the image as the
model saw it, and, for a model with dropout, how much Monte-Carlo dropout passes agree.
The page loads nothing from elsewhere. By default only this computer can open it;
--host 0.0.0.0 lets in every computer that reaches this one. Ctrl-C stops it.

examples:
  mnistkit demo                                    the shipped deep_cnn weights
  mnistkit demo runs/cnn/model.keras --port 8080
  mnistkit demo softmax --host 0.0.0.0"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``demo`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="serve a draw-a-digit web page for a model, until Ctrl-C",
        description=(
            "Serve a web page where you draw a digit and see what a model reads in it,\n"
            "with its probabilities and uncertainty. It listens on 127.0.0.1 unless told."
        ),
        epilog=_EPILOG,
        handler=run,
    )
    add_model_argument(parser, default="deep_cnn")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (default: 127.0.0.1, this computer only; "
        "0.0.0.0 for every computer that reaches this one)",
    )
    parser.add_argument(
        "--port",
        type=option_type(int, _check_port, "port"),
        default=8000,
        metavar="N",
        help="the port (default: 8000; 0 picks a free one)",
    )
    parser.add_argument(
        "--samples",
        type=option_type(int, check_non_negative_int, "samples"),
        default=30,
        metavar="N",
        help="Monte-Carlo dropout passes per drawing, for a model with dropout (default: 30; "
        "0 for none)",
    )


def _check_port(value: Any, name: str) -> int:
    port = check_non_negative_int(value, name)
    if port > 65535:
        raise invalid(name, "an integer from 0 to 65535", value)
    return port


def run(args: argparse.Namespace) -> int:
    """Serve the page until Ctrl-C."""
    source = resolve_model(args.model)
    (model,) = load_models([source], debug=args.debug)
    from mnistkit.demo import serve_demo

    serve_demo(model, host=args.host, port=args.port, samples=args.samples)
    return EXIT_OK
