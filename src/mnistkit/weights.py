"""Trained weights that ship with a model: declared on its factory, checked, loaded by name.

A weight set is two files inside an installed package: ``NAME.npz`` holds the arrays of
the model's :func:`~mnistkit.layers.parameters`, in that order (float16 by default,
compressed), and ``NAME.json`` holds what is known of them, as torchvision's
``Weights.meta`` does: the test accuracy measured with exactly those arrays, the recipe,
seed and command that trained them, the library versions, the parameter count, the
SHA-256 of the ``.npz`` and the licence. A model factory declares its weight sets with
:func:`with_weights`, as it declares its recipes with :func:`~mnistkit.with_recipes`, so
a plugin ships weights the way the built-in models do. ``build("deep_cnn",
weights="mnist")`` builds the registered architecture and loads the arrays into it: the
file is checked against its SHA-256 and read with ``allow_pickle=False``, so no pickled
object and no code is ever loaded."""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import io
import json
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit._factories import MODELS, F, declare, declared, output_card
from mnistkit._files import atomic_path, write_bytes_atomically
from mnistkit.errors import DataFormatError, DataNotFoundError, UnknownNameError
from mnistkit.recipes import Recipe
from mnistkit.validation import check_one_of, invalid

if TYPE_CHECKING:
    import keras

__all__ = [
    "DEFAULT_WEIGHTS",
    "MNIST_LICENSE",
    "STORAGE_DTYPES",
    "Weights",
    "model_weights",
    "resolve_weights",
    "weights_of",
    "with_weights",
    "write_weights",
]

#: The weight set a model name stands for where none is named (``mnistkit predict deep_cnn``).
DEFAULT_WEIGHTS = "mnist"

#: The licence of weights trained on MNIST, which is distributed under it.
MNIST_LICENSE = (
    "CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/): trained on MNIST, "
    "made available by Yann LeCun, Corinna Cortes and Christopher J.C. Burges under that "
    "licence"
)

#: The types :func:`write_weights` stores arrays in.
STORAGE_DTYPES = ("float16", "float32")

# The most a weight set's metadata may hold: the shipped ones take about 3 KB.
_META_LIMIT = 2**20


