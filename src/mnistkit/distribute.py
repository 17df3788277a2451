"""Training under a ``tf.distribute`` strategy: making one, which worker writes, what is in scope.

The Trainer hands these helpers the strategy it was given. Under a strategy the batch
size stays the global batch: Keras splits each batch among the replicas, and the
data pipelines shard by example (:mod:`mnistkit.streams`), so every replica sees
its own share. Every worker runs the same program; only the chief's files are kept.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from mnistkit._cluster import WORKER_TIMEOUT, Cluster, read_tf_config, wait_for_workers
from mnistkit.errors import InvalidArgumentError
from mnistkit.layers import dropout_layers

__all__ = [
    "STRATEGIES",
    "WORKER_TIMEOUT",
    "Cluster",
    "check_scope",
    "chief_path",
    "is_chief",
    "make_strategy",
    "read_tf_config",
    "shared_seed",
    "wait_for_workers",
]

#: The strategies the command line offers, by name.
STRATEGIES = ("mirrored", "multiworker")


def make_strategy(
    name: str,
    *,
    timeout: float = WORKER_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> tf.distribute.Strategy:
    """Return the strategy the command line names.

    ``"mirrored"`` mirrors the model on every GPU of this machine (or on its CPU when
    it has none); ``"multiworker"`` on every GPU of every machine that the
    ``TF_CONFIG`` environment variable lists, as TensorFlow defines it. Create it
    before anything else runs TensorFlow operations: the multi-worker strategy
    configures the runtime's collective operations, which must happen first.

    The multi-worker strategy waits for every worker of the cluster; TensorFlow would
    wait for ever, deaf to Ctrl-C. So each worker first listens on its own address and
    waits, in Python, until it reaches every other one (see :func:`wait_for_workers`).

    Args:
        name: One of :data:`STRATEGIES`.
        timeout: Seconds to wait for the other workers to come up.
        report: Called with a line saying which workers are awaited, when that changes
            and every half minute; ``None`` says nothing.

    Returns:
        The ``tf.distribute.Strategy``.

    Raises:
        InvalidArgumentError: If ``name`` is unknown, or ``"multiworker"`` finds
            ``TF_CONFIG`` unset or not a valid cluster description (a task that is not
            in the cluster, an address without a port...).
        WorkerTimeoutError: If a worker does not come up within ``timeout`` seconds.
        KeyboardInterrupt: On Ctrl-C while waiting.
    """
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name != "multiworker":
        raise InvalidArgumentError(
            f"Invalid value for argument `strategy`. Expected one of {', '.join(STRATEGIES)}. "
            f"Received: strategy={name!r}"
        )
    cluster = read_tf_config(os.environ.get("TF_CONFIG", ""))
    wait_for_workers(cluster, timeout=timeout, report=report)
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: tf.distribute.Strategy | None) -> bool:
    """Return whether this worker keeps what it writes (always so without a strategy).

    Args:
        strategy: The strategy trained under, or ``None``.

    Returns:
        ``True`` on the chief of a multi-worker cluster, on a single machine, and
        without a strategy.
    """
    return strategy is None or bool(strategy.extended.should_checkpoint)


@contextlib.contextmanager
def chief_path(path: Path, strategy: tf.distribute.Strategy | None) -> Iterator[Path]:
    """Yield where this worker writes ``path``: the path itself on the chief, else a throwaway.

    Every worker writes, since reading a variable that is synchronised on read
    takes a collective operation in which all workers must join; the other
    workers' copies go to a temporary folder that is deleted afterwards.

    Args:
        path: The file or folder the chief writes.
        strategy: The strategy trained under, or ``None``.

    Yields:
        The path to write to.
    """
    if is_chief(strategy):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="mnistkit-worker-") as folder:
        yield Path(folder) / path.name


def shared_seed(strategy: tf.distribute.Strategy | None, seed: int) -> int:
    """Return the chief's ``seed`` on every worker of a multi-worker strategy.

    Workers that drew their own seeds would each take their share of a different
    global batch. The seed goes round the way initial weights do: a variable made in
    the strategy's scope starts, on every worker, with the chief's value.

    Args:
        strategy: The strategy trained under, or ``None``.
        seed: This worker's seed.

    Returns:
        The chief's seed (``seed`` itself without a multi-worker strategy).
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return seed
    with strategy.scope():
        chiefs = tf.Variable(seed, dtype=tf.int64, trainable=False)
    return int(chiefs.numpy())


def check_scope(
    strategy: tf.distribute.Strategy,
    model: keras.Model,
    *,
    optimizer: Any = None,
    metrics: Sequence[Any] = (),
) -> None:
    """Raise if the model, an optimizer or a metric was built outside ``strategy.scope()``.

    Variables made outside the scope are not mirrored: each replica would update a
    single copy, or Keras fails deep inside ``fit``.

    Args:
        strategy: The strategy to train under.
        model: The model, with its :class:`~mnistkit.KeepProbDropout` variables.
        optimizer: An optimizer instance, or a name (nothing to check).
        metrics: Metric names or instances.

    Raises:
        InvalidArgumentError: Naming what was built outside and how to build it inside.
    """
    where = f"the scope of the {type(strategy).__name__} it is trained under"
    variables = list(model.variables)
    for layer in dropout_layers(model):
        variables.extend([layer.keep_prob, layer.draws, layer.sampling, layer.samples_drawn])
    if not _created_in_scope(strategy, variables):
        raise InvalidArgumentError(
            f"The model {model.name!r} was built outside {where}, so its variables are not "
            "mirrored. Build it inside `with strategy.scope():`, or pass the name of a "
            'registered model (Trainer("deep_cnn", strategy=strategy)) and the Trainer '
            "builds it there."
        )
    if isinstance(optimizer, keras.optimizers.Optimizer) and not _created_in_scope(
        strategy, optimizer.variables
    ):
        raise InvalidArgumentError(
            f"The optimizer was created outside {where}. Create it inside "
            '`with strategy.scope():`, or pass its name (optimizer="adam").'
        )
    for metric in metrics:
        if isinstance(metric, keras.metrics.Metric) and not _created_in_scope(
            strategy, metric.variables
        ):
            raise InvalidArgumentError(
                f"The metric {metric.name!r} was created outside {where}. Create it inside "
                '`with strategy.scope():`, or pass its name (metrics=["accuracy"]).'
            )


def _created_in_scope(strategy: tf.distribute.Strategy, variables: Sequence[Any]) -> bool:
    # A Keras variable wraps the tf.Variable that the strategy made, in `.value`.
    return all(
        strategy.extended.variable_created_in_scope(
            variable.value if isinstance(variable, keras.Variable) else variable
        )
        for variable in variables
    )
