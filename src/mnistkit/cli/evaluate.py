"""``mnistkit evaluate``: a saved model's (or an ensemble's) accuracy and loss on a test split."""

from __future__ import annotations

import argparse
from typing import Any

from mnistkit.cli._models import add_dataset_option, add_model_files, load_data, load_predictor
from mnistkit.cli._parser import EXIT_OK, add_command
from mnistkit.cli.listing import print_json

_EPILOG = """\
examples:
  mnistkit evaluate runs/cnn/model.keras
  mnistkit evaluate runs/cnn/model.keras --json | jq .accuracy
  mnistkit evaluate runs/cnn-*/model.keras        an ensemble of several runs"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``evaluate`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="print a saved model's accuracy and loss on the test split",
        description=(
            "Print the accuracy and loss of a saved model on a dataset's test split; of\n"
            "several, the accuracy and loss of their averaged probabilities."
        ),
        epilog=_EPILOG,
        handler=run,
    )
    add_model_files(parser, several=True)
    add_dataset_option(parser, "to test on")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (accuracy, loss, examples, model_files, dataset)",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate the model files on the test split."""
    predictor = load_predictor(args.model_files, debug=args.debug)
    dataset = args.dataset or "mnist"
    data = load_data(dataset)
    result = predictor.evaluate(data.test)
    files = [str(path) for path in args.model_files]
    if args.json:
        print_json({"model_files": files, "dataset": dataset, "split": "test", **result})
        return EXIT_OK
    print(f"Test accuracy: {result['accuracy']:.4f}")
    print(f"Test loss:     {result['loss']:.4f}")
    what = files[0] if len(files) == 1 else f"an ensemble of {len(files)} models"
    print(f"({what} on the {dataset} test split, {result['examples']:,} images)")
    return EXIT_OK
