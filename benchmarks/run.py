"""Benchmarks: mnistkit's Trainer against plain Keras, and the figures users feel.

Run from the repository root, with mnistkit installed::

    python benchmarks/run.py                  # throughput pairs, load, predict, CLI start-up
    python benchmarks/run.py --rounds 5       # more pairs, a steadier median
    python benchmarks/run.py --time-to-accuracy    # also train the recipes to the end
    python benchmarks/run.py --rounds 0 --time-to-accuracy --seeds 0 1 2 3 4
                         # the fast CNN recipe on five seeds, against plain Keras's
                         # time on the tutorial's recipe, measured back to back
    python benchmarks/run.py --rounds 0 --efficiency
                         # the CNN's training step against the CPU's estimated peak
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/run.py --rounds 0 --efficiency
                         # the same as a CPU with AVX2 only would run it
    python benchmarks/run.py --backends tensorflow jax torch --rounds 3
                         # instead: plain Keras training the deep CNN on each Keras
                         # backend, float32 and bfloat16, batches of 50 and 256, as an
                         # RST table for docs/scaling.rst

Training is measured in separate processes, alternating mnistkit and plain Keras on the
same model, data, batch size and number of steps; the ratio reported is the median of
the per-round ratios (mnistkit / Keras examples per second), since these machines are
shared and absolute times drift. Both sides run pinned to the same CPU (``--cpus 0``):
on a shared two-core machine a process's second core comes and goes, which swings a
single run by half; ``--cpus all`` measures on every core. The table is printed and
the figures are written as JSON (``benchmarks/results/latest.json`` unless
``--output`` says otherwise).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKERS = HERE / "workers.py"

#: The Keras backends --backends can compare, by the name KERAS_BACKEND takes.
BACKENDS = ["tensorflow", "jax", "torch"]

#: The throughput comparisons: the tutorial's batch sizes, on a fixed number of examples.
PAIRS = {
    "softmax": {"epochs": 2, "batch_size": 100, "examples": 55_000},
    "deep_cnn": {"epochs": 1, "batch_size": 50, "examples": 10_000},
}


def work(
    task: str, *, backend: str | None = None, strict: bool = True, **options: Any
) -> dict[str, Any]:
    """Run one measurement in a fresh process and return its JSON result.

    ``backend`` sets ``KERAS_BACKEND`` for it. A failed worker stops the benchmark, or,
    with ``strict=False``, answers ``{"error": its last line of output}``.
    """
    command = [sys.executable, str(WORKERS), task]
    for key, value in options.items():
        if value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if backend:
        environment["KERAS_BACKEND"] = backend
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        if not strict:
            return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
        raise SystemExit(f"benchmark worker failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def throughput(rounds: int, precision: str, cpus: str, models: list[str]) -> dict[str, Any]:
    """Alternate mnistkit and plain Keras on each model; return rounds and median ratios."""
    results: dict[str, Any] = {}
    if rounds <= 0:
        return results
    for model in models:
        settings = PAIRS[model]
        pairs = []
        for round_index in range(rounds):
            order = ("mnistkit", "keras") if round_index % 2 == 0 else ("keras", "mnistkit")
            measured = {
                side: work(side, model=model, precision=precision, cpus=cpus, **settings)
                for side in order
            }
            ratio = (
                measured["mnistkit"]["examples_per_second"]
                / measured["keras"]["examples_per_second"]
            )
            pairs.append({**measured, "ratio": round(ratio, 3)})
            print(
                f"  {model} round {round_index + 1}: mnistkit "
                f"{measured['mnistkit']['examples_per_second']:.0f}/s, keras "
                f"{measured['keras']['examples_per_second']:.0f}/s, ratio {ratio:.3f}",
                flush=True,
            )
        results[model] = {
            "settings": {**settings, "precision": precision, "cpus": cpus},
            "rounds": pairs,
            "median_ratio": round(statistics.median(p["ratio"] for p in pairs), 3),
        }
    return results


def efficiency(batch_sizes: list[int], precisions: list[str]) -> dict[str, Any]:
    """The deep CNN's training step against the machine's estimated peak, per precision."""
    results: dict[str, Any] = {}
    for precision in precisions:
        for batch_size in batch_sizes:
            result = work("step", model="deep_cnn", batch_size=batch_size, precision=precision)
            results[f"{precision}/batch {batch_size}"] = result
            share = result["share_of_peak"]
            print(
                f"  deep_cnn {precision} batch {batch_size}: "
                f"{result['examples_per_second']:.0f} ex/s, {result['gflops']} GFLOP/s"
                + (f", {share:.0%} of ~{result['peak_gflops']} GFLOP/s peak" if share else ""),
                flush=True,
            )
    return results


def backends(
    names: list[str],
    *,
    batch_sizes: list[int],
    rounds: int,
    steps: int,
    warmup: int,
    cpus: str,
    machine: dict[str, Any],
) -> dict[str, Any]:
    """Plain Keras training the deep CNN on each backend, side by side; medians over rounds.

    Each round measures every precision and batch size on every installed backend, one
    fresh process each, the backends taking turns to go first, so that a drift of the
    machine's speed falls on all of them alike.
    """
    import hardware

    installed = [name for name in names if importlib.util.find_spec(name) is not None]
    precisions = ["float32"] + (["mixed_bfloat16"] if hardware.bfloat16_units(machine) else [])
    cells = [f"{precision}/{batch}" for precision in precisions for batch in batch_sizes]
    measured: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {cell: [] for cell in cells} for name in installed
    }
    for round_index in range(rounds):
        shift = round_index % max(len(installed), 1)
        order = installed[shift:] + installed[:shift]
        for cell in cells:
            precision, batch = cell.split("/")
            for name in order:
                if any("error" in result for result in measured[name][cell]):
                    continue  # it failed before: it fails again, and costs a minute
                result = work(
                    "backend", backend=name, strict=False, precision=precision,
                    batch_size=batch, steps=steps, warmup=warmup, cpus=cpus,
                )  # fmt: skip
                measured[name][cell].append(result)
                figure = result.get("examples_per_second", result.get("error"))
                print(f"  round {round_index + 1} {name} {cell}: {figure}", flush=True)
    results: dict[str, Any] = {}
    for name in names:
        if name not in installed:
            results[name] = {"installed": False}
            continue
        runs = [result for cell in cells for result in measured[name][cell]]
        versions = {result["version"] for result in runs if "version" in result}
        results[name] = {"installed": True, "version": ", ".join(sorted(versions)) or None}
        for cell in cells:
            rates = [r["examples_per_second"] for r in measured[name][cell] if "error" not in r]
            errors = [r["error"] for r in measured[name][cell] if "error" in r]
            results[name][cell] = {
                "median_examples_per_second": round(statistics.median(rates), 1) if rates else None,
                "error": errors[0] if errors else None,
                "rounds": measured[name][cell],
            }
    return {
        "settings": {
            "model": "deep_cnn",
            "keras": importlib.metadata.version("keras"),
            "batch_sizes": batch_sizes,
            "precisions": precisions,
            "rounds": rounds,
            "timed_steps": steps,
            "warmup_steps": warmup,
            "cpus": cpus,
        },
        "bfloat16_skipped": None
        if "mixed_bfloat16" in precisions
        else "this CPU has neither AVX512_BF16 nor AMX (or oneDNN is limited to AVX2)",
        "backends": results,
    }


def backend_table(comparison: dict[str, Any], machine: dict[str, Any]) -> str:
    """Format the backend comparison as an RST list-table, ready to paste into the docs."""
    settings = comparison["settings"]
    backends = comparison["backends"]
    cores = machine["cores"] if settings["cpus"] == "all" else len(settings["cpus"].split(","))
    header = ["precision", "batch"] + [
        f"{name} {result['version']}" if result.get("version") else name
        for name, result in backends.items()
    ]
    rows = [header]
    for precision in settings["precisions"]:
        for batch in settings["batch_sizes"]:
            row = [precision, str(batch)]
            for result in backends.values():
                cell = result.get(f"{precision}/{batch}")
                if cell is None:
                    row.append("not installed")
                elif cell["median_examples_per_second"] is None:
                    row.append("failed (see the JSON)")
                else:
                    row.append(f"{cell['median_examples_per_second']:,.0f}")
            rows.append(row)
    lines = [
        f".. list-table:: Deep CNN training with Keras {settings['keras']}, examples/s, median "
        f"of {settings['rounds']} round{'s' if settings['rounds'] > 1 else ''} of "
        f"{settings['timed_steps']} steps after {settings['warmup_steps']} warm-up steps; "
        f"{machine['name']}, {cores} core{'s' if cores > 1 else ''}, "
        f"{' '.join(machine['flags']) or 'no AVX2'}",
        "   :header-rows: 1",
        "",
    ]
    for row in rows:
        lines += [f"   * - {row[0]}"] + [f"     - {value}" for value in row[1:]]
    if comparison["bfloat16_skipped"]:
        lines += ["", f"mixed_bfloat16 not measured: {comparison['bfloat16_skipped']}."]
    return "\n".join(lines)


def time_to_accuracy(recipes: list[tuple[str, str, int]]) -> dict[str, Any]:
    """Train each (model, recipe, seed) to the end of its recipe; return time and accuracy.

    The denominator of the deep CNN's comparison is plain Keras on the tutorial's recipe
    (20,000 steps of 50, float32, Adam at 1e-4): its time is estimated from its steady
    rate measured here, back to back with the recipes (or, with ``--full``, also run
    whole). The summary gives the ``fast`` recipe's lowest accuracy over its seeds and its
    slowest training time as a share of that.
    """
    results: dict[str, Any] = {}
    keras_tutorial = work("keras-rate", steps=300)
    results["keras tutorial recipe (estimated)"] = keras_tutorial
    print(
        f"  plain Keras, tutorial CNN recipe: {keras_tutorial['examples_per_second']:.0f} ex/s,"
        f" 20,000 steps of 50 in about {keras_tutorial['tutorial_seconds_estimate']:.0f} s",
        flush=True,
    )
    for model, recipe, seed in recipes:
        result = work("mnistkit", model=model, recipe=recipe, seed=seed, precision="default")
        results[f"{model}/{recipe}/seed {seed}"] = result
        print(
            f"  {model} recipe {recipe} seed {seed}: {result['test_accuracy']:.4f} in "
            f"{result['seconds']} s",
            flush=True,
        )
    fast = [v for k, v in results.items() if k.startswith("deep_cnn/fast/")]
    if fast:
        slowest = max(result["seconds"] for result in fast)
        denominator = keras_tutorial["tutorial_seconds_estimate"]
        results["deep_cnn fast vs tutorial"] = {
            "fast_seeds": len(fast),
            "fast_lowest_accuracy": min(result["test_accuracy"] for result in fast),
            "fast_slowest_seconds": slowest,
            "tutorial_seconds": denominator,
            "time_share": round(slowest / denominator, 4),
        }
    return results


def table(report: dict[str, Any]) -> str:
    """Format the report as a plain-text table."""
    rows = [("figure", "value")]
    for model, result in report.get("throughput", {}).items():
        last = result["rounds"][-1]
        rows.append((f"{model}: ratio mnistkit/keras (median)", f"{result['median_ratio']:.3f}"))
        rows.append(
            (
                f"{model}: examples/s mnistkit, keras (last round)",
                f"{last['mnistkit']['examples_per_second']:.0f}, "
                f"{last['keras']['examples_per_second']:.0f}",
            )
        )
        rows.append(
            (
                f"{model}: test accuracy mnistkit, keras (last round)",
                f"{last['mnistkit']['test_accuracy']:.4f}, {last['keras']['test_accuracy']:.4f}",
            )
        )
    everyday = {**report.get("load", {}), **report.get("predict", {}), **report.get("cli", {})}
    for key, value in everyday.items():
        rows.append((key.replace("_", " "), str(value)))
    for key, value in report.get("efficiency", {}).items():
        share = f", {value['share_of_peak']:.0%} of peak" if value["share_of_peak"] else ""
        rows.append((f"deep_cnn step {key}", f"{value['gflops']} GFLOP/s{share}"))
    for key, value in report.get("time_to_accuracy", {}).items():
        if "tutorial_seconds_estimate" in value:
            rows.append((key, f"{value['tutorial_seconds_estimate']:.0f} s"))
        elif "time_share" in value:
            rows.append(
                (
                    f"{key}: lowest accuracy, slowest time / tutorial's",
                    f"{value['fast_lowest_accuracy']:.4f}, {value['time_share']:.1%}",
                )
            )
        else:
            rows.append(
                (
                    f"time to accuracy {key}",
                    f"{value['test_accuracy']:.4f} in {value['seconds']} s",
                )
            )
    if len(rows) == 1:
        return ""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="pairs per model (default 5; 0 for none), or with --backends, rounds of it",
    )
    parser.add_argument(
        "--models", nargs="+", choices=list(PAIRS), default=list(PAIRS), help="models to pair"
    )
    parser.add_argument(
        "--precision", default="float32", help="precision of both sides of the pairs"
    )
    parser.add_argument(
        "--time-to-accuracy",
        action="store_true",
        help="also train softmax/default and deep_cnn/fast to the end",
    )
    parser.add_argument(
        "--full", action="store_true", help="with --time-to-accuracy, deep_cnn/default too"
    )
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="with --time-to-accuracy, the seeds of deep_cnn/fast (default 0)",
    )
    parser.add_argument(
        "--cpus", default="0", help="CPUs the training pairs run on: 0 (default), 0,1 or all"
    )
    parser.add_argument(
        "--efficiency",
        action="store_true",
        help="also time the deep CNN's training step against the CPU's estimated peak",
    )
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=[50, 256],
        help="with --efficiency or --backends, the batch sizes to time (default 50 256)",
    )
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        help="instead of the pairs, load, predict and start-up: plain Keras training the "
        "deep CNN on these Keras backends, side by side, printed as an RST table",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=180,
        help="with --backends, timed steps (default 180: with the warm-up, less than one "
        "epoch at a batch of 256, so no epoch's end falls among them)",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=20,
        help="with --backends, steps before the timed ones, which trace or compile (default 20)",
    )
    parser.add_argument("--output", type=Path, default=HERE / "results" / "latest.json")
    options = parser.parse_args()
    if options.backends and options.rounds < 1:
        parser.error(f"--backends needs --rounds 1 or more. Received: --rounds {options.rounds}")

    started = time.time()
    sys.path.insert(0, str(HERE))
    import hardware

    machine = hardware.cpu()
    print(
        f"CPU: {machine['name']}, {machine['cores']} cores at {machine['mhz']:.0f} MHz, "
        f"{' '.join(machine['flags'])}"
        + (f" (oneDNN limited to {machine['isa_limit']})" if machine["isa_limit"] else ""),
        flush=True,
    )
    report: dict[str, Any] = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "cpu": machine,
        },
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if options.backends:
        print("the deep CNN's training on each Keras backend:", flush=True)
        report["backends"] = backends(
            options.backends,
            batch_sizes=options.batch_sizes,
            rounds=options.rounds,
            steps=options.steps,
            warmup=options.warmup_steps,
            cpus=options.cpus,
            machine=machine,
        )
    else:
        if options.rounds > 0:
            print("throughput, alternating mnistkit and plain Keras:", flush=True)
        report["throughput"] = throughput(
            options.rounds, options.precision, options.cpus, options.models
        )
        print("load, predict and start-up:", flush=True)
        report["load"] = work("load")
        report["predict"] = work("predict", model="deep_cnn")
        report["cli"] = work("cli")
    if options.efficiency:
        print("the training step against the CPU's peak:", flush=True)
        precisions = ["float32"]
        if hardware.bfloat16_units(machine):
            precisions.append("mixed_bfloat16")
        report["efficiency"] = efficiency(options.batch_sizes, precisions)
    if options.time_to_accuracy:
        print("time to accuracy:", flush=True)
        recipes = [("softmax", "default", 0)]
        if options.full:  # the tutorial's recipe first, then the fast one, back to back
            recipes.append(("deep_cnn", "default", 0))
        recipes += [("deep_cnn", "fast", seed) for seed in options.seeds]
        report["time_to_accuracy"] = time_to_accuracy(recipes)
    report["wall_seconds"] = round(time.time() - started, 1)
    printed = [table(report)]
    if options.backends:
        printed.append(backend_table(report["backends"], machine))
    print()
    print("\n\n".join(text for text in printed if text))
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(report, indent=2))
    print(f"\nJSON written to {options.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
