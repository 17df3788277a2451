"""A command-line reference generated from an :mod:`argparse` parser at build time.

In a document::

    .. argparse-reference:: mnistkit.cli:build_parser
       :prog: mnistkit

imports the module, calls the function and writes, for the parser and then for each
sub-command (recursively), a section with its description, its usage, and its
arguments and options as Sphinx ``option`` entries, so that
``:option:`mnistkit train --steps``` links to them. The reference cannot drift from
the code: it is the parser itself, read again at each build.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import textwrap
from collections.abc import Iterator
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

_UNDERLINES = "-~^'"
_WIDTH = 88
_INDENT = "   "


def _escape(text: str) -> str:
    """Return plain text with every reST markup character escaped."""
    return re.sub(r"([\\`*_|\[\]<>:-])", r"\\\1", text)


def _inline(text: str) -> str:
    """Return help text as reST: `quoted` commands and --options as code, the rest plain.

    Escaping ``-`` also keeps Sphinx's smart quotes from turning ``--`` into a dash.
    """
    parts = []
    for index, part in enumerate(re.split(r"`([^`]+)`", text)):
        if index % 2:
            parts.append(_literal(part))
            continue
        for piece in re.split(r"((?<![\w-])--?[A-Za-z][\w-]*)", part):
            literal = piece.startswith("-") and len(piece) > 1
            parts.append(_literal(piece) if literal else _escape(piece))
    return "".join(parts)


def _literal(text: str) -> str:
    # Escaped spaces, which reST drops, let the literal touch a letter or a bracket.
    return f"\\ ``{text}``\\ "


def _paragraphs(text: str, *, raw: bool) -> list[str]:
    """Return reST lines for a description or epilog.

    Text is split into blocks at blank lines. Each block becomes a paragraph, except,
    when the parser keeps its line breaks (``raw``), a block whose lines after the first
    are indented, such as ``examples:`` and its commands: its first line becomes a
    paragraph and the indented lines a literal block.
    """
    lines: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip("\n")):
        rows = block.splitlines()
        if raw and len(rows) > 1 and all(row[:1].isspace() for row in rows[1:] if row):
            head = rows[0].strip()
            lines += [_escape(head[:1].upper() + head[1:]), "", ".. code-block:: text", ""]
            lines += [_INDENT + row for row in textwrap.dedent("\n".join(rows[1:])).splitlines()]
            lines += [""]
        else:
            lines += [_inline(" ".join(block.split())), ""]
    return lines


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    """Return the parser's own formatter; the directive sets its width through ``COLUMNS``."""
    return parser._get_formatter()


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[list[str], str, argparse.ArgumentParser]]:
    """Yield ``(names, help, parser)`` for each sub-command: its name, then its aliases."""
    for action in parser._actions:  # argparse exposes no public walk over its actions
        if not isinstance(action, argparse._SubParsersAction):
            continue
        helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
        names: dict[int, list[str]] = {}
        for name, subparser in action.choices.items():
            names.setdefault(id(subparser), []).append(name)
        for name, subparser in action.choices.items():
            if names[id(subparser)][0] == name:
                yield names[id(subparser)], helps.get(name, ""), subparser


def _rename(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """Give a parser tree the program name ``new`` where it was built as ``old``."""
    if parser.prog == old or parser.prog.startswith(old + " "):
        parser.prog = new + parser.prog[len(old) :]
    for _, _, subparser in _subcommands(parser):
        _rename(subparser, old, new)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = _formatter(parser)
    text = formatter._expand_help(action) if action.help else ""
    default = action.default
    shows_default = (
        action.option_strings
        and action.nargs != 0
        and default not in (None, False, argparse.SUPPRESS)
        and "default" not in text.lower()
    )
    escaped = _inline(" ".join(text.split()))
    if shows_default:
        escaped += f" (default: ``{default}``)"
    return escaped.strip()


def _section(parser: argparse.ArgumentParser, *, level: int, summary: str, top: bool) -> list[str]:
    """Return reST lines for a parser; its title (unless ``top``) is underlined at ``level``."""
    raw = issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)
    lines: list[str] = []
    if not top:
        lines += [parser.prog, _UNDERLINES[level] * len(parser.prog), ""]
    lines += _paragraphs(parser.description or summary, raw=raw)
    usage = _formatter(parser)
    usage.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    lines += [".. code-block:: text", ""]
    lines += [_INDENT + line for line in usage.format_help().strip("\n").splitlines()]
    lines += ["", f".. program:: {parser.prog}", ""]

    commands = list(_subcommands(parser))
    for group in parser._action_groups:
        actions = [
            action
            for action in group._group_actions
            if action.help is not argparse.SUPPRESS
            and not isinstance(action, argparse._SubParsersAction)
            and (top or not isinstance(action, argparse._HelpAction))
        ]
        if not actions:
            continue
        lines += [f".. rubric:: {_escape(group.title.capitalize())}", ""]
        if group.description:
            lines += _paragraphs(group.description, raw=raw)
        for action in actions:
            invocation = _formatter(parser)._format_action_invocation(action)
            lines += [f".. option:: {invocation}", ""]
            lines += [_INDENT + _help(parser, action), ""]
    if commands:
        lines += [".. rubric:: Commands", ""]
        for names, text, subparser in commands:
            aliases = f" (alias: {', '.join(names[1:])})" if len(names) > 1 else ""
            lines += [f":ref:`{names[0]} <{_label(subparser)}>`{aliases}"]
            lines += [f"{_INDENT}{_inline(text) or '(no description)'}", ""]
    if parser.epilog:
        lines += _paragraphs(parser.epilog, raw=raw)
    for _, text, subparser in commands:
        lines += [f".. _{_label(subparser)}:", ""]
        lines += _section(subparser, level=level if top else level + 1, summary=text, top=False)
    return lines


def _label(parser: argparse.ArgumentParser) -> str:
    return "cli-" + "-".join(parser.prog.split())


class ArgparseReference(SphinxDirective):
    """``.. argparse-reference:: module:function``: document the parser that function builds."""

    required_arguments = 1
    option_spec = {"prog": directives.unchanged_required}  # noqa: RUF012  (docutils API)

    def run(self) -> list[nodes.Node]:
        module_name, _, function_name = self.arguments[0].partition(":")
        try:
            factory: Any = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as error:
            raise self.error(f"cannot import {self.arguments[0]}: {error}") from error
        parser = factory()
        if not isinstance(parser, argparse.ArgumentParser):
            raise self.error(f"{self.arguments[0]} returned {parser!r}, not an ArgumentParser")
        prog = self.options.get("prog")
        if prog:
            _rename(parser, parser.prog, prog)
        self.env.note_dependency(importlib.import_module(module_name).__file__ or "")
        # argparse sizes help to the terminal, read from COLUMNS: fix it for the build.
        columns = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = str(_WIDTH)
        try:
            lines = _section(parser, level=0, summary="", top=True)
        finally:
            if columns is None:
                del os.environ["COLUMNS"]
            else:
                os.environ["COLUMNS"] = columns
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(
            self.state, StringList(lines, source=self.arguments[0]), container, self.content_offset
        )
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("argparse-reference", ArgparseReference)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
