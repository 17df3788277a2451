"""
How sure is the network? Monte-Carlo dropout
============================================

Dropout, left on at prediction time and run many times over, gives a spread of
answers instead of one. Where the passes disagree, the network is unsure. This
example trains the deep CNN for 200 steps, asks it about 500 test digits with 20
passes each, and shows the digits it is least sure of.
"""

# %%
# Train briefly
# -------------
# As in :ref:`sphx_glr_gallery_plot_deep_cnn.py`: 200 steps at a learning rate of
# 1e-3, ``keep_prob`` 0.5.
import matplotlib.pyplot as plt
import numpy as np

import mnistkit

mnist = mnistkit.load_dataset("mnist")
trainer = mnistkit.Trainer("deep_cnn", learning_rate=1e-3, seed=0)
trainer.fit(mnist.train, steps=200, verbose=0)

# %%
# Twenty passes with dropout on
# -----------------------------
# :meth:`Trainer.predict <mnistkit.Trainer.predict>` with ``samples`` returns the mean
# probabilities of the passes and their standard deviation. Only the dropout layer
# samples, at the training ``keep_prob``; the model is left as it was.
images, labels = mnist.test.images[:500], mnist.test.labels[:500]
mean, std = trainer.predict(images, samples=20)
guess = mean.argmax(axis=1)
spread = std[np.arange(len(guess)), guess]  # doubt about the chosen digit
right = guess == labels
print(f"accuracy {right.mean():.1%} on {len(labels)} test digits")
order = spread.argsort()
for name, part in [("surest half", order[:250]), ("least sure half", order[250:])]:
    print(f"{name:16} accuracy {right[part].mean():.1%}")

# %%
# The least sure digits
# ---------------------
# Each with the true label, the mean probability of the two likeliest digits, and
# the spread (standard deviation) of the first over the passes.
least_sure = order[::-1][:12]
figure, axes = plt.subplots(2, 6, figsize=(9, 3.9), layout="constrained")
for ax, index in zip(axes.flat, least_sure, strict=True):
    first, second = mean[index].argsort()[::-1][:2]
    ax.imshow(images[index, :, :, 0], cmap="gray_r")
    ax.set_title(
        f"true {labels[index]}\n{first}: {mean[index, first]:.0%} ± "
        f"{std[index, first]:.0%}\n{second}: {mean[index, second]:.0%}",
        fontsize=8,
        color="black" if right[index] else "firebrick",
    )
    ax.set_xticks([])
    ax.set_yticks([])
figure.suptitle("The 12 least sure of 500 test digits (red: wrong)")
plt.show()

# %%
# Doubt and mistakes
# ------------------
# The spread of the wrong answers is larger than that of the right ones: a cheap
# warning that an answer should be checked.
figure, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
bins = np.linspace(0, spread.max(), 25)
ax.hist(spread[right], bins=bins, label="right", alpha=0.7)
ax.hist(spread[~right], bins=bins, label="wrong", alpha=0.7, color="firebrick")
ax.set_yscale("log")
ax.set_xlabel("standard deviation of the chosen digit's probability")
ax.set_ylabel("test digits")
ax.legend()
plt.show()

# sphinx_gallery_thumbnail_number = 1
