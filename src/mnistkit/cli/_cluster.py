"""The options of ``mnistkit train`` that join several processes into one training run.

One command per process, the same but for ``--process-id``::

    KERAS_BACKEND=jax mnistkit train softmax --coordinator HOST:PORT --processes 2 --process-id 0
    KERAS_BACKEND=jax mnistkit train softmax --coordinator HOST:PORT --processes 2 --process-id 1

Process 0, the chief, listens at ``HOST:PORT`` and owns the run folder; the others
train beside it and write nothing there.
"""

from __future__ import annotations

import argparse
from typing import Any

from mnistkit.cli._parser import option_type, usage_error
from mnistkit.cluster import JOIN_TIMEOUT, check_address
from mnistkit.errors import InvalidArgumentError
from mnistkit.validation import check_non_negative_int, check_positive_float, check_positive_int

_OPTIONS = ("coordinator", "processes", "process_id")


def add_cluster_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--coordinator``, ``--processes`` and ``--process-id`` in a group of their own."""
    group = parser.add_argument_group(
        "several processes (JAX backend)",
        "Start one command per process, on one machine or several, each with its own "
        "--process-id; --batch-size stays the global batch, split among the processes.",
    )
    group.add_argument(
        "--coordinator",
        type=option_type(str, _address, "coordinator"),
        metavar="HOST:PORT",
        help="where process 0 listens for the others, reachable from every process",
    )
    group.add_argument(
        "--processes",
        type=option_type(int, check_positive_int, "processes"),
        metavar="N",
        help="how many processes train together",
    )
    group.add_argument(
        "--process-id",
        type=option_type(int, check_non_negative_int, "process_id"),
        metavar="I",
        help="this process's id, from 0 (the chief, which writes the run folder) to N-1",
    )
    group.add_argument(
        "--join-timeout",
        type=option_type(float, check_positive_float, "join_timeout"),
        default=JOIN_TIMEOUT,
        metavar="SECONDS",
        help=f"how long to wait for every process to come (default: {JOIN_TIMEOUT:g}); "
        "then stop, naming the processes missing",
    )


def _address(value: str, name: str) -> str:
    check_address(value, name)
    return value


def join_cluster(args: argparse.Namespace) -> Any:
    """Join the cluster the options name; return the distribution to train under, or None.

    Returns:
        A ``keras.distribution.DataParallel`` over the devices of every process, or
        ``None`` when none of the options is given.
    """
    given = [name for name in _OPTIONS if getattr(args, name) is not None]
    if not given:
        return None
    missing = [f"--{name.replace('_', '-')}" for name in _OPTIONS if name not in given]
    if missing:
        usage_error(args, f"several processes need {', '.join(missing)} as well")
    if args.process_id >= args.processes:
        usage_error(
            args,
            f"argument --process-id: expected an id from 0 to {args.processes - 1}; "
            f"received {args.process_id}",
        )
    if args.strategy is not None:
        usage_error(args, "argument --strategy: not allowed with --processes")
    if args.resume:
        usage_error(args, "argument --resume: not supported yet with --processes")
    from mnistkit.cluster import join

    try:
        join(args.coordinator, args.processes, args.process_id, timeout=args.join_timeout)
    except InvalidArgumentError as error:
        usage_error(args, str(error))
    import keras

    return keras.distribution.DataParallel(devices=keras.distribution.list_devices())
