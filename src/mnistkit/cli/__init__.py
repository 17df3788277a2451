"""The ``mnistkit`` command line: train, evaluate, predict, and list models and datasets.

``mnistkit --help``, ``--version``, ``models`` and ``datasets`` answer without importing
TensorFlow; the commands that need it import it when they run. A mistake the user can
fix (an unknown name, a missing file, a value out of range) is reported in one line on
stderr, with exit status 2 for a wrong command line and 1 for a failure; ``--debug``
or ``MNISTKIT_DEBUG=1`` adds the Python traceback.

Each command lives in a module of its own (``mnistkit.cli.train``...), which adds its
options to the parser and runs it; this module holds the entry point.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import TextIO

from mnistkit._signals import Terminated, terminate_as_interrupt
from mnistkit._version import __version__
from mnistkit.cli._parser import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PROG,
    Formatter,
    Parser,
    add_debug,
)
from mnistkit.errors import MnistkitError
from mnistkit.quiet import DEBUG_VARIABLE
from mnistkit.registry import PluginConflictWarning, PluginLoadWarning

__all__ = ["COMMANDS", "build_parser", "main"]

#: The commands, in the order ``--help`` lists them, and the modules that define them.
COMMANDS = {
    "train": "mnistkit.cli.train",
    "tune": "mnistkit.cli.tune",
    "evaluate": "mnistkit.cli.evaluate",
    "predict": "mnistkit.cli.predict",
    "export": "mnistkit.cli.export",
    "demo": "mnistkit.cli.demo",
    "models": "mnistkit.cli.listing",
    "datasets": "mnistkit.cli.listing",
    "samples": "mnistkit.cli.samples",
}

_DESCRIPTION = """\
Train, evaluate and use the models of the TensorFlow MNIST tutorials, from softmax
regression to the deep convolutional network, with the tutorials' own recipes."""

_EPILOG = """\
examples:
  mnistkit models                                 the models you can train
  mnistkit train softmax                          the tutorial's softmax regression
  mnistkit train deep_cnn --steps 2000 --output runs/cnn
  mnistkit train deep_cnn --output runs/cnn --resume
                                                  continue an interrupted run
  mnistkit tune softmax --trials 4 --steps 200    search a better recipe (mnistkit[tune])
  mnistkit evaluate runs/cnn/model.keras --json   test accuracy and loss
  mnistkit predict runs/cnn/model.keras digit.png photo.jpg
  mnistkit samples digits                         twenty digit pictures to try
  mnistkit predict deep_cnn digit.png             with the shipped pretrained weights

Run `mnistkit COMMAND --help` for the options of a command. Set MNISTKIT_DEBUG=1 (or
pass --debug) to see the Python traceback of an error."""


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``mnistkit`` command line, with every command and option.

    The documentation generates its command-line reference from it. Parsing checks
    option values (a positive ``--steps``, a ``--keep-prob`` in (0, 1], a registered
    model name...), so a wrong value is a usage error before anything runs. Each
    command's handler is stored as the ``handler`` default of its namespace.

    Returns:
        The parser; ``parser.parse_args(["train", "softmax"])`` gives the namespace
        that :func:`main` runs.

    Example:
        >>> args = build_parser().parse_args(["train", "softmax", "--steps", "20"])
        >>> args.command, args.model, args.steps
        ('train', 'softmax', 20)
    """
    parser = Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=Formatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}",
        help="print the version of mnistkit and exit",
    )  # fmt: skip
    add_debug(parser, default=False)
    commands = parser.add_subparsers(
        title="commands",
        dest="command",
        metavar="COMMAND",
        required=True,
        help="what to do; `mnistkit COMMAND --help` describes its options",
    )
    for name, module in COMMANDS.items():
        importlib.import_module(module).add_parser(commands, name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mnistkit`` command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit status, 0 on success, 1 on a failure, 2 on a wrong command line, 130
        when interrupted (Ctrl-C), 143 when terminated (SIGTERM, which is taken as an
        interrupt: a training run saves its checkpoint).

    Example:
        >>> main(["models", "soft*"])  # doctest: +NORMALIZE_WHITESPACE
        NAME     ORIGIN    SUMMARY
        softmax  built-in  Softmax regression: one dense layer from 784 pixels to 10 logits.
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # Before anything imports TensorFlow: keep its C++ start-up chatter off the screen.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    debug = os.environ.get(DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")
    with warnings.catch_warnings(), terminate_as_interrupt():
        warnings.showwarning = _show_warning
        try:
            args = build_parser().parse_args(argv)
            debug = args.debug = debug or args.debug
            args.argv = argv
            status: int = args.handler(args)
            return status
        except SystemExit as stop:  # --help, --version, and usage errors
            return stop.code if isinstance(stop.code, int) else EXIT_OK
        except KeyboardInterrupt as interrupt:
            if debug:
                traceback.print_exc()
            terminated = isinstance(interrupt, Terminated)
            print(f"{PROG}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        except (MnistkitError, OSError) as error:
            if debug:
                traceback.print_exc()
            print(f"{PROG}: error: {_describe(error)}", file=sys.stderr)
            return EXIT_FAILURE


def _describe(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, MnistkitError):
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror or error}"
    return str(error)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    if issubclass(category, (PluginConflictWarning, PluginLoadWarning)) or _in_package(filename):
        print(f"{PROG}: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _in_package(filename: str) -> bool:
    """Whether a warning was raised from mnistkit's own code (a message for the user)."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.abspath(filename).startswith(package + os.sep)
