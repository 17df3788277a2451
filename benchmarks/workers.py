"""One measurement per process, for benchmarks/run.py; prints one JSON object.

Each training measurement runs in a fresh process so that neither side inherits the
other's compiled functions, caches or memory. The plain-Keras side is written the way a
Keras user writes it: arrays from ``mnist.npz``, ``model.compile`` and ``model.fit``.
Both sides are timed from building the model to the end of training, with the data
already in memory. The ``backend`` task times plain Keras on whichever Keras backend
``KERAS_BACKEND`` names, after its warm-up steps.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

NPZ = Path(__file__).resolve().parents[1] / "src" / "mnistkit" / "data" / "mnist.npz"


def train_keras(
    model: str, epochs: int, batch_size: int, precision: str, examples: int
) -> dict[str, Any]:
    """Plain Keras: the tutorial's model and optimizer, ``fit`` on NumPy arrays."""
    import keras
    import numpy as np

    from mnistkit import build

    if precision != "float32":
        keras.mixed_precision.set_global_policy(precision)
    with np.load(NPZ) as data:
        x_train = data["x_train"][5000 : 5000 + examples].astype("float32")[..., None] / 255.0
        y_train = data["y_train"][5000 : 5000 + examples]
        x_test = data["x_test"].astype("float32")[..., None] / 255.0
        y_test = data["y_test"]
    keras.utils.set_random_seed(0)
    started = time.perf_counter()  # from building the model to the end of training
    net = build(model)
    optimizer = keras.optimizers.SGD(0.5) if model == "softmax" else keras.optimizers.Adam(1e-4)
    net.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    net.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    _, accuracy = net.evaluate(x_test, y_test, batch_size=1000, verbose=0)
    steps = epochs * math.ceil(len(x_train) / batch_size)
    return _training_result(steps, batch_size, seconds, accuracy)


def train_mnistkit(
    model: str,
    epochs: int,
    batch_size: int,
    precision: str,
    examples: int,
    recipe: str | None,
    seed: int = 0,
) -> dict[str, Any]:
    """mnistkit's Trainer with its default settings (or a named recipe)."""
    from mnistkit import Split, Trainer, load_dataset

    mnist = load_dataset("mnist")
    train = mnist.train
    if examples < train.num_examples:
        train = Split(train.raw_images[:examples], train.labels[:examples])
    options: dict[str, Any] = {"seed": seed, "recipe": recipe}
    if precision != "default":
        options["precision"] = precision
    length = {} if recipe else {"epochs": epochs, "batch_size": batch_size}
    started = time.perf_counter()  # from building the model to the end of training
    trainer = Trainer(model, **options)
    trainer.fit(train, verbose=0, **length)
    seconds = time.perf_counter() - started
    accuracy = trainer.evaluate(mnist.test)["accuracy"]
    import hardware

    result = _training_result(
        trainer.metadata["steps"], trainer.metadata["batch_size"], seconds, accuracy
    )
    return {**result, "precision": trainer.recipe.precision, "cpu_flags": hardware.cpu()["flags"]}


def _step_timer(warm: int, stop: int | None = None) -> Any:
    """A Keras callback that times the steps after the first ``warm`` (tracing, caches).

    With ``stop``, it ends training after that many steps in all.
    """
    import keras

    class StepTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.done = 0
            self.started: float | None = None
            self.ended = 0.0

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.done += 1
            if self.done == warm:
                self.started = time.perf_counter()
            self.ended = time.perf_counter()
            if self.done == stop:
                self.model.stop_training = True

        def rate(self, batch_size: int) -> float:
            assert self.started is not None
            return (self.done - warm) * batch_size / (self.ended - self.started)

    return StepTimer()


