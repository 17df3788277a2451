"""What the demo computes for one drawing: the class, its probabilities, their spread."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit.images import prepare_image

if TYPE_CHECKING:
    import keras


def predict_drawing(model: keras.Model, pixels: np.ndarray, *, samples: int = 30) -> dict[str, Any]:
    """Prepare a drawing as MNIST's digits were, and classify it.

    Args:
        model: A model from images (N, 28, 28, 1) in [0, 1] to 10 logits.
        pixels: The drawing, in any form :func:`~mnistkit.images.prepare_image` takes,
            such as dark ink on a white canvas, uint8 (H, W).
        samples: Passes with dropout on for the uncertainty; 0, or a model without
            dropout, gives none.

    Returns:
        A JSON-ready dictionary with ``digit`` (the most probable class),
        ``probabilities`` (ten floats, dropout off), ``image`` (the 784 pixels, 0 to
        255, of the prepared 28x28 image the model saw) and ``uncertainty``. That is
        ``None``, or holds ``samples``, the ``mean`` and ``std`` of each class's
        probability over the dropout passes, ``agreement`` (the share of passes whose
        top class is ``digit``) and ``entropy_bits`` (the entropy of the mean).

    Raises:
        DataFormatError: If the drawing is blank.
        InvalidArgumentError: If ``pixels`` is not an image.

    Example:
        >>> import numpy as np
        >>> from mnistkit import build
        >>> canvas = np.full((280, 280), 255, np.uint8)
        >>> canvas[40:240, 130:150] = 0  # a black stroke: a "1"
        >>> result = predict_drawing(build("deep_cnn", seed=0), canvas, samples=5)
        >>> len(result["probabilities"]), len(result["image"]), result["uncertainty"]["samples"]
        (10, 784, 5)
    """
    image = prepare_image(pixels)
    probabilities = _softmax(np.asarray(model(image[np.newaxis], training=False)))[0]
    digit = int(probabilities.argmax())
    result: dict[str, Any] = {
        "digit": digit,
        "probabilities": [round(float(p), 6) for p in probabilities],
        "image": np.round(image[..., 0] * 255).astype(np.uint8).ravel().tolist(),
        "uncertainty": None,
    }
    if samples > 0 and has_dropout(model):
        passes = mc_dropout(model, image, samples=samples)
        mean = passes.mean(axis=0)
        result["uncertainty"] = {
            "samples": samples,
            "mean": [round(float(p), 6) for p in mean],
            "std": [round(float(s), 6) for s in passes.std(axis=0)],
            "agreement": round(float(np.mean(passes.argmax(axis=1) == digit)), 6),
            "entropy_bits": round(float(-(mean * np.log2(np.clip(mean, 1e-12, 1))).sum()), 6),
        }
    return result


def mc_dropout(model: keras.Model, image: np.ndarray, *, samples: int) -> np.ndarray:
    """Return the probabilities of ``samples`` passes over one image with dropout on.

    Monte-Carlo dropout: each pass drops a different set of units, so the spread of
    the passes' probabilities shows how sure the model is. This is the one place the
    demo runs a model in training mode; it calls the model once on a batch of
    ``samples`` copies of the image.

    Args:
        model: A model with dropout, from images to 10 logits.
        image: One image (28, 28, 1), float in [0, 1].
        samples: The number of passes.

    Returns:
        An array (samples, 10) of probabilities.

    Example:
        >>> import numpy as np
        >>> from mnistkit import build
        >>> passes = mc_dropout(build("deep_cnn", seed=0), np.ones((28, 28, 1)), samples=4)
        >>> passes.shape, bool(np.allclose(passes.sum(axis=1), 1.0))
        ((4, 10), True)
    """
    batch = np.repeat(np.asarray(image, np.float32)[np.newaxis], samples, axis=0)
    return _softmax(np.asarray(model(batch, training=True)))


def has_dropout(model: keras.Model) -> bool:
    """Return whether any layer of ``model``, nested models included, is a dropout layer.

    Example:
        >>> from mnistkit import build
        >>> has_dropout(build("deep_cnn")), has_dropout(build("softmax"))
        (True, False)
    """
    return any(type(layer).__name__.endswith("Dropout") for layer in _walk(model))


def _walk(layer: Any) -> Iterator[Any]:
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _walk(inner)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    probabilities: np.ndarray = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    return probabilities
