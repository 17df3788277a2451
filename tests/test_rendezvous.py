"""The wait for every process of a cluster: bounded, and naming who did not come."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from mnistkit import ClusterError
from mnistkit.cluster import check_address
from mnistkit.errors import InvalidArgumentError
from mnistkit.rendezvous import gather


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def gather_in_threads(port: int, processes: int, ids: list[Any], timeout: float) -> dict[Any, Any]:
    """Run gather() for each (id, count) in ``ids`` in a thread; return what each raised."""
    outcomes: dict[Any, Any] = {}

    def one(process_id: int, count: int) -> None:
        try:
            gather("127.0.0.1", port, count, process_id, timeout=timeout)
            outcomes[(process_id, count)] = None
        except ClusterError as error:
            outcomes[(process_id, count)] = error

    threads = [threading.Thread(target=one, args=pair) for pair in ids]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout + 10)
    return outcomes


def test_every_process_passes_once_all_have_come_and_the_port_is_free_again() -> None:
    port = free_port()
    outcomes = gather_in_threads(port, 3, [(0, 3), (1, 3), (2, 3)], timeout=10)
    assert outcomes == {(0, 3): None, (1, 3): None, (2, 3): None}
    with socket.create_server(("", port)):  # what JAX's coordinator does next
        pass


def test_a_process_that_never_comes_is_named_with_the_address_in_bounded_time() -> None:
    port = free_port()
    started = time.monotonic()
    outcomes = gather_in_threads(port, 3, [(0, 3), (1, 3)], timeout=1.5)
    assert time.monotonic() - started < 10
    address = f"127.0.0.1:{port}"
    assert str(outcomes[(0, 3)]) == (
        f"Process 2 did not join the cluster at {address} within 1.5 s (2 of 3 came): start "
        f"it with the same --coordinator, or check that it can reach {address}."
    )
    assert str(outcomes[(1, 3)]) == (
        f"Process 1: process 2 did not join the cluster at {address} within 1.5 s."
    )


def test_a_process_without_its_chief_stops_naming_the_address() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(ClusterError) as caught:
        gather("127.0.0.1", port, 2, 1, timeout=1)
    assert time.monotonic() - started < 5
    assert str(caught.value) == (
        f"Process 1: the chief (process 0) did not answer at 127.0.0.1:{port} within 1 s: "
        "start it, or check the address."
    )


def test_a_process_started_with_another_count_is_told_the_chiefs() -> None:
    port = free_port()
    outcomes = gather_in_threads(port, 2, [(0, 2), (1, 3)], timeout=1.5)
    assert "this one was started with --processes 3" in str(outcomes[(1, 3)])
    assert "Process 1 did not join" in str(outcomes[(0, 2)])


@pytest.mark.parametrize("address", ["localhost", "host:", ":80", "h:0", "h:65536", "h:x", 8476])
def test_an_address_that_is_not_host_port_is_refused(address: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="Expected an address HOST:PORT"):
        check_address(address)
