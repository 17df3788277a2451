"""Train a registered model and write the weight set that mnistkit ships for it.

From the root of mnistkit's source tree, with mnistkit installed (``pip install -e .``)::

    python tools/make_weights.py deep_cnn --recipe fast --seed 0 --deterministic
    python tools/make_weights.py softmax --seed 0 --deterministic

Each run trains on the MNIST training split with the model's recipe, measures the test
accuracy of the weights exactly as they will be stored (rounded to float16 by default),
and writes ``src/mnistkit/data/weights/MODEL-NAME.npz`` with its ``.json`` metadata
(accuracy, recipe, seed, this command, versions, SHA-256, licence). The command recorded
in the metadata reproduces the files; ``--deterministic`` makes the training repeatable
bit for bit on the same kind of CPU.

A plugin's model trains the same way, once its distribution is installed, with
``--output`` pointing into the plugin's own package.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "src" / "mnistkit" / "data" / "weights"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a registered model name, such as deep_cnn")
    parser.add_argument("--recipe", help="the model's recipe (default: its default one)")
    parser.add_argument("--seed", type=int, default=0, help="the training seed (default 0)")
    parser.add_argument(
        "--deterministic", action="store_true", help="TensorFlow op determinism (slower)"
    )
    parser.add_argument("--name", default="mnist", help="the weight set's name (default mnist)")
    parser.add_argument(
        "--dtype", choices=("float16", "float32"), default="float16", help="storage type"
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="the folder to write into"
    )
    return parser.parse_args(argv)


def command_of(args: argparse.Namespace) -> str:
    """The command that reproduces the weights: every setting that changes them."""
    words = ["python", "tools/make_weights.py", args.model]
    if args.recipe:
        words += ["--recipe", args.recipe]
    words += ["--seed", str(args.seed)]
    if args.deterministic:
        words.append("--deterministic")
    if args.name != "mnist":
        words += ["--name", args.name]
    if args.dtype != "float16":
        words += ["--dtype", args.dtype]
    return shlex.join(words)


def processor() -> str:
    """The CPU, its core count and the instruction sets that matter for bfloat16."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    features = [f for f in ("amx_bf16", "avx512_bf16", "avx512f") if f in flags]
    return f"{name}, {os.cpu_count()} cores" + (f" ({', '.join(features)})" if features else "")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from mnistkit import Predictor, Trainer, build, load_dataset
    from mnistkit.layers import parameters
    from mnistkit.weights import MNIST_LICENSE, write_weights

    data = load_dataset("mnist")
    trainer = Trainer(
        args.model, recipe=args.recipe, seed=args.seed, deterministic=args.deterministic
    )
    print(f"Training {args.model}: {trainer.recipe.describe()}, seed {args.seed}", flush=True)
    trainer.fit(data.train, verbose=2)

    # Measure what will be shipped, in a model built as `build(name, weights=...)` builds
    # it (float32): the arrays rounded to the storage type, and, to compare, unrounded.
    metadata: dict[str, Any] = trainer.metadata
    stored = build(args.model, recipe=trainer.recipe)
    for target, source in zip(parameters(stored), parameters(trainer.model), strict=True):
        target.assign(source)
    float32_accuracy = Predictor(stored).evaluate(data.test)["accuracy"]
    for target, source in zip(parameters(stored), parameters(trainer.model), strict=True):
        target.assign(np.asarray(source).astype(args.dtype))
    result = Predictor(stored).evaluate(data.test)
    errors = round((1.0 - result["accuracy"]) * result["examples"])

    path = args.output / f"{args.model}-{args.name}.npz"
    meta = {
        **{key: metadata[key] for key in ("model", "output", "recipe", "seed", "deterministic")},
        **{key: metadata[key] for key in ("steps", "batch_size", "data_checksum", "versions")},
        "weights": args.name,
        "dataset": "mnist",
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "test_examples": result["examples"],
        "test_errors": errors,
        "float32_test_accuracy": float32_accuracy,
        "command": command_of(args),
        "license": MNIST_LICENSE,
        "trained_on": f"{processor()}, {platform.system()}, {trainer.recipe.precision}",
        "created": datetime.date.today().isoformat(),
    }
    written = write_weights(stored, path, meta=meta, dtype=args.dtype)
    with np.load(path, allow_pickle=False) as archive:
        reread = [archive[key] for key in sorted(archive.files)]
    expected = [w.numpy().astype(args.dtype) for w in stored.weights]
    if not all(np.array_equal(a, b) for a, b in zip(reread, expected, strict=True)):
        raise SystemExit(f"{path}: the arrays read back differ from those measured.")
    print(
        f"Test accuracy {result['accuracy']:.4f} ({errors} errors in {result['examples']:,}) "
        f"as stored in {args.dtype}; {float32_accuracy:.4f} in float32.\n"
        f"Wrote {path} ({written['size_bytes']:,} bytes) and "
        f"{path.with_suffix('.json').name}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
