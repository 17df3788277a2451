"""How a Trainer settles what it was given: the model, its output, keep_prob, the optimizer.

Each function takes one concern of ``Trainer.__init__`` and its compilation, so that the
Trainer reads as the sequence of decisions, and each decision is made here once.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnistkit._callbacks import optimizer_record
from mnistkit._engine import Engine, is_multi_worker
from mnistkit._sources import DataSource
from mnistkit._version import __version__
from mnistkit.errors import InvalidArgumentError
from mnistkit.layers import dropout_layers, get_keep_prob, set_keep_prob
from mnistkit.models import MODELS, check_one_output, model_info
from mnistkit.plan import RunPlan
from mnistkit.precision import resolve_precision
from mnistkit.recipes import Recipe, check_optimizer
from mnistkit.validation import (
    check_one_of,
    check_positive_float,
    check_positive_int,
    check_probability,
    check_seed,
    invalid,
)


def check_settings(
    optimizer: Any,
    learning_rate: Any,
    keep_prob: Any,
    seed: Any,
    metrics: Any,
    output: Any,
) -> None:
    """Check the Trainer's settings that need no model, in Keras's words."""
    if seed is not None:
        check_seed(seed)
    if learning_rate is not None:
        check_positive_float(learning_rate, "learning_rate")
    if keep_prob is not None:
        check_probability(keep_prob, "keep_prob")
    if output is not None:
        check_one_of(output, "output", ("logits", "probabilities"))
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


def identify(model: Any) -> tuple[str | None, Any]:
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


def check_policy(model: keras.Model, precision: str | None) -> str:
    """Return the dtype policy of a model given built, refusing another one asked for."""
    resolved = model.dtype_policy.name
    if precision not in (None, "auto") and resolve_precision(precision) != resolved:
        wanted = resolve_precision(precision)
        raise InvalidArgumentError(
            f"The model was built with the {resolved!r} dtype policy, not {wanted!r}. Pass "
            "the model's name instead, or build it inside "
            f"`with mnistkit.precision.policy({wanted!r}):`."
        )
    return str(resolved)


def plain_output(model: keras.Model) -> str:
    """The output of a model built by hand: logits, unless it plainly ends in a softmax."""
    last = model.layers[-1] if model.layers else None
    if getattr(last, "activation", None) is keras.activations.softmax or isinstance(
        last, keras.layers.Softmax
    ):
        raise InvalidArgumentError(
            f"The model {model.name!r} ends in a softmax, and was not built by "
            "mnistkit.build(), so the Trainer cannot tell what it outputs. Pass "
            "output='probabilities' to train it on its probabilities."
        )
    return "logits"


def settle_keep_prob(model: keras.Model, explicit: float | None) -> float | None:
    """Apply the keep probability the model trains at, by its precedence, and return it."""
    layers = dropout_layers(model)
    if not layers:
        if explicit is not None:
            raise InvalidArgumentError(
                f"Invalid value for argument `keep_prob`. The model {model.name!r} has no "
                f"KeepProbDropout layer, so keep_prob does not apply. Received: "
                f"keep_prob={explicit!r}"
            )
        return None
    if explicit is not None:
        set_keep_prob(model, explicit)
    return get_keep_prob(model)


def make_optimizer(recipe: Recipe, total_steps: int | None) -> keras.optimizers.Optimizer:
    """Make the recipe's optimizer, with its learning-rate schedule over ``total_steps``."""
    rate: Any = recipe.learning_rate
    if recipe.schedule == "warmup_cosine" and total_steps:
        warmup = max(1, total_steps // 10)
        rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0,
            decay_steps=max(1, total_steps - warmup),
            warmup_target=recipe.learning_rate,
            warmup_steps=warmup,
        )
    config: dict[str, Any] = {"learning_rate": rate}
    if recipe.ema is not None:
        config.update(use_ema=True, ema_momentum=recipe.ema)
    return keras.optimizers.get({"class_name": recipe.optimizer, "config": config})


def copies(metrics: Sequence[Any]) -> list[Any]:
    """The metrics, each metric object copied: every compiled model keeps its own state."""
    return [
        type(metric).from_config(metric.get_config())
        if isinstance(metric, keras.metrics.Metric)
        else metric
        for metric in metrics
    ]


def losses(recipe: Recipe, loss: Any, output: str) -> tuple[Any, Any]:
    """The loss to evaluate with, and the loss to train with (smoothed, if the recipe says).

    A loss the user gave is used for both. Otherwise it is the cross-entropy on the
    model's logits or probabilities, on integer labels; with label smoothing the
    training stream gives one-hot labels, which Keras's smoothed loss takes.
    """
    if loss is not None:
        return loss, loss
    from_logits = output == "logits"
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    if not recipe.label_smoothing:
        return plain, plain
    smoothed = keras.losses.CategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=recipe.label_smoothing
    )
    return plain, smoothed


