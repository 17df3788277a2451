"""The Trainer: the tutorial's training loop, made reusable on top of ``keras.Model.fit``.

Models stay plain ``keras.Model`` objects, callbacks stay Keras callbacks and ``fit``
returns a Keras ``History``. The Trainer adds what the tutorial did by hand: training
by steps, logging the accuracy of the current batch with dropout off, toggling
``keep_prob``, and what it lacked: checkpoints that survive an interrupt and resume
exactly, and recipes.
"""

from __future__ import annotations

import math
import platform
import random
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnistkit import _checkpoints, _distribute, _execution, _interrupts, _pipeline
from mnistkit.errors import CheckpointError, InvalidArgumentError, TrainingDivergedError
from mnistkit.layers import _dropout_layers, get_keep_prob, set_keep_prob, validate_keep_prob
from mnistkit.models import NAME_ATTRIBUTE, _registry, build, list_models
from mnistkit.precision import policy, resolve_precision
from mnistkit.recipes import Recipe, check_optimizer, pick_recipe, recipes_of
from mnistkit.saving import save_model

__all__ = ["Trainer"]

#: The recipe of a model that carries none: Adam at 1e-3, one epoch of 32.
GENERIC_RECIPE = Recipe(
    optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=1, summary="Generic settings."
)

_EVALUATION_BATCH = 1000


def _positive_int(value: Any, name: str, *, allow_none: bool = True) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InvalidArgumentError(
            f"Invalid value for argument `{name}`. Expected a positive integer. "
            f"Received: {name}={value!r}"
        )
    return int(value)


