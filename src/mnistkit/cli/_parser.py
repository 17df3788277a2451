"""The command line's parser infrastructure: the parser, its formatter, and option types.

Option types wrap the checks of :mod:`mnistkit.validation`, so a value is refused on
the command line with the words the Python API uses, before anything heavy loads.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from mnistkit.errors import InvalidArgumentError, UnknownNameError
from mnistkit.quiet import DEBUG_VARIABLE
from mnistkit.registry import Entry

PROG = "mnistkit"

#: Exit statuses: success, a failure, a wrong command line, an interrupt (128 + SIGINT),
#: a termination (128 + SIGTERM).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


T = TypeVar("T")


class Parser(argparse.ArgumentParser):
    """An argument parser that reports a usage error in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs; a little more room for options."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def _format_action(self, action: argparse.Action) -> str:
        if isinstance(action, argparse._SubParsersAction):
            # List the commands without the "COMMAND  help" line argparse puts above them.
            return "".join(map(self._format_action, self._iter_indented_subactions(action)))
        return super()._format_action(action)


def option_type(
    convert: Callable[[str], Any], check: Callable[[Any, str], T], name: str
) -> Callable[[str], T]:
    """Return an ``argparse`` type that converts the text, then checks it as the API does.

    Args:
        convert: Turns the text into a value (``int``, ``float``...).
        check: A check of :mod:`mnistkit.validation`.
        name: The argument's name in the API, for the check.

    Returns:
        The type: it raises ``argparse.ArgumentTypeError`` with "expected ...; received
        '...'" for text the check refuses.
    """

    def parse(text: str) -> T:
        try:
            value = convert(text)
        except ValueError:
            value = text
        try:
            return check(value, name)
        except InvalidArgumentError as error:
            expected = error.expected or str(error)
            raise argparse.ArgumentTypeError(f"expected {expected}; received {text!r}") from None

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def registered(kind: str, entry: Callable[[str], Entry]) -> Callable[[str], str]:
    """Return an ``argparse`` type that accepts a registered name and returns its canonical form."""

    def check(text: str) -> str:
        try:
            return entry(text).name
        except (UnknownNameError, InvalidArgumentError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    check.__name__ = kind
    return check


def add_debug(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """Add ``--debug``, which shows the traceback of an error."""
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help=f"show the Python traceback of an error (or set {DEBUG_VARIABLE}=1)",
    )


def add_command(
    commands: Any,
    name: str,
    *,
    summary: str,
    description: str,
    epilog: str,
    handler: Callable[[argparse.Namespace], int],
) -> argparse.ArgumentParser:
    """Add a command's parser, with ``--debug`` and its handler as the ``handler`` default."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=Formatter,
        allow_abbrev=False,
    )
    # SUPPRESS: a --debug given before the command is not overwritten by this default.
    add_debug(parser, default=argparse.SUPPRESS)
    parser.set_defaults(handler=handler, command_parser=parser)
    return parser


def usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    """Stop with a usage error of the command being run."""
    parser: argparse.ArgumentParser = args.command_parser
    parser.error(message)
