"""The Trainer's own Keras callbacks: epochs for user callbacks, the log, checkpoints, the guard.

``Trainer.fit`` runs one ``keras.Model.fit`` of one Keras epoch over the whole run (so
that Keras finalises averaged weights once, at the end), and :class:`Monitor` gives the
user's callbacks what ``model.fit`` would: ``on_epoch_begin``/``on_epoch_end`` once per
pass over the training data, with the epoch's mean training metrics and the validation
metrics in ``logs``, and their batch hooks numbered within the epoch. It also measures
the tutorial's log line ("step N, training accuracy A") and the figures of each logged
stretch of steps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnistkit import checkpoints, distribute
from mnistkit._files import restate
from mnistkit._sources import EVALUATION_BATCH, DataSource
from mnistkit.errors import CheckpointError, StorageError
from mnistkit.plan import RunPlan
from mnistkit.validation import invalid

#: Keras callback hooks that see single steps.
BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")


class RunHistory(keras.callbacks.History):
    """The Keras ``History`` of a run, with the log of its logged steps beside the epochs.

    ``history`` and ``epoch`` hold one entry per epoch (a pass over the training data),
    as ``keras.Model.fit`` gives them; :attr:`log` holds one record per logged step.
    """

    def __init__(self) -> None:
        super().__init__()
        #: One dictionary per logged step, with ``step``, ``train_accuracy`` (the accuracy
        #: on the batch about to be trained on, dropout off) and, for the stretch of steps
        #: that ends there, the mean ``loss``, ``accuracy`` and the validation figures.
        self.log: list[dict[str, float]] = []


def watches_steps(callback: keras.callbacks.Callback) -> bool:
    """Return whether ``callback`` overrides a hook that sees single training steps."""
    base = keras.callbacks.Callback
    return any(getattr(type(callback), hook) is not getattr(base, hook) for hook in BATCH_HOOKS)


class StepClock:
    """How many steps of the run are done, from the optimizer's count."""

    def __init__(self, optimizer: Any, start: int) -> None:
        self.optimizer = optimizer
        self.start = start
        self.base = int(optimizer.iterations.numpy())

    def __call__(self) -> int:
        return self.start + int(self.optimizer.iterations.numpy()) - self.base


