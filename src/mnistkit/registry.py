"""One generic registry of named factories, with entry-point plugins.

Models and data loaders are both served by :class:`Registry`. A registry holds the
factories registered in this process (the built-ins and any a user registers) and,
discovered lazily from installed distributions, the plugin entries declared in an
entry-point group such as ``mnistkit.models``. Listing reads entry-point metadata
only; a plugin's module is imported when its entry is first used.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import inspect
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from mnistkit.errors import InvalidArgumentError, MnistkitError, PluginError, UnknownNameError

__all__ = ["Entry", "PluginConflictWarning", "PluginLoadWarning", "Registry", "normalize_name"]

F = TypeVar("F", bound=Callable[..., Any])

BUILTIN = "built-in"
PLUGIN = "plugin"
LOCAL = "local"

_VALID_NAME = re.compile(r"^[a-z0-9][a-z0-9_.]*$")


class PluginConflictWarning(UserWarning):
    """Two sources claim the same registered name; the message says which one wins."""


class PluginLoadWarning(UserWarning):
    """A plugin failed to import, and a listing that had to import it leaves it out.

    .. versionadded:: 0.3.0
    """


def normalize_name(name: str) -> str:
    """Return the canonical form of a registered name.

    Registration and lookup both go through this function, so ``"Deep-CNN"``,
    ``" deep_cnn "`` and ``"deep_cnn"`` name the same entry.

    Args:
        name: A model or dataset name as a user typed it.

    Returns:
        The name stripped, lower-cased, with ``-`` and spaces turned into ``_``.

    Raises:
        InvalidArgumentError: If ``name`` is not a string or normalises to something
            other than letters, digits, ``_`` and ``.``.

    Example:
        >>> normalize_name(" Deep-CNN ")
        'deep_cnn'
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(
            f"Invalid value for argument `name`. Expected a string. Received: name={name!r}"
        )
    canonical = re.sub(r"[-\s]+", "_", name.strip().lower())
    if not _VALID_NAME.match(canonical):
        raise InvalidArgumentError(
            "Invalid value for argument `name`. Expected letters, digits, '_', '-' or '.', "
            f"starting with a letter or digit. Received: name={name!r}"
        )
    return canonical


def _first_line(doc: str | None) -> str:
    lines = inspect.cleandoc(doc or "").splitlines()
    return lines[0].strip() if lines else ""


@dataclass(frozen=True)
class Entry:
    """What a registry knows of one name, without importing a plugin.

    Attributes:
        name: The registered (normalised) name.
        origin: ``"built-in"``, ``"plugin"`` or ``"local"`` (registered at run time
            by user code).
        target: Where the factory lives, as ``"module:attribute"``.
        summary: The first line of the factory's docstring; for a plugin not yet
            imported, the summary of its distribution.
        distribution: For a plugin, the installed distribution that declares it,
            as ``"name version"``; otherwise ``None``.
        notes: Name clashes that involve this entry, in words.
    """

    name: str
    origin: str
    target: str
    summary: str
    distribution: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def source(self) -> str:
        """Where the entry comes from, in words, such as ``built-in`` or ``plugin (dist 1.0)``."""
        if self.distribution:
            return f"{self.origin} ({self.distribution})"
        return self.origin


@dataclass
class _Plugin:
    entry: Entry
    point: importlib.metadata.EntryPoint
    loaded: Any = None


