"""
Predict a digit you drew
========================

MNIST's digits were prepared in a particular way: white on black, scaled into a
20x20 box, centred by their centre of mass in a 28x28 field. A photo of a digit
written on paper is none of these. :func:`mnistkit.images.prepare_image` prepares any
picture of one digit the same way, so that a model trained on MNIST can read it.
"""

# %%
# A "photo" of a digit
# --------------------
# Here the digit is drawn with matplotlib: a thick dark stroke on paper that is
# lit unevenly. With a real photo or scan, :func:`mnistkit.images.read_image` reads
# the PNG or JPEG file instead: ``read_image("my-digit.png")``.
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import mnistkit
from mnistkit.images import prepare_image

paper = Figure(figsize=(3, 4), dpi=60)
FigureCanvasAgg(paper)
ax = paper.add_axes((0, 0, 1, 1))
ax.set_xlim(0, 3)
ax.set_ylim(0, 4)
ax.axis("off")
ax.plot(
    [0.9, 2.2, 1.3],
    [3.1, 3.15, 0.8],
    color="#223",
    linewidth=14,
    solid_capstyle="round",
    solid_joinstyle="round",
)  # a seven
ax.plot(
    [1.2, 2.1], [2.0, 2.05], color="#223", linewidth=12, solid_capstyle="round"
)  # with a bar across
paper.canvas.draw()
photo = np.asarray(paper.canvas.buffer_rgba())[..., :3].astype(np.float32)
light = np.linspace(0.75, 1.0, photo.shape[1])[None, :, None]  # a shadow
photo = (photo * light).astype(np.uint8)
print(photo.shape, photo.dtype)

# %%
# Prepared as MNIST's digits were
# -------------------------------
digit = prepare_image(photo)
print(digit.shape, digit.dtype, float(digit.min()), float(digit.max()))

# %%
# Ask a model
# -----------
# Softmax regression, trained with the tutorial's recipe in a few seconds.
mnist = mnistkit.load_dataset("mnist")
trainer = mnistkit.Trainer("softmax", seed=0)
trainer.fit(mnist.train, verbose=0)
probabilities = trainer.predict(digit[None])[0]
answer = probabilities.argmax()
print(f"it reads a {answer} ({probabilities[answer]:.0%} of the probability)")

figure, axes = plt.subplots(
    1,
    3,
    figsize=(9, 3),
    layout="constrained",
    gridspec_kw={"width_ratios": [0.75, 1, 1.6]},
)
axes[0].imshow(photo)
axes[0].set_title("the photo")
axes[1].imshow(digit[:, :, 0], cmap="gray")
axes[1].set_title("prepared: 28x28, white on black")
for ax in axes[:2]:
    ax.set_xticks([])
    ax.set_yticks([])
axes[2].bar(range(10), probabilities, color="#357")
axes[2].set_xticks(range(10))
axes[2].set_ylim(0, 1)
axes[2].set_title("softmax's probabilities")
plt.show()