class Trainer:
    """Compile, fit, evaluate and predict with a model, the way the tutorial trained it.

    Settings left as ``None`` come from the model's recipe (see
    :func:`~mnistkit.model_recipes`), so ``Trainer("softmax").fit(mnist.train)``
    reproduces the tutorial. The model is compiled when it is first trained or
    evaluated.

    Under a ``strategy``, the batch size is the global batch, split among the
    replicas: at the recipe's batch size the run trains as on one device. To give each
    of ``n`` replicas the recipe's batch instead, multiply the batch size by ``n``
    and the learning rate with it, ``Trainer("softmax", strategy=s,
    learning_rate=0.5 * n).fit(data, batch_size=100 * n)`` (see :doc:`/scaling`).

    Args:
        model: A ``keras.Model``, or the name of a registered model to build.
        optimizer: A Keras optimizer name (``"sgd"``, ``"adam"``...) or instance.
        learning_rate: The (peak) learning rate of an optimizer given by name.
        loss: A Keras loss. ``None`` (the default) uses cross-entropy on the model's
            logits, with integer or one-hot labels alike.
        metrics: Keras metrics reported by ``fit`` and :meth:`evaluate`.
        keep_prob: Dropout keep probability while training; evaluation and prediction
            always run at 1.0.
        seed: Seed of the weights, the data order and dropout. ``None`` draws one,
            recorded in :attr:`metadata` so the run can be repeated.
        deterministic: Make runs bitwise repeatable on CPU by turning on TensorFlow's
            op determinism (a process-wide switch). The seed defaults to 0.
        strategy: A ``tf.distribute.Strategy`` to train under: ``MirroredStrategy``
            for the GPUs (or CPUs) of one machine, ``MultiWorkerMirroredStrategy`` for
            several machines. A model given by name is built in its scope, with its
            optimizer and metrics; a ``keras.Model``, optimizer or metric given built
            must have been built inside ``with strategy.scope():``. Batch sizes stay
            global, split among the replicas; only the chief writes checkpoints.
        recipe: The name of one of the model's recipes, or a
            :class:`~mnistkit.Recipe`; ``None`` uses the model's default recipe.
        precision: ``"float32"``, ``"mixed_bfloat16"``, ``"mixed_float16"`` or
            ``"auto"`` (bfloat16 where the hardware runs it fast); ``None`` takes the
            recipe's, else float32. A model given by name is built under it; a model
            given built keeps the precision it was built with.

    Raises:
        InvalidArgumentError: If a setting is out of range, the optimizer is unknown,
            or a model, optimizer or metric given built is outside the ``strategy``'s
            scope.
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
    ) -> None:
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0
        ):
            raise InvalidArgumentError(
                "Invalid value for argument `seed`. Expected a non-negative integer or None. "
                f"Received: seed={seed!r}"
            )
        if learning_rate is not None and (
            isinstance(learning_rate, bool)
            or not isinstance(learning_rate, (int, float))
            or not 0 < learning_rate < math.inf
        ):
            raise InvalidArgumentError(
                "Invalid value for argument `learning_rate`. Expected a positive float. "
                f"Received: learning_rate={learning_rate!r}"
            )
        if isinstance(optimizer, str):
            check_optimizer(optimizer)
        elif optimizer is not None and not isinstance(optimizer, keras.optimizers.Optimizer):
            raise InvalidArgumentError(
                "Invalid value for argument `optimizer`. Expected a name or a Keras optimizer. "
                f"Received: optimizer={optimizer!r}"
            )
        elif optimizer is not None and learning_rate is not None:
            raise InvalidArgumentError(
                "Pass `learning_rate` to the optimizer itself when `optimizer` is an instance."
            )
        self.keep_prob = None if keep_prob is None else validate_keep_prob(keep_prob)
        self.deterministic = bool(deterministic)
        if seed is None:
            seed = 0 if deterministic else random.SystemRandom().randrange(2**31)
        self.seed = _distribute.shared_seed(strategy, int(seed))
        self.strategy = strategy
        keras.utils.set_random_seed(self.seed)
        if deterministic:
            tf.config.experimental.enable_op_determinism()

        if isinstance(model, str):
            name: str | None = _registry.entry(model).name
        elif isinstance(model, keras.Model):
            name = _registered_name(model)
        else:
            raise InvalidArgumentError(
                "Invalid value for argument `model`. Expected a keras.Model or a registered "
                f"model name. Received: model={type(model).__name__}"
            )
        if isinstance(recipe, Recipe):
            chosen: Recipe | None = recipe
        elif name is not None:
            chosen = pick_recipe(name, recipes_of(_registry.get(name)), recipe)
        elif recipe is not None:
            raise InvalidArgumentError(
                f"Invalid value for argument `recipe`. A model built by hand has no named "
                f"recipes; pass a Recipe. Received: recipe={recipe!r}"
            )
        else:
            chosen = None
        base = chosen or GENERIC_RECIPE
        wanted = precision or base.precision or "float32"
        resolved = resolve_precision(wanted)
        if isinstance(model, str):
            with self._scope(), policy(resolved):
                model = build(model)
        elif precision not in (None, "auto") and model.dtype_policy.name != resolved:
            raise InvalidArgumentError(
                f"The model was built with the {model.dtype_policy.name!r} dtype policy, "
                f"not {resolved!r}. Pass the model's name instead, or build it inside "
                f"`with mnistkit.precision.policy({resolved!r}):`."
            )
        else:
            resolved = model.dtype_policy.name
        if strategy is not None:
            _distribute.check_scope(strategy, model, optimizer=optimizer, metrics=metrics)
            _distribute.adapt_keras(model, strategy)
        #: The model being trained (a plain ``keras.Model``).
        self.model: keras.Model = model
        #: The registered name of the model, or ``None`` for a model built by hand.
        self.model_name: str | None = name
        #: The recipe in force, the model's with the settings given here applied.
        self.recipe: Recipe = base.replace(
            optimizer=optimizer if isinstance(optimizer, str) else None,
            learning_rate=learning_rate,
            keep_prob=self.keep_prob,
            precision=resolved,
        )
        self._optimizer = optimizer if isinstance(optimizer, keras.optimizers.Optimizer) else None
        self._loss = loss
        self._metrics = list(metrics)
        self._compiled_steps: int | None = None
        self._runs = 0
        self._last_recipe: Recipe | None = None
        self._last_batch_size: int | None = None
        self._last_data: _pipeline.Arrays | None = None  # hashed when metadata is read
        self._predict_fn: Any = None
        self._sample_fn: Any = None

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
    ) -> keras.callbacks.History:
        """Train the model by steps (as the tutorial did) or by epochs.

        With neither ``steps`` nor ``epochs``, the recipe's length is used. An epoch is
        ``ceil(N / batch_size)`` steps; batches run on across epoch boundaries, each
        epoch in a fresh order drawn from the seed.

        Args:
            data: A :class:`~mnistkit.Split`, an ``(images, labels)`` pair of arrays, or
                a ``tf.data.Dataset`` of batches. Flat (N, 784) images are reshaped
                for a model that takes (28, 28, 1). A dataset is trained on as it
                comes: the recipe's ``shift`` applies to arrays and splits only.
            steps: How many training steps to run.
            epochs: How many passes over ``data`` to run.
            batch_size: Examples per step, the global batch: a ``strategy`` splits it
                among its replicas (ignored for a ``tf.data.Dataset``, whose batches
                are global too). Scale the learning rate with it (:doc:`/scaling`).
            validation_data: Evaluated at the end of each logged chunk or epoch, in the
                same forms as ``data``.
            log_every: Print ``step N, training accuracy A`` every ``N`` steps, from
                step 0, measured on the batch about to be trained on with dropout off
                (and before any shift its recipe applies); the figures also go into the
                History as ``step`` and ``train_accuracy``.
            callbacks: Keras callbacks. One that overrides a batch-level hook
                (``on_train_batch_end``...) sees every step; otherwise the Trainer
                may run up to 10 steps per call into TensorFlow (:doc:`/scaling`).
            checkpoint_dir: Save checkpoints there every ``checkpoint_every`` steps, at
                the end, and when the run is interrupted. Ctrl-C lets the steps under
                way finish first; a second Ctrl-C interrupts at once.
            resume: Continue the run checkpointed in ``checkpoint_dir``.
            checkpoint_every: Steps between periodic checkpoints.
            verbose: Keras's verbosity; with ``log_every``, 0 also silences the log lines.

        Returns:
            The Keras ``History`` of the run, with one entry per logged chunk, per
            epoch, or (by steps, without logging) one for the whole run.

        Raises:
            InvalidArgumentError: If both or neither length is given where the recipe
                has none, a value is not positive, or the data has the wrong form.
            CheckpointError: If ``resume`` finds no checkpoint, a corrupt one, or one
                from a run with other settings; or if ``checkpoint_dir`` already holds a
                checkpoint and ``resume`` is false.
            TrainingDivergedError: If the loss becomes NaN or infinite.
            KeyboardInterrupt: On Ctrl-C, after the checkpoint is saved.
        """
        if steps is not None and epochs is not None:
            raise InvalidArgumentError(
                "Pass either `steps` or `epochs`, not both. "
                f"Received: steps={steps}, epochs={epochs}"
            )
        steps = _positive_int(steps, "steps")
        epochs = _positive_int(epochs, "epochs")
        log_every = _positive_int(log_every, "log_every")
        every = _positive_int(checkpoint_every, "checkpoint_every", allow_none=False) or 1
        recipe = self.recipe.replace(
            steps=steps, epochs=epochs, batch_size=_positive_int(batch_size, "batch_size")
        )
        size = recipe.batch_size
        if checkpoint_dir is None and resume:
            raise InvalidArgumentError("`resume=True` needs the `checkpoint_dir` to resume from.")

        if _pipeline.is_dataset(data):
            if log_every is not None:
                raise InvalidArgumentError(
                    "`log_every` needs arrays or a Split: it measures the batch about to be "
                    "trained on, which a tf.data.Dataset cannot give back."
                )
            arrays = None
            cardinality = int(data.cardinality())
            steps_per_epoch = cardinality if cardinality > 0 else None
            if recipe.epochs is not None and steps_per_epoch is None:
                raise InvalidArgumentError(
                    "Training a tf.data.Dataset of unknown or infinite length needs `steps`."
                )
        else:
            arrays = self._arrays(data, "data")
            steps_per_epoch = math.ceil(len(arrays.images) / size)
            if recipe.shift and arrays.images.ndim != 4:
                raise InvalidArgumentError(
                    f"The recipe shifts images by up to {recipe.shift} pixels, which needs a "
                    "model that takes images shaped (height, width, channels). Received: "
                    f"input shape {self._input_shape}"
                )
        if recipe.steps is not None:
            total: int = recipe.steps
        else:
            total = int(recipe.epochs or 1) * int(steps_per_epoch or 1)
        chunk: int = log_every or (
            int(steps_per_epoch or 1) if recipe.epochs is not None else total
        )
        validation = None if validation_data is None else self._keras_data(validation_data)

        directory = None if checkpoint_dir is None else Path(checkpoint_dir)
        stream_seed = int(np.random.SeedSequence([self.seed, self._runs]).generate_state(1)[0])
        parameters = int(self.model.count_params())
        expected = {
            "model": self.model_name or self.model.name,
            "parameters": parameters,
            "seed": self.seed,
            "stream_seed": stream_seed,
            "batch_size": size,
            "total_steps": total,
            # A checkpoint records what it was trained on; a plain run hashes it only
            # if its metadata is asked for.
            "data_checksum": None if arrays is None or directory is None else arrays.checksum,
        }
        self._compile(total)
        # Read before a checkpoint, saved mid-training, brings back the training value.
        previous_keep_prob = get_keep_prob(self.model)
        start = 0
        if directory is not None:
            if resume:
                state = _checkpoints.read_state(directory)
                _checkpoints.check_compatible(state, expected, directory)
                with self._scope():  # an unbuilt optimizer builds its slots: mirrored
                    _checkpoints.restore(directory, self.model, state)
                start = int(state["step"])
            elif _checkpoints.exists(directory):
                step = _checkpoints.read_state(directory).get("step")
                raise CheckpointError(
                    f"{directory} already holds a checkpoint (step {step}). Pass resume=True "
                    "(--resume) to continue that run, or choose another folder."
                )
        self._runs += 1
        self._last_batch_size = size
        self._last_recipe = recipe
        self._last_data = arrays

        train_keep_prob = self.recipe.keep_prob or previous_keep_prob
        if train_keep_prob is not None:
            set_keep_prob(self.model, train_keep_prob)
        segments = _segments(start, total, chunk)
        lengths = [min(chunk, count) for _, count in segments]
        if directory is not None:
            lengths.append(every)
        steps_per_call = (
            1
            if self.strategy is not None
            else _execution.steps_per_call(
                lengths, callbacks, parameters=parameters, batch_size=size
            )
        )
        # With several steps per call, the watch names the step where the loss broke.
        watch = _execution.LossWatch.install(self.model) if steps_per_call > 1 else None
        self._set_steps_per_call(1 if watch is None else steps_per_call)
        if watch is not None:
            watch.first_bad.assign(0)
        iterations = _iterations(self.model)
        progress = _Progress(
            watch=watch,
            trainer=self,
            start=start,
            iterations=iterations,
            directory=directory,
            every=every,
            expected=expected,
        )
        extra: list[keras.callbacks.Callback] = [progress]
        if log_every is not None and arrays is not None:
            extra.append(
                _TutorialLog(
                    self,
                    progress,
                    arrays,
                    batch_size=size,
                    seed=stream_seed,
                    printing=verbose != 0 and _distribute.is_chief(self.strategy),
                )
            )
        history = keras.callbacks.History()
        history.set_model(self.model)
        history.epoch = []
        keras_verbose = 0 if log_every is not None else verbose
        interrupt = _interrupts.DeferredInterrupt()
        try:
            with interrupt:
                for first, count in segments:
                    if arrays is not None:
                        train = _pipeline.training_stream(
                            arrays,
                            batch_size=size,
                            seed=stream_seed,
                            start_step=first,
                            shift=recipe.shift,
                        )
                    else:
                        train = self._keras_data(data).repeat()
                    per_epoch = min(chunk, count)
                    initial = first // chunk
                    result = self.model.fit(
                        train,
                        epochs=initial + count // per_epoch,
                        initial_epoch=initial,
                        steps_per_epoch=per_epoch,
                        validation_data=validation,
                        shuffle=False,
                        callbacks=[*extra, *callbacks, interrupt],
                        verbose=keras_verbose,
                    )
                    _merge(history, result)
                interrupt.raise_pending()  # a Ctrl-C during the last call
        except KeyboardInterrupt:
            if directory is not None:
                step = progress.save()
                print(
                    f"\nInterrupted at step {step}; checkpoint saved in {directory}.",
                    file=sys.stderr,
                )
            raise
        finally:
            if previous_keep_prob is not None:
                set_keep_prob(self.model, previous_keep_prob)
        if progress.diverged is not None:
            raise TrainingDivergedError(progress.diverged)
        if directory is not None:
            progress.save()
        return history

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
        batch_size = _positive_int(batch_size, "batch_size") or _EVALUATION_BATCH
        dataset = self._keras_data(data, batch_size=batch_size)
        if self._compiled_steps is None:
            self._compile(None)
        previous = get_keep_prob(self.model)
        if previous is not None:
            set_keep_prob(self.model, 1.0)
        try:
            result = self.model.evaluate(dataset, verbose=0, return_dict=True)
        finally:
            if previous is not None:
                set_keep_prob(self.model, previous)
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

        With ``keep_prob`` or ``samples``, run Monte-Carlo dropout instead: ``samples``
        stochastic passes at keep probability ``keep_prob`` (default: the training
        one), returning the mean probabilities and their standard deviation. The model
        is left exactly as it was, dropout state included.

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
        batch_size = _positive_int(batch_size, "batch_size", allow_none=False)  # type: ignore[assignment]
        x = _pipeline.shape_images(images, self._input_shape)
        if keep_prob is None and samples is None:
            return self._forward(x, batch_size, stochastic=False)
        samples = _positive_int(samples, "samples") or 30
        mc_keep_prob = (
            validate_keep_prob(keep_prob)
            if keep_prob is not None
            else (self.recipe.keep_prob or get_keep_prob(self.model) or 1.0)
        )
        saved = _snapshot(self.model)
        try:
            set_keep_prob(self.model, mc_keep_prob)
            draws = np.stack(
                [self._forward(x, batch_size, stochastic=True) for _ in range(samples)]
            )
        finally:
            _restore(self.model, saved)
        return draws.mean(axis=0), draws.std(axis=0)

    # ------------------------------------------------------------------ saving

    @property
    def metadata(self) -> dict[str, Any]:
        """Facts about the run, saved with the model by :meth:`save`.

        Returns:
            Seed, determinism, model name, recipe (with the precision resolved),
            steps trained, batch size, the distribution strategy's class name and
            replica count (``None`` and 1 without one), the SHA-256 of the data of the
            last ``fit`` (hashed when first read, unless a checkpoint needed it
            already) and library versions.
        """
        from mnistkit import __version__

        return {
            "model": self.model_name or self.model.name,
            "recipe": (self._last_recipe or self.recipe).as_dict(),
            "seed": self.seed,
            "deterministic": self.deterministic,
            "steps": _iterations(self.model),
            "batch_size": self._last_batch_size,
            "strategy": None if self.strategy is None else type(self.strategy).__name__,
            "replicas": 1 if self.strategy is None else int(self.strategy.num_replicas_in_sync),
            "data_checksum": None if self._last_data is None else self._last_data.checksum,
            "versions": {
                "mnistkit": __version__,
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
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

    # ------------------------------------------------------------------ internals

    @property
    def _input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.model.input_shape[1:])

    @property
    def _num_classes(self) -> int:
        return int(self.model.output_shape[-1])

    @property
    def _from_logits(self) -> bool:
        last = self.model.layers[-1]
        return getattr(last, "activation", None) is not keras.activations.softmax

    def _scope(self) -> Any:
        import contextlib

        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def _arrays(self, data: Any, name: str) -> _pipeline.Arrays:
        return _pipeline.to_arrays(
            data, self._input_shape, self._num_classes, sparse=self._loss is None, name=name
        )

    def _keras_data(self, data: Any, batch_size: int = _EVALUATION_BATCH) -> tf.data.Dataset:
        if not _pipeline.is_dataset(data):
            return _pipeline.evaluation_batches(self._arrays(data, "data"), batch_size)
        if self._loss is not None:
            return data
        num_classes = self._num_classes

        def sparse(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            if labels.shape.rank == 2 and labels.shape[-1] == num_classes:
                labels = tf.argmax(labels, axis=-1)
            return images, labels

        return data.map(sparse)

    def _set_steps_per_call(self, steps: int) -> None:
        if self.model.steps_per_execution != steps:
            self.model.steps_per_execution = steps
            # Keras traces each function with the count it had: trace them again.
            self.model.train_function = None
            self.model.test_function = None
            self.model.predict_function = None

    def _compile(self, total_steps: int | None) -> None:
        if self._compiled_steps is not None and (
            self.recipe.schedule is None or self._compiled_steps == total_steps
        ):
            return
        with self._scope():
            optimizer = self._optimizer or _make_optimizer(self.recipe, total_steps)
            loss = self._loss or keras.losses.SparseCategoricalCrossentropy(
                from_logits=self._from_logits
            )
            self.model.compile(optimizer=optimizer, loss=loss, metrics=self._metrics)
        self._compiled_steps = total_steps or 0

    def _forward(self, x: np.ndarray, batch_size: int, *, stochastic: bool) -> np.ndarray:
        if self._predict_fn is None:
            spec = tf.TensorSpec((None, *self._input_shape), tf.float32)
            model, logits = self.model, self._from_logits

            def probabilities(images: tf.Tensor, training: bool) -> tf.Tensor:
                outputs = model(images, training=training)
                return tf.nn.softmax(outputs) if logits else outputs

            def deterministic(images: tf.Tensor) -> tf.Tensor:
                return probabilities(images, False)

            def stochastic_(images: tf.Tensor) -> tf.Tensor:
                return probabilities(images, True)

            self._predict_fn = tf.function(deterministic, input_signature=[spec])
            self._sample_fn = tf.function(stochastic_, input_signature=[spec])
        function = self._sample_fn if stochastic else self._predict_fn
        parts = [
            function(tf.constant(x[i : i + batch_size])).numpy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self._num_classes), np.float32)


class _Progress(keras.callbacks.Callback):
    """Counts steps, stops on a non-finite loss, and writes periodic checkpoints.

    Without checkpoints it only reads the loss, so Keras may run it on a worker thread
    (``async_safe``) and the training loop never waits for it. With checkpoints it
    runs in the loop, since a checkpoint must see the weights between two steps.
    """

    def __init__(
        self,
        *,
        watch: _execution.LossWatch | None,
        trainer: Trainer,
        start: int,
        iterations: int,
        directory: Path | None,
        every: int,
        expected: dict[str, Any],
    ) -> None:
        super().__init__()
        self.watch = watch
        self.trainer = trainer
        self.start = start
        self.iterations = iterations
        self.directory = directory
        self.every = every
        self.expected = expected
        self.last_saved = start
        self.epoch_first_step = start
        self.first_bad_step: int | None = None
        self.bad_loss = math.nan
        self.async_safe = directory is None
        self._lock = threading.Lock()

    @property
    def diverged(self) -> str | None:
        """The error message if the loss became non-finite, else ``None``."""
        if self.first_bad_step is None:
            return None
        kept = (
            f" The last good checkpoint (step {self.last_saved}) is in {self.directory}."
            if self.directory is not None
            else ""
        )
        return (
            f"The training loss became {self.bad_loss} at step {self.first_bad_step}; "
            f"training stopped. Try a lower learning rate.{kept}"
        )

    def step(self) -> int:
        """The run's step count: how many steps of the run are done."""
        return self.start + _iterations(self.trainer.model) - self.iterations

    def save(self) -> int:
        step = self.step()
        if self.directory is not None and self.first_bad_step is None:
            state = {**self.expected, "step": step}
            with _distribute.chief_path(self.directory, self.trainer.strategy) as directory:
                _checkpoints.save(directory, self.trainer.model, state)
            self.last_saved = step
        return step

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_first_step = self.step()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            step = self.epoch_first_step + batch  # the call's last step
            first_bad = 0 if self.watch is None else int(self.watch.first_bad.numpy())
            if first_bad:
                step = self.start + first_bad - 1 - self.iterations
            with self._lock:
                if self.first_bad_step is None or step < self.first_bad_step:
                    self.first_bad_step, self.bad_loss = step, float(loss)
            self.model.stop_training = True
        elif self.directory is not None and self.step() - self.last_saved >= self.every:
            self.save()


