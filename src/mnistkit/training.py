"""The Trainer: the tutorial's training loop, made reusable on top of ``keras.Model.fit``.

Models stay plain ``keras.Model`` objects, callbacks stay Keras callbacks and ``fit``
returns a Keras ``History``. The Trainer adds what the tutorial did by hand (training by
steps, logging the accuracy of the current batch with dropout off, feeding
``keep_prob``) and what it lacked: recipes, checkpoints that survive an interrupt and
resume exactly, and a divergence guard. Each of those is a collaborator of its own; the
Trainer settles the run's settings once and hands them out.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from mnistkit import _engine, _interrupts, _setup, distribute, streams
from mnistkit._callbacks import (
    Checkpointer,
    DivergenceGuard,
    Monitor,
    RunHistory,
    StepClock,
    watches_steps,
)
from mnistkit._sources import EVALUATION_BATCH, DataSource, data_source
from mnistkit.errors import InvalidArgumentError, TrainingDivergedError
from mnistkit.models import build, model_recipes
from mnistkit.plan import RunPlan
from mnistkit.precision import policy, resolve_precision
from mnistkit.predictor import Predictor
from mnistkit.recipes import Recipe, resolve_recipe
from mnistkit.saving import save_model
from mnistkit.validation import (
    check_bool,
    check_positive_int,
)

__all__ = ["RunHistory", "Trainer"]


class Trainer:
    """Compile, fit, evaluate and predict with a model, the way the tutorial trained it.

    Settings left as ``None`` come from the model's recipe (see
    :func:`~mnistkit.model_recipes`), so ``Trainer("softmax").fit(mnist.train)``
    reproduces the tutorial. A model built by :func:`~mnistkit.build` (or loaded from a
    file that mnistkit saved) brings the recipe it was built for; one built by hand
    trains with generic settings unless given a :class:`~mnistkit.Recipe`.

    ``keep_prob`` has one owner, in this order: ``Trainer(keep_prob=...)``; else the
    value the model carries (a model built by name carries its recipe's); else the
    recipe's. The Trainer sets the model's dropout layers to it, and the model keeps
    it: a saved model carries the keep probability it trained at.

    Under a ``strategy``, the batch size is the global batch, split among the
    replicas: at the recipe's batch size the run trains as on one device (see
    :doc:`/scaling`).

    Args:
        model: A ``keras.Model``, or the name of a registered model to build.
        optimizer: A Keras optimizer name (``"sgd"``, ``"adam"``...) or instance.
        learning_rate: The (peak) learning rate of an optimizer given by name.
        loss: A Keras loss. ``None`` (the default) uses cross-entropy on the model's
            outputs (logits or probabilities, see ``output``), with integer or one-hot
            labels alike.
        metrics: Keras metrics reported by ``fit`` and :meth:`evaluate`.
        keep_prob: Dropout keep probability while training; evaluation and prediction
            run without dropout.
        seed: Seed of the weights, the data order and dropout. ``None`` draws one,
            recorded in :attr:`metadata` so the run can be repeated.
        deterministic: Make runs bitwise repeatable on CPU by turning on TensorFlow's
            op determinism (a process-wide switch). The seed defaults to 0.
        strategy: A ``tf.distribute.Strategy`` to train under: ``MirroredStrategy``
            for the GPUs (or CPUs) of one machine, ``MultiWorkerMirroredStrategy`` for
            several machines. A model given by name is built in its scope; a
            ``keras.Model``, optimizer or metric given built must have been built inside
            ``with strategy.scope():``. Only the chief writes checkpoints.
        recipe: The name of one of the model's recipes, or a
            :class:`~mnistkit.Recipe`; ``None`` uses the recipe the model was built for,
            else its default recipe.
        precision: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"`` or
            ``"auto"`` (bfloat16 where the hardware runs it fast); ``None`` takes the
            recipe's, else float32. A model given by name is built under it; a model
            given built keeps the precision it was built with.
        output: What the model outputs, ``"logits"`` or ``"probabilities"``; ``None``
            reads it from a model that :func:`~mnistkit.build` made, and takes a model
            built by hand to output logits.

    Raises:
        InvalidArgumentError: If a setting is out of range, the optimizer is unknown,
            ``keep_prob`` is given for a model without dropout, or a model, optimizer or
            metric given built is outside the ``strategy``'s scope.
        UnknownNameError: If ``model`` or ``recipe`` names nothing registered.

    Example:
        >>> from mnistkit import Trainer, load_dataset
        >>> mnist = load_dataset("mnist")
        >>> trainer = Trainer("softmax", seed=0)
        >>> history = trainer.fit(mnist.train, steps=50, verbose=0)
        >>> trainer.evaluate(mnist.test)["accuracy"] > 0.8
        True
    """

    def __init__(
        self,
        model: keras.Model | str,
        *,
        optimizer: str | keras.optimizers.Optimizer | None = None,
        learning_rate: float | None = None,
        loss: Any = None,
        metrics: Sequence[Any] = ("accuracy",),
        keep_prob: float | None = None,
        seed: int | None = None,
        deterministic: bool = False,
        strategy: tf.distribute.Strategy | None = None,
        recipe: str | Recipe | None = None,
        precision: str | None = None,
        output: str | None = None,
    ) -> None:
        _setup.check_settings(optimizer, learning_rate, keep_prob, seed, metrics, output)
        self.deterministic = check_bool(deterministic, "deterministic")
        if seed is None:
            seed = 0 if deterministic else random.SystemRandom().randrange(2**31)
        self.strategy = strategy
        self.seed = distribute.shared_seed(strategy, int(seed))
        keras.utils.set_random_seed(self.seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()

        name, info = _setup.identify(model)
        chosen = resolve_recipe(
            model_recipes(name) if name else {},
            recipe if recipe is not None or info is None else info.recipe,
            model=name,
            optimizer=optimizer if isinstance(optimizer, str) else None,
            learning_rate=learning_rate,
            keep_prob=keep_prob,
            precision=precision,
        )
        if isinstance(model, str):
            resolved = resolve_precision(chosen.precision or "float32")
            with self._scope(), policy(resolved):
                model = build(model, recipe=chosen)
        else:
            resolved = _setup.check_policy(model, precision)
        if strategy is not None:
            distribute.check_scope(strategy, model, optimizer=optimizer, metrics=metrics)
        #: The model being trained (a plain ``keras.Model``).
        self.model: keras.Model = model
        #: The registered name of the model, or ``None`` for a model built by hand.
        self.model_name: str | None = name
        #: What the model outputs, ``"logits"`` or ``"probabilities"``.
        self.output: str = output or (
            info.output if info is not None else _setup.plain_output(model)
        )
        #: The recipe in force, the model's with the settings given here applied, the
        #: precision resolved and the keep probability the model trains at.
        self.recipe: Recipe = dataclasses.replace(
            chosen, precision=resolved, keep_prob=_setup.settle_keep_prob(model, keep_prob)
        )
        #: The predictions of the model, dropout off (see :class:`~mnistkit.Predictor`).
        self.predictor = Predictor(model, output=self.output)
        self._optimizer = optimizer if isinstance(optimizer, keras.optimizers.Optimizer) else None
        self._loss = loss
        self._metrics = list(metrics)
        self._compiled_for: int | None = None
        self._engine: _engine.Engine | None = None
        self._evaluator: _engine.Engine | None = None
        self._runs = 0
        self._last: dict[str, Any] = {}

    # ------------------------------------------------------------------ training

    def fit(
        self,
        data: Any,
        *,
        steps: int | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        validation_data: Any = None,
        log_every: int | None = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        checkpoint_every: int = 1000,
        verbose: str | int = "auto",
    ) -> RunHistory:
        """Train the model by steps (as the tutorial did) or by epochs.

        With neither ``steps`` nor ``epochs``, the recipe's length is used. An epoch is
        ``ceil(N / batch_size)`` steps; batches run on across epoch boundaries, each
        epoch in a fresh order drawn from the seed.

        Keras callbacks see epochs as ``keras.Model.fit`` shows them: ``on_epoch_begin``
        and ``on_epoch_end`` once per pass over the training data, with the epoch's mean
        training metrics and the validation metrics in ``logs``. A run by steps that ends
        inside an epoch ends it there (a last, partial epoch); a run resumed inside an
        epoch begins with the rest of that epoch, under its own number. Batch hooks are
        numbered within the epoch. A callback with a method ``on_log(step, logs)`` also
        gets each record of :attr:`RunHistory.log`.

        Args:
            data: A :class:`~mnistkit.Split`, an ``(images, labels)`` pair of arrays, or
                a ``tf.data.Dataset`` of batches. Flat (N, 784) images are reshaped
                for a model that takes (28, 28, 1). A dataset is trained on as it
                comes: the recipe's ``shift`` applies to arrays and splits only.
            steps: How many training steps to run.
            epochs: How many passes over ``data`` to run.
            batch_size: Examples per step, the global batch: a ``strategy`` splits it
                among its replicas (ignored for a ``tf.data.Dataset``).
            validation_data: Evaluated at the end of each epoch and of each logged
                stretch of steps, in the same forms as ``data``.
            log_every: Print ``step N, training accuracy A`` every ``N`` steps, from
                step 0, measured on the batch about to be trained on with dropout off
                (and before any shift its recipe applies), and record each stretch's
                figures in :attr:`RunHistory.log`.
            callbacks: Keras callbacks. One that overrides a batch-level hook
                (``on_train_batch_end``...) sees every step; otherwise the Trainer
                may run up to 10 steps per call into TensorFlow (:doc:`/scaling`).
            checkpoint_dir: Save checkpoints there every ``checkpoint_every`` steps, at
                the end, and when the run is interrupted. Ctrl-C lets the steps under
                way finish first; a second Ctrl-C interrupts at once.
            resume: Continue the run checkpointed in ``checkpoint_dir``.
            checkpoint_every: Steps between periodic checkpoints.
            verbose: 0 for silence; otherwise a Keras progress bar per epoch (``2``: a
                line per epoch), or, with ``log_every``, the log lines.

        Returns:
            The run's :class:`~mnistkit.training.RunHistory`, a Keras ``History`` with
            one entry per epoch, and the log of the logged steps. Its ``params`` say how
            many epochs and steps per epoch the run has, and how many steps ran in each
            call into TensorFlow (``steps_per_call``).

        Raises:
            InvalidArgumentError: If both or neither length is given where the recipe
                has none, a value is out of range, or the data has the wrong form.
            CheckpointError: If ``resume`` finds no checkpoint, a corrupt one, or one
                from a run with other settings; or if ``checkpoint_dir`` already holds a
                checkpoint and ``resume`` is false.
            TrainingDivergedError: If the loss becomes NaN or infinite.
            KeyboardInterrupt: On Ctrl-C, after the checkpoint is saved.
        """
        recipe = _setup.run_recipe(self.recipe, steps, epochs, batch_size)
        _setup.check_callbacks(callbacks)
        source = self._source(data, "data")
        validation = None if validation_data is None else self._source(validation_data, "data")
        plan = _setup.plan_run(
            self.model, recipe, source, log_every, checkpoint_dir, checkpoint_every
        )
        engine, evaluator = self._compile(plan.total_steps)
        data_seed = streams.stream_seed(self.seed, self._runs)
        checkpointer = (
            None
            if checkpoint_dir is None
            else self._checkpointer(
                checkpoint_dir,
                _setup.checkpoint_run(self, plan, recipe, source, data_seed, engine.optimizer),
                plan,
            )
        )
        if checkpointer is None and resume:
            raise InvalidArgumentError("`resume=True` needs the `checkpoint_dir` to resume from.")
        if checkpointer is not None:
            plan = dataclasses.replace(plan, start_step=self._restore(checkpointer, resume))
        self._runs += 1
        self._last = {"recipe": recipe, "data": source, "data_seed": data_seed}
        history = RunHistory()
        if plan.start_step == plan.total_steps:
            return history  # a finished run's checkpoint: nothing is left to train
        stream = source.training_stream(
            batch_size=recipe.batch_size,
            seed=data_seed,
            start_step=plan.start_step,
            augmentation=recipe.augmentation(),
            one_hot=_setup.smoothing_classes(recipe, self._loss, self.model),
        )
        clock = StepClock(engine.optimizer, plan.start_step)
        guard = DivergenceGuard(engine, clock, checkpointer)
        engine.steps_per_execution = plan.steps_per_call(
            parameters=int(self.model.count_params()),
            batch_size=recipe.batch_size,
            every_step=self.strategy is not None or any(map(watches_steps, callbacks)),
        )
        monitor = Monitor.for_run(
            plan=plan,
            clock=clock,
            engine=engine,
            evaluator=evaluator,
            model=self.model,
            predictor=self.predictor,
            callbacks=callbacks,
            history=history,
            training=(source, recipe.batch_size, data_seed),
            validation=validation,
            verbose=verbose,
            chief=distribute.is_chief(self.strategy),
        )
        if checkpointer is not None:
            checkpointer.step = clock
        self._loop(
            engine, stream, plan, [guard, *([checkpointer] if checkpointer else []), monitor]
        )
        if guard.message() is not None:
            raise TrainingDivergedError(guard.message())
        if checkpointer is not None:
            checkpointer.save()
        return history

    def plan(
        self,
        data: Any,
        *,
        steps: int | None = None,
        epochs: int | None = None,
        batch_size: int | None = None,
        log_every: int | None = None,
    ) -> RunPlan:
        """Return the plan of the run that ``fit`` would make with these settings.

        Nothing is trained: the plan says how many steps the run has, where its epochs
        end and which steps it logs, as ``fit`` will work them out.

        Args:
            data: The training data, in any form ``fit`` takes.
            steps: As for :meth:`fit`.
            epochs: As for :meth:`fit`.
            batch_size: As for :meth:`fit`.
            log_every: As for :meth:`fit`.

        Returns:
            The :class:`~mnistkit.RunPlan`.

        Raises:
            InvalidArgumentError: As :meth:`fit` does, for the same settings.

        Example:
            >>> from mnistkit import Trainer, load_dataset
            >>> trainer = Trainer("deep_cnn", recipe="fast", seed=0)
            >>> plan = trainer.plan(load_dataset("mnist").train)
            >>> plan.total_steps, plan.steps_per_epoch, plan.epochs
            (860, 215, 4)
        """
        recipe = _setup.run_recipe(self.recipe, steps, epochs, batch_size)
        return _setup.plan_run(
            self.model, recipe, self._source(data, "data"), log_every, None, 1000
        )

    def evaluate(self, data: Any, *, batch_size: int | None = None) -> dict[str, float]:
        """Return the loss and metrics on ``data``, with dropout off.

        Args:
            data: A :class:`~mnistkit.Split`, an ``(images, labels)`` pair, or a
                ``tf.data.Dataset`` of batches.
            batch_size: Examples per evaluation batch (it does not change the result).

        Returns:
            ``{"loss": ..., "accuracy": ...}`` and any other metric, as floats.

        Raises:
            InvalidArgumentError: If the data has the wrong form.

        Example:
            >>> import numpy as np
            >>> from mnistkit import Trainer
            >>> trainer = Trainer("softmax", seed=0)
            >>> images, labels = np.zeros((8, 784), np.float32), np.arange(8) % 10
            >>> round(trainer.evaluate((images, labels))["loss"], 4)  # log(10)
            2.3026
        """
        size = EVALUATION_BATCH
        if batch_size is not None:
            size = check_positive_int(batch_size, "batch_size")
        batches = self._source(data, "data").evaluation_batches(size)
        evaluator = self._evaluator or self._compile(None)[1]
        result = evaluator.evaluate(batches, verbose=0, return_dict=True)
        return {name: float(value) for name, value in result.items()}

    def predict(
        self,
        images: Any,
        *,
        keep_prob: float | None = None,
        samples: int | None = None,
        batch_size: int = 1024,
    ) -> Any:
        """Return class probabilities for ``images``, with dropout off.

        With ``keep_prob`` or ``samples``, run Monte-Carlo dropout instead (see
        :meth:`Predictor.predict <mnistkit.Predictor.predict>`): ``samples`` passes
        with only the dropout layers sampling, at ``keep_prob`` (default: the training
        one), returning the mean probabilities and their standard deviation.

        Args:
            images: Images shaped (N, 28, 28, 1) or flat (N, 784), float in [0, 1] or
                uint8.
            keep_prob: Keep probability of the Monte-Carlo passes, in (0, 1].
            samples: Number of Monte-Carlo passes (default 30).
            batch_size: Images per forward pass.

        Returns:
            An array (N, 10) of probabilities; with Monte-Carlo dropout, a pair
            ``(mean, std)`` of such arrays.

        Raises:
            InvalidArgumentError: If the images have the wrong shape or a setting is
                out of range.

        Example:
            >>> import numpy as np
            >>> from mnistkit import Trainer
            >>> trainer = Trainer("deep_cnn", seed=0)
            >>> probabilities = trainer.predict(np.zeros((2, 784), np.float32))
            >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1.0))
            ((2, 10), True)
            >>> mean, std = trainer.predict(np.zeros((2, 784), np.float32), samples=5)
            >>> bool((std > 0).any())
            True
        """
        return self.predictor.predict(
            images, samples=samples, keep_prob=keep_prob, batch_size=batch_size
        )

    # ------------------------------------------------------------------ saving

    @property
    def metadata(self) -> dict[str, Any]:
        """Facts about the run, saved with the model by :meth:`save`.

        Returns:
            Seed, determinism, model name, output kind, recipe (with the precision
            resolved and the keep probability trained at), steps trained, batch size,
            the seed of the last run's data order, the distribution strategy's class
            name and replica count (``None`` and 1 without one), the SHA-256 of the data
            of the last ``fit`` (hashed when first read) and library versions.
        """
        recipe: Recipe = self._last.get("recipe", self.recipe)
        source: DataSource | None = self._last.get("data")
        return _setup.run_metadata(
            model=self.model,
            name=self.model_name,
            output=self.output,
            recipe=recipe,
            seed=self.seed,
            deterministic=self.deterministic,
            trained=bool(self._last),
            data_seed=self._last.get("data_seed"),
            strategy=self.strategy,
            checksum=None if source is None else source.checksum(),
        )

    def save(self, path: str | Path) -> Path:
        """Save the model to a ``.keras`` file with :attr:`metadata` inside.

        Args:
            path: The destination, ending in ``.keras``.

        Returns:
            The path written; :func:`~mnistkit.load_model` reads the model back and
            :func:`~mnistkit.read_metadata` the metadata.

        Raises:
            InvalidArgumentError: If ``path`` does not end in ``.keras``.
        """
        return save_model(self.model, path, metadata=self.metadata)

    # ------------------------------------------------------------------ collaborators

    def _scope(self) -> Any:
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def _source(self, data: Any, name: str) -> DataSource:
        shape = tuple(int(d) for d in self.model.input_shape[1:])
        classes = int(self.model.output_shape[-1])
        return data_source(data, shape, classes, sparse=self._loss is None, name=name)

    def _checkpointer(self, directory: Any, run: dict[str, Any], plan: RunPlan) -> Checkpointer:
        assert plan.checkpoint_every is not None
        return Checkpointer.for_run(
            directory, model=self.model, run=run, every=plan.checkpoint_every,
            strategy=self.strategy,
        )  # fmt: skip

    def _restore(self, checkpointer: Checkpointer, resume: bool) -> int:
        """Restore the checkpoint to resume, or refuse to overwrite one; return the start."""
        if not resume:
            checkpointer.refuse_existing()
            return 0
        with self._scope():  # an unbuilt optimizer builds its slots: mirrored
            return checkpointer.restore()

    def _loop(
        self,
        engine: _engine.Engine,
        stream: Any,
        plan: RunPlan,
        callbacks: list[keras.callbacks.Callback],
    ) -> None:
        """Run the plan's steps in one Keras ``fit``, Ctrl-C deferred to a step's end."""
        checkpointer = next((c for c in callbacks if isinstance(c, Checkpointer)), None)
        interrupt = _interrupts.DeferredInterrupt()
        engine.make_train_function(force=True)
        try:
            with interrupt:
                engine.fit(
                    stream,
                    epochs=1,
                    steps_per_epoch=plan.total_steps - plan.start_step,
                    callbacks=[interrupt, *callbacks],
                    shuffle=False,
                    verbose=0,
                )
                interrupt.raise_pending()  # a Ctrl-C during the last call
        except KeyboardInterrupt:
            if checkpointer is not None:
                step = checkpointer.save()
                print(f"\nInterrupted at step {step}; checkpoint saved in "
                      f"{checkpointer.directory}.", file=sys.stderr)  # fmt: skip
            raise

    def _compile(self, total_steps: int | None) -> tuple[_engine.Engine, _engine.Engine]:
        """Compile the model and its engines (again if a schedule needs another length)."""
        if (
            self._engine is not None
            and self._evaluator is not None
            and (self.recipe.schedule is None or self._compiled_for == total_steps)
        ):
            return self._engine, self._evaluator
        with self._scope():
            optimizer = self._optimizer or _setup.make_optimizer(self.recipe, total_steps)
            loss, training_loss = _setup.losses(self.recipe, self._loss, self.output)
            self._engine, self._evaluator = _setup.compile_engines(
                self.model, optimizer, loss, self._metrics, strategy=self.strategy,
                training_loss=training_loss,
            )  # fmt: skip
        self._compiled_for = total_steps
        return self._engine, self._evaluator