def step_rate(model: str, batch_size: int, precision: str, steps: int) -> dict[str, Any]:
    """Steady examples per second of the Trainer's training step, and its GFLOP/s."""
    import hardware

    from mnistkit import Trainer, load_dataset

    train = load_dataset("mnist").train
    timer = _step_timer(warm=10)
    trainer = Trainer(model, seed=0, precision=precision)
    trainer.fit(train, steps=steps + 10, batch_size=batch_size, callbacks=[timer], verbose=0)
    rate = timer.rate(batch_size)
    flops = hardware.training_flops(trainer.model)
    machine = hardware.cpu()
    peak = hardware.peak_gflops(machine, trainer.recipe.precision or "float32")
    gflops = rate * flops / 1e9
    return {
        "model": model,
        "precision": trainer.recipe.precision,
        "batch_size": batch_size,
        "examples_per_second": round(rate, 1),
        "training_mflop_per_example": round(flops / 1e6, 1),
        "gflops": round(gflops, 1),
        "peak_gflops": peak,
        "share_of_peak": None if not peak else round(gflops / peak, 3),
        "cpu": machine,
    }


def keras_rate(steps: int) -> dict[str, Any]:
    """Plain Keras's steady rate on the tutorial's CNN recipe (batch 50, Adam, float32)."""
    import numpy as np

    with np.load(NPZ) as data:
        x_train = data["x_train"][5000:].astype("float32")[..., None] / 255.0
        y_train = data["y_train"][5000:]
    net = _plain_deep_cnn()
    timer = _step_timer(warm=10)
    net.fit(
        x_train[: (steps + 10) * 50], y_train[: (steps + 10) * 50], batch_size=50,
        epochs=1, verbose=0, callbacks=[timer],
    )  # fmt: skip
    rate = timer.rate(50)
    return {
        "examples_per_second": round(rate, 1),
        "tutorial_seconds_estimate": round(20_000 * 50 / rate, 1),
    }


def _plain_deep_cnn() -> Any:
    """``build("deep_cnn")`` compiled as a Keras user compiles it: Adam at 1e-4, seed 0."""
    import keras

    from mnistkit import build

    keras.utils.set_random_seed(0)
    net = build("deep_cnn")
    net.compile(
        optimizer=keras.optimizers.Adam(1e-4),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return net


def backend_rate(batch_size: int, precision: str, steps: int, warmup: int) -> dict[str, Any]:
    """Steady examples per second of plain Keras training the deep CNN on this backend.

    The backend is the one ``KERAS_BACKEND`` names. The model is ``build("deep_cnn")``,
    trained the way a Keras user trains it (Adam at 1e-4, ``model.fit`` on NumPy arrays);
    the first ``warmup`` steps, which trace or compile the step, are left out of the rate.
    The data is cut to whole batches: a short last batch has another shape, which would
    trace or compile the step a second time inside the timed steps.
    """
    import keras
    import numpy as np

    if precision != "float32":
        keras.mixed_precision.set_global_policy(precision)
    with np.load(NPZ) as data:
        whole = (len(data["x_train"]) - 5000) // batch_size * batch_size
        x_train = data["x_train"][5000 : 5000 + whole].astype("float32")[..., None] / 255.0
        y_train = data["y_train"][5000 : 5000 + whole]
    net = _plain_deep_cnn()
    timer = _step_timer(warm=warmup, stop=warmup + steps)
    started = time.perf_counter()
    epochs = math.ceil((warmup + steps) * batch_size / whole)
    net.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0, callbacks=[timer])
    backend = keras.backend.backend()
    return {
        "backend": backend,
        "version": importlib.import_module(backend).__version__,
        "keras": keras.__version__,
        "jit_compile": bool(net.jit_compile),
        "precision": precision,
        "batch_size": batch_size,
        "steps": timer.done - warmup,
        "warmup_steps": warmup,
        "warmup_seconds": round(timer.started - started, 2) if timer.started else None,
        "examples_per_second": round(timer.rate(batch_size), 1),
        "cpus": len(os.sched_getaffinity(0)),
    }


