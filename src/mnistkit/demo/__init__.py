"""A draw-a-digit web page for a trained model, served from this computer.

The page is three small files served by Python's own :mod:`http.server`: a canvas to
draw on with a mouse, a finger or a pen, the predicted class, the ten probabilities as
bars, the 28x28 image the model saw after MNIST's preprocessing
(:func:`~mnistkit.images.prepare_image`), and, for a model with dropout, how much
Monte-Carlo dropout passes agree. It loads nothing from elsewhere (no fonts, scripts or
analytics; its Content-Security-Policy forbids them), so it works offline.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from mnistkit.demo._predict import predict_drawing
from mnistkit.demo._server import DemoServer

if TYPE_CHECKING:
    import keras

__all__ = ["DemoServer", "predict_drawing", "serve_demo"]


def serve_demo(
    model: keras.Model | str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    samples: int = 30,
) -> None:
    """Serve the draw-a-digit page until Ctrl-C.

    It prints the page's address, and whether other computers can reach it, then
    serves until interrupted; Ctrl-C stops it cleanly and the function returns.

    Args:
        model: A ``keras.Model`` from images (N, 28, 28, 1) to 10 logits, or the path
            of a ``.keras`` file.
        host: The address to listen on. The default, ``127.0.0.1``, lets only this
            computer in; ``0.0.0.0`` lets in every computer that reaches this one.
        port: The port; 0 picks a free one.
        samples: Dropout passes for the uncertainty of a model with dropout; 0 for none.

    Raises:
        InvalidArgumentError: If a setting is out of range or the port is taken.
        DataNotFoundError: If a model file does not exist.

    Example:
        Serve a saved model on another port (this blocks until Ctrl-C)::

            from mnistkit.demo import serve_demo
            serve_demo("deep_cnn.keras", port=8080)
    """
    if isinstance(model, (str, os.PathLike)):
        from mnistkit.saving import load_model

        model = load_model(model, compile=False)
    server = DemoServer(model, host=host, port=port, samples=samples)
    reach = (
        "only this computer can open it"
        if server.loopback
        else "other computers on the network can open it too"
    )
    try:  # from the first line on, a Ctrl-C stops the demo cleanly
        print(f"Serving the mnistkit demo at {server.url} ({reach}).", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr, flush=True)
    finally:
        server.server_close()
