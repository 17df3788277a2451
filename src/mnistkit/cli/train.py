"""``mnistkit train``: train a model and write a run folder.

The command settles the run's settings once, from the model's recipe and the options
given (:func:`~mnistkit.resolve_recipe`), records them in the run folder
(:class:`~mnistkit.runs.Run`), and hands them to the :class:`~mnistkit.Trainer`; a
resumed run reads them back from the folder, so it trains on exactly as it started.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path
from typing import Any

from mnistkit._files import restate
from mnistkit._signals import Terminated
from mnistkit.cli._models import load_data
from mnistkit.cli._parser import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PROG,
    add_command,
    join,
    option_type,
    registered,
    usage_error,
)
from mnistkit.datasets import DATASETS
from mnistkit.errors import DataFormatError, InvalidArgumentError, StorageError
from mnistkit.models import MODELS, model_recipes
from mnistkit.quiet import quiet_tensorflow
from mnistkit.recipes import OPTIMIZERS, OVERRIDABLE, PRECISIONS, Recipe, resolve_recipe
from mnistkit.run_folder import RUN_FILE
from mnistkit.runs import Run
from mnistkit.validation import (
    check_bool,
    check_one_of,
    check_positive_float,
    check_positive_int,
    check_probability,
    check_seed,
)

_EPILOG = """\
Settings not given come from the recipe: `mnistkit models --recipes` lists each model's
recipes and their settings. The run folder holds model.keras, metrics.json, history.csv,
run.json and the plots (learning_curves.png, confusion_matrix.png, misclassified.png; they
need `pip install 'mnistkit[plots]'`); while the run goes, the checkpoints that --resume
continues from. Ctrl-C stops the run after saving a checkpoint and prints the command that
resumes it.

