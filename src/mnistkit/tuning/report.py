"""What a search shows and leaves: a line per trial, the plots, the winner's model and
its recipe file, and the winner's test accuracy, measured once, after the search."""

from __future__ import annotations

import datetime
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistkit.datasets import Datasets
from mnistkit.errors import InvalidArgumentError
from mnistkit.precision import cpu_features
from mnistkit.recipe_files import write_recipe_file
from mnistkit.recipes import Recipe
from mnistkit.tuning import study as studies
from mnistkit.tuning.space import SearchSpace

if TYPE_CHECKING:
    from mnistkit.tuning.search import TuneResult

#: The files a search writes into its folder (besides ``study.db``).
RECIPE_FILE = "best_recipe.json"
HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"
# The winner's model, as the trial that trained it left it: best-trial-<number>.keras.
_BEST_MODEL = "best-trial-{number}.keras"


class TrialLines:
    """An Optuna callback that prints a line per finished trial (and the search's header)."""

    def __init__(self, total: int, space: SearchSpace, *, printing: bool) -> None:
        self.total, self.space, self.printing = total, space, printing
        self.started = time.monotonic()
        self.seconds: list[float] = []

    def header(self, model: str, dataset: str, data: Datasets, base: Recipe, study: Any,
               storage: str, *, done: int, queued: list[int]) -> None:  # fmt: skip
        """Print what is searched, where, and how far an earlier run got."""
        again = f"; trial {', '.join(map(str, queued))} tried again" if queued else ""
        state = f" (resuming: {done} of {self.total} done{again})" if done else ""
        self._print(
            f"Searching {self.total} trials of {model} on {dataset}: trained on "
            f"{data.train.num_examples:,} images, scored on {data.validation.num_examples:,} "
            f"validation images; the test images wait for the winner\n"
            f"Starting from: {base.describe()}\n"
            f"Searching: {self.space.describe()}\n"
            f"Study {study.study_name} in {storage}{state}"
        )

    def __call__(self, study: Any, trial: Any) -> None:
        from optuna.trial import TrialState

        seconds = float(trial.user_attrs.get("seconds", 0.0))
        self.seconds.append(seconds)
        settings = ", ".join(f"{k}={_short(v)}" for k, v in trial.params.items()) or "as is"
        if trial.state == TrialState.COMPLETE:
            outcome = f"validation {trial.value:.4f}"
        elif trial.state == TrialState.PRUNED:
            last = max(trial.intermediate_values, default=None)
            score = f" at {trial.intermediate_values[last]:.4f}" if last is not None else ""
            outcome = f"pruned after epoch {(last or 0) + 1}{score}"
        elif studies.error_of(trial) is not None:
            outcome = f"failed: {studies.error_of(trial)}"
        else:
            outcome = "interrupted"
        done = studies.finished(study)
        try:
            best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "no best yet"
        left = self._left(done)
        self._print(f"trial {trial.number} [{done}/{self.total}] {settings}: {outcome}; "
                    f"{best}; {seconds:.0f} s{left}")  # fmt: skip

    def _left(self, done: int) -> str:
        remaining = self.total - done
        if remaining <= 0 or not self.seconds:
            return ""
        seconds = statistics.mean(self.seconds) * remaining
        return f", about {_duration(seconds)} left"

    def _print(self, text: str) -> None:
        if self.printing:
            print(text, flush=True)


def keep_if_best(trainer: Any, number: int, study: Any, folder: Path) -> None:
    """Save trial ``number``'s model into ``folder`` if the study now names it the best.

    Only the best model is kept, so the winner is tested without training it again.
    """
    if trainer is None or study.best_trial.number != number:
        return
    trainer.save(folder / _BEST_MODEL.format(number=number))
    for older in folder.glob(_BEST_MODEL.format(number="*")):
        if older.name != _BEST_MODEL.format(number=number):
            older.unlink(missing_ok=True)