@dataclass(frozen=True)
class Weights:
    """One set of trained weights for a registered model, stored in an installed package.

    Args:
        package: The package that holds the files, such as ``"mnistkit"``.
        file: The ``.npz`` file's path inside the package; its metadata lies beside it,
            with the suffix ``.json``.
        name: The name the model carries the set under (set by :func:`with_weights`).

    Raises:
        InvalidArgumentError: If ``package`` is empty or ``file`` does not end in ``.npz``.

    Example:
        >>> weights = model_weights("softmax")["mnist"]
        >>> weights.name, weights.meta["model"], weights.meta["parameters"]
        ('mnist', 'softmax', 7850)
        >>> weights.meta["recipe"]["name"], weights.meta["license"][:12]
        ('default', 'CC BY-SA 3.0')
    """

    package: str
    file: str
    name: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.package, str) or not self.package:
            raise invalid("package", "a package name", self.package)
        if not isinstance(self.file, str) or not self.file.endswith(".npz"):
            raise invalid("file", "the path of a .npz file inside the package", self.file)

    @property
    def path(self) -> Path:
        """The ``.npz`` file (inside the installed package).

        Raises:
            DataNotFoundError: If the package is not installed.
        """
        try:
            folder = importlib.resources.files(self.package)
        except ModuleNotFoundError:
            raise DataNotFoundError(
                f"The weights {self.file} are in the package {self.package!r}, which is not "
                "installed."
            ) from None
        return Path(str(folder.joinpath(self.file)))

    @functools.cached_property
    def meta(self) -> Mapping[str, Any]:
        """The metadata of the set, read from its ``.json`` file when first used.

        It holds ``model``, ``test_accuracy`` (a fraction, measured on ``test_examples``
        images with the stored arrays), ``recipe`` (the recipe trained with, as
        :meth:`~mnistkit.Recipe.as_dict` gives it), ``seed``, ``command`` (which
        reproduces the set from mnistkit's source tree), ``versions``, ``parameters``,
        ``sha256``, ``size_bytes``, ``dtype``, ``license``, and more.

        Raises:
            DataNotFoundError: If the ``.json`` file is missing.
            DataFormatError: If it holds more than 1 MiB, or is not a JSON object with
                ``model``, ``sha256`` and ``recipe``.
        """
        path = self.path.with_suffix(".json")
        try:
            with path.open("rb") as handle:
                text = handle.read(_META_LIMIT + 1)
            if len(text) > _META_LIMIT:
                raise DataFormatError(
                    f"{path}: holds more than the {_META_LIMIT:,} bytes weight metadata may hold."
                )
            meta = json.loads(text)
        except FileNotFoundError:
            raise DataNotFoundError(f"{path}: the metadata of the weights is missing.") from None
        except DataFormatError:
            raise
        except ValueError as error:
            raise DataFormatError(f"{path}: not a JSON object ({error}).") from None
        if not isinstance(meta, dict) or not {"model", "sha256", "recipe"} <= set(meta):
            raise DataFormatError(f"{path}: weight metadata needs model, sha256 and recipe.")
        return MappingProxyType(meta)

    @property
    def recipe(self) -> Recipe:
        """The recipe the weights were trained with; a model built for them carries it."""
        return Recipe.from_dict(self.meta["recipe"])

    @property
    def arguments(self) -> dict[str, Any]:
        """The factory's arguments the weights were trained with (besides the recipe's)."""
        return dict(self.meta.get("arguments") or {})

    def describe(self) -> str:
        """Return one line on the set, as ``mnistkit models --pretrained`` prints it.

        Example:
            >>> print(model_weights("softmax")["mnist"].describe())  # doctest: +ELLIPSIS
            9...% test accuracy, recipe 'default', ... KB (float16), CC BY-SA 3.0
        """
        meta = self.meta
        size = meta.get("size_bytes", 0)
        shown = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} KB"
        accuracy = meta.get("test_accuracy")
        measured = f"{accuracy:.2%} test accuracy" if accuracy is not None else "not measured"
        licence = str(meta.get("license", "")).split(" (")[0]
        return (
            f"{measured}, recipe {self.recipe.label!r}, {shown} ({meta.get('dtype', '?')}), "
            f"{licence}"
        )

    def arrays(self) -> list[np.ndarray]:
        """Return the stored arrays, in the order of the model's parameters, after checking them.

        Returns:
            The arrays, in the dtype they are stored in.

        Raises:
            DataNotFoundError: If the file is missing.
            DataFormatError: If its SHA-256 is not the one its metadata records, it
                is not an ``.npz`` of plain arrays, or an array holds NaN or infinite
                values.
        """
        path = self.path
        try:
            payload = path.read_bytes()
        except FileNotFoundError:
            raise DataNotFoundError(f"{path}: the weights file is missing.") from None
        digest = hashlib.sha256(payload).hexdigest()
        if digest != self.meta["sha256"]:
            raise DataFormatError(
                f"{path}: SHA-256 {digest} is not the {self.meta['sha256']} its metadata "
                "records; the file is damaged or was replaced. Reinstall the package."
            )
        try:
            with np.load(io.BytesIO(payload), allow_pickle=False) as stored:
                arrays = [stored[key] for key in sorted(stored.files)]
        except (ValueError, OSError, zipfile.BadZipFile) as error:
            raise DataFormatError(f"{path}: not an .npz of arrays ({error}).") from None
        for index, array in enumerate(arrays):
            if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all():
                layout: Any = self.meta.get("layout")
                try:
                    name = repr(layout[index][0])
                except (TypeError, IndexError, KeyError):
                    name = f"number {index}"
                raise DataFormatError(
                    f"{path}: the array for weight {name} holds NaN or infinite values; "
                    "the weights are damaged."
                )
        return arrays

    def load_into(self, model: keras.Model) -> keras.Model:
        """Set ``model``'s weights to the stored arrays, and return the model.

        Args:
            model: A model of the registered architecture, as :func:`~mnistkit.build`
                makes it.

        Returns:
            The same model.

        Raises:
            DataFormatError: If the metadata names another model than the one
                ``model`` was built as, the file fails its check, or its arrays do not
                fit the model's weights (the message names the first that does not).
        """
        from mnistkit.layers import parameters

        card = output_card(model)
        if card is not None and self.meta["model"] != card.model_name:
            raise DataFormatError(
                f"{self.path.with_suffix('.json')}: these weights are for the model "
                f"{self.meta['model']!r}, not {card.model_name!r}."
            )
        arrays = self.arrays()
        variables = parameters(model)
        if len(arrays) != len(variables):
            raise DataFormatError(
                f"{self.path}: {len(arrays)} arrays for a model with {len(variables)} "
                f"weights; these weights are not for {model.name!r} as built here."
            )
        for variable, array in zip(variables, arrays, strict=True):
            if tuple(variable.shape) != array.shape:
                raise DataFormatError(
                    f"{self.path}: the array for {variable.path!r} is shaped {array.shape}, "
                    f"the model's weight {tuple(variable.shape)}."
                )
        for variable, array in zip(variables, arrays, strict=True):
            variable.assign(array.astype(variable.dtype))
        return model


