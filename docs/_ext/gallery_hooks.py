"""Hooks for the examples gallery (sphinx-gallery), named by ``docs/conf.py``.

The examples draw two kinds of pictures: matplotlib figures, which sphinx-gallery's own
scraper collects, and PNG files that :mod:`mnistkit.plots` writes into the working
directory, which :func:`png_scraper` collects. :func:`reset_keras` frees each example's
models before the next one runs. :func:`add_minigallery` ends the API entry of each
function or class that an example uses with that example's thumbnail.

As an extension, it also keeps Markdown out of the sources: myst_parser, loaded to
include ``CHANGELOG.md``, declares ``.md`` a source suffix, and sphinx-gallery would then
take ``examples/mnistkit-plugin-example/README.md`` for the header of a gallery section.
No page is written in Markdown.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx_gallery.scrapers import figure_rst


def png_scraper(block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
    """Move the PNG files a code block wrote into the gallery, in the order written.

    sphinx-gallery runs each example in its own folder (``examples/``), so a file that
    an example writes there is one of its pictures; moving it keeps that folder clean.
    """
    written = sorted(Path.cwd().glob("*.png"), key=lambda path: path.stat().st_mtime_ns)
    images = []
    for path, target in zip(written, block_vars["image_path_iterator"], strict=False):
        shutil.move(path, target)
        images.append(target)
    return figure_rst(images, gallery_conf["src_dir"])


def reset_keras(gallery_conf: dict[str, Any], fname: str) -> None:
    """Drop the models, layers and names Keras keeps from one example to the next."""
    keras = sys.modules.get("keras")
    if keras is not None:
        keras.utils.clear_session(free_memory=True)


#: The examples in reading order: the data, the two tutorials' models, then the rest.
ORDER = (
    "plot_sample_digits.py",
    "plot_softmax.py",
    "plot_deep_cnn.py",
    "plot_mc_dropout.py",
    "plot_custom_model.py",
    "plot_early_stopping.py",
    "plot_ensemble.py",
    "plot_your_own_digit.py",
)


class ReadingOrder:
    """Sort the examples as :data:`ORDER` lists them; others follow, by file name."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __repr__(self) -> str:  # sphinx-gallery compares configurations by their repr
        return "<ReadingOrder>"

    def __call__(self, filename: str) -> tuple[int, str]:
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)


@functools.cache
def _examples_using(index: Path) -> dict[str, Any]:
    """Return the gallery's index of which examples use which documented name."""
    return json.loads(index.read_text()) if index.is_file() else {}


def add_minigallery(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """End the entry of a function or class that examples use with their thumbnails."""
    folder = Path(app.srcdir) / app.config.sphinx_gallery_conf["backreferences_dir"]
    used = _examples_using(folder / "backreferences_all.json")
    if what in ("function", "class", "exception") and name in used:
        lines += ["", ".. rubric:: Examples using it", "", f".. minigallery:: {name}", ""]


def _rst_sources_only(app: Sphinx, config: Config) -> None:
    config.source_suffix.pop(".md", None)


def setup(app: Sphinx) -> dict[str, Any]:
    # After Sphinx merges the suffixes that extensions declare (priority 800).
    app.connect("config-inited", _rst_sources_only, priority=900)
    app.connect("autodoc-process-docstring", add_minigallery)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
