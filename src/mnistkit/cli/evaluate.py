"""``mnistkit evaluate``: a model's (or an ensemble's) accuracy and loss on a test split."""

from __future__ import annotations

import argparse
from typing import Any

from mnistkit.cli._models import (
    add_dataset_option,
    add_model_argument,
    load_data,
    load_predictor,
    refuse_non_finite,
    resolve_model,
)
from mnistkit.cli._parser import EXIT_OK, add_command
from mnistkit.cli.listing import print_json

_EPILOG = """\
examples:
  mnistkit evaluate deep_cnn                       the shipped pretrained weights
  mnistkit evaluate runs/cnn/model.keras
  mnistkit evaluate runs/cnn/model.keras --json | jq .accuracy
  mnistkit evaluate runs/cnn-*/model.keras        an ensemble of several runs"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``evaluate`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="print a model's accuracy and loss on the test split",
        description="Print the accuracy and loss of a model on a dataset's test split; of\n"
        "several, the accuracy and loss of their averaged probabilities.",
        epilog=_EPILOG,
        handler=run,
    )
    add_model_argument(parser, several=True)
    add_dataset_option(parser, "to test on")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object (accuracy, loss, examples, models, dataset)",
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate the models on the test split."""
    sources = [resolve_model(text) for text in args.models]
    predictor = load_predictor(sources, debug=args.debug)
    from mnistkit.predictor import score

    dataset = args.dataset or "mnist"
    test = load_data(dataset).test
    labels = [source.label for source in sources]
    ensemble = f"ensemble of {len(labels)} models"
    what = labels[0] if len(labels) == 1 else f"an {ensemble}"
    probabilities = predictor.predict(test.images)
    refuse_non_finite(probabilities, f"The model {what}" if len(labels) == 1 else f"The {ensemble}")
    result = score(probabilities, test.labels)
    if args.json:
        print_json({"models": labels, "dataset": dataset, "split": "test", **result})
        return EXIT_OK
    print(f"Test accuracy: {result['accuracy']:.4f}")
    print(f"Test loss:     {result['loss']:.4f}")
    print(f"({what} on the {dataset} test split, {result['examples']:,} images)")
    return EXIT_OK
