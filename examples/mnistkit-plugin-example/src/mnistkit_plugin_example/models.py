"""The plugin's model factory, declared in the ``mnistkit.models`` entry-point group.

Keras is imported inside the factory: mnistkit imports this module when the model is
first built, and importing it must stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mnistkit import Recipe, Weights, with_recipes, with_weights
from mnistkit.validation import check_positive_float, check_positive_int, check_probability

if TYPE_CHECKING:
    import keras


@with_recipes(
    default=Recipe(
        optimizer="adam",
        learning_rate=1e-3,
        batch_size=50,
        steps=200,
        keep_prob=0.9,
        summary="Adam at 1e-3, 200 steps of 50: seconds on a laptop.",
    )
)
# Made by mnistkit's tools/make_weights.py; shipped as package data (see pyproject.toml).
@with_weights(mnist=Weights("mnistkit_plugin_example", "weights/tiny_mlp-mnist.npz"))
def tiny_mlp(
    *, hidden_units: int = 32, keep_prob: float = 0.9, temperature: float = 1.0
) -> keras.Model:
    """A one-hidden-layer perceptron whose logits are divided by a temperature.

    Args:
        hidden_units: Units of the hidden ReLU layer.
        keep_prob: Probability that a hidden unit is kept in training, in (0, 1].
        temperature: The logits are divided by it (a :class:`Scale` layer), > 0.

    Returns:
        A ``keras.Model`` mapping images shaped (28, 28, 1) to 10 logits.

    Raises:
        InvalidArgumentError: If an argument is out of range.

    Example:
        >>> tiny_mlp(hidden_units=8).count_params()
        6370
    """
    hidden_units = check_positive_int(hidden_units, "hidden_units")
    temperature = check_positive_float(temperature, "temperature")
    keep_prob = check_probability(keep_prob, "keep_prob")
    import keras

    from mnistkit import KeepProbDropout
    from mnistkit_plugin_example.layers import Scale

    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Flatten(name="flatten")(inputs)
    x = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    x = KeepProbDropout(keep_prob, name="dropout")(x)
    x = keras.layers.Dense(10, name="dense")(x)
    logits = Scale(1.0 / temperature, name="temperature")(x)
    return keras.Model(inputs, logits, name="tiny_mlp")
