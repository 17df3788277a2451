"""The figures the README quotes, reproduced: a change that loses accuracy fails here."""

from __future__ import annotations

import pytest

from mnistkit import Trainer, load_dataset


def test_softmax_recipe_reaches_the_readmes_accuracy_for_seed_0() -> None:
    mnist = load_dataset("mnist", one_hot=True)
    trainer = Trainer("softmax", seed=0, deterministic=True)

    trainer.fit(mnist.train, verbose=0)  # the recipe's: SGD at 0.5, 1,000 steps of 100

    assert trainer.evaluate(mnist.test)["accuracy"] == pytest.approx(0.9077, abs=0.003)