def with_weights(**weights: Weights) -> Callable[[F], F]:
    """Declare the trained weight sets of a model factory (a decorator).

    Put it under :func:`~mnistkit.register_model`, as :func:`~mnistkit.with_recipes`.
    The files are made by :func:`write_weights` and shipped as package data.

    Args:
        **weights: Weight sets by name; ``mnist`` (:data:`DEFAULT_WEIGHTS`) is the one
            a model name stands for on the command line.

    Returns:
        A decorator that returns the factory unchanged but for the weights it carries.

    Raises:
        InvalidArgumentError: If a value is not a :class:`Weights`.

    Example:
        >>> from mnistkit.weights import weights_of
        >>> @with_weights(mnist=Weights("my_plugin", "weights/tiny_mlp-mnist.npz"))
        ... def tiny_mlp():
        ...     '''A model.'''
        >>> weights_of(tiny_mlp)["mnist"]
        Weights(package='my_plugin', file='weights/tiny_mlp-mnist.npz', name='mnist')
    """
    return declare("weights", Weights, weights)


def weights_of(factory: Callable[..., Any]) -> Mapping[str, Weights]:
    """Return the weight sets a factory carries, by name (empty if it carries none).

    Args:
        factory: A model factory.

    Returns:
        A read-only mapping of names to :class:`Weights`.
    """
    return declared(factory, "weights")


def model_weights(name: str) -> Mapping[str, Weights]:
    """Return the trained weight sets a registered model carries, by name.

    Args:
        name: A registered model name.

    Returns:
        A read-only mapping; empty for a model without pretrained weights.

    Raises:
        UnknownNameError: If no model is registered under ``name``.
        PluginError: If the plugin that provides the model fails to import.

    Example:
        >>> sorted(model_weights("deep_cnn"))
        ['mnist']
        >>> model_weights("deep_cnn")["mnist"].meta["recipe"]["name"]
        'best'
    """
    return weights_of(MODELS.get(name))


