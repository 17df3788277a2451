"""Training runs under a tf.distribute strategy, for tests/test_distribute.py to start.

Each run needs a fresh process: logical CPU devices must be set up before TensorFlow
initialises.

    python distributed_run.py mirrored RESULT.json
        the Trainer on one device against a MirroredStrategy over two logical CPUs
    python distributed_run.py keras RESULT.npz
        Keras's own compile, fit, evaluate and predict on a built model, under a
        MirroredStrategy over two logical CPUs, as TensorFlow's tutorial runs them
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

SEED = 5
BATCH_SIZE = 40
LEARNING_RATE = 0.5


def training_data() -> tuple[Any, Any]:
    from mnistkit import load_dataset

    train = load_dataset("mnist", validation_size=0).train
    return train.images[:400], train.labels[:400]


def evaluation_data() -> tuple[Any, Any]:
    from mnistkit import load_dataset

    test = load_dataset("mnist").test
    return test.images[:300], test.labels[:300]


class StopAt(keras.callbacks.Callback):
    """Interrupts training after ``step`` steps, as Ctrl-C would."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step = step

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        if int(self.model.optimizer.iterations.numpy()) >= self.step:
            raise KeyboardInterrupt


def weights_of(trainer: Any) -> list[Any]:
    return [w.tolist() for w in trainer.model.get_weights()]


def mirrored(result_path: Path) -> None:
    strategy = two_logical_cpus()
    from mnistkit import KeepProbDropout, Trainer, get_keep_prob
    from mnistkit.layers import drawn

    data = training_data()
    result: dict[str, Any] = {"replicas": strategy.num_replicas_in_sync}

    # The same run on one device and on two, at the same global batch and seed.
    for name, chosen in (("one_device", None), ("two_devices", strategy)):
        started = time.perf_counter()
        trainer = Trainer("softmax", seed=SEED, learning_rate=LEARNING_RATE, strategy=chosen)
        log = trainer.fit(data, steps=20, batch_size=BATCH_SIZE, log_every=5, verbose=0).log
        result[name] = {
            "seconds": time.perf_counter() - started,
            "weights": weights_of(trainer),
            "train_accuracy": [row["train_accuracy"] for row in log if "train_accuracy" in row],
            "loss": [row["loss"] for row in log if "loss" in row],
            "evaluation": trainer.evaluate(evaluation_data()),
            "metadata": {key: trainer.metadata[key] for key in ("strategy", "replicas")},
        }

    # Dropout under two replicas: keep_prob set for training, masks per replica,
    # and a checkpointed run that resumes to the weights of an uninterrupted one.
    def dropout_model() -> Any:
        inputs = keras.Input((28, 28, 1))
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Dense(32, activation="relu")(x)
        x = KeepProbDropout(0.5, seed=7, name="dropout")(x)
        return keras.Model(inputs, keras.layers.Dense(10)(x))

    seen: list[float | None] = []

    class KeepProbSpy(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            seen.append(get_keep_prob(self.model))

    runs = {}
    for name, pieces in (("whole", [6]), ("resumed", [3, 6])):
        with strategy.scope():
            model = dropout_model()
        folder = result_path.parent / f"checkpoints-{name}"
        for steps in pieces:
            trainer = Trainer(model, keep_prob=0.3, seed=SEED, strategy=strategy)
            with contextlib.suppress(KeyboardInterrupt):  # the checkpoint is saved first
                trainer.fit(
                    data,
                    steps=6,
                    batch_size=BATCH_SIZE,
                    checkpoint_dir=folder,
                    resume=steps != pieces[0],
                    callbacks=[KeepProbSpy(), *([StopAt(steps)] if steps < 6 else [])],
                    verbose=0,
                )
        layer = model.get_layer("dropout")
        runs[name] = {
            "weights": weights_of(trainer),
            "draws": drawn(layer),
            "keep_prob_after": get_keep_prob(model),
        }
    result["dropout"] = {**runs, "keep_prob_seen": seen}

    @tf.function
    def masks() -> Any:
        return strategy.run(lambda: layer(tf.ones((4, 32)), training=True))

    result["dropout"]["masks"] = [
        np.asarray(value).tolist() for value in strategy.experimental_local_results(masks())
    ]
    result_path.write_text(json.dumps(result))


def keras_methods(result_path: Path) -> None:
    strategy = two_logical_cpus()
    from mnistkit import build, load_dataset

    train = load_dataset("mnist").train
    images, labels = train.images[:256], train.labels[:256]
    with strategy.scope():
        model = build("deep_cnn", seed=SEED)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-4),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
    history = model.fit(images, labels, batch_size=64, epochs=2, verbose=0)
    loss, accuracy = model.evaluate(images, labels, batch_size=64, verbose=0)
    predictions = model.predict(images, batch_size=64, verbose=0)

    plain = build("deep_cnn", seed=SEED)  # the same weights, no strategy
    plain.set_weights(model.get_weights())
    np.savez(
        result_path,
        replicas=strategy.num_replicas_in_sync,
        fit_loss=np.asarray(history.history["loss"]),
        loss=loss,
        accuracy=accuracy,
        predictions=predictions,
        plain_predictions=plain.predict(images, batch_size=64, verbose=0),
    )


def two_logical_cpus() -> Any:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


if __name__ == "__main__":
    mode, *paths = sys.argv[1:]
    {"mirrored": mirrored, "keras": keras_methods}[mode](Path(paths[0]))
