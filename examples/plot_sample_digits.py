"""
The MNIST digits
================

The data comes with mnistkit: ``load_dataset("mnist")`` reads the 70,000 images
embedded in the package, nothing is downloaded. This example shows what they look like:
the first ten test images of each digit.
"""

# %%
# Load the data
# -------------
# Three splits, as in the TensorFlow 1 tutorials: the first 5,000 training images
# are held out for validation. Images are float32 in [0, 1], shaped (28, 28, 1);
# labels are integers.
import matplotlib.pyplot as plt
import numpy as np

import mnistkit

mnist = mnistkit.load_dataset("mnist")
for name in ("train", "validation", "test"):
    split = getattr(mnist, name)
    print(f"{name:10} images {split.images.shape}, labels {split.labels.shape}")

# %%
# Ten of each digit
# -----------------
# One row per digit, the first ten test images with that label, in the order of the
# test set. White ink on black, as MNIST stores them; shown here black on white.
figure, axes = plt.subplots(10, 10, figsize=(6, 6.2), layout="constrained")
for digit in range(10):
    first = np.flatnonzero(mnist.test.labels == digit)[:10]
    for column, index in enumerate(first):
        ax = axes[digit, column]
        ax.imshow(mnist.test.images[index, :, :, 0], cmap="gray_r")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[digit, 0].set_ylabel(str(digit), rotation=0, labelpad=10, fontsize=11)
figure.suptitle("The first ten test images of each digit")
plt.show()

# %%
# How many of each
# ----------------
# The ten classes are nearly balanced: from 892 fives to 1,135 ones in the test set.
print(np.bincount(mnist.test.labels).tolist())