class _TutorialLog(keras.callbacks.Callback):
    """Prints ``step N, training accuracy A`` on the batch about to be trained on."""

    def __init__(
        self,
        trainer: Trainer,
        progress: _Progress,
        arrays: _pipeline.Arrays,
        *,
        batch_size: int,
        seed: int,
        printing: bool,
    ) -> None:
        super().__init__()
        self.trainer = trainer
        self.progress = progress
        self.arrays = arrays
        self.batch_size = batch_size
        self.seed = seed
        self.printing = printing
        self.current: tuple[int, float] | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        step = self.progress.step()
        images, labels = _pipeline.batch_at(
            self.arrays, batch_size=self.batch_size, seed=self.seed, step=step
        )
        model = self.trainer.model
        previous = get_keep_prob(model)
        if previous is not None:
            set_keep_prob(model, 1.0)  # the tutorial's `keep_prob: 1.0` feed
        try:
            predicted = self.trainer._forward(images, len(images), stochastic=False).argmax(axis=1)
        finally:
            if previous is not None:
                set_keep_prob(model, previous)
        accuracy = float(np.mean(predicted == labels))
        self.current = (step, accuracy)
        if self.printing:
            print(f"step {step}, training accuracy {accuracy:g}", flush=True)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if logs is not None and self.current is not None:
            logs["step"], logs["train_accuracy"] = self.current


