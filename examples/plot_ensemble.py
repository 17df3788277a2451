"""
An ensemble of three models
===========================

:class:`~mnistkit.Predictor` given several models averages their probabilities: an
ensemble. Three small perceptrons, each started from other random weights and shown
the batches in another order, make different mistakes; their average makes fewer
than any one of them.
"""

# %%
# Train three models
# ------------------
# A model built by hand goes to the :class:`~mnistkit.Trainer` as it is; it is taken
# to output logits. Each trains for 500 steps of 100 images.
import mnistkit.quiet

mnistkit.quiet.quiet_tensorflow()  # before Keras imports TensorFlow: no start-up lines

import keras
import matplotlib.pyplot as plt

import mnistkit
from mnistkit import Predictor, Trainer


def perceptron(seed: int) -> keras.Model:
    """One hidden layer of 128 ReLU units, its weights drawn from ``seed``."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    hidden = keras.layers.Dense(128, activation="relu")(flat)
    return keras.Model(inputs, keras.layers.Dense(10)(hidden))


mnist = mnistkit.load_dataset("mnist")
models = []
for seed in (0, 1, 2):
    model = perceptron(seed)
    trainer = Trainer(model, optimizer="adam", learning_rate=1e-3, seed=seed)
    trainer.fit(mnist.train, steps=500, batch_size=100, verbose=0)
    models.append(trainer.model)

# %%
# Each alone, then together
# -------------------------
# :meth:`Predictor.evaluate <mnistkit.Predictor.evaluate>` gives the accuracy and the
# mean cross-entropy of the predicted probabilities.
scores = {}
for seed, model in enumerate(models):
    scores[f"seed {seed}"] = Predictor(model).evaluate(mnist.test)
scores["ensemble"] = Predictor(models).evaluate(mnist.test)
for name, score in scores.items():
    print(f"{name:9} accuracy {score['accuracy']:.2%}, loss {score['loss']:.4f}")

# %%
figure, ax = plt.subplots(figsize=(5, 2.6), layout="constrained")
names = list(scores)
accuracies = [100 * scores[name]["accuracy"] for name in names]
bars = ax.barh(names, accuracies, color=["#9ab"] * 3 + ["#357"])
ax.bar_label(bars, fmt="%.2f%%", padding=3)
ax.set_xlim(min(accuracies) - 1, max(accuracies) + 0.6)
ax.invert_yaxis()
ax.set_xlabel("test accuracy (%)")
plt.show()