def _training_result(
    steps: int, batch_size: int, seconds: float, accuracy: float
) -> dict[str, Any]:
    return {
        "steps": steps,
        "batch_size": batch_size,
        "seconds": round(seconds, 3),
        "examples_per_second": round(steps * batch_size / seconds, 1),
        "test_accuracy": round(float(accuracy), 4),
    }


def load() -> dict[str, Any]:
    """Seconds to import mnistkit and load the embedded MNIST as float images."""
    started = time.perf_counter()
    from mnistkit import load_dataset

    imported = time.perf_counter()
    mnist = load_dataset("mnist")
    loaded = time.perf_counter()
    _ = mnist.train.images, mnist.test.images
    scaled = time.perf_counter()
    return {
        "import_seconds": round(imported - started, 3),
        "load_seconds": round(loaded - imported, 3),
        "load_and_scale_seconds": round(scaled - imported, 3),
    }


def predict(model: str) -> dict[str, Any]:
    """Latency of one image and throughput of 10,000, Trainer.predict against Keras's."""
    import numpy as np

    from mnistkit import Trainer, load_dataset

    images = load_dataset("mnist").test.images
    trainer = Trainer(model, seed=0)
    one = images[:1]
    trainer.predict(one)
    trainer.model.predict(one, verbose=0)

    def median_ms(function: Any, repeats: int = 50) -> float:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            function()
            times.append(time.perf_counter() - started)
        return round(statistics.median(times) * 1000, 3)

    def per_second(function: Any) -> float:
        started = time.perf_counter()
        function()
        return round(len(images) / (time.perf_counter() - started), 1)

    np.testing.assert_allclose(
        trainer.predict(one), _softmax(trainer.model.predict(one, verbose=0)), atol=1e-5
    )
    return {
        "single_image_ms": median_ms(lambda: trainer.predict(one)),
        "keras_single_image_ms": median_ms(lambda: trainer.model.predict(one, verbose=0)),
        "batch_images_per_second": per_second(lambda: trainer.predict(images)),
        "keras_batch_images_per_second": per_second(
            lambda: trainer.model.predict(images, batch_size=1024, verbose=0)
        ),
    }


def _softmax(logits: Any) -> Any:
    import numpy as np

    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def cli() -> dict[str, Any]:
    """Wall seconds of ``mnistkit --help``, ``--version`` and ``models`` (median of 5)."""
    result = {}
    for name, arguments in {
        "help": ["--help"],
        "version": ["--version"],
        "models": ["models"],
    }.items():
        times = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "mnistkit", *arguments], check=True, capture_output=True
            )
            times.append(time.perf_counter() - started)
        result[f"cli_{name}_seconds"] = round(statistics.median(times), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "task",
        choices=["keras", "mnistkit", "load", "predict", "cli", "step", "keras-rate", "backend"],
    )
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps (backend)")
    parser.add_argument("--model", default="softmax")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--recipe", default=None)
    parser.add_argument("--examples", type=int, default=55_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cpus", default="all", help="CPUs to run on, such as 0 or 0,1")
    options = parser.parse_args()
    if options.cpus != "all":  # before TensorFlow sizes its thread pools
        os.sched_setaffinity(0, {int(cpu) for cpu in options.cpus.split(",")})
    if options.task == "keras":
        result = train_keras(
            options.model, options.epochs, options.batch_size, options.precision, options.examples
        )
    elif options.task == "mnistkit":
        result = train_mnistkit(
            options.model,
            options.epochs,
            options.batch_size,
            options.precision,
            options.examples,
            options.recipe,
            options.seed,
        )
    elif options.task == "step":
        result = step_rate(options.model, options.batch_size, options.precision, options.steps)
    elif options.task == "keras-rate":
        result = keras_rate(options.steps)
    elif options.task == "backend":
        result = backend_rate(options.batch_size, options.precision, options.steps, options.warmup)
    elif options.task == "load":
        result = load()
    elif options.task == "predict":
        result = predict(options.model)
    else:
        result = cli()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
