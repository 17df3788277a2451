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
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
    "gallery_hooks",
    "api_coverage",
    "argparse_reference",
    "docstring_checks",
    "illustrations",
    "weights_table",
]

source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "_ext",
    "_inv",
    "_measurements.rst",
    "_figures",
    "gallery/backreferences",
    "Thumbs.db",
    ".DS_Store",
]
nitpicky = True
default_role = "py:obj"

# -- Autodoc and napoleon ---------------------------------------------------------------------

# Types in the signatures, one parameter a line once a signature outgrows the page; the
# Args sections say what each parameter means.
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
autodoc_class_signature = "mixed"
python_maximum_signature_line_length = 68
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
# it). A newer full objects.inv dropped in under the same name works as well. Keras and
# TensorFlow publish none: keras.inv and tensorflow.inv map the names these pages use
# to keras.io and tensorflow.org (_inv/make_keras_inv.py writes them).
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(HERE / "_inv" / "python.inv")),
    "numpy": ("https://numpy.org/doc/stable", str(HERE / "_inv" / "numpy.inv")),
    "keras": ("https://keras.io/api/", str(HERE / "_inv" / "keras.inv")),
    "tensorflow": (
        "https://www.tensorflow.org/api_docs/python/",
        str(HERE / "_inv" / "tensorflow.inv"),
    ),
}
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
html_static_path = ["_static"]
html_css_files = ["mnistkit.css"]

# The copy button leaves out prompts (">>> ", "... ", "$ ") and, in a console or
# doctest block, the output lines that follow a command.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_exclude = ".linenos, .gp, .go"

# -- Examples gallery -------------------------------------------------------------------------

# The scripts of examples/ whose names start with plot_ run when the pages are built (a
# minute or two on a CPU in all), and their output and pictures go on the pages of
# gallery/, with each script to download as a .py file and a notebook. A script runs
# again only when it changes. reproduce_tutorial.py (a quarter of an hour) and the plugin
# package stay out. Pages show some of the pictures: gallery/images/sphx_glr_NAME_NNN.png
# is the NNN-th picture that examples/NAME.py draws.
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "gallery",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"reproduce_tutorial\.py|mnistkit-plugin-example",
    "within_subsection_order": "gallery_hooks.ReadingOrder",
    "image_scrapers": ("matplotlib", "gallery_hooks.png_scraper"),
    "reset_modules": ("matplotlib", "gallery_hooks.reset_keras"),
    "doc_module": ("mnistkit",),
    "backreferences_dir": "gallery/backreferences",
    "exclude_implicit_doc": {r"mnistkit\.errors\..*"},
    "remove_config_comments": True,
    "capture_repr": (),
    "abort_on_example_error": True,
    "min_reported_time": 1,
    "write_computation_times": False,
    "show_signature": False,
}


def _public_name(target: str) -> str | None:
    """Return the public name of a Keras or TensorFlow class that a signature names.

    A signature names a class where it is defined (``keras.src.models.model.Model``,
    ``tensorflow.python.data.ops.dataset_ops.DatasetV2``); both libraries record the
    public names they export it under, which the inventories list.
    """
    if target.startswith("np."):
        return "numpy." + target.removeprefix("np.")
    if target.startswith("tensorflow."):
        target = "tf." + target.removeprefix("tensorflow.")
    if not target.startswith(("keras.src.", "tf.python.")):
        return target
    module_name, _, name = target.rpartition(".")
    module = sys.modules.get(module_name.replace("tf.", "tensorflow.", 1))
    value = getattr(module, name, None)
    keras_names = getattr(value, "_api_export_path", None)
    if keras_names is not None:
        # keras.Layer is also keras.layers.Layer: the longer name is keras.io's.
        names = [keras_names] if isinstance(keras_names, str) else list(keras_names)
        return max(names, key=len)
    # TensorFlow lists a class's main name first (tf.Tensor, then its aliases).
    tf_names = getattr(value, "_tf_api_names", ())
    return "tf." + tf_names[0] if tf_names else target


def _by_public_name(app: Any, env: Any, node: Any, contnode: Any) -> None:
    """Point a reference at the public name of its target, before intersphinx looks."""
    target = node.get("reftarget", "")
    public = _public_name(target)
    if public is not None and public != target:
        node["reftarget"] = public


def setup(app: Any) -> None:
    app.connect("missing-reference", _by_public_name, priority=100)
