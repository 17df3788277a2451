"""Predictions from trained models: probabilities, Monte-Carlo dropout, ensembles, accuracy.

A :class:`Predictor` needs no Trainer, no optimizer and no seed: it owns one compiled
forward function per model and reuses it for plain and Monte-Carlo predictions alike
(:func:`~mnistkit.layers.mc_dropout` flips a variable, not the graph). Given several
models, it averages their probabilities: an ensemble.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from mnistkit._sources import shape_images, to_arrays
from mnistkit.errors import InvalidArgumentError
from mnistkit.layers import dropout_layers, get_keep_prob, mc_dropout
from mnistkit.models import check_one_output, model_output
from mnistkit.validation import check_one_of, check_positive_int, check_probability

__all__ = ["DEFAULT_SAMPLES", "Predictor", "score"]

#: Monte-Carlo passes made when ``keep_prob`` is given without ``samples``.
DEFAULT_SAMPLES = 30


class Predictor:
    """Class probabilities from one model, or the average of several (an ensemble).

    Args:
        models: A ``keras.Model``, or a sequence of them that take the same images.
        output: What the models output, ``"logits"`` or ``"probabilities"``. ``None``
            reads it from each model that :func:`~mnistkit.build` made (see
            :func:`~mnistkit.models.model_info`) and takes a model built by hand to
            output logits.
        batch_size: Images per forward pass.

    Raises:
        InvalidArgumentError: If a model is not a Keras model, the models take
            different images, or a setting is out of range.

    Example:
        >>> import numpy as np
        >>> from mnistkit import build
        >>> predictor = Predictor([build("softmax"), build("softmax")])
        >>> [round(float(p), 2) for p in predictor.predict(np.zeros((1, 784), np.float32))[0]]
        [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    """

    def __init__(
        self,
        models: keras.Model | Sequence[keras.Model],
        *,
        output: str | None = None,
        batch_size: int = 1024,
    ) -> None:
        listed = [models] if isinstance(models, keras.Model) else list(models)
        if not listed or not all(isinstance(model, keras.Model) for model in listed):
            raise InvalidArgumentError(
                "Invalid value for argument `models`. Expected a keras.Model or a non-empty "
                f"sequence of them. Received: models={models!r}"
            )
        for model in listed:
            check_one_output(model, "models")
        if output is not None:
            check_one_of(output, "output", ("logits", "probabilities"))
        shapes = {tuple(int(d) for d in model.input_shape[1:]) for model in listed}
        if len(shapes) > 1:
            raise InvalidArgumentError(
                f"The models take images of different shapes: {sorted(shapes)}."
            )
        self.models = listed
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.input_shape: tuple[int, ...] = shapes.pop()
        self.classes = int(listed[0].output_shape[-1])
        #: What each model outputs (see :func:`~mnistkit.models.model_output`).
        self.outputs = [model_output(model, output) for model in listed]

    def predict(
        self,
        images: Any,
        *,
        samples: int | None = None,
        keep_prob: float | None = None,
        batch_size: int | None = None,
    ) -> Any:
        """Return class probabilities for ``images``, with dropout off.

        With ``samples`` (or ``keep_prob``), run Monte-Carlo dropout instead: each model
        makes ``samples`` passes with its :class:`~mnistkit.KeepProbDropout` layers
        sampling at ``keep_prob`` (default: the model's own), every other layer in
        inference mode. The passes of every model are pooled, so an ensemble's spread
        covers both the dropout and the disagreement between its models. The models are
        left exactly as they were, and the same call gives the same samples.

        Args:
            images: Images shaped (N, 28, 28, 1) or flat (N, 784), float in [0, 1] or
                uint8.
            samples: Monte-Carlo passes per model (default
                :data:`DEFAULT_SAMPLES` when ``keep_prob`` is given).
            keep_prob: Keep probability of the Monte-Carlo passes, in (0, 1].
            batch_size: Images per forward pass; the Predictor's by default.

        Returns:
            An array (N, classes) of probabilities; with Monte-Carlo dropout, a pair
            ``(mean, std)`` of such arrays.

        Raises:
            InvalidArgumentError: If the images have the wrong shape or a NaN or infinite
                pixel, a setting is out of range, or Monte-Carlo dropout is asked of a model without
                :class:`~mnistkit.KeepProbDropout` layers.
        """
        x = shape_images(images, self.input_shape)
        size = (
            self.batch_size if batch_size is None else check_positive_int(batch_size, "batch_size")
        )
        if samples is None and keep_prob is None:
            runs = [self._run(model, kind, x, size) for model, kind in self._pairs()]
            return np.mean(runs, axis=0)
        stacked = self.sample(x, samples=samples, keep_prob=keep_prob, batch_size=size)
        return stacked.mean(axis=0), stacked.std(axis=0)

    def sample(
        self,
        images: Any,
        *,
        samples: int | None = None,
        keep_prob: float | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Return every Monte-Carlo pass's probabilities, as :meth:`predict` pools them.

        Args:
            images: As for :meth:`predict`.
            samples: Passes per model (default :data:`DEFAULT_SAMPLES`).
            keep_prob: Keep probability of the passes; each model's own by default.
            batch_size: Images per forward pass; the Predictor's by default.

        Returns:
            An array (models x samples, N, classes), the passes of the first model, then
            of the next.

        Raises:
            InvalidArgumentError: As :meth:`predict` does.

        Example:
            >>> import numpy as np
            >>> from mnistkit import build
            >>> passes = Predictor(build("deep_cnn", seed=0)).sample(
            ...     np.full((1, 28, 28, 1), 0.5, np.float32), samples=4)
            >>> passes.shape, bool(np.ptp(passes, axis=0).max() > 0)
            ((4, 1, 10), True)
        """
        x = shape_images(images, self.input_shape)
        size = self.batch_size
        if batch_size is not None:
            size = check_positive_int(batch_size, "batch_size")
        count = DEFAULT_SAMPLES if samples is None else check_positive_int(samples, "samples")
        rate = None if keep_prob is None else check_probability(keep_prob, "keep_prob")
        draws: list[np.ndarray] = []
        for model, kind in self._pairs():
            if not dropout_layers(model):
                raise InvalidArgumentError(
                    f"The model {model.name!r} has no KeepProbDropout layer: Monte-Carlo "
                    "dropout needs one."
                )
            with mc_dropout(model, keep_prob=rate if rate is not None else get_keep_prob(model)):
                draws.extend(self._run(model, kind, x, size) for _ in range(count))
        return np.stack(draws)

    def evaluate(self, data: Any) -> dict[str, float]:
        """Return the accuracy and the mean cross-entropy of the predictions on ``data``.

        Args:
            data: A :class:`~mnistkit.Split` or an ``(images, labels)`` pair, labels
                integers or one-hot.

        Returns:
            ``{"accuracy": ..., "loss": ..., "examples": ...}``.

        Raises:
            InvalidArgumentError: If the data has the wrong form or is empty.

        Example:
            >>> import numpy as np
            >>> from mnistkit import build
            >>> result = Predictor(build("softmax")).evaluate(
            ...     (np.zeros((4, 784), np.float32), np.arange(4)))
            >>> round(result["loss"], 4), result["examples"]  # log(10): uniform guesses
            (2.3026, 4)
        """
        arrays = to_arrays(data, self.input_shape, self.classes)
        return score(self.predict(arrays.images), arrays.labels)

    def _pairs(self) -> list[tuple[keras.Model, str]]:
        return list(zip(self.models, self.outputs, strict=True))

    def _run(self, model: keras.Model, kind: str, x: np.ndarray, size: int) -> np.ndarray:
        if not len(x):
            return np.zeros((0, self.classes), np.float32)
        outputs = np.asarray(model.predict(x, batch_size=size, verbose=0), np.float32)
        if kind == "probabilities":
            return outputs
        exp: np.ndarray = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return np.asarray(exp / exp.sum(axis=1, keepdims=True))


def score(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Return the accuracy and mean cross-entropy of class probabilities against labels.

    Args:
        probabilities: An array (N, classes).
        labels: Integer labels (N,) or one-hot labels (N, classes).

    Returns:
        ``{"accuracy": ..., "loss": ..., "examples": N}``; the loss takes a probability
        of 0 as the smallest positive float32, so it stays finite.

    Example:
        >>> import numpy as np
        >>> score(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 0]))["accuracy"]
        0.5
    """
    probabilities, labels = np.asarray(probabilities), np.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    picked = probabilities[np.arange(len(labels)), labels]
    loss = -np.log(np.clip(picked, np.finfo(np.float32).tiny, 1.0))
    return {
        "accuracy": float(np.mean(probabilities.argmax(axis=1) == labels)),
        "loss": float(loss.mean()),
        "examples": len(labels),
    }
