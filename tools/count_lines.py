"""Count mnistkit's code lines: what runs, without docstrings, comments or blank lines.

Usage: ``python tools/count_lines.py [--by-module] [--limit N]``

Every line of ``src/mnistkit`` that holds code counts once; a docstring (the first
string of a module, class or function), a comment and a blank line do not. Modules that
later features added are counted apart, under the feature they belong to, so the core's
count can be held to a limit of its own (``--limit``, exit 1 when over).
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "mnistkit"

#: Modules (paths relative to src/mnistkit, folders ending in "/") that belong to a
#: feature counted apart from the core; everything else is the core.
FEATURES: dict[str, tuple[str, ...]] = {
    "scale-out (keras.distribution)": ("distribution.py", "cli/_distribution.py"),
    "recipe search (tune)": ("tune/", "cli/tune.py"),
    "hardening": ("_capped_zip.py",),
}


def docstring_lines(tree: ast.AST) -> set[int]:
    """Return the line numbers that docstrings occupy."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                first = body[0]
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def code_lines(source: str) -> int:
    """Return how many lines of ``source`` hold code (tokens other than comments)."""
    skip = docstring_lines(ast.parse(source))
    lines: set[int] = set()
    ignored = {
        tokenize.COMMENT,
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.INDENT,
        tokenize.DEDENT,
        tokenize.ENDMARKER,
        tokenize.ENCODING,
    }
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in ignored:
            continue
        for line in range(token.start[0], token.end[0] + 1):
            if line not in skip:
                lines.add(line)
    return len(lines)


def feature_of(relative: str) -> str:
    """Return the feature a module belongs to, or ``"core"``."""
    for feature, prefixes in FEATURES.items():
        if any(relative == p or (p.endswith("/") and relative.startswith(p)) for p in prefixes):
            return feature
    return "core"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by-module", action="store_true", help="list every module")
    parser.add_argument("--limit", type=int, help="fail when the core has more code lines")
    args = parser.parse_args(argv)
    totals: dict[str, int] = {}
    rows = []
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        count = code_lines(path.read_text(encoding="utf-8"))
        feature = feature_of(relative)
        totals[feature] = totals.get(feature, 0) + count
        rows.append((relative, feature, count))
    if args.by_module:
        for relative, feature, count in sorted(rows, key=lambda row: (row[1], -row[2])):
            print(f"{count:6d}  {feature:32s}  {relative}")
        print()
    for feature in sorted(totals, key=lambda name: name != "core"):
        print(f"{totals[feature]:6d}  {feature}")
    print(f"{sum(totals.values()):6d}  all")
    if args.limit is not None and totals.get("core", 0) > args.limit:
        print(f"core: {totals['core']} code lines, over the limit of {args.limit}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
