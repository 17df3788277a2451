"""The docs' scripts that import Keras themselves quiet TensorFlow first."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GALLERY = sorted((ROOT / "examples").glob("plot_*.py"))
TENSORFLOW = ("keras", "tensorflow")


def _first_tensorflow_import(tree: ast.Module) -> int | None:
    for node in tree.body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        if any(name.split(".")[0] in TENSORFLOW for name in names):
            return node.lineno
    return None


def _first_quiet_call(tree: ast.Module) -> int | None:
    for node in tree.body:
        if isinstance(node, ast.Expr) and "quiet_tensorflow" in ast.unparse(node):
            return node.lineno
    return None


@pytest.mark.parametrize("script", GALLERY, ids=[path.name for path in GALLERY])
def test_gallery_script_quiets_tensorflow_before_importing_it(script: Path) -> None:
    tree = ast.parse(script.read_text())

    imported = _first_tensorflow_import(tree)
    if imported is not None:
        quieted = _first_quiet_call(tree)
        assert quieted is not None, f"{script.name} imports Keras without quiet_tensorflow()"
        assert quieted < imported


def test_custom_model_page_quiets_tensorflow_before_importing_keras() -> None:
    page = (ROOT / "docs" / "custom-models-and-plugins.rst").read_text()

    keras_at = re.search(r">>> import keras\b", page)
    quiet_at = page.find("quiet_tensorflow()")
    assert keras_at is not None
    assert 0 <= quiet_at < keras_at.start()
