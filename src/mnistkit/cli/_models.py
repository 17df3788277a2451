"""What the commands that read saved models share: the argument, and loading for inference."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistkit.cli._parser import registered
from mnistkit.datasets import DATASETS

if TYPE_CHECKING:
    from mnistkit.predictor import Predictor


def add_model_files(parser: argparse.ArgumentParser, *, several: bool) -> None:
    """Add the MODEL_FILE argument: one ``.keras`` file, or several for an ensemble."""
    parser.add_argument(
        "model_files" if several else "model_file",
        type=Path,
        nargs="+" if several else None,
        metavar="MODEL_FILE",
        help="a .keras file, such as the model.keras of a run folder"
        + (
            "; several are evaluated as an ensemble (their probabilities averaged)"
            if several
            else ""
        ),
    )


def add_dataset_option(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--dataset NAME``."""
    parser.add_argument(
        "--dataset",
        type=registered("dataset", DATASETS.entry),
        default=None,
        metavar="NAME",
        help=f"the dataset {what}, from `mnistkit datasets` (default: mnist)",
    )


def load_predictor(paths: list[Path], *, debug: bool) -> Predictor:
    """Load saved models for inference: no Trainer, so no global generator is reseeded.

    A missing or broken file is reported before TensorFlow loads.
    """
    from mnistkit.saving import load_model, read_metadata

    for path in paths:
        read_metadata(path)
    from mnistkit.quiet import quiet_tensorflow

    quiet_tensorflow(debug=debug)
    from mnistkit.predictor import Predictor

    return Predictor([load_model(path, compile=False) for path in paths])


def load_data(name: str) -> Any:
    """Load a registered dataset by name."""
    from mnistkit.datasets import load_dataset

    return load_dataset(name)
