"""The Trainer: the tutorial's training loop, made reusable on top of ``keras.Model.fit``.

Models stay plain ``keras.Model`` objects, callbacks stay Keras callbacks and ``fit``
returns a Keras ``History``. The Trainer compiles the model and runs Keras's own epoch
loop; it adds what the tutorial did by hand (training by steps, logging the accuracy of
the current batch with dropout off, feeding ``keep_prob``) and what it lacked: recipes,
checkpoints that survive an interrupt and resume exactly, and a divergence guard (the
callbacks of ``mnistkit._callbacks``). It is written against Keras alone, and runs on
the TensorFlow, JAX and PyTorch backends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import platform
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from mnistkit import _interrupts, checkpoints, cluster, distribute, sharding, streams
from mnistkit._callbacks import (
    Checkpointer,
    DivergenceGuard,
    RunHistory,
    RunLog,
    StepClock,
    TrainedWeights,
    watches_steps,
)
from mnistkit._sources import EVALUATION_BATCH, ArraySource, DataSource, data_source
from mnistkit._version import __version__
from mnistkit.errors import InvalidArgumentError, TrainingDivergedError
from mnistkit.layers import apply_keep_prob, parameter_count
from mnistkit.models import (
    MODELS,
    build,
    check_one_output,
    model_info,
    model_output,
    model_recipes,
)
from mnistkit.optimizers import make_loss, make_optimizer
from mnistkit.plan import RunPlan
from mnistkit.precision import check_model_policy, policy, resolve_precision
from mnistkit.predictor import Predictor
from mnistkit.recipes import Recipe, check_optimizer, resolve_recipe
from mnistkit.saving import save_model
from mnistkit.validation import (
    check_bool,
    check_positive_float,
    check_positive_int,
    check_seed,
    invalid,
)

__all__ = ["RunHistory", "Trainer"]

#: Steps between periodic checkpoints, unless ``fit`` is told otherwise.
CHECKPOINT_EVERY = 1000


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

    Under a ``strategy`` or a ``distribution``, the batch size is the global batch,
    split among the replicas: at the recipe's batch size the run trains as on one
    device (see :doc:`/scaling`).

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
            recorded in :attr:`metadata` so the run can be repeated (under a
            distribution over several processes, the chief's draw, in every process).
        deterministic: Make runs bitwise repeatable on CPU: on TensorFlow, by turning
            on its op determinism (a process-wide switch); JAX and PyTorch are on CPU
            already. The seed defaults to 0.
        strategy: A ``tf.distribute.MirroredStrategy`` to train under, over the GPUs
            (or CPUs) of one machine; TensorFlow backend only. A model given by name is
            built in its scope; a ``keras.Model``, optimizer or metric given built must
            have been built inside ``with strategy.scope():``.
        distribution: A ``keras.distribution.Distribution`` (``DataParallel``...) to
            train under; JAX backend only. ``None`` takes the one set with
            ``keras.distribution.set_distribution``, if any. A model given by name is
            built in its scope; a ``keras.Model``, optimizer or metric given built must
            have been built inside ``with distribution.scope():``.
        recipe: The name of one of the model's recipes, or a
            :class:`~mnistkit.Recipe`; ``None`` uses the recipe the model was built for,
            else its default recipe.
        precision: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"`` or
            ``"auto"`` (bfloat16 where the hardware runs it fast); ``None`` takes the
            recipe's, else float32. A model given by name is built under it; a model
            given built keeps the precision it was built with.
        output: What the model outputs, ``"logits"`` or ``"probabilities"``; ``None``
            asks :func:`~mnistkit.model_output` (a model built by hand that ends in a
            softmax outputs probabilities).

    Raises:
        InvalidArgumentError: If a setting is out of range, the optimizer is unknown,
            ``keep_prob`` is given for a model without dropout, a model, optimizer or
            metric given built is outside the ``strategy``'s or ``distribution``'s
            scope, a ``distribution`` is given on another backend than JAX, or both a
            ``strategy`` and a ``distribution`` are.
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
        strategy: Any = None,
        distribution: Any = None,
        recipe: str | Recipe | None = None,
        precision: str | None = None,
        output: str | None = None,
    ) -> None:
        _check_settings(optimizer, learning_rate, seed, metrics)
        self.deterministic = check_bool(deterministic, "deterministic")
        self.strategy = strategy
        #: The ``keras.distribution`` trained under (given, or set globally), or ``None``.
        self.distribution = sharding.resolve_distribution(distribution, strategy)
        if seed is None:  # in a cluster of processes, the chief's draw
            seed = 0 if deterministic else cluster.shared_seed(self.distribution)
        self.seed = int(seed)
        keras.utils.set_random_seed(self.seed)
        if deterministic and keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()

        name, info = _identify(model)
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
            resolved = check_model_policy(model, precision)
        if strategy is not None:
            distribute.check_scope(strategy, model, optimizer=optimizer, metrics=metrics)
        if self.distribution is not None:
            sharding.check_placement(self.distribution, model, optimizer=optimizer, metrics=metrics)
        #: The model being trained (a plain ``keras.Model``).
        self.model: keras.Model = model
        #: The registered name of the model, or ``None`` for a model built by hand.
        self.model_name: str | None = name
        #: What the model outputs, ``"logits"`` or ``"probabilities"``.
        self.output: str = model_output(model, output)
        #: The recipe in force, the model's with the settings given here applied, the
        #: precision resolved and the keep probability the model trains at.
        self.recipe: Recipe = dataclasses.replace(
            chosen, precision=resolved, keep_prob=apply_keep_prob(model, keep_prob)
        )
        #: The predictions of the model, dropout off (see :class:`~mnistkit.Predictor`).
        self.predictor = Predictor(model, output=self.output)
        given = isinstance(optimizer, keras.optimizers.Optimizer)
        self._given_optimizer = optimizer if given else None
        self._optimizer: tuple[keras.optimizers.Optimizer, int | None] | None = None
        self._loss = loss
        self._metrics = list(metrics)
        self._compiled: tuple[int | None, int] | None = None
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
        checkpoint_every: int = CHECKPOINT_EVERY,
        verbose: str | int = "auto",
    ) -> RunHistory:
        """Train the model by steps (as the tutorial did) or by epochs.

        With neither ``steps`` nor ``epochs``, the recipe's length is used. An epoch is
        ``ceil(N / batch_size)`` steps; batches run on across epoch boundaries, each
        epoch in a fresh order drawn from the seed.

        The run is Keras's own epoch loop, ``keras.Model.fit(epochs=, initial_epoch=,
        steps_per_epoch=)``, so Keras callbacks see its epochs as Keras gives them, with
        the validation metrics in ``logs``. A run by steps that ends inside an epoch
        ends it there, and a run resumed inside an epoch begins with the rest of that
        epoch, under its own number: each in one short ``fit`` of its own, so callbacks
        see ``on_train_begin`` once more there. A callback with a method
        ``on_log(step, logs)`` also gets each record of :attr:`RunHistory.log`.

        Args:
            data: A :class:`~mnistkit.Split`, an ``(images, labels)`` pair of arrays, or
                a ``tf.data.Dataset`` of batches. Flat (N, 784) images are reshaped
                for a model that takes (28, 28, 1). A dataset is trained on as it
                comes: the recipe's ``shift`` applies to arrays and splits only.
            steps: How many training steps to run.
            epochs: How many passes over ``data`` to run.
            batch_size: Examples per step, the global batch: a ``strategy`` or
                ``distribution`` splits it among its replicas (ignored for a
                ``tf.data.Dataset``).
            validation_data: Evaluated at the end of each epoch and of each logged
                stretch of steps, in the same forms as ``data`` (under a distribution
                over several processes, at the logged steps only).
            log_every: Print ``step N, training accuracy A`` every ``N`` steps, from
                step 0, measured on the batch about to be trained on with dropout off
                (and before any shift its recipe applies), and record each stretch's
                figures in :attr:`RunHistory.log`. ``None``: with ``verbose="auto"``, a run
                by steps on arrays logs ten such lines, a run by epochs shows Keras's
                progress.
            callbacks: Keras callbacks. One that overrides a batch-level hook
                (``on_train_batch_end``...) sees every step; otherwise the Trainer
                may run up to 10 steps per call into the backend (Keras's
                ``steps_per_execution``, :doc:`/scaling`).
            checkpoint_dir: Save checkpoints there every ``checkpoint_every`` steps, at
                the end, and when the run is interrupted. Ctrl-C lets the steps under
                way finish first; a second Ctrl-C interrupts at once. Under a
                distribution over several processes, the chief (process 0) saves them;
                the others write nothing.
            resume: Continue the run checkpointed in ``checkpoint_dir`` (not yet under a
                distribution over several processes).
            checkpoint_every: Steps between periodic checkpoints.
            verbose: 0 for silence; 1 for Keras's progress bar per epoch, 2 for a line
                per epoch, or, with ``log_every``, the log lines. ``"auto"``: the log
                lines for a run by steps (see ``log_every``), else 1 on a terminal and 2
                elsewhere.

        Returns:
            The run's :class:`~mnistkit.training.RunHistory`, a Keras ``History`` with
            one entry per epoch, and the log of the logged steps. Its ``params`` say how
            many epochs and steps per epoch the run has, and how many steps ran in each
            call into the backend (``steps_per_call``).

        Raises:
            InvalidArgumentError: If both or neither length is given where the recipe
                has none, a value is out of range, or the data has the wrong form.
            CheckpointError: If ``resume`` finds no checkpoint, a corrupt one, or one
                from a run with other settings; or if ``checkpoint_dir`` already holds a
                checkpoint and ``resume`` is false.
            TrainingDivergedError: If the loss becomes NaN or infinite.
            MnistkitError: If a ``strategy`` is used on a backend other than TensorFlow.
            KeyboardInterrupt: On Ctrl-C, after the checkpoint is saved.
        """
        recipe = self._run_recipe(steps, epochs, batch_size)
        _check_callbacks(callbacks)
        source = self._source(data)
        steps_shown = verbose == "auto" and isinstance(source, ArraySource)
        if log_every is None and steps_shown and recipe.steps is not None:
            log_every = RunPlan.default_log_every(recipe.steps)  # as the tutorial counts them
        validation = None if validation_data is None else self._source(validation_data)
        plan = self._plan(recipe, source, log_every, checkpoint_dir, checkpoint_every)
        if checkpoint_dir is None and resume:
            raise InvalidArgumentError("`resume=True` needs the `checkpoint_dir` to resume from.")
        # Keras's JAX trainer swaps averaged weights in even when fit ends on an interrupt:
        # a checkpointed run keeps each step's trained weights (see TrainedWeights).
        optimizer = self._given_optimizer or getattr(self.model, "optimizer", None)
        averaged = recipe.ema is not None or bool(getattr(optimizer, "use_ema", False))
        keep_steps = averaged and checkpoint_dir is not None and keras.backend.backend() == "jax"
        processes = 1 if self.distribution is None else int(self.distribution.num_processes)
        if resume and processes > 1:
            raise InvalidArgumentError(
                "`resume=True` is not supported yet under a distribution over several "
                f"processes ({processes})."
            )
        # One step per call under a strategy, for a callback that watches steps, and on
        # PyTorch, whose Keras trainer runs one step per call only. Over several
        # processes, too: each must make the same calls into the backend, whatever
        # callbacks it was given (the chief's write the run folder).
        every_step = (
            self.strategy is not None
            or processes > 1
            or any(map(watches_steps, callbacks))
            or keras.backend.backend() == "torch"
            or keep_steps
        )

        def steps_per_call(plan: RunPlan) -> int:
            return plan.steps_per_call(
                parameters=parameter_count(self.model),
                batch_size=recipe.batch_size,
                every_step=every_step,
            )

        one_hot = self._compile(recipe, plan.total_steps, steps_per_call(plan))
        data_seed = streams.stream_seed(self.seed, self._runs)
        clock = StepClock(0)
        checkpointer = None
        if checkpoint_dir is not None and cluster.is_chief(self.distribution):
            record = {
                "model": self.model_name or self.model.name,
                "backend": keras.backend.backend(),
                "parameters": parameter_count(self.model),
                "seed": self.seed,
                "stream_seed": data_seed,
                "batch_size": recipe.batch_size,
                "total_steps": plan.total_steps,
                "data_checksum": source.checksum(),
                **checkpoints.optimizer_record(self.model.optimizer),
            }
            checkpointer = Checkpointer(
                checkpoint_dir, model=self.model, run=record, every=checkpoint_every, clock=clock
            )
            plan = dataclasses.replace(plan, start_step=self._restore(checkpointer, resume))
        calls = steps_per_call(plan)  # from the step the run starts at
        self._compile(recipe, plan.total_steps, calls)
        self._runs += 1
        self._last = {"recipe": recipe, "data": source, "data_seed": data_seed}
        history = RunHistory()
        history.params = {"epochs": plan.epochs, "steps": plan.steps_per_epoch}
        history.params["steps_per_call"] = calls
        if plan.start_step == plan.total_steps:
            return history  # a finished run's checkpoint: nothing is left to train
        clock.step = clock.epoch_start = plan.start_step
        quiet = verbose == 0
        run_log = RunLog(
            plan=plan,
            clock=clock,
            history=history,
            accuracy=self._batch_accuracy(source, recipe.batch_size, data_seed),
            validate=None if validation is None else self._stretch_validation(validation),
            listeners=[c for c in callbacks if callable(getattr(c, "on_log", None))],
            printing=not quiet,
        )
        guard = DivergenceGuard(clock, checkpointer)
        trained = TrainedWeights(each_step=keep_steps)
        ours = [clock, guard, *([checkpointer] if checkpointer else []), run_log]
        if averaged:
            ours.insert(0, trained)  # first: it keeps a step's weights before others act
        if verbose == "auto":
            verbose = 1 if sys.stdout.isatty() else 2
        shown = 0 if quiet or plan.log_every is not None else verbose
        interrupt = _interrupts.DeferredInterrupt()
        try:
            with interrupt, self._scope():
                fits = plan.fits()
                for index, (start, first_epoch, end_epoch, per_epoch) in enumerate(fits):
                    self.model.fit(
                        source.training_stream(
                            batch_size=recipe.batch_size,
                            seed=data_seed,
                            start_step=start,
                            augmentation=recipe.augmentation(),
                            one_hot=one_hot,
                            label_smoothing=recipe.label_smoothing or 0.0,
                        ),
                        initial_epoch=first_epoch,
                        epochs=end_epoch,
                        steps_per_epoch=per_epoch,
                        validation_data=None
                        if validation is None or processes > 1
                        else validation.evaluation_batches(EVALUATION_BATCH, one_hot),
                        callbacks=[interrupt, *ours, history, *callbacks],
                        shuffle=False,
                        verbose=shown,
                    )
                    interrupt.raise_pending()  # a Ctrl-C during the last call
                    if self.model.stop_training:
                        break
                    if trained.kept and index < len(fits) - 1:
                        trained.put_back()  # the averages come in once, at the run's end
        except KeyboardInterrupt:
            if checkpointer is not None:
                if keep_steps and trained.kept:
                    trained.put_back()  # the trained weights, not the averages Keras put in
                step = checkpointer.save()
                print(f"\nInterrupted at step {step}; checkpoint saved in "
                      f"{checkpointer.directory}.", file=sys.stderr)  # fmt: skip
            raise
        run_log.finish()
        if guard.message is not None:
            raise TrainingDivergedError(guard.message)
        if checkpointer is not None:
            checkpointer.save()
        history.params = {"epochs": plan.epochs, "steps": plan.steps_per_epoch}
        history.params["steps_per_call"] = calls
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
        recipe = self._run_recipe(steps, epochs, batch_size)
        return self._plan(recipe, self._source(data), log_every, None, CHECKPOINT_EVERY)

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
        one_hot = self._compile(self.recipe, None, None)
        batches = self._source(data).evaluation_batches(size, one_hot)
        if self.distribution is not None and int(self.distribution.num_processes) > 1:
            with sharding.detached():  # each process evaluates all of data, on its own
                copy = sharding.local_copy(self.model)
                copy.compile(loss=self.model.loss, metrics=[_fresh(m) for m in self._metrics])
                result = copy.evaluate(batches, verbose=0, return_dict=True)
        else:
            with self._scope():
                result = self.model.evaluate(batches, verbose=0, return_dict=True)
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
        with self._local_predictor() as predictor:
            return predictor.predict(
                images, samples=samples, keep_prob=keep_prob, batch_size=batch_size
            )

    @property
    def metadata(self) -> dict[str, Any]:
        """Facts about the run, saved with the model by :meth:`save`.

        Returns:
            Seed, determinism, model name, output kind, recipe (with the precision
            resolved and the keep probability trained at), steps trained, batch size,
            the seed of the last run's data order, the class name of the
            ``tf.distribute`` strategy or ``keras.distribution`` and its replica count
            (``None`` and 1 without one), the SHA-256 of the data of the last ``fit``
            (hashed when first read) and library versions, the Keras backend among them.
        """
        recipe: Recipe = self._last.get("recipe", self.recipe)
        source: DataSource | None = self._last.get("data")
        optimizer = getattr(self.model, "optimizer", None)
        return {
            "model": self.model_name or self.model.name,
            "output": self.output,
            "recipe": recipe.as_dict(),
            "seed": self.seed,
            "deterministic": self.deterministic,
            "steps": int(np.asarray(optimizer.iterations)) if optimizer is not None else 0,
            "batch_size": recipe.batch_size if self._last else None,
            "data_seed": self._last.get("data_seed"),
            "strategy": self._distributed_by(),
            "replicas": self._replicas(),
            "data_checksum": None if source is None else source.checksum(),
            "versions": {
                "mnistkit": __version__,
                "keras": keras.__version__,
                "backend": keras.backend.backend(),
                **_backend_version(),
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }

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

    # ------------------------------------------------------------------ the parts of a run

    def _scope(self) -> Any:
        if self.strategy is not None:
            return self.strategy.scope()
        if self.distribution is not None:
            return self.distribution.scope()
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def _local_predictor(self) -> Iterator[Predictor]:
        """The predictor of this process's own data: under a distribution over several
        processes, that of a copy of the model on this process's devices."""
        if self.distribution is None or int(self.distribution.num_processes) == 1:
            yield self.predictor
            return
        with sharding.detached():
            yield Predictor(sharding.local_copy(self.model), output=self.output)

    def _distributed_by(self) -> str | None:
        chosen = self.strategy if self.strategy is not None else self.distribution
        return None if chosen is None else type(chosen).__name__

    def _replicas(self) -> int:
        if self.strategy is not None:
            return int(self.strategy.num_replicas_in_sync)
        if self.distribution is not None:
            return sharding.replicas(self.distribution)
        return 1

    def _source(self, data: Any) -> DataSource:
        shape = tuple(int(d) for d in self.model.input_shape[1:])
        classes = int(self.model.output_shape[-1])
        return data_source(data, shape, classes, sparse=self._loss is None, name="data")

    def _run_recipe(self, steps: Any, epochs: Any, batch_size: Any) -> Recipe:
        """The recipe of one run: the Trainer's, with ``fit``'s length and batch size."""
        if steps is not None and epochs is not None:
            raise InvalidArgumentError(
                f"Pass either `steps` or `epochs`, not both. Received: steps={steps}, "
                f"epochs={epochs}"
            )
        return self.recipe.replace(
            steps=None if steps is None else check_positive_int(steps, "steps"),
            epochs=None if epochs is None else check_positive_int(epochs, "epochs"),
            batch_size=None if batch_size is None else check_positive_int(batch_size, "batch_size"),
        )

    def _plan(
        self,
        recipe: Recipe,
        source: DataSource,
        log_every: Any,
        checkpoint_dir: Any,
        checkpoint_every: Any,
    ) -> RunPlan:
        """The plan of a run of ``fit``, its settings checked against the model and data."""
        every = check_positive_int(checkpoint_every, "checkpoint_every")
        arrays = source.batch_at(batch_size=1, seed=0, step=0) is not None
        if log_every is not None:
            log_every = check_positive_int(log_every, "log_every")
            if not arrays:
                raise InvalidArgumentError(
                    "`log_every` needs arrays or a Split: it measures the batch about to be "
                    "trained on, which a tf.data.Dataset cannot give back."
                )
        examples = source.steps_per_epoch(1)
        if examples is not None and arrays and recipe.batch_size > examples:
            # Each batch would hold the data many times over (and take its memory as often).
            raise invalid(
                "batch_size", f"at most the {examples:,} training examples", recipe.batch_size
            )
        if any(recipe.augmentation().values()) and len(self.model.input_shape) != 4:
            raise InvalidArgumentError(
                f"The recipe moves images (shifts of up to {recipe.shift} pixels, rotations, "
                "scaling or shear), which needs a model that takes images shaped (height, "
                f"width, channels). Received: input shape {tuple(self.model.input_shape[1:])}"
            )
        return RunPlan.make(
            steps=recipe.steps,
            epochs=recipe.epochs,
            steps_per_epoch=source.steps_per_epoch(recipe.batch_size),
            log_every=log_every,
            checkpoint_every=None if checkpoint_dir is None else every,
        )

    def _compile(self, recipe: Recipe, total_steps: int | None, calls: int | None) -> int | None:
        """Compile the model for a run, again only where it needs other settings.

        Args:
            recipe: The run's recipe.
            total_steps: The run's length, which a learning-rate schedule spans.
            calls: Steps per call into the backend; ``None`` to evaluate only.

        Returns:
            The one-hot width the run's labels take, or ``None`` for integer labels.
        """
        if self._loss is not None:
            loss, one_hot = self._loss, None
        else:
            loss, one_hot = make_loss(recipe, self.output, int(self.model.output_shape[-1]))
        if calls is None:
            if self._compiled is not None:
                return one_hot  # evaluating: the run's compilation does
            calls = 1
        schedule = total_steps if recipe.schedule is not None else None
        if self._compiled == (schedule, calls):
            return one_hot
        with self._scope():
            if self._given_optimizer is not None:
                optimizer = self._given_optimizer
            elif self._optimizer is not None and self._optimizer[1] == schedule:
                optimizer = self._optimizer[0]
            else:
                optimizer = make_optimizer(recipe, total_steps)
                self._optimizer = (optimizer, schedule)
            self.model.compile(
                optimizer=optimizer, loss=loss, metrics=self._metrics, steps_per_execution=calls
            )
        self._compiled = (schedule, calls)
        return one_hot

    def _restore(self, checkpointer: Checkpointer, resume: bool) -> int:
        """Restore the checkpoint to resume, or refuse to overwrite one; return the start."""
        if not resume:
            checkpointer.refuse_existing()
            return 0
        with self._scope():  # an unbuilt optimizer builds its slots: mirrored
            return checkpointer.restore()

    def _batch_accuracy(self, source: DataSource, batch_size: int, seed: int) -> Any:
        def accuracy(step: int) -> float | None:
            batch = source.batch_at(batch_size=batch_size, seed=seed, step=step)
            if batch is None:
                return None
            images, labels = batch
            with self._local_predictor() as predictor:
                return float(np.mean(predictor.predict(images).argmax(axis=1) == labels))

        return accuracy

    def _stretch_validation(self, validation: DataSource) -> Any:
        if not isinstance(validation, ArraySource):
            return None  # a tf.data.Dataset: validated at the ends of epochs only
        pair = (validation.arrays.images, validation.arrays.labels)

        def validate() -> dict[str, float]:
            with self._local_predictor() as predictor:
                figures = predictor.evaluate(pair)
            return {"loss": figures["loss"], "accuracy": figures["accuracy"]}

        return validate


