"""Sphinx configuration of the mnistkit documentation.

Build with ``tox -e docs``, or by hand from the repository root::

    sphinx-build -W -n --keep-going -b html docs docs/_build/html
    sphinx-build -W -n --keep-going -b doctest docs docs/_build/doctest

The build needs no network: the intersphinx inventories are files in ``_inv/``.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path
from typing import Any

from mnistkit.quiet import quiet_tensorflow

# Before autodoc imports TensorFlow, so its start-up chatter stays out of the build log.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
quiet_tensorflow()

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))

project = "mnistkit"
author = "The mnistkit developers"
copyright = "the mnistkit developers"
release = importlib.metadata.version("mnistkit")
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_parser",
    "api_coverage",
    "argparse_reference",
    "docstring_checks",
    "weights_table",
]

source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "_inv", "_measurements.rst", "Thumbs.db", ".DS_Store"]
nitpicky = True
default_role = "py:obj"

# -- Autodoc and napoleon ---------------------------------------------------------------------

autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True
autosummary_generate = False
python_use_unqualified_type_names = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = True

# -- Cross-references -------------------------------------------------------------------------

# Local inventories, so the build works offline: python.inv is the objects.inv of the
# Python 3.11 documentation (from Debian's python3.11-doc package); numpy.inv holds the
# entries of NumPy's objects.inv that these pages link to (_inv/make_numpy_inv.py writes
# it). A newer full objects.inv dropped in under the same name works as well.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(HERE / "_inv" / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable", str(HERE / "_inv" / "numpy.inv")),
}

# Keras and TensorFlow publish no Sphinx inventory: their types are named, not linked.
nitpick_ignore_regex = [
    (r"py:.*", r"(keras|tf|tensorflow)(\..+)?"),
]
# A signature whose annotations name a type imported only for type checkers (keras) is
# shown as written, so a ``Path`` beside it stays unqualified and cannot be linked.
nitpick_ignore = [("py:class", "Path")]

# -- Doctests ---------------------------------------------------------------------------------

# Each page's examples run in a namespace of their own, as a reader's session would: a
# guide page imports what it uses, and an API page's ``testsetup`` imports the names its
# docstrings use. Nothing here trains, and TensorFlow's start-up logging stays quiet.
doctest_global_setup = """
import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
"""
doctest_test_doctest_blocks = "default"

# -- HTML -------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"mnistkit {release}"
html_theme_options = {"navigation_with_keys": True}


def _numpy_by_its_name(app: Any, env: Any, node: Any, contnode: Any) -> None:
    """Point ``np.ndarray`` at ``numpy.ndarray`` before intersphinx looks it up.

    A module that imports Keras only for type checkers leaves its annotations as
    written, so ``np.ndarray`` reaches the cross-referencer under NumPy's alias.
    """
    target = node.get("reftarget", "")
    if target.startswith("np."):
        node["reftarget"] = "numpy." + target.removeprefix("np.")


def setup(app: Any) -> None:
    app.connect("missing-reference", _numpy_by_its_name, priority=100)
