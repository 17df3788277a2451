"""The demo's web server: the standard library's, serving three files and one JSON endpoint."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import socket
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit.demo._predict import predict_drawing
from mnistkit.errors import DataFormatError, InvalidArgumentError
from mnistkit.layers import dropout_layers, parameter_count
from mnistkit.models import model_info

if TYPE_CHECKING:
    import keras

#: The files of the page, by the path they are served at.
PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
#: The page may load nothing and send nothing anywhere but to this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
#: The largest drawing accepted, in pixels per side.
MAX_SIDE = 2048
_MAX_BODY = 4 * MAX_SIDE * MAX_SIDE


class DemoServer(ThreadingHTTPServer):
    """The draw-a-digit web server, listening as soon as it is made.

    Call ``serve_forever()`` (in a thread, or use :func:`~mnistkit.demo.serve_demo`),
    then ``shutdown()`` and ``server_close()``; or use it in a ``with`` block.

    Args:
        model: A ``keras.Model`` from images (N, 28, 28, 1) to 10 logits.
        host: The address to listen on; ``"127.0.0.1"`` lets only this computer in.
        port: The port; 0 picks a free one (see :attr:`url`).
        samples: Dropout passes for the uncertainty of a model with dropout; 0 for none.

    Raises:
        InvalidArgumentError: If ``port`` or ``samples`` is out of range, or the address
            cannot be listened on (a port in use, a host not of this computer).

    Attributes:
        url: The page's address, such as ``http://127.0.0.1:8000/``.
        loopback: Whether it listens on a loopback address, which only this computer
            reaches; requests naming another host are then refused.
        model: The model.
        samples: The number of dropout passes.

    Example:
        >>> import json, threading, urllib.request
        >>> from mnistkit import build
        >>> with DemoServer(build("softmax"), port=0) as server:
        ...     thread = threading.Thread(target=server.serve_forever)
        ...     thread.start()
        ...     info = json.load(urllib.request.urlopen(server.url + "info"))
        ...     server.shutdown()
        ...     thread.join()
        >>> info["model"], info["dropout"], server.url.startswith("http://127.0.0.1:")
        ('softmax', False, True)
    """

    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        model: keras.Model,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        samples: int = 30,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgumentError(
                "Invalid value for argument `port`. Expected an integer from 0 to 65535. "
                f"Received: port={port!r}"
            )
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 0:
            raise InvalidArgumentError(
                "Invalid value for argument `samples`. Expected a non-negative integer. "
                f"Received: samples={samples!r}"
            )
        from mnistkit.predictor import Predictor

        self.model = model
        self.predictor = Predictor(model)
        self.samples = samples
        self.lock = threading.Lock()  # one model call at a time
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), _Handler)
        except OSError as error:
            raise InvalidArgumentError(
                f"Invalid value for argument `port`. Expected a free port on {host}. "
                f"Received: port={port} ({error.strerror or error})"
            ) from None
        bound_port = self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound_port}/"
        self.loopback = _is_loopback(host)

    def info(self) -> dict[str, Any]:
        """Return what the page shows about the model: name, size, dropout."""
        return {
            "model": str(getattr(model_info(self.model), "name", None) or self.model.name),
            "parameters": parameter_count(self.model),
            "dropout": bool(dropout_layers(self.model)),
            "samples": self.samples,
        }


class _Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if not self._host_allowed():
            return
        path = self.path.split("?", 1)[0]
        if path == "/info":
            self._send_json(HTTPStatus.OK, self.server.info())
        elif path in PAGES:
            name, kind = PAGES[path]
            body = resources.files("mnistkit.demo").joinpath("static").joinpath(name).read_bytes()
            self._send(HTTPStatus.OK, body, kind)
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"Nothing at {path}."})

    def do_POST(self) -> None:
        if not self._host_allowed():
            return
        if self.path != "/predict":
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"Nothing to post at {self.path}."})
            return
        try:
            pixels = _read_drawing(self)
            with self.server.lock:
                result = predict_drawing(self.server.predictor, pixels, samples=self.server.samples)
        except (InvalidArgumentError, DataFormatError) as error:
            self.close_connection = True  # the body may be left unread
            self._send_json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": str(error)})
        except Exception as error:
            self.close_connection = True
            traceback.print_exc(file=sys.stderr)
            self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": repr(error)})
        else:
            self._send_json(HTTPStatus.OK, result)

    def _host_allowed(self) -> bool:
        """Refuse a page of another site that reached us through its own name (DNS rebinding)."""
        if not self.server.loopback:
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host == "localhost" or _is_loopback(host):
            return True
        self._send_json(HTTPStatus.MISDIRECTED_REQUEST, {"error": "Unknown host."})
        return False

    def _send_json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the terminal quiet: requests are not logged."""


def _read_drawing(handler: BaseHTTPRequestHandler) -> np.ndarray:
    """Return the posted drawing as uint8 pixels (H, W): JSON ``width``, ``height``, ``pixels``."""
    length = int(handler.headers.get("Content-Length") or 0)
    if not 0 < length <= _MAX_BODY:
        raise InvalidArgumentError(f"Expected a drawing of 1 to {_MAX_BODY} bytes; got {length}.")
    try:
        request = json.loads(handler.rfile.read(length))
        width, height = int(request["width"]), int(request["height"])
        pixels = np.frombuffer(base64.b64decode(request["pixels"], validate=True), np.uint8)
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise InvalidArgumentError(
            "Expected JSON with `width`, `height` and base64 `pixels`, one gray byte each. "
            f"({type(error).__name__}: {error})"
        ) from None
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and pixels.size == width * height):
        raise InvalidArgumentError(
            f"Expected {width} x {height} gray pixels, at most {MAX_SIDE} a side; "
            f"got {pixels.size} bytes."
        )
    return pixels.reshape(height, width)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
