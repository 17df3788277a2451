"""Keep the API reference complete, and link names by their public path.

mnistkit re-exports its public names from the package: ``mnistkit.build`` is defined in
:mod:`mnistkit.models`. The reference documents each such name once, under its public
path. A docstring written inside a module still names things as that module sees them
(``:meth:`Split.next_batch``` in :mod:`mnistkit.datasets`, or
``:func:`~mnistkit.recipes.with_recipes```); when such a reference finds no entry of its
own, this extension points it at the public entry. A reference to a type variable, which
signatures such as ``Callable[[F], F]`` make, is shown as plain text.

The same holds for the ``[docs]`` links of the highlighted source pages (viewcode):
viewcode names every object of a module after the first module it saw documenting one
of them, so ``deep_cnn``, documented as ``mnistkit.models.deep_cnn``, was linked as
``mnistkit.deep_cnn``. Each link is pointed at the entry that documents the object.

After reading, it warns (so ``-W`` fails the build) about every public module without a
``.. module::`` entry, and every name in the ``__all__`` of a public module (the package
included) that has an entry in no public module offering that same object.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
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


_BACKLINK = re.compile(r'(<a class="viewcode-back" href=")([^"#]*)#([^"]+)(")')


def _documented_entry(objects: dict[str, Any], docname: str, name: str) -> Any:
    """Return the entry, on page ``docname``, of the object a source page calls ``name``."""
    suffix = "." + name
    found = [
        entry
        for full, entry in objects.items()
        if entry.docname == docname and (full.endswith(suffix) or full == name)
    ]
    if not found and name.endswith(".__init__"):  # documented with its class
        return _documented_entry(objects, docname, name.removesuffix(".__init__"))
    # A class is also listed under its canonical name, an alias of the same entry.
    return found[0] if len({entry.node_id for entry in found}) == 1 else None


def fix_source_backlinks(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Point each ``[docs]`` link of a highlighted source page at the object's entry."""
    if not pagename.startswith("_modules/") or "body" not in context:
        return
    modname = pagename.removeprefix("_modules/").replace("/", ".")
    entry = getattr(app.env, "_viewcode_modules", {}).get(modname)
    if not entry:
        return
    refname = entry[3]
    objects = app.env.get_domain("py").objects
    pages = {app.builder.get_relative_uri(pagename, docname): docname for docname in
             app.env.found_docs}  # fmt: skip

    def relink(match: re.Match[str]) -> str:
        docname = pages.get(match.group(2))
        name = match.group(3).removeprefix(refname + ".")
        documented = None if docname is None else _documented_entry(objects, docname, name)
        if documented is None:
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}#{documented.node_id}{match.group(4)}"

    context["body"] = _BACKLINK.sub(relink, context["body"])


def follow_imported(app: Sphinx, modname: str, attribute: str) -> str | None:
    """Keep a named tuple's generated methods in the module that defines the tuple.

    Their ``__module__`` is ``namedtuple_<Name>``, which is no module: viewcode would
    list it on the index of source pages, with a link to a page that does not exist.
    """
    from sphinx.ext.viewcode import _get_full_modname

    found = _get_full_modname(modname, attribute)
    return modname if found is not None and found.startswith("namedtuple_") else found


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("missing-reference", resolve_reexported)
    app.connect("html-page-context", fix_source_backlinks)
    app.connect("viewcode-follow-imported", follow_imported)
    app.connect("env-check-consistency", check_coverage)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
