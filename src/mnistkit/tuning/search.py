"""The search itself: trials that train a model on the training split and score it on
the validation split, a line per trial, and the winner tested once at the end."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras

from mnistkit._extras import require
from mnistkit._interrupts import DeferredInterrupt
from mnistkit._lock import claim_folder
from mnistkit.datasets import DATASETS, Datasets, load_dataset
from mnistkit.errors import InvalidArgumentError, TrainingDivergedError
from mnistkit.models import MODELS, model_recipes
from mnistkit.recipes import Recipe, resolve_recipe
from mnistkit.tuning import report
from mnistkit.tuning import study as studies
from mnistkit.tuning.space import SearchSpace
from mnistkit.validation import check_non_negative_int, check_positive_float, check_positive_int

__all__ = ["TuneResult", "tune"]

#: The folder a search of ``MODEL`` writes to unless told otherwise; a fixed name, so
#: that the same command run again resumes the search.
DEFAULT_FOLDER = "runs/tune-{model}"


@dataclass(frozen=True)
class TuneResult:
    """What a search found.

    Attributes:
        recipe: The winning recipe (name ``"tuned"``).
        trial: The winning trial's number in the study.
        validation_accuracy: The winner's accuracy on the validation split, which
            chose it.
        test_accuracy: The winner's accuracy on the test split, measured once, after
            the search; ``None`` if ``test=False``.
        trials: How many trials of the study count (complete, pruned, or failed on an
            error of their own).
        folder: The search's folder.
        recipe_file: The winner's recipe file, with its provenance.
        plots: The plot files written (none without matplotlib, or with too few trials).
    """

    recipe: Recipe
    trial: int
    validation_accuracy: float
    test_accuracy: float | None
    trials: int
    folder: Path
    recipe_file: Path
    plots: tuple[Path, ...]


def tune(
    model: str,
    *,
    dataset: str = "mnist",
    recipe: str | Recipe | None = None,
    space: str | os.PathLike[str] | None = None,
    trials: int = 20,
    timeout: float | None = None,
    steps: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    output: str | os.PathLike[str] | None = None,
    storage: str | os.PathLike[str] | None = None,
    study: str | None = None,
    pruning: bool = True,
    test: bool = True,
    callbacks: Sequence[Callable[[Any, Any], None]] = (),
    command: str | None = None,
    verbose: int = 1,
) -> TuneResult:
    """Search a model's recipe with Optuna, scoring each trial on the validation split.

    Each trial draws settings from the search space (TPE sampling), trains the model
    from ``seed`` with the recipe so changed, and scores it by its accuracy on the
    validation split; a trial whose validation accuracy at the end of an epoch falls
    below the median of earlier trials' is pruned. The test split is not read until
    the search is over: then the winner is tested once, and its recipe written to
    ``best_recipe.json`` with its provenance. The study lives in ``output``
    (``study.db``) or in ``storage``; run the same call again to resume it.

    Args:
        model: A registered model's name.
        dataset: A registered dataset with a validation split.
        recipe: The recipe to start from: one of the model's by name, or a
            :class:`~mnistkit.Recipe`; ``None`` for its default. Settings the space
            does not vary keep this recipe's values.
        space: A JSON or TOML file that changes the model's search space (see
            :mod:`mnistkit.tuning.space`).
        trials: How many trials the study should hold when done, counting those of
            earlier runs and of other processes.
        timeout: Start no trial after this many seconds.
        steps: Train every trial for this many steps (a per-trial budget).
        epochs: Train every trial for this many epochs instead.
        seed: The seed every trial trains from (weights, data order, dropout).
        output: The search's folder; ``None`` for ``runs/tune-MODEL``.
        storage: Where the study lives: ``None`` for ``study.db`` in ``output``, a
            ``.journal`` file that processes on one machine share, or a database URL
            that machines share (see :mod:`mnistkit.tuning.study`).
        study: The study's name; ``None`` for ``MODEL-RECIPE``.
        pruning: Stop unpromising trials early.
        test: Test the winner on the test split once the search is over.
        callbacks: Optuna callbacks, called with ``(study, trial)`` after each trial.
        command: The command that started the search, for the recipe's provenance.
        verbose: 0 for silence, 1 for a line per trial.

    Returns:
        The :class:`TuneResult`.

    Raises:
        MissingDependencyError: If Optuna is not installed (``mnistkit[tune]``).
        InvalidArgumentError: If the search space names an unknown setting, holds an
            empty range or a value a recipe refuses, or a batch larger than the
            training split; or if the study holds a search with other settings.
        UnknownNameError: If ``model``, ``recipe`` or ``dataset`` names nothing
            registered.
    """
    optuna = require("optuna", extra="tune", purpose="Searching recipes")
    from optuna.trial import TrialState

    name = MODELS.entry(model).name
    trials = check_positive_int(trials, "trials")
    if timeout is not None:
        timeout = check_positive_float(timeout, "timeout")
    seed = check_non_negative_int(seed, "seed")
    base = resolve_recipe(model_recipes(name), recipe, model=name, steps=steps, epochs=epochs)
    search = SearchSpace.of(MODELS.get(name), base, space)
    if steps is not None or epochs is not None:
        search = search.without("steps", "epochs")
    data = load_dataset(DATASETS.entry(dataset).name)
    if not data.validation.num_examples:
        raise InvalidArgumentError(
            f"The dataset {dataset!r} has no validation split; a search scores its trials "
            "on one, and keeps the test split for the winner."
        )
    search.check(base, data.train.num_examples)

    folder = Path(output) if output is not None else Path(DEFAULT_FOLDER.format(model=name))
    if folder.exists() and not folder.is_dir():
        raise InvalidArgumentError(f"{folder} is a file, not a folder for a search.")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = claim_folder(folder)
    try:
        store = studies.make_storage(storage, folder)
        study_name = study or f"{name}-{base.label}"
        config = {"model": name, "dataset": dataset, "recipe": base.as_dict(),
                  "space": search.as_json(), "seed": seed}  # fmt: skip
        with _quiet_optuna(optuna):
            the_study = optuna.create_study(
                study_name=study_name,
                storage=store,
                direction="maximize",
                load_if_exists=True,
                sampler=optuna.samplers.TPESampler(
                    seed=_sampler_seed(optuna, seed, study_name, store, shared=storage is not None)
                ),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=3)
                if pruning
                else optuna.pruners.NopPruner(),
            )
        where = studies.describe_storage(storage, folder)
        _check_config(the_study, config, where)
        queued = studies.retry_orphans(the_study, store, exclusive=storage is None)
        done = studies.finished(the_study)
        shown = report.TrialLines(trials, search, printing=verbose > 0)
        shown.header(name, dataset, data, base, the_study, where, done=done, queued=queued)
        # Ctrl-C and SIGTERM are noted, and acted on where the study is consistent: between
        # trials, or (by the Trainer) between two training steps; never inside Optuna's or
        # SQLAlchemy's bookkeeping, where Python may drop an exception raised by a handler.
        interrupt = DeferredInterrupt()
        objective = _Objective(name, base, search, data, seed, interrupt)

        def after_trial(study: Any, trial: Any) -> None:
            if trial.state == TrialState.COMPLETE:
                report.keep_if_best(objective.trained, trial.number, study, folder)
            objective.trained = None
            if studies.finished(study) >= trials:
                study.stop()

        def act_on_interrupt(study: Any, trial: Any) -> None:
            interrupt.raise_pending()

        if done < trials:
            with _quiet_optuna(optuna), interrupt:
                the_study.optimize(
                    objective,
                    timeout=timeout,
                    callbacks=[after_trial, shown, *callbacks, act_on_interrupt],
                    catch=(TrainingDivergedError,),
                    gc_after_trial=True,
                )
                interrupt.raise_pending()
        return report.conclude(
            the_study,
            name=name,
            data=data,
            folder=folder,
            seed=seed,
            test=test,
            storage=where,
            command=command,
            retrain=objective.train,
            printing=verbose > 0,
        )
    finally:
        lock.unlink(missing_ok=True)
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a search that could not start leaves no folder behind


class _Objective:
    """One trial: train with the drawn settings, score on the validation split."""

    def __init__(
        self,
        name: str,
        base: Recipe,
        search: SearchSpace,
        data: Datasets,
        seed: int,
        interrupt: DeferredInterrupt | None = None,
    ) -> None:
        self.name, self.base, self.search, self.data = name, base, search, data
        self.seed, self.interrupt = seed, interrupt
        #: The trainer of the trial that just completed, until the study has its score.
        self.trained: Any = None

    def __call__(self, trial: Any) -> float:
        import optuna

        studies.claim_trial(trial)
        recipe = self.search.apply(self.base, self.search.suggest(trial))
        report.record_recipe(trial, recipe)
        start = time.monotonic()
        try:
            trainer, pruned_at = self.train(recipe, trial)
            report.record_run(trial, trainer)
        except KeyboardInterrupt:
            studies.mark_interrupted(trial)
            raise
        except TrainingDivergedError as error:
            studies.mark_error(trial, str(error))
            raise
        finally:
            trial.set_user_attr("seconds", round(time.monotonic() - start, 2))
        if pruned_at is not None:
            raise optuna.TrialPruned(f"pruned at epoch {pruned_at + 1}")
        self.trained = trainer
        return float(trainer.evaluate(self.data.validation)["accuracy"])

    def train(self, recipe: Recipe, trial: Any = None) -> tuple[Any, int | None]:
        """Train a model with ``recipe`` from the search's seed; the epoch it was pruned at."""
        from mnistkit.training import Trainer

        keras.backend.clear_session()  # a trial's graphs and layer names go with it
        trainer = Trainer(self.name, recipe=recipe, seed=self.seed)
        pruning = [] if trial is None else [_Pruning(trial)]
        with self._training(trial):  # the Trainer defers Ctrl-C to a step boundary itself
            trainer.fit(self.data.train, validation_data=self.data.validation,
                        callbacks=pruning, verbose=0)  # fmt: skip
        return trainer, (pruning[0].pruned_at if pruning else None)

    @contextlib.contextmanager
    def _training(self, trial: Any) -> Iterator[None]:
        """Within a trial, hand Ctrl-C to the Trainer's own deferral while it trains."""
        if self.interrupt is None or trial is None:  # a retraining after the search
            yield
            return
        self.interrupt.raise_pending()
        self.interrupt.__exit__(None, None, None)
        try:
            yield
        finally:
            self.interrupt.__enter__()


