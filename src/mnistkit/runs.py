"""A training run and its folder: what ``mnistkit train`` does, usable from a notebook too.

:class:`Run` claims a run folder, records the command and settings, keeps the history
of a resumed run, and finishes with the model, the metrics and the plots. The folder's
layout and the functions that read it live in :mod:`mnistkit.run_folder`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from mnistkit import checkpoints, run_folder
from mnistkit._files import remove_temporaries
from mnistkit._lock import claim_folder
from mnistkit.errors import CheckpointError, DataFormatError, DataNotFoundError, StorageError
from mnistkit.plan import RunPlan
from mnistkit.records import read_history, write_history, write_json

if TYPE_CHECKING:
    import keras

__all__ = ["Run"]


class Run(contextlib.AbstractContextManager["Run"]):
    """A run folder and the training run it holds: what ``mnistkit train`` does with one.

    It owns the folder's workflow, so that a notebook can do what the command line does:
    claim the folder (no two runs write into one), record the command and the settings
    in ``run.json``, keep ``history.csv`` as the run goes, know where the checkpoints are
    and at which step, and, at the end, write the model, ``metrics.json`` and the plots.

    Make one with :meth:`start` or :meth:`resume`; use it as a context manager, or call
    :meth:`close`, to let go of the folder.

    Example:
        >>> import tempfile
        >>> from mnistkit.runs import Run
        >>> with Run.start("softmax", settings={"seed": 0}, command="mnistkit train softmax",
        ...                root=tempfile.mkdtemp()) as run:
        ...     run.folder.name.startswith("softmax-"), run.settings["seed"]
        (True, 0)
    """

    def __init__(
        self, folder: Path, record: dict[str, Any], *, resuming: bool, created: bool = False
    ) -> None:
        #: The run folder.
        self.folder = folder
        #: What ``run.json`` holds, the model, the command, the settings, the time trained.
        self.record = record
        #: Whether the run continues one started earlier.
        self.resuming = resuming
        self._created = created
        self._lock: Path | None = claim_folder(folder)
        self._clock: tuple[float, float] | None = None
        # Left by a run killed while it wrote; no other run writes here now.
        remove_temporaries(folder, run_folder.WRITTEN_FILES)
        checkpoints.remove_leftovers(folder / run_folder.CHECKPOINT_DIR)

    # ------------------------------------------------------------------ opening

    @classmethod
    def start(
        cls,
        model: str,
        *,
        settings: Mapping[str, Any],
        command: str,
        output: str | os.PathLike[str] | None = None,
        root: str | os.PathLike[str] = "runs",
    ) -> Run:
        """Claim a new run folder, and record the run's command and settings in it.

        Args:
            model: The registered name of the model trained.
            settings: The run's settings, as JSON-compatible values (the resolved recipe
                under ``"recipe"``, the ``"seed"``, the ``"dataset"``...).
            command: The command that started the run, for the record.
            output: The folder; ``None`` makes a new one in ``root`` named after the
                model and the time.
            root: Where new folders are made.

        Returns:
            The run, its folder claimed.

        Raises:
            CheckpointError: If ``output`` already holds a run, or another run is
                writing to it.
        """
        folder = run_folder.new_run_folder(model, root=root) if output is None else Path(output)
        if folder.exists() and not folder.is_dir():
            raise CheckpointError(f"{folder} is a file, not a folder for a run.")
        created = output is None or not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "format": run_folder.RUN_FORMAT,
            "model": model,
            "command": command,
            "settings": dict(settings),
            "train_seconds": 0.0,
        }
        run = cls(folder, record, resuming=False, created=created)
        # Checked once the folder is claimed: a run that started first has written by now.
        taken = [name for name in run_folder.RUN_OUTPUTS if (folder / name).exists()]
        if taken:
            run.close()
            raise CheckpointError(
                f"{folder} already holds a run ({', '.join(taken)}). Add --resume to "
                "continue it, or choose another --output."
            )
        try:
            run.save()
        except BaseException:
            run.abandon()
            raise
        return run

    @classmethod
    def resume(
        cls, folder: str | os.PathLike[str], model: str, *, changes: Mapping[str, Any] = {}
    ) -> Run:
        """Reopen an interrupted run to continue it with the settings it was started with.

        Args:
            folder: The run folder.
            model: The model the caller means to train; it must be the run's.
            changes: Settings given again, by the names the run records them under (a
                recipe's fields by their own names, its name as ``recipe_name``); each
                must equal the run's, since a run cannot change its settings half-way
                (the checkpoint holds the optimizer's state). ``None`` values are ignored.

        Returns:
            The run, its folder claimed.

        Raises:
            DataNotFoundError: If the folder, or its ``run.json``, does not exist.
            CheckpointError: If the run has finished, holds another model, its
                ``run.json`` is corrupt or from a version this one does not resume, it is
                being written by another run, or a change is asked for.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise DataNotFoundError(f"{folder}: no such run folder to resume.")
        if (folder / run_folder.METRICS_FILE).exists():
            raise CheckpointError(
                f"The run in {folder} has finished ({run_folder.METRICS_FILE} is there): there is "
                "nothing to resume. Start a new run with another --output."
            )
        record = run_folder.read_run(folder)
        if record.get("model") != model:
            raise CheckpointError(
                f"{folder} holds a run of the model {record.get('model')!r}, not {model!r}."
            )
        settings = record["settings"]
        recipe = settings.get("recipe", {})  # read_run checked it is a recipe
        recorded = {**settings, **recipe, "recipe_name": recipe.get("name")}
        differences = [
            f"{key}: the run has {recorded.get(key)!r}, given {value!r}"
            for key, value in changes.items()
            if value is not None and recorded.get(key) != value
        ]
        if differences:
            raise CheckpointError(
                f"{folder}: a resumed run keeps its settings ({'; '.join(differences)}). Resume "
                "without them, or start a new run with another --output."
            )
        return cls(folder, record, resuming=True)

    # ------------------------------------------------------------------ what it is

    @property
    def model(self) -> str:
        """The registered name of the model trained."""
        return str(self.record["model"])

    @property
    def settings(self) -> dict[str, Any]:
        """The run's settings, as recorded in ``run.json``."""
        return cast("dict[str, Any]", self.record["settings"])

    @property
    def command(self) -> str:
        """The command that started the run."""
        return str(self.record["command"])

    @property
    def checkpoint_dir(self) -> Path:
        """The folder of the run's checkpoints."""
        return self.folder / run_folder.CHECKPOINT_DIR

    def checkpoint_step(self) -> int | None:
        """The step of the run's last checkpoint, or ``None`` if it has none.

        Raises:
            CheckpointError: If the checkpoint is there but unreadable.
        """
        if not checkpoints.exists(self.checkpoint_dir):
            return None
        return int(checkpoints.read_state(self.checkpoint_dir)["step"])

    # ------------------------------------------------------------------ as it goes

    def save(self) -> None:
        """Write ``run.json`` as the record now stands."""
        write_json(self.folder / run_folder.RUN_FILE, self.record)

    @contextlib.contextmanager
    def training_clock(self) -> Iterator[None]:
        """Count the time spent in the block as training time.

        ``run.json`` gets the total at each row :meth:`history_recorder` writes and at the
        end of the block, so a run that is killed keeps the time it trained until its
        last logged step.
        """
        self._clock = (float(self.record.get("train_seconds", 0.0)), time.perf_counter())
        try:
            yield
        except BaseException:
            with contextlib.suppress(StorageError):  # the error under way is the news
                self._tick()
            raise
        else:
            self._tick()
        finally:
            self._clock = None

    def _tick(self) -> None:
        if self._clock is not None:
            before, started = self._clock
            self.record["train_seconds"] = before + time.perf_counter() - started
            self.save()

    def history_recorder(self, plan: RunPlan) -> keras.callbacks.Callback:
        """Return a Keras callback that keeps ``history.csv`` as the run goes.

        A run that logs steps gets one row per logged step (see
        :attr:`~mnistkit.training.RunHistory.log`), any other one row per epoch. A
        resumed run keeps the rows up to its checkpoint and writes the rest again.

        Args:
            plan: The run's plan.

        Returns:
            The callback, for ``Trainer.fit(callbacks=...)``.
        """
        import keras

        path = self.folder / run_folder.HISTORY_FILE
        try:
            rows = read_history(path) if self.resuming else []
        except DataFormatError as error:
            aside = path.with_name(f"{run_folder.HISTORY_FILE}.unreadable")
            os.replace(path, aside)
            warnings.warn(
                f"{error} It was moved to {aside.name}; the history goes on from the "
                "checkpoint, without the rows before it.",
                RuntimeWarning,
                stacklevel=2,
            )
            rows = []
        done = self.checkpoint_step() or 0
        epochs_done = done // (plan.steps_per_epoch or done + 1)
        kept = [
            row
            for row in rows
            if ("step" in row and row["step"] <= done)
            or ("epoch" in row and row["epoch"] <= epochs_done)
        ]

        def write() -> None:
            write_history(path, kept)
            self._tick()

        class HistoryFile(keras.callbacks.Callback):
            def on_log(self, step: int, logs: dict[str, float]) -> None:
                by_step = {int(row["step"]): row for row in kept if "step" in row}
                by_step.setdefault(step, {"step": step}).update(logs)
                kept[:] = [by_step[key] for key in sorted(by_step)]
                write()

            def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
                if plan.log_every is None:
                    kept.append({"epoch": epoch + 1, **(logs or {})})
                    write()

        return HistoryFile()

    # ------------------------------------------------------------------ the end

    def finish(
        self, trainer: Any, data: Any, *, dataset: str, keep_checkpoints: bool = False
    ) -> dict[str, Any]:
        """Test the model, write ``model.keras``, the plots and ``metrics.json``.

        ``metrics.json``, which marks the run as finished, comes last: a run interrupted
        before it can be resumed, and finishes then.

        Args:
            trainer: The :class:`~mnistkit.Trainer` that trained the run.
            data: The :class:`~mnistkit.Datasets` it trained on; its test split is used.
            dataset: The dataset's registered name.
            keep_checkpoints: Keep the checkpoints (else they are removed, since a
                finished run cannot be resumed).

        Returns:
            The metrics written, and under ``plots`` the plot files, or a sentence on
            why there are none.
        """
        from mnistkit.plots import INSTALL_HINT, confusion_matrix
        from mnistkit.predictor import score
        from mnistkit.saving import read_metadata

        probabilities = trainer.predict(data.test.images)
        # Scored as `mnistkit evaluate` scores a saved model, so the two agree.
        result = score(probabilities, data.test.labels)
        model_path = trainer.save(self.folder / run_folder.MODEL_FILE)
        labels = np.asarray(data.test.labels)
        labels = labels.argmax(axis=1) if labels.ndim == 2 else labels
        metadata = read_metadata(model_path)
        recipe = metadata["recipe"]
        metrics = {
            **metadata,
            "dataset": {
                "name": dataset,
                "source": data.source,
                "checksum": data.checksum,
                "train_examples": data.train.num_examples,
                "test_examples": data.test.num_examples,
            },
            "recipe_name": recipe.get("name") or "custom",
            "epochs": recipe.get("epochs"),
            "log_every": self.settings.get("log_every"),
            "test_accuracy": result["accuracy"],
            "test_loss": result["loss"],
            "train_seconds": round(float(self.record.get("train_seconds", 0.0)), 3),
            "confusion_matrix": confusion_matrix(labels, probabilities.argmax(axis=1)),
            "command": self.command,
        }
        history: list[dict[str, float]] = []
        with contextlib.suppress(DataFormatError):  # then the learning curves are left out
            history = read_history(self.folder / run_folder.HISTORY_FILE)
        try:
            written = run_folder.write_plots(
                self.folder,
                history=history,
                images=data.test.images,
                labels=labels,
                probabilities=probabilities,
            )
            plots: str = ", ".join(path.name for path in written)
        except ModuleNotFoundError as error:
            if error.name != "matplotlib":
                raise
            plots = f"no plots: matplotlib is not installed ({INSTALL_HINT} to get them)"
        # Last, since it marks the run finished: a run interrupted before can be resumed.
        write_json(self.folder / run_folder.METRICS_FILE, metrics)
        if not keep_checkpoints:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)
        return {**metrics, "plots": plots}

    def abandon(self) -> None:
        """Undo the start of a run that failed before it trained: remove what it made.

        Only what this run created goes, and only if training wrote nothing: its
        ``run.json`` and, if this run made the folder and nothing else is in it, the
        folder. A resumed run, or one with a history or a checkpoint, is left as it is;
        so is anything else in the folder.
        """
        self.close()
        trained = {*run_folder.WRITTEN_FILES, run_folder.CHECKPOINT_DIR} - {run_folder.RUN_FILE}
        if self.resuming or any((self.folder / name).exists() for name in trained):
            return
        (self.folder / run_folder.RUN_FILE).unlink(missing_ok=True)
        if self._created:
            with contextlib.suppress(OSError):  # not empty, or gone: leave it
                self.folder.rmdir()

    def close(self) -> None:
        """Let go of the folder, so that another run may resume it."""
        if self._lock is not None:
            self._lock.unlink(missing_ok=True)
            self._lock = None

    def __exit__(self, *exc: object) -> None:
        self.close()
