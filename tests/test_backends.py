"""One codebase on every Keras backend: the same models, weights, files and training.

Each backend runs in a process of its own (Keras picks its backend once, at import, from
``KERAS_BACKEND``). The checks in :data:`CHECK` run there and print their figures as
JSON; the tests compare the backends' figures. A backend that is not installed is
skipped, with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BACKENDS = ("tensorflow", "jax", "torch")

#: What each backend's process does: the shipped weights scored, Monte-Carlo dropout,
#: a .keras file written, a softmax run through the Trainer.
CHECK = r"""
import json, sys
import keras
import numpy as np
from mnistkit import Predictor, Trainer, build, load_dataset, load_model, save_model

mnist = load_dataset("mnist")
model = build("deep_cnn", weights="mnist")
predictor = Predictor(model)
figures = predictor.evaluate(mnist.test)
images = mnist.test.images[:64]
mean, std = predictor.predict(images, samples=4)
again, _ = predictor.predict(images, samples=4)
saved = save_model(model, sys.argv[1])
loaded = load_model(saved)
plain = predictor.predict(images)
trainer = Trainer("softmax", seed=0)
trainer.fit(mnist.train, verbose=0)
print(json.dumps({
    "backend": keras.backend.backend(),
    "errors": round((1 - figures["accuracy"]) * figures["examples"]),
    "accuracy": figures["accuracy"],
    "mc_spread": float(std.max()),
    "mc_repeats": bool(np.array_equal(mean, again)),
    "mc_mean_near_plain": float(np.abs(mean - plain).max()),
    "reloaded_same": float(np.abs(Predictor(loaded).predict(images) - plain).max()),
    "plain": plain.tolist(),
    "softmax_accuracy": trainer.evaluate(mnist.test)["accuracy"],
    "trained_backend": trainer.metadata["versions"]["backend"],
}))
"""

#: Loads a .keras file written under another backend, and predicts.
LOAD = r"""
import json, sys
from mnistkit import Predictor, load_dataset, load_model

images = load_dataset("mnist").test.images[:64]
print(json.dumps(Predictor(load_model(sys.argv[1])).predict(images).tolist()))
"""


def installed(backend: str) -> bool:
    return importlib.util.find_spec(backend) is not None


def run_on(backend: str, script: str, *args: str | Path) -> Any:
    if not installed(backend):
        pytest.skip(f"the {backend} backend is not installed")
    done = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "KERAS_BACKEND": backend},
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("backends")
    found = {}
    for backend in BACKENDS:
        if installed(backend):
            found[backend] = run_on(backend, CHECK, folder / f"{backend}.keras")
            found[backend]["file"] = folder / f"{backend}.keras"
    return found


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_runs_the_shipped_model_the_same(figures, backend: str) -> None:
    if backend not in figures:
        pytest.skip(f"the {backend} backend is not installed")
    mine, reference = figures[backend], figures["tensorflow"]
    assert mine["backend"] == mine["trained_backend"] == backend
    assert mine["accuracy"] >= 0.995
    assert abs(mine["errors"] - reference["errors"]) <= 2
    assert mine["mc_spread"] > 0.01  # Monte-Carlo dropout samples
    assert mine["mc_repeats"]  # the same call gives the same samples
    assert mine["reloaded_same"] < 1e-6
    assert mine["mc_mean_near_plain"] < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_trainer_trains_softmax_alike_on_each_backend(figures, backend: str) -> None:
    if backend not in figures:
        pytest.skip(f"the {backend} backend is not installed")
    # Zero-initialised softmax regression on the same seeded batches: the same model,
    # whatever computes it.
    assert figures[backend]["softmax_accuracy"] >= 0.9
    assert figures[backend]["softmax_accuracy"] == pytest.approx(
        figures["tensorflow"]["softmax_accuracy"], abs=0.002
    )


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["jax", "torch"])
def test_a_keras_file_from_another_backend_loads_and_predicts_the_same(
    figures, writer: str
) -> None:
    if writer not in figures:
        pytest.skip(f"the {writer} backend is not installed")
    written = figures[writer]
    read_back = run_on("tensorflow", LOAD, written["file"])
    difference = max(
        abs(a - b)
        for row, other in zip(read_back, written["plain"], strict=True)
        for a, b in zip(row, other, strict=True)
    )
    assert difference < 1e-4