class _Pruning(keras.callbacks.Callback):
    """Reports each epoch's validation accuracy to the trial; stops it when told to prune."""

    def __init__(self, trial: Any) -> None:
        super().__init__()
        self.trial = trial
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get("val_accuracy")
        if value is None:
            return
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            self.pruned_at = epoch
            self.model.stop_training = True


def _check_config(study: Any, config: dict[str, Any], where: str) -> None:
    """Record the search's settings in a new study; refuse a study that holds another."""
    recorded = study.user_attrs.get("mnistkit")
    if recorded is None:
        study.set_user_attr("mnistkit", config)
        return
    differing = [key for key in config if recorded.get(key) != config[key]]
    if differing:
        raise InvalidArgumentError(
            f"The study {study.study_name!r} in {where} was started with another "
            f"{', '.join(differing)}; run it with the settings it was started with, or "
            "choose another --output or --study."
        )


def _sampler_seed(optuna: Any, seed: int, name: str, store: Any, *, shared: bool) -> int:
    """The sampler's seed: from the search's seed and the trials so far for a study of one
    process (a resumed search draws on, not again); drawn for a shared study, whose
    processes would otherwise try the same settings."""
    if shared:
        return random.SystemRandom().randrange(2**31)
    try:
        so_far = len(optuna.load_study(study_name=name, storage=store).trials)
    except KeyError:
        so_far = 0
    return (seed + 1_000_003 * so_far) % 2**32


@contextlib.contextmanager
def _quiet_optuna(optuna: Any) -> Iterator[None]:
    """Hold back Optuna's log lines (the trial lines say it) and experimental warnings,
    and TensorFlow's warning that functions are traced again: each trial builds a new
    model, whose functions are traced anew by design."""
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.ERROR)
    tensorflow = logging.getLogger("tensorflow")
    tensorflow.addFilter(_not_retracing)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        tensorflow.removeFilter(_not_retracing)
        optuna.logging.set_verbosity(previous)


def _not_retracing(record: logging.LogRecord) -> bool:
    return "triggered tf.function retracing" not in record.getMessage()