examples:
  mnistkit train softmax                           1,000 steps of 100 at 0.5 (about 92%)
  mnistkit train softmax --steps 20 --output runs/quick
  mnistkit train deep_cnn --recipe fast            99.2% in about 4 epochs
  mnistkit train deep_cnn --steps 2000 --seed 1 --output runs/cnn
  mnistkit train deep_cnn --output runs/cnn --resume
  mnistkit train deep_cnn --optimizer sgd --learning-rate 0.05 --keep-prob 0.7"""

# The options that override a recipe's settings: (type, metavar, help), by recipe field.
_OVERRIDES: dict[str, dict[str, Any]] = {
    "steps": {
        "type": option_type(int, check_positive_int, "steps"),
        "metavar": "N",
        "help": "train for N steps (batches)",
    },
    "epochs": {
        "type": option_type(int, check_positive_int, "epochs"),
        "metavar": "N",
        "help": "train for N passes over the training split instead",
    },
    "batch_size": {
        "type": option_type(int, check_positive_int, "batch_size"),
        "metavar": "N",
        "help": "examples per training step",
    },
    "optimizer": {
        "type": option_type(str.lower, lambda v, n: check_one_of(v, n, OPTIMIZERS), "optimizer"),
        "metavar": "NAME",
        "help": f"a Keras optimizer: {join(OPTIMIZERS)}",
    },
    "learning_rate": {
        "type": option_type(float, check_positive_float, "learning_rate"),
        "metavar": "X",
        "help": "the (peak) learning rate, a positive number",
    },
    "keep_prob": {
        "type": option_type(float, check_probability, "keep_prob"),
        "metavar": "P",
        "help": "dropout keep probability while training, in (0, 1], for a model with dropout",
    },
    "precision": {
        "choices": PRECISIONS,
        "help": "computation precision: float32, mixed_bfloat16, mixed_float16, or auto "
        "(bfloat16 where the hardware runs it fast); the tutorial recipes use float32",
    },
}
assert set(_OVERRIDES) == set(OVERRIDABLE)


def add_parser(commands: Any, name: str) -> None:
    """Add the ``train`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="train a model and write a run folder (model, metrics, history, plots)",
        description=(
            "Train a model with its default recipe (the tutorial's settings) unless told\n"
            "otherwise, show its progress, test it, and write a run folder."
        ),
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument(
        "model",
        type=registered("model", MODELS.entry),
        metavar="MODEL",
        help="the model to train: softmax, deep_cnn, or another name from `mnistkit models`",
    )
    parser.add_argument(
        "--dataset",
        type=registered("dataset", DATASETS.entry),
        default=None,
        metavar="NAME",
        help="the dataset to train and test on, from `mnistkit datasets` (default: mnist)",
    )
    settings = parser.add_argument_group(
        "training settings", "Each defaults to the recipe's setting."
    )
    settings.add_argument(
        "--recipe",
        metavar="NAME",
        help="the model's recipe to start from (default: 'default', the tutorial's)",
    )
    length = settings.add_mutually_exclusive_group()
    for field, spec in _OVERRIDES.items():
        group = length if field in ("steps", "epochs") else settings
        group.add_argument(f"--{field.replace('_', '-')}", dest=field, **spec)
    settings.add_argument(
        "--seed",
        type=option_type(int, check_seed, "seed"),
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
    _add_run_options(parser)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    run_folder = parser.add_argument_group("run folder and progress")
    run_folder.add_argument(
        "--output",
        type=_folder,
        metavar="DIR",
        help="the run folder (default: a new folder in runs/ named after the model and "
        "the time, such as runs/softmax-20261128-142501)",
    )
    run_folder.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --output DIR from its last checkpoint, with "
        "the settings it was started with",
    )
    run_folder.add_argument(
        "--keep-checkpoints",
        action="store_true",
        help="keep the checkpoints when the run finishes (by default they are removed: a "
        "finished run cannot be resumed)",
    )
    run_folder.add_argument(
        "--log-every",
        type=option_type(int, check_positive_int, "log_every"),
        metavar="N",
        help="print the accuracy on the current batch every N steps (default: ten times a "
        "run by steps; a progress bar per epoch with --epochs)",
    )
    run_folder.add_argument(
        "--tensorboard",
        action="store_true",
        help="write TensorBoard event files into the run folder's tensorboard/ (see them with "
        "`tensorboard --logdir DIR`; with --log-every, the step-level figures too)",
    )
    run_folder.add_argument(
        "--strategy",
        choices=("mirrored",),
        help="train on several devices: mirrored, on every GPU of this machine (TensorFlow "
        "backend). --batch-size stays the global batch, split among the devices",
    )


def _folder(text: str) -> Path:
    if not text.strip():
        raise argparse.ArgumentTypeError(f"expected a folder; received {text!r}")
    return Path(text)


# ---------------------------------------------------------------- running


def run(args: argparse.Namespace) -> int:
    """Train the model and write its run folder."""
    if args.resume and args.output is None:
        usage_error(args, "argument --resume: needs --output DIR, the folder of the run")
    recipes = model_recipes(args.model)  # a plugin that fails to load fails here, at once
    if args.recipe is not None and args.recipe not in recipes:
        known = join(sorted(recipes)) or "none"
        usage_error(args, f"argument --recipe: the model {args.model!r} has no recipe "
                    f"{args.recipe!r}; its recipes: {known}")  # fmt: skip
    strategy = _make_strategy(args)
    quiet_tensorflow(debug=args.debug)
    with contextlib.ExitStack() as stack:
        the_run = _open_run(args, recipes)
        checkpoint_dir = the_run.checkpoint_dir
        stack.callback(the_run.close)
        resume_command = _command_line(args, the_run.folder, resume=True)
        try:
            return _train(args, the_run, strategy, checkpoint_dir)
        except KeyboardInterrupt as interrupt:
            terminated = isinstance(interrupt, Terminated)
            print(f"{PROG}: {'terminated' if terminated else 'interrupted'}; resume the run "
                  f"in {the_run.folder} with:\n  {resume_command}", file=sys.stderr)  # fmt: skip
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        except StorageError as error:
            the_run.abandon()
            if not (the_run.folder / RUN_FILE).exists():  # nothing was trained: start again
                raise restate(error, f"{error} Free some space, then run it again.") from error
            said = error.filename is not None and Path(error.filename).parent == checkpoint_dir
            where = "" if said else f" {_last_checkpoint(checkpoint_dir)}"
            raise restate(
                error, f"{error}{where} Free some space, then resume it with: {resume_command}"
            ) from error
        except Exception:
            the_run.abandon()  # removes only what it made, and only if nothing was trained
            raise


def _last_checkpoint(checkpoint_dir: Path) -> str:
    """Where the run's last good checkpoint is, in words, as it is on disk."""
    from mnistkit import checkpoints
    from mnistkit.errors import CheckpointError

    try:
        step = checkpoints.read_state(checkpoint_dir)["step"] if checkpoints.exists(
            checkpoint_dir) else None  # fmt: skip
    except CheckpointError:
        step = None
    if step is None:
        return f"No checkpoint is saved in {checkpoint_dir} yet."
    return f"The last good checkpoint (step {step}) is in {checkpoint_dir}."


def _open_run(args: argparse.Namespace, recipes: Any) -> Run:
    if args.resume:
        return Run.resume(args.output, args.model, changes=_given(args))
    return Run.start(
        args.model,
        settings=_fresh_settings(args, recipes),
        command=_command_line(args, args.output, resume=False),
        output=args.output,
    )


def _fresh_settings(args: argparse.Namespace, recipes: Any) -> dict[str, Any]:
    from mnistkit.precision import describe_precision, resolve_precision

    overrides = {name: getattr(args, name) for name in OVERRIDABLE}
    try:
        recipe = resolve_recipe(recipes, args.recipe, model=args.model, **overrides)
    except InvalidArgumentError as error:
        usage_error(args, str(error))
    wanted = recipe.precision or "float32"
    resolved = resolve_precision(wanted)
    return {
        "dataset": args.dataset or "mnist",
        "recipe": Recipe.from_dict({**recipe.as_dict(), "precision": resolved}).as_dict(),
        "precision_note": describe_precision(wanted, resolved),
        "seed": args.seed,
        "deterministic": bool(args.deterministic),
        "log_every": args.log_every,
        "strategy": args.strategy,
    }


def _given(args: argparse.Namespace) -> dict[str, Any]:
    """The settings typed on a resumed run's command line, by the names the run records."""
    given = {name: getattr(args, name) for name in OVERRIDABLE}
    if args.precision == "auto":
        from mnistkit.precision import resolve_precision

        given["precision"] = resolve_precision("auto")
    given.update(
        recipe_name=args.recipe,
        dataset=args.dataset,
        seed=args.seed,
        deterministic=args.deterministic,
        log_every=args.log_every,
        strategy=args.strategy,
    )
    return given


def _train(args: argparse.Namespace, the_run: Run, strategy: Any, checkpoint_dir: Path) -> int:
    from mnistkit import checkpoints
    from mnistkit.plan import RunPlan
    from mnistkit.training import Trainer

    settings = the_run.settings
    data = load_data(settings["dataset"])
    for split in ("train", "test"):
        if not getattr(data, split).num_examples:
            raise DataFormatError(
                f"The dataset {settings['dataset']!r} has no {split} images: a run trains on "
                "the first split and tests the model on the other."
            )
    recipe = Recipe.from_dict(settings["recipe"])
    deterministic = check_bool(settings["deterministic"], "deterministic")
    trainer = Trainer(
        args.model,
        recipe=recipe,
        seed=settings["seed"],
        strategy=strategy,
        deterministic=deterministic,
    )
    if settings["recipe"].get("keep_prob") is not None and trainer.recipe.keep_prob is None:
        the_run.abandon()
        usage_error(args, f"argument --keep-prob: the model {args.model!r} has no dropout "
                    "layer, so a keep probability does not apply")  # fmt: skip
    plan = trainer.plan(data.train, log_every=settings["log_every"])
    if settings["log_every"] is None and recipe.steps is not None:
        plan = trainer.plan(data.train, log_every=RunPlan.default_log_every(plan.total_steps))
    settings.update(seed=trainer.seed, log_every=plan.log_every)
    callbacks = [the_run.history_recorder(plan), *_tensorboard(args, the_run)]
    the_run.save()
    resume = the_run.resuming and checkpoints.exists(checkpoint_dir)
    in_all = f" ({plan.total_steps:,} steps in all)" if recipe.epochs is not None else ""
    print(
        f"Training {args.model} on {settings['dataset']} ({data.source}, "
        f"{data.train.num_examples:,} training images)\n"
        f"Recipe {recipe.label}: {recipe.describe()}, seed {trainer.seed}{in_all}\n"
        f"Precision: {settings.get('precision_note', recipe.precision)}\n"
        f"Run folder: {the_run.folder}{' (resuming)' if resume else ''}",
        flush=True,
    )
    with the_run.training_clock():
        trainer.fit(
            data.train,
            validation_data=data.validation if data.validation.num_examples else None,
            log_every=plan.log_every,
            callbacks=callbacks,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            verbose=1 if sys.stdout.isatty() else 2,
        )
    seconds = float(the_run.record["train_seconds"])
    results = the_run.finish(
        trainer, data, dataset=settings["dataset"], keep_checkpoints=args.keep_checkpoints
    )
    print(
        f"\nTest accuracy {results['test_accuracy']:.4f}, loss {results['test_loss']:.4f} "
        f"({data.test.num_examples:,} test images)\n"
        f"Trained {plan.total_steps:,} steps of {recipe.batch_size} in {_duration(seconds)}\n"
        f"Saved in {the_run.folder}: model.keras, metrics.json, history.csv; {results['plots']}"
    )
    return EXIT_OK


def _tensorboard(args: argparse.Namespace, the_run: Run) -> list[Any]:
    if not args.tensorboard:
        return []
    from mnistkit.tensorboard import TensorBoardLog

    return [TensorBoardLog(the_run.folder / "tensorboard")]


def _make_strategy(args: argparse.Namespace) -> Any:
    """Return the ``tf.distribute`` strategy that --strategy names, or ``None``."""
    if args.strategy is None:
        return None
    try:
        quiet_tensorflow(debug=args.debug)
        from mnistkit.distribute import make_strategy

        return make_strategy(args.strategy)
    except InvalidArgumentError as error:
        usage_error(args, f"argument --strategy: {error}")


def _command_line(args: argparse.Namespace, folder: Path | None, *, resume: bool) -> str:
    """Return the command as typed; with ``resume``, the one that resumes it in ``folder``."""
    words = list(args.argv)
    if resume and args.output is None:
        words += ["--output", str(folder)]
    if resume and not args.resume:
        words.append("--resume")
    is_script = Path(sys.argv[0]).name in (PROG, f"{PROG}.exe")
    program = [PROG] if is_script else [sys.executable, "-m", PROG]
    return shlex.join([*program, *words])


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"