def resolve_weights(
    weights: Mapping[str, Weights], chosen: str | Weights, *, model: str
) -> Weights:
    """Return the weight set ``chosen`` names among a model's, or ``chosen`` itself.

    Args:
        weights: The model's weight sets (:func:`weights_of`).
        chosen: A set's name, or a :class:`Weights`.
        model: The model's registered name, for messages.

    Returns:
        The weight set.

    Raises:
        UnknownNameError: If the model has no set of that name (or none at all).
        InvalidArgumentError: If ``chosen`` is neither a string nor a :class:`Weights`.

    Example:
        >>> resolve_weights(model_weights("softmax"), "mnist", model="softmax").name
        'mnist'
    """
    if isinstance(chosen, Weights):
        return chosen
    if not isinstance(chosen, str):
        raise invalid("weights", "the name of a weight set, a Weights or None", chosen)
    if chosen not in weights:
        if not weights:
            raise UnknownNameError(
                f"The model {model!r} has no pretrained weights. List the models that have "
                "some with mnistkit.list_models(pretrained=True) or "
                "`mnistkit models --pretrained`."
            )
        raise UnknownNameError(
            f"The model {model!r} has no weights {chosen!r}. "
            f"Its weights: {', '.join(sorted(weights))}."
        )
    return weights[chosen]


def write_weights(
    model: keras.Model,
    path: str | os.PathLike[str],
    *,
    meta: Mapping[str, Any],
    dtype: str = "float16",
) -> dict[str, Any]:
    """Write a model's weights and their metadata, for :class:`Weights` to load.

    The arrays of the model's parameters go to ``path`` (an ``.npz``, compressed), cast to
    ``dtype``; ``meta`` with the facts of the file added goes beside it, with the suffix
    ``.json``. Both are written atomically.

    Args:
        model: The trained model.
        path: The ``.npz`` file to write.
        meta: What is known of the weights: at least ``model`` (its registered name)
            and ``recipe`` (a recipe's :meth:`~mnistkit.Recipe.as_dict`); the
            ``test_accuracy`` measured with the stored arrays, ``command``, ``seed``,
            ``versions`` and ``license`` are expected by the docs and the command line.
        dtype: ``"float16"`` (half the size, a relative rounding of at most 2**-11)
            or ``"float32"``.

    Returns:
        The metadata written, ``meta`` with ``file``, ``sha256``, ``size_bytes``,
        ``dtype``, ``parameters`` and ``layout`` (each weight's path and shape) added.

    Raises:
        InvalidArgumentError: If ``dtype`` is not one of :data:`STORAGE_DTYPES`, ``path``
            does not end in ``.npz``, ``meta`` lacks ``model`` or ``recipe``, or a weight
            is not finite in ``dtype``.

    Example:
        >>> import tempfile, pathlib
        >>> from mnistkit import build, model_recipes
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "softmax-zero.npz"
        >>> written = write_weights(build("softmax"), path, meta={
        ...     "model": "softmax", "recipe": model_recipes("softmax")["default"].as_dict()})
        >>> written["parameters"], written["dtype"], written["layout"][0]
        (7850, 'float16', ['logits/kernel', [784, 10]])
    """
    check_one_of(dtype, "dtype", STORAGE_DTYPES)
    path = Path(path)
    if path.suffix != ".npz":
        raise invalid("path", "a file name ending in `.npz`", str(path))
    if not {"model", "recipe"} <= set(meta):
        raise invalid("meta", "a mapping with `model` and `recipe`", dict(meta))
    from mnistkit.layers import parameters

    variables = parameters(model)
    with np.errstate(over="ignore"):  # an overflow is refused just below, by name
        arrays = [np.asarray(variable.numpy()).astype(dtype) for variable in variables]
    for variable, array in zip(variables, arrays, strict=True):
        if not np.isfinite(array).all():
            raise invalid("model", f"weights that are finite in {dtype}", variable.path)
    # Zero-padded keys keep the arrays in the order of model.weights when sorted.
    named = {f"{index:04d}": array for index, array in enumerate(arrays)}
    with atomic_path(path) as temporary:
        np.savez_compressed(temporary, **named)  # type: ignore[arg-type]
        payload = temporary.read_bytes()
    written = {
        **meta,
        "file": path.name,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size_bytes": len(payload),
        "dtype": dtype,
        "parameters": int(sum(array.size for array in arrays)),
        "layout": [[variable.path, list(variable.shape)] for variable in variables],
    }
    text = json.dumps(written, indent=2, sort_keys=True) + "\n"
    write_bytes_atomically(path.with_suffix(".json"), text.encode("utf-8"))
    return written