class Monitor(keras.callbacks.Callback):
    """Epochs, logged steps and validation for a run that Keras sees as one epoch.

    Args:
        plan: The run's plan.
        clock: The run's step counter.
        engine: The model Keras trains (its metrics are the running means).
        model: The user's model, as the user's callbacks should see it.
        callbacks: The user's callbacks, with the run's History (and a progress bar).
        history: The run's History, whose :attr:`~RunHistory.log` gets the log records.
        validate: Evaluates the validation data, telling the callbacks it is given,
            and returns the figures (``loss``...); ``None`` without validation data.
        batch_accuracy: Returns the accuracy on the batch a step trains on, or ``None``
            where the batch cannot be recomputed.
        printing: Whether to print the log lines.
        params: What Keras tells callbacks of the run (``verbose``, ``epochs``,
            ``steps``), for a progress bar among them.
    """

    def __init__(
        self,
        *,
        plan: RunPlan,
        clock: StepClock,
        engine: keras.Model,
        model: keras.Model,
        callbacks: Sequence[keras.callbacks.Callback],
        history: RunHistory,
        validate: Callable[[keras.callbacks.CallbackList], dict[str, float]] | None,
        batch_accuracy: Callable[[int], float | None],
        printing: bool,
        params: dict[str, Any],
    ) -> None:
        super().__init__()
        self.plan = plan
        self.clock = clock
        self.engine = engine
        self.user_model = model
        self.history = history
        self.listeners = [*callbacks, history]
        self.callbacks = keras.callbacks.CallbackList(
            self.listeners, add_history=False, add_progbar=False, model=model
        )
        self.callbacks.set_params(params)
        self.epoch_ends = set(plan.epoch_ends())
        self.forward_steps = any(watches_steps(callback) for callback in callbacks)
        self.validate = validate
        self.batch_accuracy = batch_accuracy
        self.printing = printing
        self.loggers = [c for c in callbacks if callable(getattr(c, "on_log", None))]
        self._epoch: int | None = None
        self._epoch_start = plan.start_step
        self._stretch_start = plan.start_step
        self._mark: tuple[dict[str, float], int] = ({}, 0)
        self._sums: dict[str, float] = {}
        self._validation: tuple[int, dict[str, float]] | None = None

    @classmethod
    def for_run(
        cls,
        *,
        plan: RunPlan,
        clock: StepClock,
        engine: keras.Model,
        evaluator: keras.Model,
        model: keras.Model,
        predictor: Any,
        callbacks: Sequence[keras.callbacks.Callback],
        history: RunHistory,
        training: tuple[DataSource, int, int],
        validation: DataSource | None,
        verbose: Any,
        chief: bool,
    ) -> Monitor:
        """Make the monitor of a run of ``Trainer.fit``.

        Args:
            plan: The run's plan.
            clock: The run's step counter.
            engine: The model Keras trains.
            evaluator: The model that evaluates the validation data.
            model: The user's model.
            predictor: Its :class:`~mnistkit.Predictor`, for the log's accuracy.
            callbacks: The user's callbacks.
            history: The run's History.
            training: The training data, its batch size and the seed of its order.
            validation: The validation data, or ``None``.
            verbose: ``fit``'s verbosity.
            chief: Whether this worker prints.
        """
        listed = list(callbacks)
        quiet = verbose == 0
        if not quiet and plan.log_every is None:
            listed.append(keras.callbacks.ProgbarLogger())
        source, batch_size, seed = training

        def accuracy(step: int) -> float | None:
            batch = source.batch_at(batch_size=batch_size, seed=seed, step=step)
            if batch is None:
                return None
            images, labels = batch
            return float(np.mean(predictor.predict(images).argmax(axis=1) == labels))

        def validate(listeners: keras.callbacks.CallbackList) -> dict[str, float]:
            assert validation is not None
            batches = validation.evaluation_batches(EVALUATION_BATCH)
            result = evaluator.evaluate(batches, verbose=0, return_dict=True, callbacks=listeners)
            return {name: float(value) for name, value in result.items()}

        return cls(
            plan=plan,
            clock=clock,
            engine=engine,
            model=model,
            callbacks=listed,
            history=history,
            validate=None if validation is None else validate,
            batch_accuracy=accuracy,
            printing=not quiet and chief,
            params={
                "verbose": 1 if verbose == "auto" else verbose,
                "epochs": plan.epochs,
                # a run shorter than one pass shows its own length on the bar
                "steps": None
                if plan.steps_per_epoch is None
                else min(plan.steps_per_epoch, plan.total_steps),
                "steps_per_call": int(engine.steps_per_execution),
            },
        )

    # -------------------------------------------------------------- Keras hooks

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.user_model.stop_training = False
        self.callbacks.on_train_begin(logs)

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self.plan.start_step + batch
        if self._epoch is None:
            self._open_epoch(step)
        if self.plan.log_every is not None and step % self.plan.log_every == 0:
            self._log(step)
        if self.forward_steps:
            self.callbacks.on_train_batch_begin(step - self._epoch_start)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        step = self.plan.start_step + batch + 1  # steps done after this call
        if self.forward_steps:
            self.callbacks.on_train_batch_end(step - 1 - self._epoch_start, logs)
        if step in self.epoch_ends:
            self._close_epoch(step)
            if step < self.plan.total_steps and not self.engine.stop_training:
                self._open_epoch(step)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        done = self.clock()
        if self._epoch is not None:  # stopped early, inside an epoch
            self._close_epoch(done)
        if self.plan.log_every is not None:
            self._log(done, final=True)
        self.callbacks.on_train_end(logs)

    # -------------------------------------------------------------- epochs

    def _open_epoch(self, step: int) -> None:
        self.engine.reset_metrics()
        self._mark = ({}, 0)
        self._epoch_start = step
        self._epoch = self.plan.epoch_of(step)
        # a progress bar counts the steps this epoch runs: fewer in a last, partial one
        # or in one resumed part-way
        steps = min(end for end in self.epoch_ends if end > step) - step
        for listener in self.listeners:
            if isinstance(listener, keras.callbacks.ProgbarLogger):
                listener.target = steps
        self.callbacks.on_epoch_begin(self._epoch)

    def _close_epoch(self, step: int) -> None:
        means = self._bank(step)
        figures = {**means, **self._validation_at(step)}
        epoch, self._epoch = self._epoch, None
        self.callbacks.on_epoch_end(int(epoch or 0), figures)
        if self.user_model.stop_training:
            self.engine.stop_training = True

    # -------------------------------------------------------------- the log

    def _bank(self, step: int) -> dict[str, float]:
        """Add the steps since the last mark to the stretch's sums; return the epoch's means."""
        means = {
            name: float(value)
            for name, value in self.engine.get_metrics_result().items()
            if np.ndim(value) == 0
        }
        count = step - self._epoch_start
        marked, marked_count = self._mark
        for name, mean in means.items():
            total = mean * count - marked.get(name, 0.0) * marked_count
            self._sums[name] = self._sums.get(name, 0.0) + total
        self._mark = (means, count)
        return means

    def _log(self, step: int, *, final: bool = False) -> None:
        record: dict[str, float] = {"step": step}
        if step > self._stretch_start:
            self._bank(step)
            length = step - self._stretch_start
            record.update({name: total / length for name, total in self._sums.items()})
            record.update(self._validation_at(step))
        self._sums, self._stretch_start = {}, step
        if not final:
            accuracy = self.batch_accuracy(step)
            if accuracy is not None:
                record["train_accuracy"] = accuracy
                if self.printing:
                    print(f"step {step}, training accuracy {accuracy:g}", flush=True)
        if len(record) == 1:
            return
        self.history.log.append(record)
        for logger in self.loggers:
            logger.on_log(step, dict(record))

    def _validation_at(self, step: int) -> dict[str, float]:
        if self.validate is None:
            return {}
        if self._validation is None or self._validation[0] != step:
            measured = self.validate(self.callbacks)
            figures = {f"val_{name}": value for name, value in measured.items()}
            self._validation = (step, figures)
        return dict(self._validation[1])


