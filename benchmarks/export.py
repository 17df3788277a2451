"""Measure each export format of a briefly trained deep CNN: size, accuracy, error, latency.

Run from the repository root, with ``mnistkit[onnx,tflite]`` installed::

    python benchmarks/export.py                 # 1,000 training steps, 500 timed calls
    python benchmarks/export.py --steps 300 --calls 200 --output results/export.json

The model is trained with the tutorial's recipe for ``--steps`` steps (seed 0), then
exported to each format with :func:`mnistkit.export.export_model`, which checks it on the
10,000 test images. Latency is that of one image (batch 1) through
:func:`mnistkit.export.load_export`'s callable, each runtime with its default threads:
the median of ``--calls`` calls after 20 warm-up calls. The Keras row calls the model,
softmax appended, inside a ``tf.function``. The table is printed as reStructuredText.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

FORMATS = [
    ("SavedModel", "saved_model", None, "saved_model"),
    ("TFLite float32", "tflite", None, "model.tflite"),
    ("TFLite int8", "tflite", "int8", "model-int8.tflite"),
    ("ONNX", "onnx", None, "model.onnx"),
]


def median_latency(run: Callable[[np.ndarray], Any], image: np.ndarray, calls: int) -> float:
    """Return the median seconds of ``calls`` calls of ``run`` on one image."""
    for _ in range(20):
        run(image)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        run(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cpu_name() -> str:
    """Return the CPU's model name and its AVX-512 and AMX features, from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next(
        (line.split(":", 1)[1].strip() for line in text.splitlines() if "model name" in line), ""
    )
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")),
        [],
    )
    wide = sorted(flag for flag in set(flags) if flag.startswith(("avx512", "amx")))
    return f"{name}; {' '.join(wide) or 'no AVX-512, no AMX'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--output", type=Path, default=None)
    options = parser.parse_args()

    import keras
    import tensorflow as tf

    import mnistkit
    from mnistkit.export import export_model, load_export

    mnist = mnistkit.load_dataset("mnist")
    trainer = mnistkit.Trainer("deep_cnn", seed=0)
    trainer.fit(mnist.train, steps=options.steps, verbose=0)
    model = trainer.model
    image = mnist.test.images[:1]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        keras_file = mnistkit.save_model(model, folder / "model.keras")
        probabilities = keras.Sequential([model, keras.layers.Softmax()])
        compiled = tf.function(lambda x: probabilities(x, training=False))
        keras_accuracy = trainer.evaluate(mnist.test)["accuracy"]
        rows.append(
            {
                "format": "Keras (.keras file)",
                "size_bytes": keras_file.stat().st_size,
                "accuracy": keras_accuracy,
                "max_difference": 0.0,
                "latency_s": median_latency(compiled, image, options.calls),
            }
        )
        for label, format, quantize, name in FORMATS:
            report = export_model(model, folder / name, format=format, quantize=quantize)
            run = load_export(report.path)
            rows.append(
                {
                    "format": label,
                    "size_bytes": report.size_bytes,
                    "accuracy": report.accuracy,
                    "max_difference": report.max_difference,
                    "latency_s": median_latency(run, image, options.calls),
                }
            )
    facts = {
        "cpu": cpu_name(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "mnistkit": mnistkit.__version__,
        "steps": options.steps,
        "calls": options.calls,
        "rows": rows,
    }
    print(json.dumps(facts, indent=2))
    print()
    for row in rows:
        print(
            f"   * - {row['format']}\n     - {row['size_bytes'] / 1e6:.1f} MB\n"
            f"     - {100 * row['accuracy']:.2f}%\n     - {row['max_difference']:.1e}\n"
            f"     - {1e3 * row['latency_s']:.2f} ms"
        )
    if options.output is not None:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(json.dumps(facts, indent=2))


if __name__ == "__main__":
    main()