class Registry(Generic[F]):
    """A mapping from names to factories, filled by decorators and entry points.

    Args:
        kind: What the registry holds, in the singular (``"model"``), for messages.
        group: The entry-point group that installed plugins declare entries in.
        lister: How users list the names, quoted in the error for an unknown name.

    Example:
        >>> widgets = Registry("widget", group="example.widgets", lister="widgets()")
        >>> @widgets.register("Round-Widget")
        ... def round_widget(*, size: int = 1) -> str:
        ...     '''A round widget.'''
        ...     return "o" * size
        >>> widgets.create("round_widget", size=3)
        'ooo'
        >>> widgets.names()
        ['round_widget']
    """

    def __init__(self, kind: str, *, group: str, lister: str) -> None:
        self.kind = kind
        self.group = group
        self.lister = lister
        self._local: dict[str, tuple[Entry, F]] = {}
        self._plugins: dict[str, _Plugin] | None = None

    def register(self, name: str, *, override: bool = False) -> Callable[[F], F]:
        """Return a decorator that registers a factory under ``name``.

        Args:
            name: The name to register; it is normalised with :func:`normalize_name`.
            override: Replace an entry already registered under that name instead of
                raising.

        Returns:
            A decorator that registers the factory and returns it unchanged.

        Raises:
            InvalidArgumentError: If the name is taken and ``override`` is false, or
                the name is not valid.
        """
        key = normalize_name(name)

        def decorator(factory: F) -> F:
            if not callable(factory):
                raise InvalidArgumentError(
                    f"Invalid value for argument `factory`. Expected a callable. "
                    f"Received: factory={factory!r}"
                )
            if key in self._local and not override:
                taken = self._local[key][0]
                raise InvalidArgumentError(
                    f"The {self.kind} name {key!r} is already registered by {taken.target} "
                    f"({taken.origin}). Pass override=True to replace it."
                )
            module = getattr(factory, "__module__", "") or ""
            origin = BUILTIN if module.split(".")[0] == "mnistkit" else LOCAL
            target = f"{module}:{getattr(factory, '__qualname__', repr(factory))}"
            entry = Entry(key, origin, target, _first_line(factory.__doc__))
            self._local[key] = (entry, factory)
            return factory

        return decorator

    def unregister(self, name: str) -> None:
        """Remove a name registered in this process (plugins stay installed).

        Args:
            name: The registered name.

        Raises:
            UnknownNameError: If no factory is registered under that name in this
                process.
        """
        key = normalize_name(name)
        if key not in self._local:
            raise self._unknown(key)
        del self._local[key]

    def refresh(self) -> None:
        """Forget the discovered plugins, so the next use reads entry points again."""
        self._plugins = None

    def names(self, pattern: str | None = None) -> list[str]:
        """Return the registered names, sorted, optionally filtered by a glob pattern.

        Args:
            pattern: An :mod:`fnmatch` pattern such as ``"*cnn*"``; ``None`` keeps all.

        Returns:
            The matching names, sorted.
        """
        return [entry.name for entry in self.entries(pattern)]

    def entries(self, pattern: str | None = None) -> list[Entry]:
        """Return an :class:`Entry` for each registered name, sorted by name.

        Args:
            pattern: An :mod:`fnmatch` pattern; ``None`` keeps all.

        Returns:
            The entries; plugins are described from metadata, without import.
        """
        found = {name: entry for name, (entry, _) in self._local.items()}
        for name, plugin in self._discover().items():
            if name in found:
                local = found[name]
                note = (
                    f"plugin {plugin.entry.distribution} also declares {name!r}; "
                    f"the {local.origin} entry wins"
                )
                found[name] = _with_note(local, note)
            else:
                found[name] = plugin.entry
        names = sorted(found)
        if pattern is not None:
            names = [n for n in names if fnmatch.fnmatchcase(n, _normalize_pattern(pattern))]
        return [found[n] for n in names]

    def entry(self, name: str) -> Entry:
        """Return the :class:`Entry` registered under ``name``.

        Args:
            name: A registered name, in any form :func:`normalize_name` accepts.

        Returns:
            The entry.

        Raises:
            UnknownNameError: If the name is not registered.
        """
        key = normalize_name(name)
        for entry in self.entries():
            if entry.name == key:
                return entry
        raise self._unknown(key)

    def get(self, name: str) -> F:
        """Return the factory registered under ``name``, importing its plugin if needed.

        Args:
            name: A registered name, in any form :func:`normalize_name` accepts.

        Returns:
            The factory.

        Raises:
            UnknownNameError: If the name is not registered.
            PluginError: If the plugin that declares the name fails to import or does
                not define the factory it names.
        """
        key = normalize_name(name)
        if key in self._local:
            return self._local[key][1]
        plugin = self._discover().get(key)
        if plugin is None:
            raise self._unknown(key)
        if plugin.loaded is None:
            plugin.loaded = self._load(plugin)
        return plugin.loaded  # type: ignore[no-any-return]

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Call the factory registered under ``name`` with keyword arguments.

        Args:
            name: A registered name.
            **kwargs: Passed to the factory; each must be a parameter it accepts.

        Returns:
            What the factory returns.

        Raises:
            UnknownNameError: If the name is not registered.
            InvalidArgumentError: If the factory does not accept one of ``kwargs``.
            PluginError: If the entry's plugin fails to import.
        """
        factory = self.get(name)
        key = normalize_name(name)
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # builtins without a signature: let them check
            return self._call(key, factory, kwargs)
        try:
            signature.bind(**kwargs)
        except TypeError as error:
            accepted = [
                p.name
                for p in signature.parameters.values()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            listed = ", ".join(accepted) if accepted else "none"
            raise InvalidArgumentError(
                f"The {self.kind} {key!r} does not accept those arguments ({error}). "
                f"Accepted arguments: {listed}."
            ) from None
        return self._call(key, factory, kwargs)

    def loadable(self, pattern: str | None = None, *, stacklevel: int = 2) -> dict[str, F]:
        """Return the factory of each registered name, importing the plugins that declare them.

        A plugin that fails to import is left out with one :class:`PluginLoadWarning`
        naming it, so that one broken plugin does not hide the others.

        Args:
            pattern: An :mod:`fnmatch` pattern; ``None`` keeps all.
            stacklevel: Where the warning points, as for :func:`warnings.warn`, counted
                from the caller of this method.

        Returns:
            The factories by name, sorted by name.
        """
        factories: dict[str, F] = {}
        for name in self.names(pattern):
            try:
                factories[name] = self.get(name)
            except PluginError as error:
                warnings.warn(
                    f"{error}; it is left out.", PluginLoadWarning, stacklevel=stacklevel + 1
                )
        return factories

    def _call(self, key: str, factory: F, kwargs: dict[str, Any]) -> Any:
        """Call a factory; a plugin's failure becomes a :class:`PluginError` naming it."""
        if key in self._local:
            return factory(**kwargs)
        try:
            return factory(**kwargs)
        except MnistkitError:
            raise
        except Exception as error:
            plugin = self._discover()[key].entry
            raise PluginError(
                f"The {self.kind} {key!r} from plugin {plugin.distribution} failed: "
                f"{type(error).__name__}: {error}"
            ) from error

    def plugin_modules(self) -> set[str]:
        """Return the top-level packages of every installed plugin, without importing them."""
        return {p.point.module.split(".")[0] for p in self._discover().values()}

    def _unknown(self, key: str) -> UnknownNameError:
        known = self.names()
        close = difflib.get_close_matches(key, known, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        listing = ", ".join(known) if known else "none"
        return UnknownNameError(
            f"Unknown {self.kind} {key!r}.{hint} Registered {self.kind}s: {listing}. "
            f"List them with {self.lister}."
        )

    def _discover(self) -> dict[str, _Plugin]:
        if self._plugins is not None:
            return self._plugins
        found: dict[str, _Plugin] = {}
        points = sorted(
            importlib.metadata.entry_points(group=self.group),
            key=lambda p: (_dist_label(p), p.name),
        )
        for point in points:
            try:
                key = normalize_name(point.name)
            except InvalidArgumentError:
                warnings.warn(
                    f"Ignoring {self.kind} entry point {point.name!r} of {_dist_label(point)}: "
                    "not a valid name.",
                    PluginConflictWarning,
                    stacklevel=2,
                )
                continue
            entry = Entry(
                key, PLUGIN, point.value, _dist_summary(point), distribution=_dist_label(point)
            )
            if key in self._local:
                winner = self._local[key][0]
                warnings.warn(
                    f"Plugin {entry.distribution} declares the {self.kind} {key!r}, which is "
                    f"already {winner.origin} ({winner.target}); the {winner.origin} entry "
                    "wins and the plugin's is ignored.",
                    PluginConflictWarning,
                    stacklevel=2,
                )
                found.setdefault(key, _Plugin(entry, point))
                continue
            if key in found:
                first = found[key]
                warnings.warn(
                    f"Plugins {first.entry.distribution} and {entry.distribution} both declare "
                    f"the {self.kind} {key!r}; {first.entry.distribution} wins (first by "
                    "distribution name) and the other is ignored.",
                    PluginConflictWarning,
                    stacklevel=2,
                )
                note = f"also declared by plugin {entry.distribution}, which is ignored"
                found[key] = _Plugin(_with_note(first.entry, note), first.point, first.loaded)
                continue
            found[key] = _Plugin(entry, point)
        self._plugins = found
        return found

    def _load(self, plugin: _Plugin) -> F:
        entry = plugin.entry
        try:
            factory = plugin.point.load()
        except SystemExit as error:  # the plugin would end the program as it is imported
            raise PluginError(
                f"The {self.kind} {entry.name!r} from plugin {entry.distribution} could not "
                f"be loaded from {entry.target!r}: importing it called sys.exit({error.code!r})."
            ) from None
        except Exception as error:
            raise PluginError(
                f"The {self.kind} {entry.name!r} from plugin {entry.distribution} could not "
                f"be loaded from {entry.target!r}: {type(error).__name__}: {error}"
            ) from error
        if not callable(factory):
            raise PluginError(
                f"The {self.kind} {entry.name!r} from plugin {entry.distribution} points at "
                f"{entry.target!r}, which is not callable."
            )
        return factory  # type: ignore[no-any-return]


def _normalize_pattern(pattern: str) -> str:
    return re.sub(r"[-\s]+", "_", pattern.strip().lower())


def _with_note(entry: Entry, note: str) -> Entry:
    return Entry(
        entry.name,
        entry.origin,
        entry.target,
        entry.summary,
        entry.distribution,
        (*entry.notes, note),
    )


def _dist_label(point: importlib.metadata.EntryPoint) -> str:
    dist = point.dist
    if dist is None:
        return "an unknown distribution"
    return f"{dist.name} {dist.version}"


def _dist_summary(point: importlib.metadata.EntryPoint) -> str:
    dist = point.dist
    meta: Mapping[str, Any] | None = dist.metadata if dist is not None else None  # type: ignore[assignment]
    summary = (meta.get("Summary") if meta is not None else None) or ""
    return str(summary)
