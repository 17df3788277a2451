"""The Trainer's own Keras callbacks: the step count, the tutorial's log, checkpoints, the guard.

``Trainer.fit`` runs Keras's own epoch loop (``fit(epochs=, initial_epoch=,
steps_per_epoch=)``), so the user's callbacks see Keras's epochs as Keras gives them.
These callbacks add what the tutorial did by hand and what it lacked: the run's step
(:class:`StepClock`), the ``step N, training accuracy A`` lines and the record of each
logged stretch (:class:`RunLog`), checkpoints that survive an interrupt
(:class:`Checkpointer`) and a stop when the loss stops being finite
(:class:`DivergenceGuard`). Each reaches the model through ``self.model``, which on
JAX brings the model's state up to date first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnistkit import checkpoints
from mnistkit._files import restate
from mnistkit.errors import CheckpointError, StorageError
from mnistkit.plan import RunPlan
from mnistkit.validation import invalid

#: Keras callback hooks that see single steps.
BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin", "on_train_batch_end")


def watches_steps(callback: keras.callbacks.Callback) -> bool:
    """Return whether ``callback`` overrides a hook that sees single training steps."""
    base = keras.callbacks.Callback
    return any(getattr(type(callback), hook) is not getattr(base, hook) for hook in BATCH_HOOKS)


class RunHistory(keras.callbacks.History):
    """The Keras ``History`` of a run, with the log of its logged steps beside the epochs.

    ``history`` and ``epoch`` hold one entry per epoch (a pass over the training data),
    as ``keras.Model.fit`` gives them, over every ``fit`` the run takes; :attr:`log`
    holds one record per logged step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.epoch: list[int] = []
        #: One dictionary per logged step, with ``step``, ``train_accuracy`` (the accuracy
        #: on the batch about to be trained on, dropout off) and, for the stretch of steps
        #: that ends there, the mean ``loss``, ``accuracy`` and the validation figures.
        self.log: list[dict[str, float]] = []

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Keep the epochs of the run's earlier ``fit`` calls (Keras's History drops them)."""


class StepClock(keras.callbacks.Callback):
    """The run's step, counted from Keras's epochs and batches; first in the callbacks.

    Args:
        start: The step the run starts (or resumes) at.
    """

    def __init__(self, start: int) -> None:
        super().__init__()
        #: Steps of the run done so far.
        self.step = start
        self.epoch_start = start

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_start = self.step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.step = self.epoch_start + batch + 1


class TrainedWeights(keras.callbacks.Callback):
    """Keeps the trained weights at each epoch's end, for a run that takes several ``fit``.

    An optimizer that averages the weights (``use_ema``) swaps the averages in at the end
    of every ``fit``; a run that goes on in another ``fit`` must go on from the weights
    it trained, so the Trainer puts these back (:meth:`put_back`) between its calls.

    Keras's JAX trainer swaps the averages in when ``fit`` ends on an exception too (an
    interrupt), where the TensorFlow one does not; there, with ``each_step``, the weights
    of each step are kept (references to JAX's immutable arrays, not copies), so that an
    interrupted run's checkpoint holds the weights it trained.

    Args:
        each_step: Keep the weights after every step, not only at each epoch's end.
    """

    def __init__(self, *, each_step: bool = False) -> None:
        super().__init__()
        self.kept: list[Any] = []
        self.each_step = each_step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.each_step:
            self.kept = [variable.value for variable in self.model.trainable_variables]

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.kept = [keras.ops.copy(variable.value) for variable in self.model.trainable_variables]

    def put_back(self) -> None:
        """Give the model the weights it had trained before Keras swapped in averages."""
        for variable, value in zip(self.model.trainable_variables, self.kept, strict=True):
            variable.assign(value)


class RunLog(keras.callbacks.Callback):
    """The tutorial's log lines and the figures of each logged stretch of steps.

    At each of the plan's log steps it measures the batch about to be trained on, with
    dropout off, prints ``step N, training accuracy A`` and records, for the stretch
    that ends there, the mean training figures (from Keras's running means) and the
    validation figures. The Trainer calls :meth:`finish` once the run's last ``fit``
    returns.

    Args:
        plan: The run's plan.
        clock: The run's step counter.
        history: The run's History, whose :attr:`~RunHistory.log` gets the records.
        accuracy: Returns the accuracy on the batch of a step, or ``None`` where the
            batch cannot be recomputed.
        validate: Returns the validation figures (``loss``, ``accuracy``), or ``None``.
        listeners: Callbacks with an ``on_log(step, logs)`` method.
        printing: Whether to print the log lines.
    """

    def __init__(
        self,
        *,
        plan: RunPlan,
        clock: StepClock,
        history: RunHistory,
        accuracy: Callable[[int], float | None],
        validate: Callable[[], dict[str, float]] | None,
        listeners: Sequence[Any],
        printing: bool,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.history_ = history
        self.log_steps = set(plan.log_steps())
        self.accuracy = accuracy
        self.validate = validate
        self.listeners = listeners
        self.printing = printing
        self.stretch_start = plan.start_step
        self.sums: dict[str, float] = {}
        self.mark: tuple[int, dict[str, float]] = (0, {})  # steps and means banked this epoch
        self.running: tuple[int, dict[str, float]] = (0, {})

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.mark = self.running = (0, {})

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.clock.step in self.log_steps:
            self.record(self.clock.step)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        means = {
            name: float(np.asarray(value))
            for name, value in (logs or {}).items()
            if np.ndim(value) == 0 and not name.startswith("val_")
        }
        self.running = (self.clock.step - self.clock.epoch_start, means)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._bank()

    def finish(self) -> None:
        """Record the stretch that the run's last step ends."""
        self._bank()
        self.record(self.clock.step, final=True)

    def record(self, step: int, *, final: bool = False) -> None:
        """Log ``step``: the stretch ending there, and the accuracy on its batch."""
        entry: dict[str, float] = {"step": step}
        self.model.stop_training  # noqa: B018 - reading self.model syncs the state on JAX
        if step > self.stretch_start:
            self._bank()
            length = step - self.stretch_start
            entry.update({name: total / length for name, total in self.sums.items()})
            if self.validate is not None:
                entry.update({f"val_{k}": v for k, v in self.validate().items()})
        self.sums, self.stretch_start = {}, step
        if not final:
            accuracy = self.accuracy(step)
            if accuracy is not None:
                entry["train_accuracy"] = accuracy
                if self.printing:
                    print(f"step {step}, training accuracy {accuracy:.4f}", flush=True)
        if len(entry) == 1:
            return
        self.history_.log.append(entry)
        for listener in self.listeners:
            listener.on_log(step, dict(entry))

    def _bank(self) -> None:
        """Add the steps run since the last mark to the stretch's sums."""
        (count, means), (marked, marked_means) = self.running, self.mark
        for name, mean in means.items():
            total = mean * count - marked_means.get(name, 0.0) * marked
            self.sums[name] = self.sums.get(name, 0.0) + total
        self.mark = self.running


class Checkpointer(keras.callbacks.Callback):
    """Save a run's checkpoints every so many steps, and restore the run from them.

    The Trainer calls :meth:`restore` before it builds the run's data stream (which
    starts at the restored step), then passes the Checkpointer to Keras, which calls it
    after each call into the backend; the Trainer saves once more when the run ends or
    is interrupted.

    Args:
        directory: The checkpoint folder.
        model: The model whose weights, with its optimizer's state, are saved.
        run: The settings a checkpoint must match to be resumed (seed, batch size,
            total steps...), recorded in its state.
        every: Steps between periodic saves.
        clock: The run's step counter.

    Raises:
        InvalidArgumentError: If ``directory`` is an existing file.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        model: keras.Model,
        run: Mapping[str, Any],
        every: int,
        clock: StepClock,
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        existing = next(p for p in (self.directory, *self.directory.parents) if p.exists())
        if not existing.is_dir():
            raise invalid("checkpoint_dir", "a folder (or a path to one)", str(directory))
        self.set_model(model)
        self.run = dict(run)
        self.every = every
        self.clock = clock
        #: The step of the last checkpoint on disk, or ``None`` if none is there.
        self.last_saved: int | None = None
        self.enabled = True

    def restore(self) -> int:
        """Load the checkpoint into the model and return the step it was taken at.

        Raises:
            CheckpointError: If there is no checkpoint, it is corrupt, or it belongs to
                a run with other settings (the message lists them).
        """
        state = checkpoints.read_state(self.directory)
        checkpoints.check_run(state, self.run, self.directory)
        checkpoints.load(self.directory, self.model, state)
        checkpoints.remove_leftovers(self.directory)
        self.last_saved = self.clock.step = int(state["step"])
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
        step = self.clock.step
        if not self.enabled:
            return step
        try:
            checkpoints.save(self.directory, self.model, {**self.run, "step": step})
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
        if self.enabled and self.clock.step - (self.last_saved or 0) >= self.every:
            self.save()


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training when the loss stops being finite, and names the steps where it did.

    Keras reports the loss after each call into the backend, which may run several
    steps: the guard names the call's steps, and the checkpointer saves nothing past
    the call before.

    Args:
        clock: The run's step counter.
        checkpointer: The run's checkpointer, which must not save past that step.
    """

    def __init__(self, clock: StepClock, checkpointer: Checkpointer | None) -> None:
        super().__init__()
        self.clock = clock
        self.checkpointer = checkpointer
        self.before = clock.step
        self.message: str | None = None

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.before = self.clock.step

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(np.asarray(loss).ravel()[0])):
            return
        if self.checkpointer is not None:
            self.checkpointer.enabled = False
        first, last = self.before, self.clock.step - 1  # numbered from 0, as the log's
        steps = f"step {last}" if first == last else f"one of steps {first} to {last}"
        kept = "" if self.checkpointer is None else " " + self.checkpointer.describe_last()
        self.message = (
            f"The training loss became {float(np.asarray(loss).ravel()[0])} at {steps}; "
            f"training stopped. Try a lower learning rate.{kept}"
        )
        self.model.stop_training = True
