"""What a run compiles: the recipe's optimizer, and the loss for the model's output.

The Trainer asks these once per run; the labels each loss takes are said here too, so
the data pipelines give the loss what it expects.
"""

from __future__ import annotations

from typing import Any

import keras

from mnistkit.recipes import Recipe

__all__ = ["make_loss", "make_optimizer"]


def make_optimizer(recipe: Recipe, total_steps: int | None) -> keras.optimizers.Optimizer:
    """Return the recipe's optimizer, with its learning-rate schedule over ``total_steps``.

    Args:
        recipe: The run's recipe.
        total_steps: The run's length, for a schedule; ``None`` before a run is planned.

    Returns:
        The recipe's Keras optimizer, at its learning rate (warmed up over a tenth of
        the run and decayed along a cosine, for ``schedule="warmup_cosine"``), averaging
        its weights where the recipe says (``ema``).

    Example:
        >>> type(make_optimizer(Recipe(optimizer="sgd", learning_rate=0.5, steps=10), 10)).__name__
        'SGD'
    """
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


def make_loss(recipe: Recipe, output: str, classes: int) -> tuple[Any, int | None]:
    """Return the cross-entropy a recipe trains with, and the one-hot width of its labels.

    Without label smoothing the labels stay integers. With it, the training stream gives
    one-hot rows already smoothed (:func:`~mnistkit.streams.encode_labels`) and the
    evaluation data plain one-hot rows: the same loss then trains on the smoothed
    targets and evaluates on the true ones, as Keras's ``label_smoothing`` would train.

    Args:
        recipe: The run's recipe.
        output: What the model outputs, ``"logits"`` or ``"probabilities"``.
        classes: The model's number of classes.

    Returns:
        The Keras loss, and ``classes`` if the labels must be one-hot, else ``None``.

    Example:
        >>> loss, one_hot = make_loss(Recipe(steps=1, label_smoothing=0.1), "logits", 10)
        >>> type(loss).__name__, one_hot
        ('CategoricalCrossentropy', 10)
    """
    from_logits = output == "logits"
    if recipe.label_smoothing:
        return keras.losses.CategoricalCrossentropy(from_logits=from_logits), classes
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), None
