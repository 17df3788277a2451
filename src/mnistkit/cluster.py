"""Several processes, on one machine or several: joining them into one JAX cluster.

Each process of a cluster calls :func:`join` with the same coordinator address and count
of processes and its own id, from 0 (the chief) to ``processes - 1``; Keras's
``keras.distribution.initialize`` then connects them, and a
``keras.distribution.DataParallel`` over ``keras.distribution.list_devices()`` spans the
devices of every process. Each process reads the same data; Keras gives each its share
of every global batch. The chief owns the run's files (:func:`is_chief`): the others
write none.

On CPUs, JAX's processes exchange gradients through Gloo, which :func:`join` selects.
"""

from __future__ import annotations

import random
from typing import Any

from mnistkit.errors import InvalidArgumentError
from mnistkit.rendezvous import gather
from mnistkit.validation import (
    check_non_negative_int,
    check_positive_float,
    check_positive_int,
    invalid,
)

__all__ = ["JOIN_TIMEOUT", "check_address", "is_chief", "join", "shared_seed"]


def check_address(address: Any, name: str = "coordinator") -> tuple[str, int]:
    """Return the host and port of a ``HOST:PORT`` address.

    Args:
        address: The address, such as ``"10.0.0.1:1234"`` or ``"localhost:8476"``.
        name: The argument's name, for the message.

    Returns:
        ``(host, port)``.

    Raises:
        InvalidArgumentError: If it is not ``HOST:PORT`` with a port from 1 to 65535.

    Example:
        >>> check_address("localhost:8476")
        ('localhost', 8476)
    """
    expected = "an address HOST:PORT, such as localhost:8476"
    if not isinstance(address, str):
        raise invalid(name, expected, address)
    host, colon, port = address.rpartition(":")
    if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise invalid(name, expected, address)
    return host, int(port)


#: Seconds a process waits for the others to join, unless told otherwise (as JAX waits).
JOIN_TIMEOUT = 300.0


def join(
    coordinator: str, processes: int, process_id: int, *, timeout: float = JOIN_TIMEOUT
) -> None:
    """Join this process to a cluster of ``processes``, with Keras's distribution API.

    Call it in every process before anything else runs on JAX. It waits until every
    process has come (:func:`mnistkit.rendezvous.gather`, on the coordinator's port), at
    most ``timeout`` seconds, then connects them with ``keras.distribution.initialize``.

    Args:
        coordinator: ``HOST:PORT`` where the chief (process 0) listens, reachable from
            every process.
        processes: How many processes the cluster has.
        process_id: This process's id, from 0 to ``processes - 1``.
        timeout: Seconds to wait for every process to come.

    Raises:
        InvalidArgumentError: If a setting is out of range, or Keras runs on another
            backend than JAX.
        ClusterError: If a process does not come within ``timeout``, naming it and the
            coordinator's address.
    """
    host, port = check_address(coordinator)
    timeout = check_positive_float(timeout, "timeout")
    processes = check_positive_int(processes, "processes")
    process_id = check_non_negative_int(process_id, "process_id")
    if process_id >= processes:
        raise invalid("process_id", f"an id from 0 to {processes - 1}", process_id)
    import keras  # here: the command line checks an address before Keras loads

    backend = keras.backend.backend()
    if backend != "jax":
        raise InvalidArgumentError(
            f"Several processes train under keras.distribution, on the JAX backend; this is "
            f"Keras's {backend!r} backend. Set KERAS_BACKEND=jax."
        )
    gather(host.strip("[]"), port, processes, process_id, timeout=timeout)
    import jax

    # Collectives between the CPUs of several processes go through Gloo (JAX's default
    # since 0.4.3x; older versions had none).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize(
        job_addresses=coordinator, num_processes=processes, process_id=process_id
    )


def is_chief(distribution: Any = None) -> bool:
    """Return whether this process owns the run's files: the only one, or process 0.

    Args:
        distribution: The ``keras.distribution.Distribution`` trained under, or ``None``.

    Returns:
        ``True`` without a distribution, with one of a single process, and in process 0.
    """
    if distribution is None or int(distribution.num_processes) == 1:
        return True
    import jax

    return int(jax.process_index()) == 0


def shared_seed(distribution: Any = None) -> int:
    """Return a seed drawn at random, the chief's in every process of a cluster.

    Args:
        distribution: The ``keras.distribution.Distribution`` trained under, or ``None``.

    Returns:
        A seed from 0 to 2**31 - 1, the same in every process.
    """
    seed = random.SystemRandom().randrange(2**31)
    if distribution is None or int(distribution.num_processes) == 1:
        return seed
    import numpy as np
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(seed)))