def _check_settings(optimizer: Any, learning_rate: Any, seed: Any, metrics: Any) -> None:
    """Check the Trainer's settings that need no model, in Keras's words."""
    if seed is not None:
        check_seed(seed)
    if learning_rate is not None:
        check_positive_float(learning_rate, "learning_rate")
    if isinstance(optimizer, str):
        check_optimizer(optimizer)
    elif optimizer is not None and not isinstance(optimizer, keras.optimizers.Optimizer):
        raise invalid("optimizer", "a name or a Keras optimizer", optimizer)
    elif optimizer is not None and learning_rate is not None:
        raise InvalidArgumentError(
            "Pass `learning_rate` to the optimizer itself when `optimizer` is an instance."
        )
    if isinstance(metrics, str) or not isinstance(metrics, Sequence):
        raise invalid("metrics", "a sequence of Keras metrics or metric names", metrics)


def _identify(model: Any) -> tuple[str | None, Any]:
    """Return the registered name of ``model`` (a name or a Keras model) and its info."""
    if isinstance(model, str):
        return MODELS.entry(model).name, None
    if not isinstance(model, keras.Model):
        raise InvalidArgumentError(
            "Invalid value for argument `model`. Expected a keras.Model or a registered "
            f"model name. Received: model={type(model).__name__}"
        )
    check_one_output(model)
    info = model_info(model)
    return (None if info is None else info.name), info


def _fresh(metric: Any) -> Any:
    """A metric name as it is; a metric instance anew, with no state, from its config."""
    if isinstance(metric, keras.metrics.Metric):
        return type(metric).from_config(metric.get_config())
    return metric


def _check_callbacks(callbacks: Any) -> None:
    """Raise unless ``callbacks`` is a sequence of Keras callbacks."""
    if isinstance(callbacks, keras.callbacks.Callback) or not isinstance(callbacks, Sequence):
        raise invalid("callbacks", "a sequence of keras.callbacks.Callback", callbacks)
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            raise invalid("callbacks", "a sequence of keras.callbacks.Callback", callback)


def _backend_version() -> dict[str, str]:
    """The versions of TensorFlow (the data pipelines') and of the backend's library."""
    names = {"tensorflow", {"torch": "torch", "jax": "jax"}.get(keras.backend.backend(), "")}
    return {name: importlib.metadata.version(name) for name in sorted(names - {""})}
