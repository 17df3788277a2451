"""Reproduce the TensorFlow MNIST tutorials with their own recipes and report the figures.

Usage::

    python examples/reproduce_tutorial.py                      # both models, seed 0
    python examples/reproduce_tutorial.py softmax --seeds 0 1 2 3 4
    python examples/reproduce_tutorial.py --json out.json

Each model trains with its default recipe (the tutorial's optimizer, learning rate,
steps and batch size) on the embedded MNIST, once per seed, then is evaluated on the
10,000 test images. Every run is printed; the script exits with status 1 if the median
accuracy of a model over its seeds misses the tutorial's figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The test accuracy each tutorial reports, which its recipe must reach.
TARGETS = {"softmax": 0.915, "deep_cnn": 0.992}


def reproduce(name: str, seed: int, log_every: int | None) -> dict[str, object]:
    """Train ``name`` with its default recipe and return its figures."""
    from mnistkit import Trainer, load_dataset

    mnist = load_dataset("mnist")
    trainer = Trainer(name, seed=seed)
    started = time.perf_counter()
    trainer.fit(mnist.train, log_every=log_every, verbose=0 if log_every is None else "auto")
    seconds = time.perf_counter() - started
    result = trainer.evaluate(mnist.test)
    return {
        "model": name,
        "recipe": trainer.recipe.as_dict(),
        "seed": seed,
        "test_accuracy": result["accuracy"],
        "test_loss": result["loss"],
        "train_seconds": round(seconds, 1),
        "target": TARGETS[name],
        "reached": result["accuracy"] >= TARGETS[name],
    }


def build_parser() -> argparse.ArgumentParser:
    """Return the parser of this script's command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="the models to train: softmax, deep_cnn, or both (the default)",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        metavar="SEED",
        help="train each model once per seed and report the median accuracy (default: 0)",
    )
    parser.add_argument(
        "--log-every",
        type=int,
        default=None,
        metavar="N",
        help="print the tutorial's 'step N, training accuracy A' line every N steps "
        "(default: print nothing while training)",
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="also write the machine and every run's figures to FILE as JSON",
    )
    return parser


def main() -> int:
    parser = build_parser()
    options = parser.parse_args()
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    print(f"Machine: {machine}")
    unknown = sorted(set(options.models) - set(TARGETS))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    results = []
    verdicts = []
    for name in options.models or list(TARGETS):
        runs = [reproduce(name, seed, options.log_every) for seed in options.seeds]
        results.extend(runs)
        for run in runs:
            print(
                f"{name} seed {run['seed']}: test accuracy {run['test_accuracy']:.4f}, "
                f"training {run['train_seconds']} s"
            )
        median = statistics.median(float(run["test_accuracy"]) for run in runs)  # type: ignore[arg-type]
        reached = median >= TARGETS[name]
        verdicts.append(reached)
        low = min(float(run["test_accuracy"]) for run in runs)  # type: ignore[arg-type]
        high = max(float(run["test_accuracy"]) for run in runs)  # type: ignore[arg-type]
        print(
            f"{name}: median {median:.4f} over {len(runs)} seed(s) (min {low:.4f}, "
            f"max {high:.4f}): {'reached' if reached else 'MISSED'} {TARGETS[name]}"
        )
    if options.json:
        with open(options.json, "w") as stream:
            json.dump({"machine": machine, "results": results}, stream, indent=2)
    return 0 if all(verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
