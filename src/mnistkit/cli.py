"""The ``mnistkit`` command line: train, evaluate, predict, and list models and datasets.

``mnistkit --help``, ``--version``, ``models`` and ``datasets`` answer without importing
TensorFlow; the commands that need it import it when they run. A mistake the user can
fix (an unknown name, a missing file, a value out of range) is reported in one line on
stderr, with exit status 2 for a wrong command line and 1 for a failure; ``--debug``
or ``MNISTKIT_DEBUG=1`` adds the Python traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from mnistkit import __version__
from mnistkit.datasets import describe_datasets
from mnistkit.errors import (
    CheckpointError,
    DataNotFoundError,
    InvalidArgumentError,
    MnistkitError,
    UnknownNameError,
)
from mnistkit.models import describe_models, model_recipes
from mnistkit.quiet import quiet_tensorflow
from mnistkit.recipes import OPTIMIZERS, PRECISIONS, Recipe, pick_recipe
from mnistkit.registry import Entry, PluginConflictWarning

if TYPE_CHECKING:
    from mnistkit.datasets import Datasets
    from mnistkit.training import Trainer

__all__ = ["build_parser", "main"]

PROG = "mnistkit"

#: Exit statuses: success, a failure, a wrong command line, an interrupt (128 + SIGINT).
EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_DEBUG_VARIABLE = "MNISTKIT_DEBUG"

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
  mnistkit evaluate runs/cnn/model.keras --json   test accuracy and loss
  mnistkit predict runs/cnn/model.keras digit.png photo.jpg

Run `mnistkit COMMAND --help` for the options of a command. Set MNISTKIT_DEBUG=1 (or
pass --debug) to see the Python traceback of an error."""

_TRAIN_EPILOG = """\
Settings not given come from the recipe: `mnistkit models --recipes` lists each model's
recipes and their settings. The run folder holds model.keras, metrics.json, history.csv,
run.json, the plots (learning_curves.png, confusion_matrix.png, misclassified.png; they
need `pip install 'mnistkit[plots]'`) and the checkpoints that --resume continues from.
Ctrl-C stops the run after saving a checkpoint and prints the command that resumes it.

examples:
  mnistkit train softmax                           1,000 steps of 100 at 0.5 (about 92%)
  mnistkit train softmax --steps 20 --output runs/quick
  mnistkit train deep_cnn --steps 2000 --seed 1 --output runs/cnn
  mnistkit train deep_cnn --output runs/cnn --resume
  mnistkit train deep_cnn --optimizer sgd --learning-rate 0.05 --keep-prob 0.7"""

_EVALUATE_EPILOG = """\
examples:
  mnistkit evaluate runs/cnn/model.keras
  mnistkit evaluate runs/cnn/model.keras --json | jq .accuracy"""

_PREDICT_EPILOG = """\
Each image should show one digit, on a plain background: a photo or scan of ink on
paper, or a white digit drawn on black. It is prepared as MNIST's digits were:
grayscale, inverted if the digit is dark on light, cropped to the digit, scaled to fit
20x20 and centred by its centre of mass in 28x28.

examples:
  mnistkit predict runs/cnn/model.keras seven.png
  mnistkit predict runs/cnn/model.keras scans/*.jpg --json"""

_MODELS_EPILOG = """\
Plugins add models through the `mnistkit.models` entry-point group of an installed
distribution; they are listed without being imported.

examples:
  mnistkit models
  mnistkit models '*cnn*' --recipes"""

_DATASETS_EPILOG = """\
Plugins add datasets through the `mnistkit.datasets` entry-point group.

examples:
  mnistkit datasets
  mnistkit datasets --json"""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports a usage error in one line."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: error: {message} (see `{self.prog} --help`)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the line breaks of descriptions and epilogs; a little more room for options."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def _format_action(self, action: argparse.Action) -> str:
        if isinstance(action, argparse._SubParsersAction):
            # List the commands without the "COMMAND  help" line argparse puts above them.
            return "".join(map(self._format_action, self._iter_indented_subactions(action)))
        return super()._format_action(action)


