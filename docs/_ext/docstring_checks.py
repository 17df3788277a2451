"""Warn about docstrings that napoleon would render other than their author meant.

In Google style, a ``Returns:`` or ``Yields:`` section whose first line reads
``something: more`` names the type before the colon, and so does the first line of an
attribute's or a property's docstring. A sentence with a colon in it (``The names:
built-in, ...``) then renders with "The names" as its type. This extension runs before
napoleon and warns about each such line whose part before the colon is not a Python
type expression, so that ``-W`` fails the build and the sentence gets rephrased.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

_CODE = re.compile(r"``.+?``|:\w+:`.+?`|`.+?`")
_SECTIONS = ("Returns:", "Return:", "Yields:", "Yield:")


def _misread_type(line: str) -> str | None:
    """Return the text napoleon would take as a type, if it is prose rather than a type."""
    plain = _CODE.sub(lambda match: "x" * len(match.group()), line)
    colon = plain.find(":")
    if colon <= 0 or plain[colon : colon + 2] == "::":
        return None
    before = line[:colon].strip()
    try:
        ast.parse(before, mode="eval")
    except SyntaxError:
        return before
    return None


def check_docstring(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    firsts = []
    if what in ("attribute", "property", "data") and lines:
        firsts.append(lines[0])
    for index, line in enumerate(lines):
        if line.strip() in _SECTIONS:
            following = [text for text in lines[index + 1 :] if text.strip()]
            if following:
                firsts.append(following[0])
    for line in firsts:
        misread = _misread_type(line)
        if misread is not None:
            logger.warning(
                "docstring of %s: napoleon reads %r as a type in %r; rephrase without that colon",
                name,
                misread,
                line.strip(),
                type="docstring",
            )


def setup(app: Sphinx) -> dict[str, Any]:
    # Before napoleon (priority 500), which rewrites the lines.
    app.connect("autodoc-process-docstring", check_docstring, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
