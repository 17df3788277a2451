"""The Trainer evaluates and predicts with dropout off, whatever keep_prob it trained at."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from mnistkit import Trainer, set_keep_prob


@pytest.fixture(scope="module")
def trained() -> tuple[Trainer, np.ndarray, np.ndarray]:
    """A deep_cnn trained a few steps with half its units dropped, and images to try."""
    rng = np.random.default_rng(0)
    images = rng.random((64, 28, 28, 1), dtype=np.float32)
    labels = rng.integers(0, 10, 64)
    trainer = Trainer("deep_cnn", keep_prob=0.5, seed=0)
    trainer.fit((images, labels), steps=3, batch_size=16, verbose=0)
    return trainer, images[:32], labels[:32]


def _forward_without_dropout(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The model's logits at keep_prob 1.0, computed by Keras alone; keep_prob restored."""
    previous = set_keep_prob(model, 1.0)
    try:
        return keras.ops.convert_to_numpy(model(images, training=False))
    finally:
        if previous is not None:
            set_keep_prob(model, previous)


def _softmax(logits: np.ndarray) -> Any:
    return keras.ops.convert_to_numpy(keras.ops.softmax(logits))


def test_predict_equals_a_forward_pass_without_dropout(
    trained: tuple[Trainer, np.ndarray, np.ndarray],
) -> None:
    trainer, images, _ = trained

    probabilities = trainer.predict(images)

    expected = _softmax(_forward_without_dropout(trainer.model, images))
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_evaluate_equals_a_forward_pass_without_dropout(
    trained: tuple[Trainer, np.ndarray, np.ndarray],
) -> None:
    trainer, images, labels = trained

    result = trainer.evaluate((images, labels))

    logits = _forward_without_dropout(trainer.model, images)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert result["loss"] == pytest.approx(float(loss), abs=1e-4)
    assert result["accuracy"] == pytest.approx(float(np.mean(logits.argmax(1) == labels)))


def test_monte_carlo_sampling_differs_from_predict(
    trained: tuple[Trainer, np.ndarray, np.ndarray],
) -> None:
    trainer, images, _ = trained

    mean, std = trainer.predict(images, samples=8)

    assert float(np.max(std)) > 1e-4
    assert float(np.max(np.abs(mean - trainer.predict(images)))) > 1e-4
