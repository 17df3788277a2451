"""
A model of your own
===================

:func:`~mnistkit.register_model` gives a model factory a name, and
:func:`~mnistkit.with_recipes` the settings to train it with. From then on the name
works like a built-in one: :func:`~mnistkit.build`, the :class:`~mnistkit.Trainer`,
Monte-Carlo dropout. This one is a two-layer perceptron, trained for 1,000 steps.
"""

# %%
# Register the factory
# --------------------
# A factory takes keyword arguments only and returns a ``keras.Model`` from images
# shaped (28, 28, 1) to ten logits. Dropout through
# :class:`~mnistkit.KeepProbDropout` lets the Trainer and the recipe set
# ``keep_prob``.
import mnistkit.quiet

mnistkit.quiet.quiet_tensorflow()  # before Keras imports TensorFlow: no start-up lines

import keras
import numpy as np

import mnistkit
from mnistkit import KeepProbDropout, Recipe, plots


@mnistkit.register_model("two_layer_mlp")
@mnistkit.with_recipes(
    default=Recipe(
        optimizer="adam",
        learning_rate=1e-3,
        batch_size=100,
        steps=1000,
        summary="Adam at 1e-3, 1,000 steps of 100.",
    )
)
def two_layer_mlp(*, hidden_units: int = 256, keep_prob: float = 0.8) -> keras.Model:
    """Two hidden ReLU layers, each followed by dropout."""
    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Flatten()(inputs)
    for _ in range(2):
        x = keras.layers.Dense(hidden_units, activation="relu")(x)
        x = KeepProbDropout(keep_prob)(x)
    logits = keras.layers.Dense(10, name="logits")(x)
    return keras.Model(inputs, logits, name="two_layer_mlp")


print(mnistkit.list_models())
print(mnistkit.describe_models("two_layer_mlp")[0].summary)

# %%
# Train it by name
# ----------------
# The Trainer takes the recipe the factory carries; ``build`` checks the arguments
# against the factory's signature.
mnist = mnistkit.load_dataset("mnist")
trainer = mnistkit.Trainer("two_layer_mlp", seed=0)
print(trainer.recipe.describe())
history = trainer.fit(mnist.train, log_every=100, validation_data=mnist.validation)
print(trainer.evaluate(mnist.test))
info = mnistkit.model_info(trainer.model)  # what the model's last layer records
print(info.name, info.output, info.recipe.name)

# %%
# Its learning curves
# -------------------
# A record lacks what its step does not have (step 0: no training behind it; the
# last step: no batch ahead of it); NaN leaves a gap in the curve.
keys = {key for record in history.log for key in record}
columns = {key: [r.get(key, np.nan) for r in history.log] for key in keys}
plots.plot_learning_curves(columns, "two-layer-mlp-learning-curves.png")
