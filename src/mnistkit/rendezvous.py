"""Waiting for every process of a cluster, for a bounded time, before JAX connects them.

``keras.distribution.initialize`` takes no time limit: JAX waits 5 minutes for a process
that never comes, then fails with a long message. :func:`gather` comes first, on the
coordinator's own port: the chief (process 0) listens there, each other process
connects and says who it is, and the chief answers once all are there. A process that
does not come in time is named, with the address, in one line in every process that
came; the port is free again before JAX's coordinator takes it. Ctrl-C ends the wait at
once.
"""

from __future__ import annotations

import contextlib
import socket
import time

from mnistkit.errors import ClusterError

__all__ = ["gather"]

#: How often a waiting process looks at the clock (and lets Ctrl-C through), in seconds.
_TICK = 0.25
#: How much longer than its own wait a process that came waits for the chief's answer,
#: which comes at the end of the chief's wait, begun at another moment.
_GRACE = 5.0


def gather(host: str, port: int, processes: int, process_id: int, *, timeout: float) -> None:
    """Return once every process of the cluster has come to ``host:port``.

    Args:
        host: The chief's host, as the other processes reach it.
        port: The coordinator's port, on which the chief listens.
        processes: How many processes the cluster has.
        process_id: This process's id; 0 is the chief.
        timeout: Seconds to wait, in all.

    Raises:
        ClusterError: In the chief, naming the processes that did not come; in another
            process, saying the chief did not answer or which processes it missed.
    """
    if processes == 1:
        return
    deadline = time.monotonic() + timeout
    address = f"{host}:{port}"
    if process_id == 0:
        _chief(port, processes, deadline, address, timeout)
    else:
        _member(host, port, process_id, processes, deadline, address, timeout)


def _chief(port: int, processes: int, deadline: float, address: str, timeout: float) -> None:
    came: dict[int, socket.socket] = {}
    with socket.create_server(("", port)) as server:
        server.settimeout(_TICK)
        while len(came) < processes - 1 and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                connection, _ = server.accept()
                connection.settimeout(max(deadline - time.monotonic(), _TICK))
                try:
                    said = connection.recv(64).decode("ascii", "replace").split()
                except OSError:
                    connection.close()
                    continue
                known = len(said) == 3 and said[0] == "mnistkit" and said[1].isdigit()
                if known and said[2] == str(processes) and 0 < int(said[1]) < processes:
                    if int(said[1]) in came:  # a second process with that id: the first stays
                        connection.sendall(b"duplicate\n")
                        connection.close()
                        continue
                    came[int(said[1])] = connection
                else:
                    connection.sendall(f"count {processes}\n".encode())
                    connection.close()
        missing = [i for i in range(1, processes) if i not in came]
        answer = "ok" if not missing else "missing " + ",".join(map(str, missing))
        for connection in came.values():
            with contextlib.suppress(OSError):
                connection.sendall(f"{answer}\n".encode())
        for connection in came.values():  # each closes first, so the port is free at once
            with contextlib.suppress(OSError):
                connection.settimeout(2.0)
                connection.recv(8)
            connection.close()
    if missing:
        raise ClusterError(
            f"{_processes(missing)} did not join the cluster at {address} within "
            f"{timeout:g} s ({len(came) + 1} of {processes} came): start "
            f"{'it' if len(missing) == 1 else 'them'} with the same --coordinator, or "
            f"check that {'it' if len(missing) == 1 else 'they'} can reach {address}."
        )


def _member(
    host: str,
    port: int,
    process_id: int,
    processes: int,
    deadline: float,
    address: str,
    timeout: float,
) -> None:
    while True:
        try:
            connection = socket.create_connection((host, port), timeout=_TICK * 4)
            break
        except OSError:
            if time.monotonic() >= deadline:
                raise ClusterError(
                    f"Process {process_id}: the chief (process 0) did not answer at {address} "
                    f"within {timeout:g} s: start it, or check the address."
                ) from None
            time.sleep(_TICK)
    with connection:
        connection.sendall(f"mnistkit {process_id} {processes}\n".encode())
        answer = ""
        while time.monotonic() < deadline + _GRACE and not answer.endswith("\n"):
            connection.settimeout(_TICK)
            with contextlib.suppress(TimeoutError):
                received = connection.recv(64).decode("ascii", "replace")
                if not received:
                    break
                answer += received
    said = answer.split()
    if said == ["ok"]:
        return
    if said[:1] == ["missing"]:
        missing = [int(i) for i in said[1].split(",")]
        raise ClusterError(
            f"Process {process_id}: {_processes(missing).lower()} did not join the cluster "
            f"at {address} within {timeout:g} s."
        )
    if said == ["duplicate"]:
        raise ClusterError(
            f"Process {process_id}: another process joined the cluster at {address} with "
            f"--process-id {process_id} first."
        )
    if said[:1] == ["count"]:
        raise ClusterError(
            f"Process {process_id}: the chief at {address} trains with {said[1]} processes; "
            f"this one was started with --processes {processes}."
        )
    raise ClusterError(
        f"Process {process_id}: the chief at {address} did not answer within "
        f"{timeout + _GRACE:g} s."
    )


def _processes(ids: list[int]) -> str:
    if len(ids) == 1:
        return f"Process {ids[0]}"
    return f"Processes {', '.join(map(str, ids[:-1]))} and {ids[-1]}"
