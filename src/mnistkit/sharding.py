"""Training under a ``keras.distribution`` on the JAX backend: checking one, and its scope.

``keras.distribution`` is Keras 3's own way across devices and processes
(keras.io/guides/distribution), implemented on the JAX backend. A
``keras.distribution.DataParallel`` replicates the model on every device of its mesh and
splits each global batch among them; under it the batch size stays the global batch, and
the run trains as on one device. The Trainer takes a distribution (``Trainer(...,
distribution=)``) or honours the one set with ``keras.distribution.set_distribution``,
builds a model given by name in the distribution's scope, and runs ``fit``, ``evaluate``
and the checkpoints in it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import keras

from mnistkit.errors import InvalidArgumentError

__all__ = [
    "check_distribution",
    "check_placement",
    "detached",
    "local_copy",
    "replicas",
    "resolve_distribution",
]


def resolve_distribution(distribution: Any, strategy: Any = None) -> Any:
    """Return the distribution to train under: the one given, else the one set globally.

    Args:
        distribution: A ``keras.distribution.Distribution``, or ``None`` for the one set
            with ``keras.distribution.set_distribution`` (if any).
        strategy: The ``tf.distribute`` strategy also asked for, if any.

    Returns:
        The ``keras.distribution.Distribution``, or ``None`` when there is none.

    Raises:
        InvalidArgumentError: If ``distribution`` is not a Keras distribution, if Keras
            runs on another backend than JAX, or if a ``strategy`` is given as well.

    Example:
        >>> resolve_distribution(None) is None  # none given, none set
        True
    """
    given = distribution is not None
    if not given:
        distribution = keras.distribution.distribution()
        if distribution is None:
            return None
    if strategy is not None:
        where = "`distribution`" if given else "a distribution set globally"
        raise InvalidArgumentError(
            f"Pass either `strategy` (tf.distribute, TensorFlow) or {where} "
            "(keras.distribution, JAX), not both."
        )
    check_distribution(distribution)
    return distribution


def check_distribution(distribution: Any) -> None:
    """Raise unless ``distribution`` is a Keras distribution that can train here.

    Args:
        distribution: The value given as ``distribution``.

    Raises:
        InvalidArgumentError: If it is not a ``keras.distribution.Distribution``
            (``DataParallel``, ``ModelParallel``), or Keras runs on another backend
            than JAX, naming the backend.
    """
    kinds = (keras.distribution.DataParallel, keras.distribution.ModelParallel)
    if not isinstance(distribution, kinds):
        raise InvalidArgumentError(
            "Invalid value for argument `distribution`. Expected a "
            "keras.distribution.DataParallel or ModelParallel. Received: "
            f"distribution={type(distribution).__name__}"
        )
    backend = keras.backend.backend()
    if backend != "jax":
        raise InvalidArgumentError(
            "keras.distribution needs the JAX backend; this is Keras's "
            f"{backend!r} backend. Set KERAS_BACKEND=jax, or on TensorFlow pass a "
            "tf.distribute.MirroredStrategy as `strategy`."
        )


def check_placement(
    distribution: Any,
    model: keras.Model,
    *,
    optimizer: Any = None,
    metrics: Sequence[Any] = (),
) -> None:
    """Raise if a model, optimizer or metric was built outside the distribution's scope.

    A variable built outside the scope lives on one device, not on the distribution's
    device mesh, and Keras's training step cannot mix the two.

    Args:
        distribution: The distribution to train under.
        model: The model.
        optimizer: An optimizer instance, or a name (nothing to check).
        metrics: Metric names or instances.

    Raises:
        InvalidArgumentError: Naming what was built outside the scope and how to build it
            inside.
    """
    devices = int(distribution.device_mesh.devices.size)
    where = f"the scope of the {type(distribution).__name__} it is trained under"
    if not _on_mesh(model.variables, devices):
        raise InvalidArgumentError(
            f"The model {model.name!r} was built outside {where}, so its variables are not "
            "on its devices. Build it inside `with distribution.scope():`, or pass the "
            'name of a registered model (Trainer("deep_cnn", distribution=distribution)) '
            "and the Trainer builds it there."
        )
    if isinstance(optimizer, keras.optimizers.Optimizer) and not _on_mesh(
        optimizer.variables, devices
    ):
        raise InvalidArgumentError(
            f"The optimizer was created outside {where}. Create it inside "
            '`with distribution.scope():`, or pass its name (optimizer="adam").'
        )
    for metric in metrics:
        if isinstance(metric, keras.metrics.Metric) and not _on_mesh(metric.variables, devices):
            raise InvalidArgumentError(
                f"The metric {metric.name!r} was created outside {where}. Create it inside "
                '`with distribution.scope():`, or pass its name (metrics=["accuracy"]).'
            )


def replicas(distribution: Any) -> int:
    """Return how many copies of the model a distribution trains: its data-parallel width.

    Args:
        distribution: A ``keras.distribution.Distribution``.

    Returns:
        Its ``num_model_replicas``.
    """
    return int(distribution.num_model_replicas)


@contextlib.contextmanager
def detached() -> Iterator[None]:
    """Run the block with no ``keras.distribution`` in force, then restore the one that was.

    Keras shards the data of ``fit``, ``evaluate`` and ``predict`` among the processes of
    the distribution in force; work that each process does on its own, with its own
    data (a :func:`local_copy` predicting), runs detached from it.

    Example:
        >>> import keras
        >>> with detached():
        ...     keras.distribution.distribution() is None
        True
    """
    outer = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(outer)


def local_copy(model: keras.Model) -> keras.Model:
    """Return a copy of ``model`` on this process's own devices, with its current weights.

    Under a distribution over several processes a model's variables span the devices of
    every process, and Keras runs them only on data sharded among the processes. A
    process that predicts on data of its own (the accuracy of the batch about to be
    trained on, the test images of a run) uses a copy made here, under :func:`detached`.

    Args:
        model: A functional or sequential ``keras.Model`` whose variables are replicated
            (as under ``keras.distribution.DataParallel``).

    Returns:
        The copy, a ``keras.Model`` of the same layers and weights.
    """
    weights = model.get_weights()
    with detached():
        copy = keras.models.clone_model(model)
        copy.set_weights(weights)
    return copy


def _on_mesh(variables: Sequence[Any], devices: int) -> bool:
    # A JAX array's sharding names the devices it is placed on; one built outside the
    # scope sits on a single device.
    return all(
        len(variable.value.sharding.device_set) == devices
        for variable in variables
        if isinstance(variable, keras.Variable)
    )
