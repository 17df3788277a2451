"""``mnistkit models`` and ``mnistkit datasets``: what is registered, without TensorFlow."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

from mnistkit.cli._parser import EXIT_OK, add_command
from mnistkit.datasets import describe_datasets
from mnistkit.models import describe_models, list_models, model_recipes
from mnistkit.registry import Entry
from mnistkit.weights import model_weights

_MODELS_EPILOG = """\
Plugins add models through the `mnistkit.models` entry-point group of an installed
distribution; they are listed without being imported.

examples:
  mnistkit models
  mnistkit models '*cnn*' --recipes
  mnistkit models --pretrained                    the models that ship trained weights"""

_DATASETS_EPILOG = """\
Plugins add datasets through the `mnistkit.datasets` entry-point group.

examples:
  mnistkit datasets
  mnistkit datasets --json"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``models`` or the ``datasets`` command to the parser."""
    if name == "models":
        parser = add_command(
            commands,
            "models",
            summary="list the models: name, origin and summary",
            description="List the registered models: built in, or from an installed plugin.",
            epilog=_MODELS_EPILOG,
            handler=_models,
        )
        _add_listing(parser)
        parser.add_argument(
            "--recipes",
            action="store_true",
            help="show each model's training recipes too (imports the plugins that define them)",
        )
        parser.add_argument(
            "--pretrained",
            action="store_true",
            help="list only the models that ship trained weights, with each weight set's "
            "test accuracy (imports the plugins that define models)",
        )
    else:
        parser = add_command(
            commands,
            "datasets",
            summary="list the datasets: name, origin and summary",
            description="List the registered datasets: built in, or from an installed plugin.",
            epilog=_DATASETS_EPILOG,
            handler=_datasets,
        )
        _add_listing(parser)


def _add_listing(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="list only the names that match this shell pattern, such as '*cnn*'",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list with one object per name"
    )


def _models(args: argparse.Namespace) -> int:
    entries = describe_models(args.pattern)
    if args.pretrained:
        having = set(list_models(args.pattern, pretrained=True))
        entries = [entry for entry in entries if entry.name in having]
    recipes = {entry.name: model_recipes(entry.name) for entry in entries} if args.recipes else {}
    weights = {entry.name: model_weights(entry.name) for entry in entries if args.pretrained}
    if args.json:
        records = [_entry_record(entry) for entry in entries]
        for record in records:
            if args.recipes:
                record["recipes"] = {
                    name: recipe.as_dict() for name, recipe in recipes[record["name"]].items()
                }
            if args.pretrained:
                record["weights"] = {
                    name: dict(each.meta) for name, each in weights[record["name"]].items()
                }
        print_json(records)
        return EXIT_OK
    _print_entries(entries, "pretrained models" if args.pretrained else "models", args.pattern)
    for entry in entries if args.pretrained else []:
        for name, each in sorted(weights[entry.name].items()):
            print(f"{entry.name} weights {name!r}: {each.describe()}")
    for entry in entries if args.recipes else []:
        print(f"\n{entry.name} recipes:")
        if not recipes[entry.name]:
            print("  (none: the Trainer's generic settings, Adam at 0.001, one epoch of 32)")
        for name, recipe in sorted(recipes[entry.name].items()):
            print(f"  {name}: {recipe.describe()}")
            if recipe.summary:
                print(f"    {recipe.summary}")
    return EXIT_OK


def _datasets(args: argparse.Namespace) -> int:
    entries = describe_datasets(args.pattern)
    if args.json:
        print_json([_entry_record(entry) for entry in entries])
        return EXIT_OK
    _print_entries(entries, "datasets", args.pattern)
    return EXIT_OK


def _entry_record(entry: Entry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "origin": entry.origin,
        "distribution": entry.distribution,
        "summary": entry.summary,
        "notes": list(entry.notes),
    }


def _print_entries(entries: Sequence[Entry], kind: str, pattern: str | None) -> None:
    if not entries:
        matching = f" match {pattern!r}" if pattern else " are registered"
        print(f"No {kind}{matching}.")
        return
    rows = [(entry.name, entry.source, entry.summary) for entry in entries]
    name_width = max(len("NAME"), *(len(row[0]) for row in rows))
    origin_width = max(len("ORIGIN"), *(len(row[1]) for row in rows))
    print(f"{'NAME':<{name_width}}  {'ORIGIN':<{origin_width}}  SUMMARY")
    for entry, (name, origin, summary) in zip(entries, rows, strict=True):
        print(f"{name:<{name_width}}  {origin:<{origin_width}}  {summary}".rstrip())
        for note in entry.notes:
            print(f"{'':<{name_width}}  note: {note}")


def print_json(value: Any) -> None:
    """Print a value as indented JSON."""
    print(json.dumps(value, indent=2))
