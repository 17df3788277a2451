"""``mnistkit tune``: search a model's recipe with Optuna, and write the winner's recipe.

The command checks what it can before Optuna and TensorFlow load (the model, the
recipe, the options), then hands over to :func:`mnistkit.tune`. The search's folder
has a fixed default name, so the same command run again resumes the search.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from mnistkit.cli._models import add_dataset_option, recipe_argument
from mnistkit.cli._parser import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PROG,
    add_command,
    option_type,
    registered,
)
from mnistkit.models import MODELS, model_recipes
from mnistkit.quiet import quiet_tensorflow
from mnistkit.validation import check_non_negative_int, check_positive_float, check_positive_int

_EPILOG = """\
Each trial trains on the training split and is scored on the validation split; the test
split is read once, for the winner, after the search. The folder (default
runs/tune-MODEL) holds study.db, best_recipe.json (the winner's recipe and where it came
from), optimization_history.png and param_importances.png. Ctrl-C or a kill stops the
search; the same command resumes it, trying the interrupted trial again.

A search-space file (JSON or TOML) changes the model's space, a line per setting:
  learning_rate = {low = 0.01, high = 1.0, log = true}
  batch_size = [50, 100, 200]
  schedule = "warmup_cosine"              (one value fixes a setting)

examples:
  mnistkit tune softmax --trials 4 --steps 200     a quick search, in seconds
  mnistkit tune deep_cnn --recipe fast --trials 30 --timeout 3600
  mnistkit tune deep_cnn --recipe fast --space narrow.toml --epochs 2
  mnistkit tune softmax --storage runs/shared.journal --output runs/tune-a   (and -b in
      another terminal: both processes work on one study)
  mnistkit train softmax --recipe runs/tune-softmax/best_recipe.json"""


def add_parser(commands: Any, name: str) -> None:
    """Add the ``tune`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="search a model's recipe with Optuna; write the best recipe and plots",
        description="Search the settings of a model's recipe (learning rate, batch size,\n"
        "dropout, augmentation...) with Optuna, scoring trials on the validation split.",
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument(
        "model",
        type=registered("model", MODELS.entry),
        metavar="MODEL",
        help="the model whose recipe to search: softmax, deep_cnn, or another name from "
        "`mnistkit models`",
    )
    add_dataset_option(parser, "to search on (it needs a validation split)")
    search = parser.add_argument_group("the search")
    search.add_argument(
        "--recipe",
        metavar="NAME|FILE",
        help="the recipe to start from, by name or a .json/.toml recipe file (default: the "
        "model's default); the settings the space does not vary keep its values",
    )
    search.add_argument(
        "--space",
        metavar="FILE",
        help="a JSON or TOML file that narrows or widens the model's search space",
    )
    search.add_argument(
        "--trials",
        type=option_type(int, check_positive_int, "trials"),
        default=20,
        metavar="N",
        help="how many trials the study holds when done, those of earlier runs and other "
        "processes included (default: 20)",
    )
    search.add_argument(
        "--timeout",
        type=option_type(float, check_positive_float, "timeout"),
        metavar="SECONDS",
        help="start no trial after this many seconds",
    )
    length = search.add_mutually_exclusive_group()
    length.add_argument(
        "--steps",
        type=option_type(int, check_positive_int, "steps"),
        metavar="N",
        help="train each trial for N steps (a per-trial budget)",
    )
    length.add_argument(
        "--epochs",
        type=option_type(int, check_positive_int, "epochs"),
        metavar="N",
        help="train each trial for N epochs",
    )
    search.add_argument(
        "--seed",
        type=option_type(int, check_non_negative_int, "seed"),
        default=0,
        metavar="N",
        help="the seed every trial trains from (default: 0)",
    )
    search.add_argument(
        "--no-pruning",
        dest="pruning",
        action="store_false",
        help="let every trial run to its end (by default a trial whose validation accuracy "
        "after an epoch is below the median of earlier trials' stops there)",
    )
    where = parser.add_argument_group("where the study lives")
    where.add_argument(
        "--output",
        metavar="DIR",
        help="the search's folder (default: runs/tune-MODEL; the same folder resumes)",
    )
    where.add_argument(
        "--storage",
        metavar="PATH|URL",
        help="the study's storage: a PATH.journal file that processes on one machine share, "
        "or a database URL (postgresql://USER:PASSWORD@HOST/DB) that machines share "
        "(default: study.db in the folder, for one process)",
    )
    where.add_argument(
        "--study",
        metavar="NAME",
        help="the study's name in the storage (default: MODEL-RECIPE)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the search and report its winner."""
    recipe = recipe_argument(args, model_recipes(args.model))
    quiet_tensorflow(debug=args.debug)
    from mnistkit.tuning.search import tune

    command = shlex.join([PROG, *args.argv])
    try:
        tune(
            args.model,
            dataset=args.dataset or "mnist",
            recipe=recipe,
            space=args.space,
            trials=args.trials,
            timeout=args.timeout,
            steps=args.steps,
            epochs=args.epochs,
            seed=args.seed,
            output=args.output,
            storage=args.storage,
            study=args.study,
            pruning=args.pruning,
            command=command,
        )
    except KeyboardInterrupt as interrupt:
        from mnistkit._signals import Terminated

        terminated = isinstance(interrupt, Terminated)
        print(f"{PROG}: {'terminated' if terminated else 'interrupted'}; finished trials are "
              f"kept. Resume the search with:\n  {command}", file=sys.stderr)  # fmt: skip
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    return EXIT_OK
