"""Training runs under a keras.distribution on JAX, for tests/test_distribution_jax.py.

Each run needs a fresh process: the count of CPU devices is fixed when JAX starts
(``XLA_FLAGS=--xla_force_host_platform_device_count=N``), and a process joins one
cluster only.

    python distribution_run.py devices RESULT.npz
        the Trainer on one device, under a DataParallel over every device, and under
        one set with keras.distribution.set_distribution
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np

SEED = 0
STEPS = 100
BATCH_SIZE = 100
EXAMPLES = 2000


def training_data() -> tuple[Any, Any]:
    from mnistkit import load_dataset

    train = load_dataset("mnist", validation_size=0).train
    return train.images[:EXAMPLES], train.labels[:EXAMPLES]


def train_softmax(distribution: Any = None) -> tuple[list[Any], dict[str, Any]]:
    """Train softmax for STEPS steps; return its weights and its metadata."""
    from mnistkit import Trainer

    trainer = Trainer("softmax", seed=SEED, distribution=distribution)
    trainer.fit(training_data(), steps=STEPS, batch_size=BATCH_SIZE, verbose=0)
    return trainer.model.get_weights(), trainer.metadata


def trained_under(distribution: Any) -> Any:
    """A softmax Trainer under ``distribution``, trained one step."""
    from mnistkit import Trainer

    trainer = Trainer("softmax", seed=SEED, distribution=distribution)
    trainer.fit(training_data(), steps=1, batch_size=BATCH_SIZE, verbose=0)
    return trainer


def devices(result_path: Path) -> None:
    one, _ = train_softmax()
    every = keras.distribution.DataParallel(devices=keras.distribution.list_devices())
    given, metadata = train_softmax(every)
    keras.distribution.set_distribution(every)
    set_globally, _ = train_softmax()
    keras.distribution.set_distribution(None)
    placed = len(trained_under(every).model.variables[0].value.sharding.device_set)
    from mnistkit import InvalidArgumentError, Trainer, build

    try:
        Trainer(build("softmax"), distribution=every)
        refused = ""
    except InvalidArgumentError as error:
        refused = str(error)
    np.savez(
        result_path,
        devices=len(keras.distribution.list_devices()),
        replicas=metadata["replicas"],
        strategy=str(metadata["strategy"]),
        placed=placed,
        refused=refused,
        **{f"one_{i}": w for i, w in enumerate(one)},
        **{f"given_{i}": w for i, w in enumerate(given)},
        **{f"global_{i}": w for i, w in enumerate(set_globally)},
    )


if __name__ == "__main__":
    mode, *paths = sys.argv[1:]
    {"devices": devices}[mode](Path(paths[0]))
