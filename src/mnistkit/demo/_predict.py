"""What the demo computes for one drawing: the class, its probabilities, their spread."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit.images import prepare_image

if TYPE_CHECKING:
    from mnistkit.predictor import Predictor


def predict_drawing(
    predictor: Predictor, pixels: np.ndarray, *, samples: int = 30
) -> dict[str, Any]:
    """Prepare a drawing as MNIST's digits were, and classify it.

    Args:
        predictor: The :class:`~mnistkit.Predictor` of the model (its forward
            function is compiled once, and reused for every drawing).
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
        >>> from mnistkit import Predictor
        >>> predictor = Predictor(build("deep_cnn", seed=0))
        >>> result = predict_drawing(predictor, canvas, samples=5)
        >>> samples = result["uncertainty"]["samples"]
        >>> len(result["probabilities"]), len(result["image"]), samples
        (10, 784, 5)
    """
    from mnistkit.layers import dropout_layers

    image = prepare_image(pixels)[np.newaxis]
    probabilities = predictor.predict(image)[0]
    digit = int(probabilities.argmax())
    result: dict[str, Any] = {
        "digit": digit,
        "probabilities": [round(float(p), 6) for p in probabilities],
        "image": np.round(image[0, ..., 0] * 255).astype(np.uint8).ravel().tolist(),
        "uncertainty": None,
    }
    if samples > 0 and all(dropout_layers(model) for model in predictor.models):
        passes = predictor.sample(image, samples=samples)[:, 0]
        mean = passes.mean(axis=0)
        result["uncertainty"] = {
            "samples": samples,
            "mean": [round(float(p), 6) for p in mean],
            "std": [round(float(s), 6) for s in passes.std(axis=0)],
            "agreement": round(float(np.mean(passes.argmax(axis=1) == digit)), 6),
            "entropy_bits": round(float(-(mean * np.log2(np.clip(mean, 1e-12, 1))).sum()), 6),
        }
    return result