# ---------------------------------------------------------------- option values


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer; received {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer 0 or more; received {text!r}")
    return value


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1]; received {text!r}")
    return value


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number; received {text!r}")
    return value


def _optimizer(text: str) -> str:
    name = text.strip().lower()
    if name not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(OPTIMIZERS)}; received {text!r}"
        )
    return name


def _registered(kind: str, entry: Callable[[str], Entry]) -> Callable[[str], str]:
    def check(text: str) -> str:
        try:
            return entry(text).name
        except (UnknownNameError, InvalidArgumentError) as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    check.__name__ = kind  # argparse names the type in some messages
    return check


def _model_entry(name: str) -> Entry:
    from mnistkit.models import _registry

    return _registry.entry(name)


def _dataset_entry(name: str) -> Entry:
    from mnistkit.datasets import _registry

    return _registry.entry(name)


_model_name = _registered("model", _model_entry)
_dataset_name = _registered("dataset", _dataset_entry)


# ---------------------------------------------------------------- the parser


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
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}",
        help="print the version of mnistkit and exit",
    )  # fmt: skip
    _add_debug(parser, default=False)
    commands = parser.add_subparsers(
        title="commands",
        dest="command",
        metavar="COMMAND",
        required=True,
        help="what to do; `mnistkit COMMAND --help` describes its options",
    )
    _add_train(commands)
    _add_evaluate(commands)
    _add_predict(commands)
    _add_models(commands)
    _add_datasets(commands)
    return parser


def _add_debug(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default,
        help=f"show the Python traceback of an error (or set {_DEBUG_VARIABLE}=1)",
    )


def _command(
    commands: Any, name: str, *, summary: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=_Formatter,
        allow_abbrev=False,
    )
    # SUPPRESS: a --debug given before the command is not overwritten by this default.
    _add_debug(parser, default=argparse.SUPPRESS)
    return parser


def _add_model_file(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model_file",
        type=Path,
        metavar="MODEL_FILE",
        help="a .keras file, such as the model.keras of a run folder",
    )


def _add_dataset_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--dataset",
        type=_dataset_name,
        default=None,
        metavar="NAME",
        help=f"the dataset {what}, from `mnistkit datasets` (default: mnist)",
    )


def _add_train(commands: Any) -> None:
    parser = _command(
        commands,
        "train",
        summary="train a model and write a run folder (model, metrics, history, plots)",
        description=(
            "Train a model with its default recipe (the tutorial's settings) unless told\n"
            "otherwise, show its progress, test it, and write a run folder."
        ),
        epilog=_TRAIN_EPILOG,
    )
    parser.set_defaults(handler=_train, command_parser=parser)
    parser.add_argument(
        "model",
        type=_model_name,
        metavar="MODEL",
        help="the model to train: softmax, deep_cnn, or another name from `mnistkit models`",
    )
    _add_dataset_option(parser, "to train and test on")
    settings = parser.add_argument_group(
        "training settings", "Each defaults to the recipe's setting."
    )
    settings.add_argument(
        "--recipe",
        metavar="NAME",
        help="the model's recipe to start from (default: 'default', the tutorial's)",
    )
    length = settings.add_mutually_exclusive_group()
    length.add_argument(
        "--steps", type=_positive_int, metavar="N", help="train for N steps (batches)"
    )
    length.add_argument(
        "--epochs",
        type=_positive_int,
        metavar="N",
        help="train for N passes over the training split instead",
    )
    settings.add_argument(
        "--batch-size", type=_positive_int, metavar="N", help="examples per training step"
    )
    settings.add_argument(
        "--optimizer",
        type=_optimizer,
        metavar="NAME",
        help=f"a Keras optimizer: {', '.join(OPTIMIZERS)}",
    )
    settings.add_argument(
        "--learning-rate",
        type=_learning_rate,
        metavar="X",
        help="the (peak) learning rate, a positive number",
    )
    settings.add_argument(
        "--keep-prob",
        type=_probability,
        metavar="P",
        help="dropout keep probability while training, in (0, 1] (models without "
        "dropout ignore it)",
    )
    settings.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="computation precision: float32, mixed_bfloat16, mixed_float16, or auto "
        "(bfloat16 where the hardware runs it fast); the tutorial recipes use float32",
    )
    settings.add_argument(
        "--seed",
        type=_seed,
        metavar="N",
        help="seed of the initial weights, data order and dropout (default: drawn at "
        "random, and recorded in metrics.json)",
    )
    settings.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="make the run repeatable bit for bit on CPU (TensorFlow op determinism; "
        "slower); the seed defaults to 0",
    )
    run = parser.add_argument_group("run folder and progress")
    run.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="the run folder (default: a new folder in runs/ named after the model and "
        "the time, such as runs/softmax-20261128-142501)",
    )
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --output DIR from its last checkpoint, with "
        "the settings it was started with",
    )
    run.add_argument(
        "--log-every",
        type=_positive_int,
        metavar="N",
        help="print the accuracy on the current batch every N steps (default: ten times "
        "a run; once an epoch with --epochs)",
    )
    run.add_argument(
        "--strategy",
        choices=("mirrored", "multiworker"),
        help="train on several devices: mirrored, on every GPU of this machine; "
        "multiworker, on the machines that the TF_CONFIG environment variable lists, each "
        "running the same command with an --output folder they all reach. --batch-size "
        "stays the global batch, split among the devices",
    )


