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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnistkit._files import restate
from mnistkit._signals import Terminated
from mnistkit.cli._cluster import add_cluster_options, join_cluster
from mnistkit.cli._models import add_dataset_option, load_data, recipe_argument
from mnistkit.cli._parser import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    PROG,
    add_command,
    option_type,
    registered,
    usage_error,
)
from mnistkit.errors import CheckpointError, DataFormatError, InvalidArgumentError, StorageError
from mnistkit.models import MODELS, model_recipes
from mnistkit.quiet import quiet_tensorflow
from mnistkit.recipes import OPTIMIZERS, OVERRIDABLE, PRECISIONS, Recipe, resolve_recipe
from mnistkit.run_folder import RUN_FILE
from mnistkit.runs import Run
from mnistkit.validation import (
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
  mnistkit train softmax --recipe runs/tune-softmax/best_recipe.json
  mnistkit train deep_cnn --steps 2000 --seed 1 --output runs/cnn
  mnistkit train deep_cnn --output runs/cnn --resume
  mnistkit train deep_cnn --optimizer sgd --learning-rate 0.05 --keep-prob 0.7
  KERAS_BACKEND=jax mnistkit train softmax --coordinator localhost:8476 --processes 2 \
      --process-id 0                               (and --process-id 1 in a second shell)"""

# The options that override a recipe's field of the same name: (convert, check, metavar,
# help), for an option whose value the API's check takes.
_OVERRIDES: dict[str, tuple[Callable[..., Any], Callable[..., Any], str, str]] = {
    "steps": (int, check_positive_int, "N", "train for N steps (batches)"),
    "epochs": (int, check_positive_int, "N", "train for N passes over the training split instead"),
    "batch_size": (int, check_positive_int, "N", "examples per training step"),
    "optimizer": (
        str.lower,
        lambda v, n: check_one_of(v, n, OPTIMIZERS),
        "NAME",
        f"a Keras optimizer: {', '.join(OPTIMIZERS)}",
    ),
    "learning_rate": (
        float,
        check_positive_float,
        "X",
        "the (peak) learning rate, a positive number",
    ),
    "keep_prob": (
        float,
        check_probability,
        "P",
        "dropout keep probability while training, in (0, 1], for a model with dropout",
    ),
}
assert {*_OVERRIDES, "precision"} == set(OVERRIDABLE)
#: What a run records besides its recipe, each under its option's name.
_RUN_SETTINGS = ("dataset", "seed", "deterministic", "log_every", "strategy")


def add_parser(commands: Any, name: str) -> None:
    """Add the ``train`` command to the parser."""
    parser = add_command(
        commands,
        name,
        summary="train a model and write a run folder (model, metrics, history, plots)",
        description="Train a model with its default recipe (the tutorial's settings) unless told\n"
        "otherwise, show its progress, test it, and write a run folder.",
        epilog=_EPILOG,
        handler=run,
    )
    parser.add_argument(
        "model",
        type=registered("model", MODELS.entry),
        metavar="MODEL",
        help="the model to train: softmax, deep_cnn, or another name from `mnistkit models`",
    )
    add_dataset_option(parser, "to train and test on")
    settings = parser.add_argument_group(
        "training settings", "Each defaults to the recipe's setting."
    )
    settings.add_argument(
        "--recipe",
        metavar="NAME|FILE",
        help="the model's recipe to start from (default: 'default', the tutorial's), or a "
        "recipe file (.json or .toml, such as the best_recipe.json of `mnistkit tune`)",
    )
    length = settings.add_mutually_exclusive_group()
    for field, (convert, check, metavar, help) in _OVERRIDES.items():
        group = length if field in ("steps", "epochs") else settings
        group.add_argument(
            f"--{field.replace('_', '-')}",
            dest=field,
            type=option_type(convert, check, field),
            metavar=metavar,
            help=help,
        )
    settings.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="computation precision: float32, mixed_bfloat16, mixed_float16, or auto "
        "(bfloat16 where the hardware runs it fast); the tutorial recipes use float32",
    )
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
    add_cluster_options(parser)


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
    args.recipe = recipe_argument(args, recipes)
    quiet_tensorflow(debug=args.debug)
    strategy = None
    if args.strategy is not None:
        from mnistkit.distribute import make_strategy

        try:
            strategy = make_strategy(args.strategy)
        except InvalidArgumentError as error:
            usage_error(args, f"argument --strategy: {error}")
    distribution = join_cluster(args)
    if distribution is not None and args.process_id != 0:
        return _work(args, recipes, distribution)
    with _open_run(args, recipes) as the_run:
        resume_command = _command_line(args, the_run.folder, resume=True)
        try:
            return _train(args, the_run, strategy, distribution)
        except KeyboardInterrupt as interrupt:
            terminated = isinstance(interrupt, Terminated)
            print(f"{PROG}: {'terminated' if terminated else 'interrupted'}; resume the run "
                  f"in {the_run.folder} with:\n  {resume_command}", file=sys.stderr)  # fmt: skip
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        except Exception as error:
            the_run.abandon()  # removes only what it made, and only if nothing was trained
            if not isinstance(error, StorageError):
                raise
            if not (the_run.folder / RUN_FILE).exists():  # nothing was trained: start again
                raise restate(error, f"{error} Free some space, then run it again.") from error
            where = _last_checkpoint(the_run, error)
            raise restate(
                error, f"{error}{where} Free some space, then resume it with: {resume_command}"
            ) from error


def _last_checkpoint(the_run: Run, error: StorageError) -> str:
    """Where the run's last good checkpoint is, in words, unless the error says it already."""
    if error.filename is not None and Path(error.filename).parent == the_run.checkpoint_dir:
        return ""  # a failed checkpoint: the checkpointer named the last good one
    step = None
    with contextlib.suppress(CheckpointError):
        step = the_run.checkpoint_step()
    if step is None:
        return f" No checkpoint is saved in {the_run.checkpoint_dir} yet."
    return f" The last good checkpoint (step {step}) is in {the_run.checkpoint_dir}."


def _open_run(args: argparse.Namespace, recipes: Any) -> Run:
    from mnistkit.precision import describe_precision, resolve_precision

    overrides = {name: getattr(args, name) for name in OVERRIDABLE}
    settings = {name: getattr(args, name) for name in _RUN_SETTINGS}
    if args.resume:
        if args.precision == "auto":
            overrides["precision"] = resolve_precision("auto")
        named = args.recipe.name if isinstance(args.recipe, Recipe) else args.recipe
        changes = {**overrides, "recipe_name": named, **settings}
        return Run.resume(args.output, args.model, changes=changes)
    try:
        recipe = resolve_recipe(recipes, args.recipe, model=args.model, **overrides)
    except InvalidArgumentError as error:
        usage_error(args, str(error))
    wanted = recipe.precision or "float32"
    resolved = resolve_precision(wanted)
    settings.update(
        dataset=args.dataset or "mnist",
        recipe=Recipe.from_dict({**recipe.as_dict(), "precision": resolved}).as_dict(),
        precision_note=describe_precision(wanted, resolved),
        deterministic=bool(args.deterministic),
    )
    command = _command_line(args, args.output, resume=False)
    return Run.start(args.model, settings=settings, command=command, output=args.output)


def _train(args: argparse.Namespace, the_run: Run, strategy: Any, distribution: Any) -> int:
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
    trainer = Trainer(
        args.model,
        recipe=recipe,
        seed=settings["seed"],
        strategy=strategy,
        distribution=distribution,
        deterministic=settings["deterministic"],
    )
    if settings["recipe"].get("keep_prob") is not None and trainer.recipe.keep_prob is None:
        the_run.abandon()
        usage_error(args, f"argument --keep-prob: the model {args.model!r} has no dropout "
                    "layer, so a keep probability does not apply")  # fmt: skip
    plan = trainer.plan(data.train, log_every=settings["log_every"])
    if settings["log_every"] is None and recipe.steps is not None:
        plan = trainer.plan(data.train, log_every=RunPlan.default_log_every(plan.total_steps))
    settings.update(seed=trainer.seed, log_every=plan.log_every)
    callbacks = [the_run.history_recorder(plan)]
    if args.tensorboard:
        from mnistkit.tensorboard import TensorBoardLog

        callbacks.append(TensorBoardLog(the_run.folder / "tensorboard"))
    the_run.save()
    resume = the_run.resuming and the_run.checkpoint_step() is not None
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
            checkpoint_dir=the_run.checkpoint_dir,
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


def _work(args: argparse.Namespace, recipes: Any, distribution: Any) -> int:
    """Train beside the chief, as one of its other processes: write nothing, print little."""
    from mnistkit.plan import RunPlan
    from mnistkit.precision import resolve_precision
    from mnistkit.training import Trainer

    overrides = {name: getattr(args, name) for name in OVERRIDABLE}
    try:
        chosen = resolve_recipe(recipes, args.recipe, model=args.model, **overrides)
    except InvalidArgumentError as error:
        usage_error(args, str(error))
    resolved = resolve_precision(chosen.precision or "float32")
    recipe = Recipe.from_dict({**chosen.as_dict(), "precision": resolved})
    data = load_data(args.dataset or "mnist")
    trainer = Trainer(
        args.model,
        recipe=recipe,
        seed=args.seed,
        distribution=distribution,
        deterministic=bool(args.deterministic),
    )
    log_every = args.log_every
    if log_every is None and recipe.steps is not None:  # as the chief's, so the same plan
        log_every = RunPlan.default_log_every(trainer.plan(data.train).total_steps)
    print(f"Training {args.model} as process {args.process_id} of {args.processes}, beside "
          f"the chief at {args.coordinator}; it writes the run folder", flush=True)  # fmt: skip
    trainer.fit(data.train, log_every=log_every, verbose=0)
    print(f"Process {args.process_id}: trained {trainer.metadata['steps']:,} steps", flush=True)
    return EXIT_OK


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
