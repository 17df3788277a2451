"""A multi-worker cluster before TensorFlow joins it: ``TF_CONFIG``, checked, and the wait.

TensorFlow's multi-worker strategy waits for every worker inside its C++ runtime, for
ever and deaf to Ctrl-C. Here each worker waits in Python instead: it listens on its own
address (so that the others see it is up) and connects to each other address until all
answer, saying who it waits for; then TensorFlow starts, with everyone there. Nothing
here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mnistkit.errors import InvalidArgumentError, WorkerTimeoutError

#: Seconds the multi-worker strategy waits for the other workers by default.
WORKER_TIMEOUT = 600.0
# The jobs whose tasks train together under the multi-worker strategy.
_TRAINING_JOBS = ("chief", "worker")
_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)
# How often to try the others, and to say who is still awaited.
_POLL_SECONDS = 0.5
_REPORT_SECONDS = 30.0


@dataclass(frozen=True)
class Cluster:
    """The cluster that ``TF_CONFIG`` describes, as this worker sees it.

    Attributes:
        me: This worker's task, such as ``"worker 0"``.
        address: This worker's ``host:port``.
        others: The other training tasks, by name, and their addresses.
    """

    me: str
    address: str
    others: dict[str, str]


def read_tf_config(text: str) -> Cluster:
    """Read the ``TF_CONFIG`` environment variable's value, every part checked.

    Args:
        text: The value: a JSON object with the ``cluster`` (each job's list of
            ``host:port`` addresses) and this worker's ``task`` (its ``type`` and
            ``index`` in the cluster).

    Returns:
        The :class:`Cluster`.

    Raises:
        InvalidArgumentError: If the value is not such an object, naming what is wrong
            and showing an example.

    Example:
        >>> read_tf_config('{"cluster": {"worker": ["a:1", "b:2"]}, '
        ...                '"task": {"type": "worker", "index": 1}}')
        Cluster(me='worker 1', address='b:2', others={'worker 0': 'a:1'})
    """
    try:
        config = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError) as error:
        raise InvalidArgumentError(
            f"TF_CONFIG is not valid JSON ({error}). Expected, for example: {_EXAMPLE}"
        ) from None
    if not isinstance(config, dict) or not config.get("cluster") or not config.get("task"):
        raise InvalidArgumentError(
            "The multi-worker strategy reads its cluster from the TF_CONFIG environment "
            "variable, which must name the cluster and this machine's task in it, the same "
            f"cluster on every machine. Expected, for example: {_EXAMPLE}. "
            f"Received: TF_CONFIG={text[:200]!r}"
        )
    cluster, task = config["cluster"], config["task"]
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise _bad("`cluster` and `task` must be JSON objects", text)
    tasks: dict[str, str] = {}
    for job, addresses in cluster.items():
        if not isinstance(addresses, list):
            raise _bad(f'the job {job!r} must list addresses as "host:port"', text)
        wrong = [address for address in addresses if not _is_address(address)]
        if wrong:
            raise _bad(f'{wrong[0]!r} is not an address "host:port" with a port from 1 '
                       "to 65535", text)  # fmt: skip
        if job in _TRAINING_JOBS:
            tasks.update({f"{job} {index}": address for index, address in enumerate(addresses)})
    kind, index = task.get("type"), task.get("index")
    size = len(cluster.get(kind, [])) if isinstance(kind, str) else 0
    if kind not in _TRAINING_JOBS or not size:
        raise _bad(f"the task's type {kind!r} must be one of the cluster's jobs "
                   f"{', '.join(j for j in _TRAINING_JOBS if j in cluster)}", text)  # fmt: skip
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise _bad(f"the task's index {index!r} must be from 0 to {size - 1}", text)
    me = f"{kind} {index}"
    return Cluster(me, tasks.pop(me), tasks)


def _is_address(address: object) -> bool:
    if not isinstance(address, str):
        return False
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and 0 < int(port) < 65536


def _bad(problem: str, text: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"TF_CONFIG does not describe a cluster this worker is part of: {problem}. "
        f"Expected, for example: {_EXAMPLE}. Received: TF_CONFIG={text[:200]!r}"
    )


def wait_for_workers(
    cluster: Cluster,
    *,
    timeout: float = WORKER_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> None:
    """Listen on this worker's address and wait until every other worker answers.

    Args:
        cluster: The cluster (:func:`read_tf_config`).
        timeout: Seconds to wait, in all.
        report: Called with a line naming the workers awaited, when that changes and
            every half minute.

    Raises:
        WorkerTimeoutError: If a worker does not answer within ``timeout`` seconds,
            naming each one missing and its address.
        InvalidArgumentError: If this worker's port is taken by another program.
        KeyboardInterrupt: On Ctrl-C, at once.
    """
    deadline = time.monotonic() + timeout
    awaited = dict(cluster.others)
    said, said_at = "", 0.0
    with _listening(cluster.address):
        while True:
            awaited = {name: at for name, at in awaited.items() if not _answers(at)}
            if not awaited:
                return
            now = time.monotonic()
            missing = ", ".join(f"{name} at {at}" for name, at in awaited.items())
            if report is not None and (missing != said or now - said_at >= _REPORT_SECONDS):
                left = max(0.0, deadline - now)
                report(f"{cluster.me} waits for {missing} ({left:.0f} s left; Ctrl-C stops)")
                said, said_at = missing, now
            if now >= deadline:
                raise WorkerTimeoutError(
                    f"{cluster.me} waited {timeout:g} s for {missing}, in vain. Start the same "
                    "command there with that task in TF_CONFIG, check the address, or allow "
                    "more time (--worker-timeout)."
                )
            time.sleep(_POLL_SECONDS)


@contextlib.contextmanager
def _listening(address: str) -> Iterator[None]:
    """Accept connections on ``address``'s port while the block runs, so others see us."""
    port = int(address.rpartition(":")[2])
    try:
        if socket.has_dualstack_ipv6():
            server = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            server = socket.create_server(("", port))
    except OSError as error:
        raise InvalidArgumentError(
            f"This worker's address in TF_CONFIG, {address}, has a port that cannot be "
            f"used here ({error.strerror or error}); give it a free port."
        ) from None
    with server:
        yield


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
            return True
    except OSError:
        return False
