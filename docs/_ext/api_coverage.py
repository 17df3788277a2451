"""Keep the API reference complete, and link names by their public path.

mnistkit re-exports its public names from the package: ``mnistkit.build`` is defined in
:mod:`mnistkit.models`. The reference documents each such name once, under its public
path. A docstring written inside a module still names things as that module sees them
(``:meth:`Split.next_batch``` in :mod:`mnistkit.datasets`, or
``:func:`~mnistkit.recipes.with_recipes```); when such a reference finds no entry of its
own, this extension points it at the public entry. A reference to a type variable, which
signatures such as ``Callable[[F], F]`` make, is shown as plain text.

After reading, it warns (so ``-W`` fails the build) about every public module without a
``.. module::`` entry, and every name in the ``__all__`` of a public module (the package
included) that has an entry in no public module offering that same object.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any, TypeVar

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.util import logging
from sphinx.util.nodes import make_refnode

PACKAGE = "mnistkit"
logger = logging.getLogger(__name__)


def _public_candidates(node: pending_xref) -> list[str]:
    """Return the names a reference may mean, as the package re-exports them."""
    target = node["reftarget"].lstrip(".~")
    module = node.get("py:module") or ""
    cls = node.get("py:class") or ""
    written = [target]
    if module:
        written += [f"{module}.{cls}.{target}"] if cls else []
        written += [f"{module}.{target}"]
    found = []
    for name in written:
        parts = name.split(".")
        if parts[0] != PACKAGE:
            continue
        found += [".".join([PACKAGE, *parts[i:]]) for i in range(2, len(parts))]
    return found


def _is_type_variable(target: str) -> bool:
    module_name, _, name = target.rpartition(".")
    module = sys.modules.get(module_name)
    return module is not None and isinstance(getattr(module, name, None), TypeVar)


def _unique_suffix_match(objects: dict[str, Any], target: str) -> str | None:
    """Return the one documented ``mnistkit`` name ending in ``.target``, if only one does."""
    suffix = "." + target.lstrip(".~")
    found = [name for name in objects if name.startswith(PACKAGE + ".") and name.endswith(suffix)]
    return found[0] if len(found) == 1 else None


def resolve_reexported(
    app: Sphinx, env: BuildEnvironment, node: pending_xref, contnode: nodes.Element
) -> nodes.Element | None:
    if node.get("refdomain") != "py":
        return None
    if _is_type_variable(node["reftarget"]):
        return contnode  # a signature's type variable: shown, with nothing to link to
    objects = env.get_domain("py").objects
    found = [name for name in _public_candidates(node) if name in objects]
    # A docstring shown under another module's name names things as its own module does.
    name = found[0] if found else _unique_suffix_match(objects, node["reftarget"])
    if name is None:
        return None
    entry = objects[name]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def _public_modules() -> list[str]:
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def check_coverage(app: Sphinx, env: BuildEnvironment) -> None:
    domain: Any = env.get_domain("py")
    modules = {name: importlib.import_module(name) for name in _public_modules()}
    for module_name, module in modules.items():
        if module_name not in domain.modules:
            logger.warning("API reference: module %s has no entry", module_name, type="api")
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            # Documented here, or wherever else a public module offers the same object.
            places = [
                other
                for other, holder in modules.items()
                if getattr(holder, name, None) is value and name in getattr(holder, "__all__", ())
            ]
            if not any(f"{place}.{name}" in domain.objects for place in places):
                logger.warning("API reference: %s.%s has no entry", module_name, name, type="api")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve_reexported)
    app.connect("env-check-consistency", check_coverage)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