def compile_engines(
    model: keras.Model,
    optimizer: Any,
    loss: Any,
    metrics: Sequence[Any],
    *,
    strategy: Any,
    training_loss: Any = None,
) -> tuple[Engine, Engine]:
    """Compile the model, and the engines that train and evaluate it, with one optimizer.

    Each gets its own copies of the metrics, so that evaluating mid-run leaves the running
    training figures alone. The training engine takes ``training_loss`` if given. Call
    inside the strategy's scope.
    """
    multi_worker = is_multi_worker(strategy)
    engine = Engine(model, multi_worker=multi_worker)
    evaluator = Engine(model, multi_worker=multi_worker)
    for each in (model, engine, evaluator):
        chosen = training_loss if each is engine and training_loss is not None else loss
        each.compile(optimizer=optimizer, loss=chosen, metrics=copies(metrics))
    return engine, evaluator


def run_metadata(
    *,
    model: keras.Model,
    name: str | None,
    output: str,
    recipe: Recipe,
    seed: int,
    deterministic: bool,
    trained: bool,
    data_seed: int | None,
    strategy: Any,
    checksum: str | None,
) -> dict[str, Any]:
    """The facts of a run that ``Trainer.metadata`` reports and a saved model keeps."""
    optimizer = getattr(model, "optimizer", None)
    return {
        "model": name or model.name,
        "output": output,
        "recipe": recipe.as_dict(),
        "seed": seed,
        "deterministic": deterministic,
        "steps": int(optimizer.iterations.numpy()) if optimizer is not None else 0,
        "batch_size": recipe.batch_size if trained else None,
        "data_seed": data_seed,
        "strategy": None if strategy is None else type(strategy).__name__,
        "replicas": 1 if strategy is None else int(strategy.num_replicas_in_sync),
        "data_checksum": checksum,
        "versions": {
            "mnistkit": __version__,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
    }


def run_recipe(recipe: Recipe, steps: Any, epochs: Any, batch_size: Any) -> Recipe:
    """The recipe of one run: the Trainer's, with ``fit``'s length and batch size."""
    if steps is not None and epochs is not None:
        raise InvalidArgumentError(
            f"Pass either `steps` or `epochs`, not both. Received: steps={steps}, epochs={epochs}"
        )
    return recipe.replace(
        steps=None if steps is None else check_positive_int(steps, "steps"),
        epochs=None if epochs is None else check_positive_int(epochs, "epochs"),
        batch_size=None if batch_size is None else check_positive_int(batch_size, "batch_size"),
    )


def plan_run(
    model: keras.Model,
    recipe: Recipe,
    source: DataSource,
    log_every: Any,
    checkpoint_dir: Any,
    checkpoint_every: Any,
) -> RunPlan:
    """The plan of a run of ``fit``, its settings checked against the model and data."""
    every = check_positive_int(checkpoint_every, "checkpoint_every")
    if log_every is not None:
        log_every = check_positive_int(log_every, "log_every")
        if source.batch_at(batch_size=1, seed=0, step=0) is None:
            raise InvalidArgumentError(
                "`log_every` needs arrays or a Split: it measures the batch about to be "
                "trained on, which a tf.data.Dataset cannot give back."
            )
    examples = source.steps_per_epoch(1)  # arrays: their count; a dataset: its batches
    is_arrays = source.batch_at(batch_size=1, seed=0, step=0) is not None
    if examples is not None and is_arrays and recipe.batch_size > examples:
        # Each batch would hold the data many times over (and take its memory as often).
        raise invalid(
            "batch_size", f"at most the {examples:,} training examples", recipe.batch_size
        )
    if any(recipe.augmentation().values()) and len(model.input_shape) != 4:
        raise InvalidArgumentError(
            f"The recipe moves images (shifts of up to {recipe.shift} pixels, rotations, "
            "scaling or shear), which needs a model that takes images shaped (height, "
            f"width, channels). Received: input shape {tuple(model.input_shape[1:])}"
        )
    return RunPlan.make(
        steps=recipe.steps,
        epochs=recipe.epochs,
        steps_per_epoch=source.steps_per_epoch(recipe.batch_size),
        log_every=log_every,
        checkpoint_every=None if checkpoint_dir is None else every,
    )


def check_callbacks(callbacks: Any) -> None:
    """Raise unless ``callbacks`` is a sequence of Keras callbacks."""
    if isinstance(callbacks, keras.callbacks.Callback) or not isinstance(callbacks, Sequence):
        raise invalid("callbacks", "a sequence of keras.callbacks.Callback", callbacks)
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            raise invalid("callbacks", "a sequence of keras.callbacks.Callback", callback)


def smoothing_classes(recipe: Recipe, loss: Any, model: keras.Model) -> int | None:
    """The classes to one-hot the training labels into for a smoothed loss, or ``None``."""
    if not recipe.label_smoothing or loss is not None:
        return None
    return int(model.output_shape[-1])


def checkpoint_run(
    trainer: Any,
    plan: RunPlan,
    recipe: Recipe,
    source: DataSource,
    data_seed: int,
    optimizer: keras.optimizers.Optimizer,
) -> dict[str, Any]:
    """What a checkpoint records of its run, and a resumed run must match."""
    return {
        "model": trainer.model_name or trainer.model.name,
        "parameters": parameter_count(trainer.model),
        "seed": trainer.seed,
        "stream_seed": data_seed,
        "batch_size": recipe.batch_size,
        "total_steps": plan.total_steps,
        "data_checksum": source.checksum(),
        **optimizer_record(optimizer),
    }
