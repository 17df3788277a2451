"""What the machine can do: its CPU's features, and an estimate of its arithmetic peak.

The peak is an upper bound, worked out from the CPU's vector units: cores x clock x
floating-point operations per cycle, where a core with two FMA units of 512 bits does
2 x 16 x 2 = 64 float32 operations a cycle (AVX-512), one with two 256-bit units 32
(AVX2), and one with AMX about 1,024 bfloat16 operations a cycle. The clock is the one
``/proc/cpuinfo`` reports. The benchmark compares the training step's achieved rate with
it, to say how far from the machine's limit the step runs.

``ONEDNN_MAX_CPU_ISA=AVX2`` in the environment makes oneDNN, which runs TensorFlow's
convolutions and matrix products on x86, use AVX2 only: a machine with AVX-512 and AMX
then measures as the more common AVX2 kind would, at its own clock.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: The flags reported, in the order the table names them.
FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")

# Floating-point operations a cycle per core, by the widest unit in use.
_FLOAT32_PER_CYCLE = {"avx512": 64, "avx2": 32, "sse": 8}
# By flag, the faster first: bfloat16_units lists them in this order.
_BFLOAT16_PER_CYCLE = {"amx_bf16": 1024, "avx512_bf16": 128}


def cpu() -> dict[str, Any]:
    """Return the CPU's name, clock (MHz), cores, features, and the ISA oneDNN may use."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    flags: set[str] = set()
    name, megahertz = "unknown", 0.0
    for line in info.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "model name" and name == "unknown":
            name = value.strip()
        elif key == "cpu MHz" and not megahertz:
            megahertz = float(value)
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA", "").lower()
    if limit.startswith("avx2"):
        flags = {flag for flag in flags if not flag.startswith(("avx512", "amx"))}
    return {
        "name": name,
        "mhz": megahertz,
        "cores": len(os.sched_getaffinity(0)),
        "flags": [flag for flag in FLAGS if flag in flags],
        "isa_limit": limit or None,
    }


def bfloat16_units(machine: dict[str, Any]) -> list[str]:
    """Return the flags of ``machine`` (from :func:`cpu`) that compute bfloat16 natively.

    Empty on a CPU with neither AVX512_BF16 nor AMX, or where ``ONEDNN_MAX_CPU_ISA``
    limits oneDNN to AVX2: there bfloat16 is converted to and from float32, slower than
    float32 alone.
    """
    return [flag for flag in _BFLOAT16_PER_CYCLE if flag in machine["flags"]]


def peak_gflops(machine: dict[str, Any], precision: str) -> float | None:
    """Estimate the machine's peak, in GFLOP/s, for ``float32`` or ``mixed_bfloat16``.

    Returns ``None`` where the machine has no unit for that precision (bfloat16 on AVX2)
    or its clock is unknown.
    """
    flags = set(machine["flags"])
    if precision == "mixed_bfloat16":
        units = bfloat16_units(machine)
        if not units:
            return None
        per_cycle = _BFLOAT16_PER_CYCLE[units[0]]
    elif "avx512f" in flags:
        per_cycle = _FLOAT32_PER_CYCLE["avx512"]
    elif "avx2" in flags and "fma" in flags:
        per_cycle = _FLOAT32_PER_CYCLE["avx2"]
    else:
        per_cycle = _FLOAT32_PER_CYCLE["sse"]
    if not machine["mhz"]:
        return None
    return round(machine["cores"] * machine["mhz"] / 1000 * per_cycle, 1)


def training_flops(model: Any) -> int:
    """Floating-point operations of one training example through ``model``: 3 x forward.

    The forward count is 2 x the multiply-adds of its convolutions and dense layers; the
    backward pass costs about twice the forward (the gradients of the inputs and of the
    weights), hence 3 x.
    """
    import keras

    forward = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.Conv2D):
            height, width, out_channels = layer.output.shape[1:]
            kernel_h, kernel_w, in_channels, _ = layer.kernel.shape
            forward += 2 * height * width * out_channels * kernel_h * kernel_w * in_channels
        elif isinstance(layer, keras.layers.Dense):
            inputs, outputs = layer.kernel.shape
            forward += 2 * inputs * outputs
    return int(3 * forward)