def _segments(start: int, total: int, chunk: int) -> list[tuple[int, int]]:
    """Split steps [start, total) into runs of whole chunks: (first step, number of steps)."""
    segments = []
    step = start
    if step % chunk and step < total:
        end = min(total, (step // chunk + 1) * chunk)
        segments.append((step, end - step))
        step = end
    whole = (total - step) // chunk * chunk
    if whole:
        segments.append((step, whole))
        step += whole
    if step < total:
        segments.append((step, total - step))
    return segments


def _merge(history: keras.callbacks.History, result: keras.callbacks.History) -> None:
    history.epoch.extend(result.epoch)
    for key, values in result.history.items():
        history.history.setdefault(key, []).extend(values)


def _iterations(model: keras.Model) -> int:
    optimizer = getattr(model, "optimizer", None)
    return int(optimizer.iterations.numpy()) if optimizer is not None else 0


def _registered_name(model: keras.Model) -> str | None:
    name = getattr(model, NAME_ATTRIBUTE, None)
    if isinstance(name, str):
        return name
    return model.name if model.name in list_models() else None


def _make_optimizer(recipe: Recipe, total_steps: int | None) -> keras.optimizers.Optimizer:
    rate: Any = recipe.learning_rate
    if recipe.schedule == "warmup_cosine" and total_steps:
        warmup = max(1, total_steps // 10)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=recipe.learning_rate,
            warmup_steps=warmup,
        )
    return keras.optimizers.get({"class_name": recipe.optimizer, "config": {"learning_rate": rate}})


def _snapshot(model: keras.Model) -> list[tuple[Any, np.ndarray]]:
    variables = list(model.non_trainable_variables)
    for layer in _dropout_layers(model):
        variables.extend([layer.keep_prob, layer.draws])
    return [(variable, np.array(variable.numpy())) for variable in variables]


def _restore(model: keras.Model, saved: list[tuple[Any, np.ndarray]]) -> None:
    del model
    for variable, value in saved:
        variable.assign(value)