def conclude(
    study: Any,
    *,
    name: str,
    data: Datasets,
    folder: Path,
    seed: int,
    test: bool,
    storage: str,
    command: str | None,
    retrain: Callable[[Recipe], tuple[Any, Any]],
    printing: bool,
) -> TuneResult:
    """Test the winner once, write its recipe file and the plots, and say so."""
    from mnistkit.saving import load_model
    from mnistkit.training import Trainer
    from mnistkit.tuning.search import TuneResult

    try:
        winner = study.best_trial
    except ValueError:
        raise InvalidArgumentError(
            f"The study {study.study_name!r} has no finished trial yet: nothing to report."
        ) from None
    recipe = Recipe.from_dict(
        {
            **winner.user_attrs.get("recipe", {}),
            "name": "tuned",
            "summary": f"Found by mnistkit tune: trial {winner.number} of study "
            f"{study.study_name}, validation accuracy {winner.value:.4f}.",
        }
    )
    test_accuracy = None
    if test:
        saved = folder / _BEST_MODEL.format(number=winner.number)
        if saved.exists():
            trainer = Trainer(load_model(saved), seed=seed)
        else:  # another process ran the winner: train it here, from the same seed
            if printing:
                print(f"Training the winner, trial {winner.number}, again to test it (another "
                      "process ran it)", flush=True)  # fmt: skip
            trainer = retrain(recipe)[0]
        test_accuracy = float(trainer.evaluate(data.test)["accuracy"])
    run = winner.user_attrs.get("run", {})
    provenance = {
        "study": study.study_name,
        "storage": storage,
        "trial": winner.number,
        "trials": studies.finished(study),
        "model": name,
        "seed": seed,
        "validation_accuracy": winner.value,
        "test_accuracy": test_accuracy,
        "test_accuracy_note": "measured once, on the winner only, after the search",
        "command": command or " ".join(sys.argv),
        "versions": run.get("versions"),
        "cpu": run.get("cpu"),
        "precision": run.get("precision"),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    recipe_file = write_recipe_file(folder / RECIPE_FILE, recipe, provenance)
    plots = _plots(study, folder)
    result = TuneResult(
        recipe=recipe,
        trial=winner.number,
        validation_accuracy=float(winner.value),
        test_accuracy=test_accuracy,
        trials=studies.finished(study),
        folder=folder,
        recipe_file=recipe_file,
        plots=plots,
    )
    if printing:
        tested = (f"\nTest accuracy of the winner, measured once after the search: "
                  f"{test_accuracy:.4f}") if test_accuracy is not None else ""  # fmt: skip
        shown = ", ".join(path.name for path in plots) or "no plots (too few finished trials)"
        print(
            f"\nBest: trial {winner.number}, validation accuracy {winner.value:.4f}: "
            f"{recipe.describe()}{tested}\n"
            f"Saved in {folder}: {RECIPE_FILE}; {shown}\n"
            f"Train with it: mnistkit train {name} --recipe {recipe_file}",
            flush=True,
        )
    return result


def record_recipe(trial: Any, recipe: Recipe) -> None:
    """Record on ``trial`` the whole recipe it trains with, for the winner's file."""
    trial.set_user_attr("recipe", recipe.as_dict())


def record_run(trial: Any, trainer: Any) -> None:
    """Record on ``trial`` where it ran: the versions, the CPU and the precision resolved."""
    trial.set_user_attr(
        "run",
        {
            "versions": trainer.metadata["versions"],
            "cpu": cpu_features(),
            "precision": trainer.recipe.precision,
        },
    )


def _plots(study: Any, folder: Path) -> tuple[Path, ...]:
    from optuna.trial import TrialState

    from mnistkit import plots

    scored = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
        if trial.state == TrialState.COMPLETE:
            scored.append((trial.number, float(trial.value), False))
        elif trial.intermediate_values:
            last = max(trial.intermediate_values)
            scored.append((trial.number, float(trial.intermediate_values[last]), True))
    written = []
    if scored:
        written.append(plots.plot_search_history(scored, folder / HISTORY_PLOT))
    importances = _importances(study)
    if importances:
        written.append(plots.plot_importances(importances, folder / IMPORTANCE_PLOT))
    return tuple(written)


def _importances(study: Any) -> dict[str, float]:
    """Each varied setting's importance (Optuna's evaluator), or nothing where it cannot
    tell: fewer than two finished trials, or no setting that varied among them."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):
        return {}


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "none" if value is None else str(value)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"
