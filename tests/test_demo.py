"""Tests of mnistkit.demo without a browser: the predictions and the HTTP server."""

from __future__ import annotations

import base64
import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from mnistkit import DataFormatError, InvalidArgumentError, Predictor, build
from mnistkit.demo import DemoServer, predict_drawing
from mnistkit.demo._server import WORKERS


def _one(height: int = 280, width: int = 280) -> np.ndarray:
    """A "1" in black ink on a white canvas."""
    canvas = np.full((height, width), 255, np.uint8)
    canvas[height // 7 : height * 6 // 7, width // 2 - 10 : width // 2 + 10] = 0
    return canvas


def test_drawing_is_prepared_and_classified(trained_softmax: Any) -> None:
    result = predict_drawing(Predictor(trained_softmax), _one())

    assert result["digit"] == 1
    assert sum(result["probabilities"]) == pytest.approx(1.0, abs=1e-4)
    image = np.array(result["image"]).reshape(28, 28)
    assert image.max() == 255
    assert image[:, :10].max() == 0  # white-on-black, centred
    assert result["uncertainty"] is None  # softmax has no dropout


def test_dropout_passes_give_a_spread() -> None:
    model = build("deep_cnn", seed=0)
    result = predict_drawing(Predictor(model), _one(), samples=12)

    spread = result["uncertainty"]
    assert spread["samples"] == 12
    assert max(spread["std"]) > 0
    assert spread["mean"] != result["probabilities"]  # the passes ran with dropout on
    mean = np.array(spread["mean"])
    entropy = -(mean * np.log2(np.clip(mean, 1e-12, 1))).sum()
    assert spread["entropy_bits"] == pytest.approx(entropy, abs=1e-4)
    assert predict_drawing(Predictor(model), _one(), samples=0)["uncertainty"] is None


def test_mc_dropout_differs_between_passes() -> None:
    predictor = Predictor(build("deep_cnn", seed=0))
    passes = predictor.sample(np.full((1, 28, 28, 1), 0.5, np.float32), samples=6)

    assert passes.shape == (6, 1, 10)
    assert np.ptp(passes, axis=0).max() > 0


def test_blank_drawing_is_refused() -> None:
    with pytest.raises(DataFormatError, match="holds no digit"):
        predict_drawing(Predictor(build("softmax")), np.full((50, 50), 255, np.uint8))


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    demo = DemoServer(build("deep_cnn", seed=0), port=0, samples=5)
    thread = threading.Thread(target=demo.serve_forever, daemon=True)
    thread.start()
    yield demo
    demo.shutdown()
    demo.server_close()


def _get(url: str, host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _post(url: str, payload: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url + "predict", data=payload, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def _drawing(pixels: np.ndarray) -> bytes:
    height, width = pixels.shape
    encoded = base64.b64encode(pixels.astype(np.uint8).tobytes()).decode()
    return json.dumps({"width": width, "height": height, "pixels": encoded}).encode()


def test_server_listens_on_loopback_by_default(server: DemoServer) -> None:
    assert server.url.startswith("http://127.0.0.1:")
    assert server.server_address[0] == "127.0.0.1"


def test_page_and_its_files_forbid_outside_requests(server: DemoServer) -> None:
    for path, kind in [("", "text/html"), ("app.js", "text/javascript"), ("style.css", "text/css")]:
        status, headers, body = _get(server.url + path)
        assert status == 200
        assert headers["Content-Type"].startswith(kind)
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert b"http://" not in body
        assert b"https://" not in body


def test_info_describes_the_model(server: DemoServer) -> None:
    status, _, body = _get(server.url + "info")

    assert status == 200
    assert json.loads(body) == {
        "model": "deep_cnn",
        "parameters": 3_274_634,
        "dropout": True,
        "samples": 5,
    }


def test_drawing_posted_is_answered(server: DemoServer) -> None:
    status, answer = _post(server.url, _drawing(_one(200, 150)))

    assert status == 200
    assert set(answer) == {"digit", "probabilities", "image", "uncertainty"}
    assert answer["uncertainty"]["samples"] == 5


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_drawing(np.full((40, 40), 255)), "holds no digit"),
        (b"not json", "Expected JSON with `width`, `height` and base64 `pixels`"),
        (json.dumps({"width": 3, "height": 3, "pixels": "AAAA"}).encode(), "Expected 3 x 3"),
        (json.dumps({"width": 3, "height": 3, "pixels": "!!"}).encode(), "base64 `pixels`"),
    ],
)
def test_bad_drawing_is_answered_with_422(server: DemoServer, payload: bytes, message: str) -> None:
    status, answer = _post(server.url, payload)

    assert status == 422
    assert message in answer["error"]


def test_unknown_path_is_404_and_foreign_host_is_refused(server: DemoServer) -> None:
    assert _get(server.url + "secrets")[0] == 404
    assert _get(server.url + "info", host="attacker.example")[0] == 421
    assert _get(server.url + "info", host=f"localhost:{server.server_address[1]}")[0] == 200


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"port": 70000}, r"argument `port`\. Expected an integer from 0 to 65535"),
        ({"port": True}, r"argument `port`"),
        ({"samples": -1}, r"argument `samples`\. Expected a non-negative integer"),
    ],
)
def test_bad_server_settings_are_refused(options: dict[str, Any], pattern: str) -> None:
    with pytest.raises(InvalidArgumentError, match=pattern):
        DemoServer(build("softmax"), **options)


