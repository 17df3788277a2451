"""Computation precision: float32, or mixed precision where the hardware runs it fast.

Under a mixed policy, layers compute in bfloat16 or float16 while their variables stay
float32; the built-in models keep their logits in float32, so the loss is exact.
"""

from __future__ import annotations

import contextlib
import functools
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mnistkit.errors import InvalidArgumentError
from mnistkit.recipes import PRECISIONS

__all__ = [
    "PRECISIONS",
    "SPEED_FLAGS",
    "bfloat16_flags",
    "check_model_policy",
    "cpu_features",
    "describe_precision",
    "fast_bfloat16",
    "policy",
    "resolve_precision",
]


def resolve_precision(precision: str) -> str:
    """Return the Keras dtype policy name a precision setting stands for.

    Args:
        precision: One of :data:`PRECISIONS`.

    Returns:
        ``"float32"``, ``"mixed_bfloat16"`` or ``"mixed_float16"``; ``"auto"`` is
        resolved for this machine (see :data:`~mnistkit.recipes.PRECISIONS`).

    Raises:
        InvalidArgumentError: If ``precision`` is not one of :data:`PRECISIONS`.

    Example:
        >>> resolve_precision("float32")
        'float32'
        >>> resolve_precision("auto") in ("float32", "mixed_bfloat16", "mixed_float16")
        True
    """
    if precision not in PRECISIONS:
        raise InvalidArgumentError(
            f"Invalid value for argument `precision`. Expected one of {', '.join(PRECISIONS)}. "
            f"Received: precision={precision!r}"
        )
    if precision != "auto":
        return precision
    gpu = _gpu_capability()
    if gpu is not None:
        if gpu >= (8, 0):
            return "mixed_bfloat16"
        return "mixed_float16" if gpu >= (7, 0) else "float32"
    return "mixed_bfloat16" if fast_bfloat16() and _keras_backend() == "tensorflow" else "float32"


def fast_bfloat16() -> bool:
    """Return whether this machine's CPU has bfloat16 units (AMX or AVX512-BF16).

    Returns:
        ``True`` where ``/proc/cpuinfo`` lists ``amx_bf16`` or ``avx512_bf16``.
    """
    return bool(bfloat16_flags())


@functools.cache
def bfloat16_flags() -> tuple[str, ...]:
    """Return the CPU flags that make bfloat16 fast here (``amx_bf16``, ``avx512_bf16``).

    Returns:
        The flags ``/proc/cpuinfo`` lists, sorted; empty where it lists none (or where
        there is no ``/proc/cpuinfo``).
    """
    return tuple(flag for flag in cpu_features()["flags"] if flag in ("amx_bf16", "avx512_bf16"))


#: The CPU flags that decide how fast a model trains here, as speed figures name them.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16")


@functools.cache
def cpu_features() -> dict[str, Any]:
    """Return this machine's CPU model and which of :data:`SPEED_FLAGS` it has.

    Returns:
        ``{"model": ..., "flags": [...]}``, the flags sorted; the model is
        ``platform.processor()``'s where ``/proc/cpuinfo`` does not say.
    """
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    names = [line.split(":", 1)[1].strip() for line in info.splitlines()
             if line.startswith("model name")]  # fmt: skip
    flags = sorted(set(info.split()) & set(SPEED_FLAGS))
    return {"model": names[0] if names else platform.processor() or platform.machine(),
            "flags": flags}  # fmt: skip


def check_model_policy(model: Any, precision: str | None) -> str:
    """Return the dtype policy of a model given built, refusing another one asked for.

    Args:
        model: A built Keras model.
        precision: The precision asked for, or ``None``.

    Returns:
        The name of the model's dtype policy.

    Raises:
        InvalidArgumentError: If ``precision`` names another policy than the model's.
    """
    resolved = str(model.dtype_policy.name)
    if precision not in (None, "auto") and resolve_precision(precision) != resolved:
        wanted = resolve_precision(precision)
        raise InvalidArgumentError(
            f"The model was built with the {resolved!r} dtype policy, not {wanted!r}. Pass "
            "the model's name instead, or build it inside "
            f"`with mnistkit.precision.policy({wanted!r}):`."
        )
    return resolved


def describe_precision(setting: str, resolved: str) -> str:
    """Say which precision runs, on which device, and why, in one line.

    Args:
        setting: The precision asked for (``"auto"``, or a policy name).
        resolved: The policy :func:`resolve_precision` chose for it.

    Returns:
        For example ``"float32 on the CPU (auto: this CPU has no bfloat16 support)"``.

    Example:
        >>> describe_precision("float32", "float32")
        'float32 on the CPU'
    """
    gpu = _gpu_capability()
    device = "the CPU" if gpu is None else f"the GPU (compute capability {gpu[0]}.{gpu[1]})"
    if setting != "auto":
        return f"{resolved} on {device}"
    if gpu is not None:
        why = "16-bit tensor cores" if resolved != "float32" else "no fast 16-bit units"
        return f"{resolved} on {device} (auto: {why})"
    flags = bfloat16_flags()
    backend = _keras_backend()
    if flags and backend != "tensorflow":
        return (
            f"{resolved} on {device} (auto: Keras's {backend} backend runs bfloat16 no faster "
            "than float32 on a CPU)"
        )
    if flags:
        return f"{resolved} on {device} (auto: this CPU has bfloat16 units: {', '.join(flags)})"
    return f"{resolved} on {device} (auto: this CPU has no bfloat16 support)"


def _keras_backend() -> str:
    import keras

    return str(keras.backend.backend())


def _gpu_capability() -> tuple[int, int] | None:
    import tensorflow as tf

    capabilities = [
        tf.config.experimental.get_device_details(device).get("compute_capability")
        for device in tf.config.list_physical_devices("GPU")
    ]
    known = [c for c in capabilities if c]
    return min(known) if known else None


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
    """Build Keras layers under the dtype policy ``name`` inside the block.

    Args:
        name: A Keras dtype policy name, such as ``"mixed_bfloat16"``.

    Yields:
        Nothing; the previous global policy is restored on exit.

    Example:
        >>> from mnistkit import build
        >>> with policy("mixed_bfloat16"):
        ...     model = build("softmax")
        >>> model.dtype_policy.name, model.get_layer("logits").dtype_policy.name
        ('mixed_bfloat16', 'float32')
    """
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
