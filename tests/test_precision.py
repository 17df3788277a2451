"""Precision settings: mixed policies applied at build time, logits kept in float32."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mnistkit import InvalidArgumentError, Recipe, Trainer, build, model_recipes
from mnistkit.precision import policy, resolve_precision


def test_precision_names_are_checked_in_kerass_words() -> None:
    expected = r"argument `precision`\..*Received: precision='fp8'"
    with pytest.raises(InvalidArgumentError, match=expected):
        resolve_precision("fp8")
    with pytest.raises(InvalidArgumentError, match="argument `precision`"):
        Recipe(steps=1, precision="half")


def test_auto_resolves_to_a_concrete_policy() -> None:
    assert resolve_precision("auto") in {"float32", "mixed_bfloat16", "mixed_float16"}
    assert resolve_precision("mixed_float16") == "mixed_float16"


def test_a_model_named_to_the_trainer_is_built_under_the_precision() -> None:
    trainer = Trainer("deep_cnn", precision="mixed_bfloat16", seed=0)
    assert trainer.model.dtype_policy.name == "mixed_bfloat16"
    assert trainer.model.get_layer("conv1").compute_dtype == "bfloat16"
    assert trainer.model.get_layer("logits").compute_dtype == "float32"
    assert trainer.recipe.precision == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_mixed_precision_trains_with_float32_logits_and_loss() -> None:
    trainer = Trainer("softmax", precision="mixed_bfloat16", seed=0)
    images = np.random.default_rng(0).random((64, 28, 28, 1), dtype=np.float32)
    labels = np.arange(64) % 10
    history = trainer.fit((images, labels), steps=3, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert trainer.predict(images[:2]).dtype == np.float32
    assert trainer.metadata["recipe"]["precision"] == "mixed_bfloat16"


def test_a_built_model_keeps_its_precision_and_a_mismatch_is_explained() -> None:
    model = build("softmax")
    assert Trainer(model, precision="auto").recipe.precision == "float32"
    with pytest.raises(InvalidArgumentError, match="Pass the model's name instead"):
        Trainer(model, precision="mixed_bfloat16")
    with policy("mixed_bfloat16"):
        mixed = build("softmax")
    assert Trainer(mixed, precision="mixed_bfloat16").recipe.precision == "mixed_bfloat16"


def test_the_fast_recipe_asks_for_automatic_precision_and_the_tutorials_do_not() -> None:
    assert model_recipes("deep_cnn")["fast"].precision == "auto"
    assert model_recipes("deep_cnn")["default"].precision is None
    assert Trainer("softmax").recipe.precision == "float32"
