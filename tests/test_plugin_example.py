"""The example plugin, installed for real and used from fresh processes.

Each step runs in a new interpreter, as a user's would: listing must not import the
plugin, and loading a saved model must find the plugin's layer without being told.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[1] / "examples" / "mnistkit-plugin-example"
DISTRIBUTION = "plugin (mnistkit-plugin-example 0.1.0)"


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, pip_install_target: Callable[[Path, Path], Path]
) -> Path:
    """A folder the example plugin is pip-installed into (a copy: the source stays clean)."""
    work = tmp_path_factory.mktemp("plugin")
    source = work / "source"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    shutil.copytree(EXAMPLE, source, ignore=ignore)
    return pip_install_target(source, work / "site")


def _run(site: Path, code: str, *args: str) -> Any:
    """Run ``code`` in a fresh interpreter that sees the plugin; return what it prints as JSON."""
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


LIST = """
    import json, sys
    import mnistkit

    models, datasets = mnistkit.list_models(), mnistkit.list_datasets()
    model, = mnistkit.describe_models("tiny_mlp")
    data, = mnistkit.describe_datasets("mnist_small")
    imported = [m for m in sys.modules if m.split(".")[0] in ("mnistkit_plugin_example", "keras")]
    print(json.dumps({
        "models": models, "datasets": datasets, "imported": imported,
        "model": [model.source, model.target, model.summary], "data": [data.source, data.target],
    }))
"""

TRAIN_AND_SAVE = """
    import json, sys
    import keras, numpy as np
    import mnistkit

    path, images_file, predictions_file = sys.argv[1:]
    data = mnistkit.load_dataset("mnist_small", seed=0)
    recipe = mnistkit.model_recipes("tiny_mlp")["default"]
    model = mnistkit.build("tiny_mlp", hidden_units=16, temperature=2.0)
    optimizer = keras.optimizers.get(recipe.optimizer)
    optimizer.learning_rate = recipe.learning_rate
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = model.get_layer("hidden").kernel.numpy().copy()
    history = model.fit(data.train.images[:64], data.train.labels[:64], batch_size=32, verbose=0)
    images = data.test.images[:8]
    np.save(images_file, images)
    np.save(predictions_file, model.predict(images, verbose=0))
    mnistkit.save_model(model, path, metadata={"trained_on": "mnist_small"})
    print(json.dumps({
        "sizes": [data.train.num_examples, data.validation.num_examples, data.test.num_examples],
        "loss": history.history["loss"],
        "changed": bool((model.get_layer("hidden").kernel.numpy() != before).any()),
        "recipe": recipe.steps,
    }))
"""

LOAD = """
    import json, sys
    import numpy as np
    import mnistkit

    path, images_file, predictions_file = sys.argv[1:]
    def plugin_modules():
        return sorted(m for m in sys.modules if m.startswith("mnistkit_plugin_example"))

    before = plugin_modules()
    model = mnistkit.load_model(path)
    after = plugin_modules()
    np.save(predictions_file, model.predict(np.load(images_file), verbose=0))
    print(json.dumps({
        "before": before, "after": after, "metadata": mnistkit.read_metadata(path),
        "factor": model.get_layer("temperature").factor,
        "layer": type(model.get_layer("temperature")).__module__,
    }))
"""


def test_plugin_is_listed_without_being_imported(site: Path) -> None:
    listed = _run(site, LIST)

    assert "tiny_mlp" in listed["models"]
    assert "mnist_small" in listed["datasets"]
    assert listed["imported"] == []
    assert listed["model"] == [
        DISTRIBUTION,
        "mnistkit_plugin_example.models:tiny_mlp",
        "Example mnistkit plugin: a tiny MLP, its own Keras layer, a small MNIST.",
    ]
    assert listed["data"] == [DISTRIBUTION, "mnistkit_plugin_example.datasets:mnist_small"]


def test_plugin_model_trains_saves_and_loads_in_a_new_process_without_the_plugin_imported(
    site: Path, tmp_path: Path
) -> None:
    path, images, saved, loaded = (
        str(tmp_path / name) for name in ("tiny.keras", "images.npy", "saved.npy", "loaded.npy")
    )

    trained = _run(site, TRAIN_AND_SAVE, path, images, saved)
    reloaded = _run(site, LOAD, path, images, loaded)

    assert trained["sizes"] == [900, 100, 200]
    assert trained["recipe"] == 200
    assert trained["changed"]
    assert np.isfinite(trained["loss"]).all()
    assert reloaded["before"] == []
    assert "mnistkit_plugin_example.layers" in reloaded["after"]
    assert reloaded["layer"] == "mnistkit_plugin_example.layers"
    assert reloaded["factor"] == 0.5
    assert reloaded["metadata"] == {"trained_on": "mnist_small"}
    np.testing.assert_allclose(np.load(loaded), np.load(saved), rtol=1e-6, atol=1e-6)


PRETRAINED = """
    import json
    import mnistkit

    weights = mnistkit.model_weights("tiny_mlp")["mnist"]
    model = mnistkit.build("tiny_mlp", weights="mnist")
    result = mnistkit.Predictor(model).evaluate(mnistkit.load_dataset("mnist").test)
    print(json.dumps({
        "pretrained": mnistkit.list_models(pretrained=True),
        "errors": round((1 - result["accuracy"]) * result["examples"]),
        "meta": dict(weights.meta),
        "recipe": mnistkit.model_info(model).recipe.name,
    }))
"""


def test_plugin_ships_pretrained_weights_that_score_their_metadata_accuracy(site: Path) -> None:
    shipped = _run(site, PRETRAINED)

    assert shipped["pretrained"] == ["deep_cnn", "softmax", "tiny_mlp"]
    assert shipped["meta"]["model"] == "tiny_mlp"
    assert shipped["meta"]["command"].startswith("python tools/make_weights.py tiny_mlp ")
    assert shipped["recipe"] == "default"
    assert abs(shipped["errors"] - shipped["meta"]["test_errors"]) <= 2
