"""
Softmax regression in 1,000 steps
=================================

The first TensorFlow tutorial, "MNIST for ML beginners", in a few lines: one dense
layer from 784 pixels to 10 digits, trained with the tutorial's own recipe (gradient
descent at 0.5, 1,000 steps of 100 images). It takes seconds on a CPU and reaches
about 91% on the test set. Then the pictures of the run: learning curves, the weights
the model learned, a confusion matrix and the digits it got wrong.
"""

# %%
# Train with the tutorial's recipe
# --------------------------------
# ``log_every=100`` prints the tutorial's progress lines; ``validation_data`` adds the
# accuracy on the 5,000 held-out images to each logged stretch.
import matplotlib.pyplot as plt
import numpy as np

import mnistkit
from mnistkit import plots

mnist = mnistkit.load_dataset("mnist")
trainer = mnistkit.Trainer("softmax", seed=0)
history = trainer.fit(mnist.train, log_every=100, validation_data=mnist.validation)
print(trainer.evaluate(mnist.test))

# %%
# Learning curves
# ---------------
# :attr:`history.log <mnistkit.training.RunHistory.log>` holds one record per logged
# step; :func:`~mnistkit.plots.plot_learning_curves` draws them as a PNG file.
# A record lacks what its step does not have (step 0: no training behind it; the
# last step: no batch ahead of it); NaN leaves a gap in the curve.
keys = {key for record in history.log for key in record}
columns = {key: [r.get(key, np.nan) for r in history.log] for key in keys}
plots.plot_learning_curves(columns, "softmax-learning-curves.png")

# %%
# What the model learned
# ----------------------
# Softmax regression has one weight per pixel and digit: the 784 weights of each
# digit, put back into a 28x28 square, show where ink counts for that digit (red) and
# where it counts against it (blue). The tutorial showed the same picture.
kernel = trainer.model.get_layer("logits").kernel.numpy()  # (784, 10)
figure, axes = plt.subplots(2, 5, figsize=(8, 3.6), layout="constrained")
for digit, ax in enumerate(axes.flat):
    weights = kernel[:, digit].reshape(28, 28)
    limit = np.abs(weights).max()
    ax.imshow(weights, cmap="RdBu_r", vmin=-limit, vmax=limit)
    ax.set_title(str(digit))
    ax.set_xticks([])
    ax.set_yticks([])
figure.suptitle("The weights of each digit (red: ink for, blue: ink against)")
plt.show()

# %%
# Where it goes wrong
# -------------------
# The confusion matrix counts each true digit (row) against each prediction
# (column).
probabilities = trainer.predict(mnist.test.images)
predictions = probabilities.argmax(axis=1)
labels = mnist.test.labels
plots.plot_confusion_matrix(labels, predictions, "softmax-confusion-matrix.png")

# %%
# The mistakes it is surest of
# ----------------------------
# The test digits the model got wrong while giving its answer the highest
# probability. Many of them a person would hesitate over too.
plots.plot_misclassified(
    mnist.test.images,
    labels,
    predictions,
    "softmax-misclassified.png",
    confidence=probabilities.max(axis=1),
    limit=18,
)

# sphinx_gallery_thumbnail_number = 2
