"""The demo's web server: the standard library's, serving three files and one JSON endpoint.

It is bounded against load and bad requests: a listen backlog that holds a burst of
connections, a fixed pool of worker threads (connections beyond it wait their turn, and
beyond a queue of ``MAX_WAITING`` are answered 503), a read timeout on every
connection, and a 4xx answer with a one-line JSON error, logged on one line, for every
request it cannot serve.
"""

from __future__ import annotations

import base64
import binascii
import errno
import ipaddress
import json
import math
import socket
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
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
#: The largest request body accepted, in bytes: a drawing of MAX_SIDE a side, in base64 JSON.
MAX_BODY = 6 * MAX_SIDE * MAX_SIDE // 4 + 1024
#: The threads that serve connections; more connections wait for one to be free.
WORKERS = 16
#: The connections that may wait for a worker; more are answered 503 at once.
MAX_WAITING = 256
#: The default seconds a connection may stay silent, idle or within a request.
REQUEST_TIMEOUT = 10.0


class DemoServer(HTTPServer):
    """The draw-a-digit web server, listening as soon as it is made.

    Call ``serve_forever()`` (in a thread, or use :func:`~mnistkit.demo.serve_demo`),
    then ``shutdown()`` and ``server_close()``; or use it in a ``with`` block.

    Connections are served by a pool of 16 threads; up to 256 more wait their turn,
    and any beyond are answered 503. A
    connection silent for ``timeout`` seconds, idle or in the middle of a request, is
    closed. A request the server cannot serve (a bad header, a body too large, not
    JSON, the wrong content type) is answered with a 4xx status and a one-line JSON
    ``error``, and logged on one line to stderr.

    Args:
        model: A ``keras.Model`` from images (N, 28, 28, 1) to 10 logits.
        host: The address to listen on; ``"127.0.0.1"`` lets only this computer in.
        port: The port; 0 picks a free one (see :attr:`url`).
        samples: Dropout passes for the uncertainty of a model with dropout; 0 for none.
        timeout: Seconds a connection may stay silent before it is closed.

    Raises:
        InvalidArgumentError: If ``port``, ``samples`` or ``timeout`` is out of range,
            or the address cannot be listened on (a port in use, a host not of this
            computer).

    Attributes:
        url: The page's address, such as ``http://127.0.0.1:8000/``.
        loopback: Whether it listens on a loopback address, which only this computer
            reaches; requests naming another host are then refused.
        model: The model.
        samples: The number of dropout passes.
        request_timeout: The seconds a connection may stay silent (``timeout``).

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

    .. versionchanged:: 0.3.0
       A bounded pool of threads, a listen backlog of 256, ``timeout``, and 4xx
       answers to malformed requests.
    """

    request_queue_size = MAX_WAITING

    def __init__(
        self,
        model: keras.Model,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        samples: int = 30,
        timeout: float = REQUEST_TIMEOUT,
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
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout < math.inf
        ):
            raise InvalidArgumentError(
                "Invalid value for argument `timeout`. Expected a positive number of seconds. "
                f"Received: timeout={timeout!r}"
            )
        from mnistkit.predictor import Predictor

        self.model = model
        self.predictor = Predictor(model)
        self.samples = samples
        self.request_timeout = float(timeout)
        self.lock = threading.Lock()  # one model call at a time
        self._slots = threading.BoundedSemaphore(WORKERS + MAX_WAITING)
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="mnistkit-demo")
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), _Handler)
        except OSError as error:
            self._pool.shutdown(wait=False)
            raise _bind_error(error, host, port) from None
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

    def process_request(self, request: Any, client_address: Any) -> None:
        """Hand the connection to a worker, or answer 503 if too many already wait."""
        if not self._slots.acquire(blocking=False):
            _refuse_busy(request)
            self.shutdown_request(request)
            return
        try:
            self._pool.submit(self._serve_connection, request, client_address)
        except RuntimeError:  # the pool is shut down: the server is closing
            self._slots.release()
            self.shutdown_request(request)

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a connection's failure on one line: a client gone or silent is no bug."""
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            return
        print(f"{client_address[0]} - error: {error!r}", file=sys.stderr, flush=True)

    def server_close(self) -> None:
        """Stop listening, and stop the workers once their connections are served."""
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Handler(BaseHTTPRequestHandler):
    server: DemoServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.request_timeout)

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
            self.send_error(HTTPStatus.NOT_FOUND, f"Nothing to post at {self.path}.")
            return
        try:
            body = _read_body(self)
        except _RequestError as error:
            self.send_error(error.status, str(error))
            return
        except TimeoutError:
            self.send_error(HTTPStatus.REQUEST_TIMEOUT, "The request body did not arrive in time.")
            return
        try:
            pixels = _parse_drawing(body)
            with self.server.lock:
                result = predict_drawing(self.server.predictor, pixels, samples=self.server.samples)
        except (InvalidArgumentError, DataFormatError) as error:
            self.send_error(HTTPStatus.UNPROCESSABLE_ENTITY, str(error))
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            self.send_error(HTTPStatus.INTERNAL_SERVER_ERROR, repr(error))
        else:
            self._send_json(HTTPStatus.OK, result)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer with a JSON ``error`` (not the standard HTML page), log it, and close."""
        status = HTTPStatus(code)
        text = " ".join((message or status.phrase).split())  # one line
        self.log_error("%d %s", status.value, text)
        self.close_connection = True  # the rest of the request may be unread
        if self.request_version == "HTTP/0.9":  # a request line not understood: answer 1.1
            self.request_version = "HTTP/1.1"
        self._send_json(status, {"error": text})

    def _host_allowed(self) -> bool:
        """Refuse a page of another site that reached us through its own name (DNS rebinding)."""
        if not self.server.loopback:
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]")
        if host == "localhost" or _is_loopback(host):
            return True
        self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "Unknown host.")
        return False

    def _send_json(self, status: HTTPStatus, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send(self, status: HTTPStatus, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Keep the terminal quiet: requests served are not logged, only errors."""


