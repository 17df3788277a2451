"""Model factories: the registry that holds them, and what each one declares.

A factory declares its recipes and its trained weights by carrying them, as a read-only
mapping set on the function by :func:`declare`; :func:`declared` reads it back, empty
for a factory that declares nothing. :func:`~mnistkit.with_recipes` and
:func:`~mnistkit.with_weights` are this one decorator for two kinds of declaration. A
model that :func:`~mnistkit.build` made carries the name it was registered under in its
last :class:`~mnistkit.layers.ModelOutput` layer, which :func:`output_card` finds.

:mod:`mnistkit.recipes`, :mod:`mnistkit.weights` and :mod:`mnistkit.models` all build
on this module, which imports none of them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from mnistkit.registry import Registry
from mnistkit.validation import invalid

if TYPE_CHECKING:
    import keras

F = TypeVar("F", bound=Callable[..., Any])

#: The registry of model factories (re-exported as :data:`mnistkit.models.MODELS`).
MODELS: Registry[Callable[..., keras.Model]] = Registry(
    "model", group="mnistkit.models", lister="mnistkit.list_models() or `mnistkit models`"
)


def declare(kind: str, expected: type, declarations: Mapping[str, Any]) -> Callable[[F], F]:
    """Return a decorator that sets a factory's ``kind`` declarations, each named by its key.

    Args:
        kind: ``"recipes"`` or ``"weights"``; the factory carries them as
            ``mnistkit_<kind>``.
        expected: The dataclass each declaration is; its ``name`` is set to its key.
        declarations: The declarations by name.

    Raises:
        InvalidArgumentError: If a value is not an ``expected``.
    """
    for key, value in declarations.items():
        if not isinstance(value, expected):
            raise invalid(key, f"a {expected.__name__}", value)
    named = {key: dataclasses.replace(value, name=key) for key, value in declarations.items()}

    def decorator(factory: F) -> F:
        setattr(factory, f"mnistkit_{kind}", MappingProxyType(named))
        return factory

    return decorator


def declared(factory: Callable[..., Any], kind: str) -> Mapping[str, Any]:
    """Return the ``kind`` declarations a factory carries, by name (empty if none)."""
    return getattr(factory, f"mnistkit_{kind}", MappingProxyType({}))


def output_card(model: Any) -> Any:
    """Return the last :class:`~mnistkit.layers.ModelOutput` layer of a model, or ``None``."""
    from mnistkit.layers import ModelOutput

    cards = [layer for layer in getattr(model, "layers", []) if isinstance(layer, ModelOutput)]
    return cards[-1] if cards else None
