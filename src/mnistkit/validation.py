"""One vocabulary for checking arguments, in the words Keras uses.

Every check takes the value and the argument's name, returns the value in its canonical
type, and raises :class:`~mnistkit.InvalidArgumentError` (also a ``ValueError``) whose
message names the argument, what was expected and what was received, on one line::

    Invalid value for argument `keep_prob`. Expected a float in (0, 1].
    Received: keep_prob=1.5

The Trainer, the recipes, the models and the command line all check with these
functions, and plugin authors are welcome to: a factory that validates its own settings
with them reads like the built-ins. The command line wraps the same functions as
``argparse`` types, so a value refused in Python is refused with the same words there.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from mnistkit.errors import InvalidArgumentError

__all__ = [
    "MAX_SEED",
    "check_bool",
    "check_in_range",
    "check_non_negative_int",
    "check_one_of",
    "check_positive_float",
    "check_positive_int",
    "check_probability",
    "check_seed",
    "invalid",
    "is_int",
]

#: The largest seed accepted, since NumPy's and TensorFlow's global seeds are 32-bit.
MAX_SEED = 2**32 - 1

T = TypeVar("T")


def invalid(name: str, expected: str, value: Any) -> InvalidArgumentError:
    """Return the error for an argument outside what is accepted, worded as Keras words it.

    Args:
        name: The argument's name.
        expected: What is accepted, as a phrase ("a positive integer").
        value: What was received.

    Returns:
        The error, to raise.

    Example:
        >>> str(invalid("steps", "a positive integer", 0))
        'Invalid value for argument `steps`. Expected a positive integer. Received: steps=0'
    """
    return InvalidArgumentError(
        f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={value!r}",
        argument=name,
        expected=expected,
    )


def is_int(value: Any) -> bool:
    """Return whether ``value`` is an integer (of any integral type), and not a bool.

    Example:
        >>> is_int(3), is_int(3.0), is_int(True)
        (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _integer(value: Any, name: str, expected: str, low: int, high: float = math.inf) -> int:
    if not is_int(value) or not low <= value <= high:
        raise invalid(name, expected, value)
    return int(value)


def _real(value: Any, name: str, expected: str, accept: Callable[[float], bool]) -> float:
    # NaN fails every comparison, so no `accept` takes it.
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not accept(float(value)):
        raise invalid(name, expected, value)
    return float(value)


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer of 1 or more.

    Args:
        value: The value to check; ``bool`` is refused, NumPy integers are accepted.
        name: The argument's name, for the message.

    Returns:
        The value, as a Python ``int``.

    Raises:
        InvalidArgumentError: If the value is not an integer of 1 or more.

    Example:
        >>> check_positive_int(3, "steps")
        3
    """
    return _integer(value, name, "a positive integer", 1)


def check_non_negative_int(value: Any, name: str) -> int:
    """Return ``value`` as an ``int`` if it is an integer of 0 or more.

    Args:
        value: The value to check.
        name: The argument's name, for the message.

    Returns:
        The value, as a Python ``int``.

    Raises:
        InvalidArgumentError: If the value is not an integer of 0 or more.

    Example:
        >>> check_non_negative_int(0, "shift")
        0
    """
    return _integer(value, name, "a non-negative integer", 0)


def check_seed(value: Any, name: str = "seed") -> int:
    """Return ``value`` as an ``int`` if it is a seed NumPy and TensorFlow accept.

    Args:
        value: The value to check.
        name: The argument's name, for the message.

    Returns:
        The value, as a Python ``int`` from 0 to :data:`MAX_SEED`.

    Raises:
        InvalidArgumentError: If the value is not an integer in that range.

    Example:
        >>> check_seed(2**32 - 1)
        4294967295
        >>> check_seed(2**32)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mnistkit.errors.InvalidArgumentError: ... Received: seed=4294967296
    """
    return _integer(value, name, f"an integer from 0 to {MAX_SEED}", 0, MAX_SEED)


def check_probability(value: Any, name: str) -> float:
    """Return ``value`` as a ``float`` if it is a number in (0, 1].

    Args:
        value: The value to check.
        name: The argument's name, for the message.

    Returns:
        The value, as a Python ``float``.

    Raises:
        InvalidArgumentError: If the value is not a number in (0, 1].

    Example:
        >>> check_probability(0.5, "keep_prob")
        0.5
    """
    return _real(value, name, "a float in (0, 1]", lambda number: 0.0 < number <= 1.0)


def check_positive_float(value: Any, name: str) -> float:
    """Return ``value`` as a ``float`` if it is a finite number greater than 0.

    Args:
        value: The value to check.
        name: The argument's name, for the message.

    Returns:
        The value, as a Python ``float``.

    Raises:
        InvalidArgumentError: If the value is not a finite number greater than 0.

    Example:
        >>> check_positive_float(1e-3, "learning_rate")
        0.001
    """
    return _real(value, name, "a positive float", lambda number: 0.0 < number < math.inf)


def check_in_range(value: Any, name: str, low: float, high: float) -> float:
    """Return ``value`` as a ``float`` if it is a number from ``low`` to ``high``.

    Args:
        value: The value to check.
        name: The argument's name, for the message.
        low: The smallest value accepted.
        high: The largest value accepted.

    Returns:
        The value, as a Python ``float``.

    Raises:
        InvalidArgumentError: If the value is not a number in ``[low, high]``.

    Example:
        >>> check_in_range(0.1, "label_smoothing", 0.0, 0.99)
        0.1
    """
    expected = f"a float from {low:g} to {high:g}"
    return _real(value, name, expected, lambda number: low <= number <= high)


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (NumPy booleans included).

    Strings such as ``"no"`` are refused rather than taken as true.

    Args:
        value: The value to check.
        name: The argument's name, for the message.

    Returns:
        The value, as a Python ``bool``.

    Raises:
        InvalidArgumentError: If the value is not a boolean.

    Example:
        >>> check_bool("no", "one_hot")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        mnistkit.errors.InvalidArgumentError: ... Received: one_hot='no'
    """
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return bool(value)
    raise invalid(name, "True or False", value)


def check_one_of(value: T, name: str, choices: Collection[T]) -> T:
    """Return ``value`` if it is one of ``choices``.

    Args:
        value: The value to check.
        name: The argument's name, for the message.
        choices: The accepted values, listed in the message in their own order.

    Returns:
        The value, unchanged.

    Raises:
        InvalidArgumentError: If the value is not one of the choices.

    Example:
        >>> check_one_of("logits", "outputs", ("logits", "probabilities"))
        'logits'
    """
    try:
        accepted = value in choices
    except TypeError:  # an unhashable value asked of a set
        accepted = False
    if not accepted:
        listed = ", ".join(repr(choice) for choice in choices)
        raise invalid(name, f"one of {listed}", value)
    return value