class _RequestError(Exception):
    """A request the server refuses before reading its drawing, with the status to answer."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """Return the body of a JSON POST, refusing a wrong type, length or encoding first."""
    if _media_type(handler.headers.get("Content-Type")) != "application/json":
        raise _RequestError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "Invalid value for header `Content-Type`. Expected application/json. "
            f"Received: {handler.headers.get('Content-Type')!r}",
        )
    if handler.headers.get("Transfer-Encoding"):
        raise _RequestError(
            HTTPStatus.LENGTH_REQUIRED,
            "Expected a body with a `Content-Length` header, not a `Transfer-Encoding`.",
        )
    text = handler.headers.get("Content-Length")
    if text is None:
        raise _RequestError(HTTPStatus.LENGTH_REQUIRED, "Expected a `Content-Length` header.")
    if not text.strip().isdigit():
        raise _RequestError(
            HTTPStatus.BAD_REQUEST,
            "Invalid value for header `Content-Length`. Expected a number of bytes. "
            f"Received: {text[:40]!r}",
        )
    length = int(text)
    if not 0 < length <= MAX_BODY:
        status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if length else HTTPStatus.BAD_REQUEST
        raise _RequestError(status, f"Expected a drawing of 1 to {MAX_BODY} bytes; got {length}.")
    return handler.rfile.read(length)


def _media_type(header: str | None) -> str:
    message = Message()
    message["Content-Type"] = header or ""
    return message.get_content_type() if header else ""


def _parse_drawing(body: bytes) -> np.ndarray:
    """Return a posted drawing as uint8 pixels (H, W): JSON ``width``, ``height``, ``pixels``."""
    try:
        request = json.loads(body)
        width, height = request["width"], request["height"]
        pixels = np.frombuffer(base64.b64decode(request["pixels"], validate=True), np.uint8)
    except (ValueError, KeyError, TypeError, binascii.Error, RecursionError) as error:
        raise InvalidArgumentError(
            "Expected JSON with `width`, `height` and base64 `pixels`, one gray byte each. "
            f"({type(error).__name__}: {error})"
        ) from None
    if not all(type(side) is int for side in (width, height)):
        raise InvalidArgumentError(
            "Expected `width` and `height` as integers. "
            f"Received: width={str(width)[:20]}, height={str(height)[:20]}"
        )
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE and pixels.size == width * height):
        raise InvalidArgumentError(
            f"Expected {width} x {height} gray pixels, at most {MAX_SIDE} a side; "
            f"got {pixels.size} bytes."
        )
    return pixels.reshape(height, width)


def _refuse_busy(request: socket.socket) -> None:
    """Answer 503 on a connection no worker can take, without waiting on the client."""
    body = json.dumps({"error": "The server is busy; try again in a moment."}).encode()
    head = (
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
    )
    try:
        request.settimeout(1.0)
        request.sendall(head.encode() + body)
    except OSError:
        pass


def _bind_error(error: OSError, host: str, port: int) -> InvalidArgumentError:
    """Name the setting at fault when the address cannot be listened on."""
    reason = error.strerror or str(error)
    if error.errno in (errno.EADDRINUSE, errno.EACCES):
        return InvalidArgumentError(
            f"Invalid value for argument `port`. Expected a free port on {host}. "
            f"Received: port={port} ({reason})"
        )
    return InvalidArgumentError(
        "Invalid value for argument `host`. Expected an address of this computer, such as "
        f"127.0.0.1 or 0.0.0.0. Received: host={host!r} ({reason})"
    )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
