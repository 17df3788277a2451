"""The converters: a Keras model to a SavedModel folder, a TFLite file or an ONNX file.

Each writer takes the probability model that :func:`probability_model` makes, so every
format has the same input (``image``, float32 (N, 28, 28, 1)) and output
(``probabilities``, float32 (N, 10)); only int8 TFLite quantizes both ends.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit._extras import require

if TYPE_CHECKING:
    import keras

#: The name of the input of every exported model.
INPUT_NAME = "image"
#: The name of the output of every exported model.
OUTPUT_NAME = "probabilities"
#: The signature TF Serving and the TFLite converter read.
SIGNATURE = "serving_default"


def probability_model(model: keras.Model) -> keras.Model:
    """Return a float32 model from ``image`` to ``probabilities`` around ``model``.

    A softmax is appended to a model that outputs logits (as :func:`~mnistkit.build`'s
    do unless told otherwise; a model built by hand is taken to output logits unless its
    last layer is a softmax). The model is first copied for inference only: with float32
    computations (ONNX and TFLite want one precision) and without its
    :class:`~mnistkit.KeepProbDropout` layers, which drop nothing in inference but keep
    a switch for Monte-Carlo dropout that no runtime needs.
    """
    import keras

    from mnistkit.models import model_info

    info = model_info(model)
    inner = _inference_copy(model)
    image = keras.Input((28, 28, 1), dtype="float32", name=INPUT_NAME)
    output = inner(image, training=False)
    logits = info.from_logits if info is not None else not _ends_in_softmax(inner)
    if logits:
        output = keras.layers.Softmax(name=OUTPUT_NAME)(output)
    return keras.Model(image, output, name=f"{model.name}_probabilities")


def write_saved_model(model: keras.Model, folder: Path) -> None:
    """Write ``model`` as a SavedModel whose ``serving_default`` signature names its ends."""
    import keras
    import tensorflow as tf

    # No archive.track(model): the endpoint tracks the variables it uses, and tracking the
    # model as well stores every weight twice (Keras 3.15, keras-team/keras#23553).
    archive = keras.export.ExportArchive()

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_NAME: model(image, training=False)}

    spec = tf.TensorSpec((None, 28, 28, 1), tf.float32, name=INPUT_NAME)
    archive.add_endpoint(name=SIGNATURE, fn=serve, input_signature=[spec])
    with _quiet():
        archive.write_out(str(folder), verbose=False)


def write_tflite(model: keras.Model, path: Path, *, calibration: np.ndarray | None) -> None:
    """Write ``model`` as a TFLite file: float32, or int8 throughout with ``calibration``.

    The model is converted from a SavedModel written aside. With calibration images,
    every tensor is int8, the input and output included (full-integer quantization, as
    integer-only accelerators need).
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as scratch:
        write_saved_model(model, Path(scratch))
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[SIGNATURE])
        if calibration is not None:
            images = calibration

            def representative() -> Iterator[dict[str, np.ndarray]]:
                for image in images:
                    yield {INPUT_NAME: image[np.newaxis]}

            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
        with _quiet(), warnings.catch_warnings():
            # Calibration runs TensorFlow's own, deprecated, interpreter: not ours to change.
            warnings.filterwarnings("ignore", message=r"(?s).*tf\.lite\.Interpreter is deprecated")
            payload = converter.convert()
    path.write_bytes(payload)


def write_onnx(model: keras.Model, path: Path) -> None:
    """Write ``model`` as ONNX with Keras's exporter (tf2onnx underneath), ends renamed."""
    require("tf2onnx", extra="onnx", purpose="Exporting to ONNX")
    onnx = require("onnx", extra="onnx", purpose="Exporting to ONNX")
    import tensorflow as tf

    spec = tf.TensorSpec((None, 28, 28, 1), tf.float32, name=INPUT_NAME)
    with _quiet(), warnings.catch_warnings():
        # Keras's patch of tf2onnx for NumPy 2 probes np.object, which NumPy warns about.
        warnings.filterwarnings("ignore", message=r"(?s).*np\.object", category=FutureWarning)
        model.export(str(path), format="onnx", verbose=False, input_signature=[spec])
    proto = onnx.load(str(path))
    _rename_output(proto.graph, OUTPUT_NAME)
    proto.doc_string = "mnistkit: 28x28 digit images in [0, 1] to 10 class probabilities"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _rename_output(graph: Any, name: str) -> None:
    old = graph.output[0].name
    for node in graph.node:
        node.input[:] = [name if value == old else value for value in node.input]
        node.output[:] = [name if value == old else value for value in node.output]
    graph.output[0].name = name


def _ends_in_softmax(model: keras.Model) -> bool:
    import keras

    last = model.layers[-1] if model.layers else None
    if isinstance(last, keras.layers.Softmax):
        return True
    activation = getattr(last, "activation", None)
    return activation is keras.activations.softmax


def _inference_copy(model: keras.Model) -> keras.Model:
    config = _inference_config(model.get_config())
    copy = model.__class__.from_config(config)
    # Matched by path: the copy lacks the dropout layers' own weights (keep_prob, sampling).
    values = {variable.path: variable for variable in model.weights}
    for variable in copy.weights:
        variable.assign(values[variable.path])
    return copy


def _inference_config(config: Any) -> Any:
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy":
            return "float32"
        if config.get("registered_name") == "mnistkit>KeepProbDropout":
            return {
                **config,
                "module": "keras.layers",
                "class_name": "Identity",
                "registered_name": None,
                "config": {"name": config["config"]["name"], "trainable": False},
            }
        return {key: _inference_config(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_inference_config(value) for value in config]
    return config


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Hold back the converters' chatter: Python prints and INFO logs."""
    loggers = [logging.getLogger(name) for name in ("tf2onnx", "absl", "tensorflow")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