def test_port_in_use_is_named(server: DemoServer) -> None:
    port = server.server_address[1]

    with pytest.raises(
        InvalidArgumentError, match=rf"Expected a free port on 127\.0\.0\.1.*port={port}"
    ):
        DemoServer(build("softmax"), port=port)


def test_host_not_of_this_computer_is_named() -> None:
    with pytest.raises(InvalidArgumentError, match=r"argument `host`.*host='8\.8\.8\.8'"):
        DemoServer(build("softmax"), host="8.8.8.8", port=0)


def _exchange(address: tuple[str, int], raw: bytes, *, timeout: float = 30) -> bytes:
    """Send a raw request and return all the server answers until it closes."""
    with socket.create_connection(address, timeout=timeout) as client:
        client.sendall(raw)
        return _read_all(client)


def _read_all(client: socket.socket) -> bytes:
    answer = b""
    while chunk := client.recv(65536):
        answer += chunk
    return answer


def _json_post(body: bytes, *, kind: str = "application/json", length: str | None = None) -> bytes:
    size = str(len(body)) if length is None else length
    head = (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\n"
        f"Content-Length: {size}\r\n\r\n"
    )
    return head.encode() + body


_MALFORMED = {
    "length not a number": (_json_post(b"{}", length="abc"), 400),
    "length too large": (_json_post(b"", length="20000000"), 413),
    "no length": (
        b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\r\n",
        411,
    ),
    "json nested deep": (_json_post(b"[" * 200_000), 422),
    "width overflows": (_json_post(b'{"width": 1e400, "height": 3, "pixels": "AAAA"}'), 422),
    "text content type": (_json_post(b"{}", kind="text/plain"), 415),
    "bad request line": (b"NONSENSE\r\n\r\n", 400),
    "unknown method": (b"DELETE /info HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 501),
}


@pytest.mark.parametrize(("raw", "status"), list(_MALFORMED.values()), ids=list(_MALFORMED))
def test_malformed_request_is_a_4xx_with_one_line_json_and_one_log_line(
    server: DemoServer, capfd: pytest.CaptureFixture[str], raw: bytes, status: int
) -> None:
    answer = _exchange(server.server_address, raw)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == str(status).encode()
    assert b"\n" not in body
    assert json.loads(body)["error"]
    logged = capfd.readouterr().err
    assert len(logged.splitlines()) == 1
    assert f" {status} " in logged


def test_two_hundred_concurrent_connections_are_all_answered() -> None:
    demo = DemoServer(build("softmax"), port=0)
    thread = threading.Thread(target=demo.serve_forever, daemon=True)
    clients = [socket.socket() for _ in range(200)]
    try:
        for client in clients:
            client.setblocking(False)
            client.connect_ex(demo.server_address)
        # Before the server accepts any, the listen backlog must hold them all.
        waiting = set(clients)
        deadline = time.monotonic() + 3
        while waiting and time.monotonic() < deadline:
            _, ready, _ = select.select([], list(waiting), [], 0.2)
            waiting -= set(ready)
        assert not waiting, f"{len(waiting)} of 200 connections not taken in"
        thread.start()
        request = b"GET /info HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        for client in clients:
            client.setblocking(True)
            client.settimeout(30)
            client.sendall(request)
        statuses = [_read_all(client).split(b" ", 2)[1] for client in clients]
    finally:
        for client in clients:
            client.close()
        if thread.is_alive():
            demo.shutdown()
        demo.server_close()
    assert statuses == [b"200"] * 200


def test_stalled_clients_hold_a_bounded_pool_and_are_timed_out() -> None:
    demo = DemoServer(build("softmax"), port=0, timeout=0.5)
    thread = threading.Thread(target=demo.serve_forever, daemon=True)
    thread.start()
    before = threading.active_count()
    stalled = [socket.create_connection(demo.server_address, timeout=10) for _ in range(40)]
    try:
        for client in stalled[::2]:  # half promise a body and stall; half say nothing
            client.sendall(_json_post(b"", length="100"))
        time.sleep(0.3)
        threads = threading.active_count() - before
        answers = [_read_all(client) for client in stalled]
        status, _, _ = _get(demo.url + "info")
    finally:
        for client in stalled:
            client.close()
        demo.shutdown()
        demo.server_close()
    assert threads <= WORKERS
    assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers[::2])
    assert all(answer == b"" for answer in answers[1::2])
    assert status == 200


@pytest.mark.slow
@pytest.mark.usefixtures("default_sigint")
def test_serve_demo_says_where_and_stops_cleanly_on_ctrl_c() -> None:
    code = (
        "from mnistkit import build\n"
        "from mnistkit.demo import serve_demo\n"
        "serve_demo(build('softmax'), port=0)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "Serving the mnistkit demo at http://127.0.0.1:" in first
        assert "only this computer can open it" in first
        port = int(first.split("http://127.0.0.1:")[1].split("/")[0])
        with socket.create_connection(("127.0.0.1", port), timeout=10):
            pass
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0
    assert stderr.rstrip().endswith("Stopped.")
    assert "Traceback" not in stderr