def _add_evaluate(commands: Any) -> None:
    parser = _command(
        commands,
        "evaluate",
        summary="print a saved model's accuracy and loss on the test split",
        description="Print the accuracy and loss of a saved model on a dataset's test split.",
        epilog=_EVALUATE_EPILOG,
    )
    parser.set_defaults(handler=_evaluate, command_parser=parser)
    _add_model_file(parser)
    _add_dataset_option(parser, "to test on")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (accuracy, loss, examples, model_file, dataset)",
    )


def _add_predict(commands: Any) -> None:
    parser = _command(
        commands,
        "predict",
        summary="read the digit in PNG or JPEG images",
        description="Print the digit a saved model reads in each image, with its probability.",
        epilog=_PREDICT_EPILOG,
    )
    parser.set_defaults(handler=_predict, command_parser=parser)
    _add_model_file(parser)
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


def _add_listing(
    commands: Any, name: str, *, summary: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    parser = _command(commands, name, summary=summary, description=description, epilog=epilog)
    parser.add_argument(
        "pattern",
        nargs="?",
        metavar="PATTERN",
        help="list only the names that match this shell pattern, such as '*cnn*'",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON list with one object per name"
    )
    return parser


def _add_models(commands: Any) -> None:
    parser = _add_listing(
        commands,
        "models",
        summary="list the models: name, origin and summary",
        description="List the registered models: built in, or from an installed plugin.",
        epilog=_MODELS_EPILOG,
    )
    parser.add_argument(
        "--recipes",
        action="store_true",
        help="show each model's training recipes too (imports the plugins that define them)",
    )
    parser.set_defaults(handler=_models, command_parser=parser)


def _add_datasets(commands: Any) -> None:
    parser = _add_listing(
        commands,
        "datasets",
        summary="list the datasets: name, origin and summary",
        description="List the registered datasets: built in, or from an installed plugin.",
        epilog=_DATASETS_EPILOG,
    )
    parser.set_defaults(handler=_datasets, command_parser=parser)


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``mnistkit`` command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit status, 0 on success, 1 on a failure, 2 on a wrong command line, 130
        when interrupted.

    Example:
        >>> main(["models", "soft*"])  # doctest: +NORMALIZE_WHITESPACE
        NAME     ORIGIN    SUMMARY
        softmax  built-in  Softmax regression: one dense layer from 784 pixels to 10 logits.
        0
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    # Before anything imports TensorFlow: keep its C++ start-up chatter off the screen.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    debug = os.environ.get(_DEBUG_VARIABLE, "").strip().lower() not in ("", "0", "false", "no")
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            args = build_parser().parse_args(argv)
            debug = args.debug = debug or args.debug
            args.argv = argv
            status: int = args.handler(args)
            return status
        except SystemExit as stop:  # --help, --version, and usage errors
            return stop.code if isinstance(stop.code, int) else EXIT_OK
        except KeyboardInterrupt:
            if debug:
                traceback.print_exc()
            print(f"{PROG}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
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
    if issubclass(category, PluginConflictWarning):
        print(f"{PROG}: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _usage_error(args: argparse.Namespace, message: str) -> NoReturn:
    parser: argparse.ArgumentParser = args.command_parser
    parser.error(message)


# ---------------------------------------------------------------- models, datasets


def _models(args: argparse.Namespace) -> int:
    entries = describe_models(args.pattern)
    recipes = {entry.name: model_recipes(entry.name) for entry in entries} if args.recipes else {}
    if args.json:
        records = [_entry_record(entry) for entry in entries]
        for record in records:
            if args.recipes:
                record["recipes"] = {
                    name: recipe.as_dict() for name, recipe in recipes[record["name"]].items()
                }
        _print_json(records)
        return EXIT_OK
    _print_entries(entries, "models", args.pattern)
    for entry in entries if args.recipes else []:
        print(f"\n{entry.name} recipes:")
        if not recipes[entry.name]:
            print("  (none: the Trainer's generic settings, Adam at 0.001, one epoch of 32)")
        for name, recipe in sorted(recipes[entry.name].items()):
            print(f"  {name}: {_recipe_line(recipe.as_dict())}")
            if recipe.summary:
                print(f"    {recipe.summary}")
    return EXIT_OK


def _datasets(args: argparse.Namespace) -> int:
    entries = describe_datasets(args.pattern)
    if args.json:
        _print_json([_entry_record(entry) for entry in entries])
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


def _recipe_line(settings: dict[str, Any]) -> str:
    length = (
        f"{settings['steps']:,} steps" if settings.get("steps") else f"{settings['epochs']} epochs"
    )
    parts = [
        f"{settings['optimizer']} at {settings['learning_rate']:g}",
        f"{length} of {settings['batch_size']}",
    ]
    if settings.get("keep_prob") is not None:
        parts.append(f"keep_prob {settings['keep_prob']:g}")
    if settings.get("schedule"):
        parts.append(f"{settings['schedule']} schedule")
    return ", ".join(parts)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# ---------------------------------------------------------------- evaluate, predict


def _load_for_inference(args: argparse.Namespace) -> Trainer:
    from mnistkit.saving import load_model, read_metadata

    read_metadata(args.model_file)  # a missing or broken file fails before TensorFlow loads
    quiet_tensorflow(debug=args.debug)
    from mnistkit.training import Trainer

    return Trainer(load_model(args.model_file, compile=False), seed=0)


def _evaluate(args: argparse.Namespace) -> int:
    trainer = _load_for_inference(args)
    dataset = args.dataset or "mnist"
    data = _load_data(dataset)
    result = trainer.evaluate(data.test)
    record = {
        "model_file": str(args.model_file),
        "dataset": dataset,
        "split": "test",
        "examples": data.test.num_examples,
        **result,
    }
    if args.json:
        _print_json(record)
        return EXIT_OK
    print(f"Test accuracy: {result['accuracy']:.4f}")
    print(f"Test loss:     {result['loss']:.4f}")
    print(f"({args.model_file} on the {dataset} test split, {data.test.num_examples:,} images)")
    return EXIT_OK


def _predict(args: argparse.Namespace) -> int:
    import numpy as np

    from mnistkit.images import read_image

    for path in args.images:
        if not path.is_file():
            raise DataNotFoundError(f"{path}: no such image file.")
    trainer = _load_for_inference(args)
    images = np.stack([read_image(path) for path in args.images])
    probabilities = trainer.predict(images)
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
        _print_json(records)
        return EXIT_OK
    width = max(len(record["file"]) for record in records)
    for record in records:
        print(
            f"{record['file']:<{width}}  {record['label']}  "
            f"(probability {record['probability']:.3f})"
        )
    return EXIT_OK


def _load_data(name: str) -> Datasets:
    from mnistkit.datasets import load_dataset

    return load_dataset(name)


# ---------------------------------------------------------------- train

# The options a run is started with, as run.json records them for --resume.
_SETTINGS = (
    "dataset",
    "recipe",
    "steps",
    "epochs",
    "batch_size",
    "optimizer",
    "learning_rate",
    "keep_prob",
    "precision",
    "seed",
    "deterministic",
    "log_every",
)


def _train(args: argparse.Namespace) -> int:
    recipes = model_recipes(args.model)  # a plugin that fails to load fails here, at once
    if args.recipe is not None:
        try:
            pick_recipe(args.model, recipes, args.recipe)
        except UnknownNameError as error:
            _usage_error(args, f"argument --recipe: {error}")
    if args.resume and args.output is None:
        _usage_error(args, "argument --resume: needs --output DIR, the folder of the run")
    if args.strategy == "multiworker" and args.output is None:
        _usage_error(args, "argument --strategy: multiworker needs --output DIR, on every worker")
    strategy = _make_strategy(args)
    # Every worker trains; only the chief writes the run folder, the others a scratch copy.
    scratch = strategy is not None and not strategy.extended.should_checkpoint

    given = {name: getattr(args, name) for name in _SETTINGS}
    if args.resume:
        folder: Path = args.output
        settings, seconds_before = _resumed_settings(args.model, folder, given)
    elif scratch:
        folder, settings, seconds_before = args.output, given, 0.0
    else:
        folder = _fresh_folder(args.model, args.output)
        settings, seconds_before = given, 0.0
    resume_command = _command_line(args, folder, resume=True)
    try:
        if scratch:
            with tempfile.TemporaryDirectory(prefix="mnistkit-worker-") as copy:
                return _run_training(args, Path(copy), settings, seconds_before, strategy)
        return _run_training(args, folder, settings, seconds_before, strategy)
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; resume the run in {folder} with:\n  {resume_command}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except Exception:
        if not args.resume and not scratch and not any(folder.iterdir()):
            folder.rmdir()  # a run that failed before writing anything leaves no folder
        raise


def _fresh_folder(model: str, output: Path | None) -> Path:
    from mnistkit import runs

    if output is None:
        return runs.new_run_folder(model)
    taken = [
        name
        for name in (runs.RUN_FILE, runs.MODEL_FILE, runs.METRICS_FILE, runs.CHECKPOINT_DIR)
        if (output / name).exists()
    ]
    if taken:
        raise CheckpointError(
            f"{output} already holds a run ({', '.join(taken)}). Add --resume to continue "
            "it, or choose another --output."
        )
    output.mkdir(parents=True, exist_ok=True)
    return output


def _resumed_settings(
    model: str, folder: Path, given: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    """Return the settings of the run to resume, those given overriding, and its time so far."""
    from mnistkit import runs

    if not folder.is_dir():
        raise DataNotFoundError(f"{folder}: no such run folder to resume.")
    if (folder / runs.METRICS_FILE).exists():
        raise CheckpointError(
            f"The run in {folder} has finished ({runs.METRICS_FILE} is there): there is "
            "nothing to resume. Start a new run with another --output."
        )
    record = runs.read_json(folder / runs.RUN_FILE) if (folder / runs.RUN_FILE).exists() else {}
    if record.get("model", model) != model:
        raise CheckpointError(
            f"{folder} holds a run of the model {record['model']!r}, not {model!r}."
        )
    saved = dict(record.get("settings", {}))
    if given["steps"] is not None or given["epochs"] is not None:
        saved.pop("steps", None)
        saved.pop("epochs", None)
    settings = {**saved, **{name: value for name, value in given.items() if value is not None}}
    return settings, float(record.get("train_seconds", 0.0))


def _command_line(args: argparse.Namespace, folder: Path, *, resume: bool) -> str:
    """Return the command as typed; with ``resume``, the one that resumes it in ``folder``."""
    words = list(args.argv)
    if resume and args.output is None:
        words += ["--output", str(folder)]
    if resume and not args.resume:
        words.append("--resume")
    is_script = Path(sys.argv[0]).name in (PROG, f"{PROG}.exe")
    program = [PROG] if is_script else [sys.executable, "-m", PROG]
    return shlex.join([*program, *words])


def _effective_recipe(args: argparse.Namespace, settings: dict[str, Any]) -> Recipe:
    """Return the model's recipe with the settings given on the command line applied."""
    from mnistkit.training import GENERIC_RECIPE

    name = settings.get("recipe")
    base = pick_recipe(args.model, model_recipes(args.model), name) or GENERIC_RECIPE
    changes = {
        key: settings.get(key)
        for key in (
            "optimizer",
            "learning_rate",
            "batch_size",
            "steps",
            "epochs",
            "keep_prob",
            "precision",
        )
        if settings.get(key) is not None
    }
    recipe = base.replace(**changes)
    if recipe != base:
        changed = ", ".join(f"{key}={value}" for key, value in changes.items())
        recipe = dataclasses.replace(
            recipe, summary=f"The {name or 'default'!r} recipe of {args.model!r}, with {changed}."
        )
    return recipe


def _make_strategy(args: argparse.Namespace) -> Any:
    """Return the ``tf.distribute`` strategy that --strategy names, or ``None``.

    Made before TensorFlow runs anything: the multi-worker strategy sets up the
    runtime's collective operations, which must come first.
    """
    if args.strategy is None:
        return None
    quiet_tensorflow(debug=args.debug)
    from mnistkit._distribute import make_strategy

    try:
        return make_strategy(args.strategy)
    except InvalidArgumentError as error:
        _usage_error(args, f"argument --strategy: {error}")


def _make_trainer(
    args: argparse.Namespace, settings: dict[str, Any], recipe: Recipe, strategy: Any
) -> Trainer:
    from mnistkit.training import Trainer

    try:
        return Trainer(
            args.model,
            # Given again by name so that the Trainer checks them.
            optimizer=settings.get("optimizer"),
            learning_rate=settings.get("learning_rate"),
            keep_prob=settings.get("keep_prob"),
            precision=settings.get("precision"),
            seed=settings.get("seed"),
            deterministic=bool(settings.get("deterministic")),
            strategy=strategy,
            recipe=recipe,
        )
    except InvalidArgumentError as error:
        # A command-line setting that only the Trainer judges, such as the optimizer's name.
        _usage_error(args, str(error))


def _run_training(
    args: argparse.Namespace,
    folder: Path,
    settings: dict[str, Any],
    seconds_before: float,
    strategy: Any,
) -> int:
    import numpy as np

    from mnistkit import _checkpoints, runs
    from mnistkit.plots import INSTALL_HINT, confusion_matrix
    from mnistkit.saving import read_metadata

    quiet_tensorflow(debug=args.debug)
    dataset = settings.get("dataset") or "mnist"
    data = _load_data(dataset)
    recipe = _effective_recipe(args, settings)
    trainer = _make_trainer(args, settings, recipe, strategy)
    steps_per_epoch = math.ceil(data.train.num_examples / recipe.batch_size)
    total = recipe.steps if recipe.steps is not None else recipe.epochs * steps_per_epoch  # type: ignore[operator]
    log_every = settings.get("log_every")
    if log_every is None and recipe.steps is not None:
        log_every = max(1, total // 10)
    checkpoints = (args.output or folder) / runs.CHECKPOINT_DIR  # the chief's, for all
    resume = bool(args.resume) and _checkpoints.exists(checkpoints)
    settings = {**settings, "seed": trainer.seed}
    run_file = folder / runs.RUN_FILE
    previous = runs.read_json(run_file) if resume and run_file.exists() else {}
    record = {
        "model": args.model,
        "command": previous.get("command") or _command_line(args, folder, resume=False),
        # A resumed run's settings replace the saved ones once its checkpoint accepts them.
        "settings": previous.get("settings") or settings,
        "train_seconds": seconds_before,
    }
    runs.write_json(run_file, record)
    history_rows: list[dict[str, Any]] = []
    if resume:
        # Rows past the checkpoint are logged again as the run goes over those steps.
        step = int(_checkpoints.read_state(checkpoints)["step"])
        rows = runs.read_history(folder / runs.HISTORY_FILE)
        history_rows = [
            row
            for row in rows
            if ("step" in row and row["step"] <= step)
            or ("epoch" in row and row["epoch"] <= step // steps_per_epoch)
        ]

    in_all = f" ({total:,} steps in all)" if recipe.epochs is not None else ""
    print(
        f"Training {args.model} on {dataset} ({data.source}, "
        f"{data.train.num_examples:,} training images)\n"
        f"Recipe {settings.get('recipe') or 'default'}: {_recipe_line(recipe.as_dict())}, "
        f"seed {trainer.seed}{in_all}\n"
        f"Run folder: {folder}{' (resuming)' if resume else ''}",
        flush=True,
    )
    started = time.perf_counter()
    accepted = False
    try:
        trainer.fit(
            data.train,
            validation_data=data.validation if data.validation.num_examples else None,
            log_every=log_every,
            callbacks=[
                _history_recorder(
                    folder / runs.HISTORY_FILE, history_rows, log_every=log_every, total=total
                )
            ],
            checkpoint_dir=checkpoints,
            resume=resume,
            verbose=1 if sys.stdout.isatty() else 2,
        )
        accepted = True
    except KeyboardInterrupt:
        accepted = True
        raise
    finally:
        record["train_seconds"] = seconds_before + time.perf_counter() - started
        if accepted:
            record["settings"] = settings
        runs.write_json(run_file, record)
    train_seconds = float(record["train_seconds"])

    result = trainer.evaluate(data.test)
    probabilities = trainer.predict(data.test.images)
    model_path = trainer.save(folder / runs.MODEL_FILE)
    labels = np.asarray(data.test.labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    metrics = {
        **read_metadata(model_path),
        "dataset": {
            "name": dataset,
            "source": data.source,
            "checksum": data.checksum,
            "train_examples": data.train.num_examples,
            "test_examples": data.test.num_examples,
        },
        "recipe_name": settings.get("recipe") or "default",
        "steps": total,
        "epochs": recipe.epochs,
        "log_every": log_every,
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "train_seconds": round(train_seconds, 3),
        "confusion_matrix": confusion_matrix(labels, probabilities.argmax(axis=1)),
        "command": record["command"],
    }
    runs.write_json(folder / runs.METRICS_FILE, metrics)
    try:
        runs.write_plots(
            folder,
            history=history_rows,
            images=data.test.images,
            labels=labels,
            probabilities=probabilities,
        )
        plots_note = "plots: " + ", ".join(runs.PLOT_FILES.values())
    except ModuleNotFoundError as error:
        if error.name != "matplotlib":
            raise
        plots_note = f"no plots: matplotlib is not installed ({INSTALL_HINT} to get them)"

    print(
        f"\nTest accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f} "
        f"({data.test.num_examples:,} test images)\n"
        f"Trained {total:,} steps of {recipe.batch_size} in {_duration(train_seconds)}\n"
        f"Run folder: {folder}\n"
        f"  model.keras, metrics.json, history.csv; {plots_note}"
    )
    return EXIT_OK


def _history_recorder(
    path: Path, rows: list[dict[str, Any]], *, log_every: int | None, total: int
) -> Any:
    """Return a Keras callback that writes each logged step or epoch to history.csv.

    The Trainer reports, at the end of each logged stretch of steps, the accuracy
    measured on the batch at its first step and the loss, accuracy and validation
    figures of its end. Each goes into the row of the step it describes, so that a
    row holds what was true at that step.
    """
    import keras

    from mnistkit import runs

    by_step = {int(row["step"]): row for row in rows if "step" in row}

    def record(epoch: int, logs: dict[str, Any] | None) -> None:
        figures = {name: float(value) for name, value in (logs or {}).items()}
        if "step" in figures and log_every is not None:
            start = int(figures.pop("step"))
            end = min((start // log_every + 1) * log_every, total)
            if "train_accuracy" in figures:
                by_step.setdefault(start, {"step": start})["train_accuracy"] = figures.pop(
                    "train_accuracy"
                )
            by_step.setdefault(end, {"step": end}).update(figures)
            rows[:] = [by_step[step] for step in sorted(by_step)]
        else:
            rows.append({"epoch": epoch + 1, **figures})
        runs.write_history(path, rows)

    return keras.callbacks.LambdaCallback(on_epoch_end=record)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"