class Checkpointer(keras.callbacks.Callback):
    """Save a run's checkpoints every so many steps, and restore the run from them.

    The Trainer calls :meth:`restore` before it builds the run's data stream (which
    starts at the restored step), then passes the Checkpointer to Keras, which calls it
    after each call into TensorFlow; the Trainer saves once more when the run ends or
    is interrupted.

    Args:
        directory: The checkpoint folder.
        model: The model whose weights, with its optimizer's state, are saved.
        run: The settings a checkpoint must match to be resumed (seed, batch size,
            total steps...), recorded in its state.
        every: Steps between periodic saves.
        step: A function that returns how many steps of the run are done; it may be
            set later (as :attr:`step`), once the run's start is known.
        strategy: The ``tf.distribute`` strategy trained under; only its chief keeps
            what it saves.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        model: keras.Model,
        run: Mapping[str, Any],
        every: int,
        step: Callable[[], int] | None = None,
        strategy: Any = None,
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.trained = model
        self.run = dict(run)
        self.every = every
        self.step: Callable[[], int] = step or (lambda: 0)
        self.strategy = strategy
        #: The step of the last checkpoint on disk, or ``None`` if none is there.
        self.last_saved: int | None = None
        self.enabled = True

    @classmethod
    def for_run(
        cls,
        directory: str | Path,
        *,
        model: keras.Model,
        run: Mapping[str, Any],
        every: int,
        strategy: Any = None,
    ) -> Checkpointer:
        """Make the checkpointer of a run, checking that ``directory`` can be a folder.

        Raises:
            InvalidArgumentError: If ``directory`` is an existing file.
        """
        directory = Path(directory)
        existing = next(
            (path for path in (directory, *directory.parents) if path.exists()), directory
        )
        if existing.exists() and not existing.is_dir():
            raise invalid("checkpoint_dir", "a folder (or a path to one)", str(directory))
        return cls(directory, model=model, run=run, every=every, strategy=strategy)

    def restore(self) -> int:
        """Load the checkpoint into the model and return the step it was taken at.

        Raises:
            CheckpointError: If there is no checkpoint, it is corrupt, or it belongs to
                a run with other settings (the message lists them).
        """
        state = checkpoints.read_state(self.directory)
        checkpoints.check_run(state, self.run, self.directory)
        checkpoints.load(self.directory, self.trained, state)
        if distribute.is_chief(self.strategy):
            checkpoints.remove_leftovers(self.directory)
        self.last_saved = int(state["step"])
        return self.last_saved

    def refuse_existing(self) -> None:
        """Raise if the folder already holds a checkpoint, which a new run would mix with."""
        if checkpoints.exists(self.directory):
            step = checkpoints.read_state(self.directory)["step"]
            raise CheckpointError(
                f"{self.directory} already holds a checkpoint (step {step}). Pass resume=True "
                "(--resume) to continue that run, or choose another folder."
            )

    def save(self) -> int:
        """Save a checkpoint at the current step, and return the step."""
        step = self.step()
        if not self.enabled:
            return step
        try:
            with distribute.chief_path(self.directory, self.strategy) as directory:
                checkpoints.save(directory, self.trained, {**self.run, "step": step})
        except StorageError as error:
            self.enabled = False  # nothing more can be saved: say where the last one is
            raise restate(error, f"{error} {self.describe_last()}") from error
        self.last_saved = step
        return step

    def describe_last(self) -> str:
        """Say in words where the last good checkpoint is, or that there is none."""
        if self.last_saved is None:
            return f"No checkpoint was saved in {self.directory} before that."
        return f"The last good checkpoint (step {self.last_saved}) is in {self.directory}."

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.enabled and self.step() - (self.last_saved or 0) >= self.every:
            self.save()


def optimizer_record(optimizer: keras.optimizers.Optimizer) -> dict[str, Any]:
    """What a checkpoint records of the optimizer a run starts with: its class and rate.

    A resumed run restores the optimizer's state, learning rate included, so a run that
    asks for another optimizer or rate must be refused rather than silently given the
    checkpoint's.
    """
    inner = getattr(optimizer, "inner_optimizer", None) or optimizer  # loss scaling wraps it
    record: dict[str, Any] = {"optimizer": type(inner).__name__}
    rate = inner.get_config().get("learning_rate")
    if rate is not None:
        record["learning_rate"] = json.loads(json.dumps(rate))  # as state.json holds it
    return record


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training when the loss stops being finite, and names the step where it did.

    Args:
        engine: The trained model, whose ``first_bad_step`` variable records the step.
        clock: The run's step counter.
        checkpointer: The run's checkpointer, which must not save past that step.
    """

    def __init__(self, engine: Any, clock: StepClock, checkpointer: Checkpointer | None) -> None:
        super().__init__()
        self.engine = engine
        self.clock = clock
        self.checkpointer = checkpointer
        self.bad_step: int | None = None
        self.bad_loss = math.nan

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.engine.first_bad_step.assign(0)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(np.asarray(loss).ravel()[0])):
            return
        after = int(self.engine.first_bad_step.numpy())
        self.bad_step = self.clock.start + after - 1 - self.clock.base
        self.bad_loss = float(np.asarray(loss).ravel()[0])
        self.engine.stop_training = True
        if self.checkpointer is not None:
            self.checkpointer.enabled = False

    def message(self) -> str | None:
        """The error message if the loss stopped being finite, else ``None``."""
        if self.bad_step is None:
            return None
        kept = "" if self.checkpointer is None else " " + self.checkpointer.describe_last()
        return (
            f"The training loss became {self.bad_loss} at step {self.bad_step}; "
            f"training stopped. Try a lower learning rate.{kept}"
        )
