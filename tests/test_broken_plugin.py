"""A plugin whose module fails to import, installed for real: the listings go past it.

The plugin is pip-installed into a folder of the test's own, seen only by the fresh
interpreters that the tests start, so nothing stays installed after them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "mnistkit-broken-plugin"
version = "0.1.0"
description = "A plugin whose module cannot be imported."

[project.entry-points."mnistkit.models"]
broken_net = "mnistkit_broken_plugin.models:broken_net"

[tool.setuptools.packages.find]
where = ["src"]
"""

MODULE = """\
import mnistkit_broken_plugin_missing_dependency  # not installed: the import fails


def broken_net():
    raise AssertionError("never reached")
"""


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory, pip_install_target: Callable[[Path, Path], Path]
) -> Path:
    """A folder the broken plugin is pip-installed into."""
    work = tmp_path_factory.mktemp("broken-plugin")
    source = work / "source"
    package = source / "src" / "mnistkit_broken_plugin"
    package.mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(MODULE)
    return pip_install_target(source, work / "site")


def _run(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run Python in a fresh interpreter that sees the broken plugin."""
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=300
    )


LIST = """
    import json, warnings
    import mnistkit

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        everything = mnistkit.list_models()
        pretrained = mnistkit.list_models(pretrained=True)
    print(json.dumps({
        "all": everything,
        "pretrained": pretrained,
        "warnings": [(w.category.__name__, str(w.message)) for w in caught],
    }))
"""


def test_a_broken_plugin_is_one_warning_and_the_pretrained_models_are_listed(
    site: Path,
) -> None:
    result = _run(site, "-c", textwrap.dedent(LIST))

    assert result.returncode == 0, result.stderr[-4000:]
    listed = json.loads(result.stdout.strip().splitlines()[-1])
    assert "broken_net" in listed["all"]
    assert listed["pretrained"] == ["deep_cnn", "softmax"]
    ((category, message),) = listed["warnings"]
    assert category == "PluginLoadWarning"
    assert "'broken_net' from plugin mnistkit-broken-plugin 0.1.0" in message
    assert "mnistkit_broken_plugin_missing_dependency" in message


def test_models_pretrained_lists_past_a_broken_plugin(site: Path) -> None:
    result = _run(site, "-m", "mnistkit", "models", "--pretrained")

    assert result.returncode == 0, result.stderr[-4000:]
    assert "deep_cnn weights 'mnist'" in result.stdout
    assert "softmax weights 'mnist'" in result.stdout
    assert "broken_net" not in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith("mnistkit: warning: The model 'broken_net' from plugin ")


def test_hint_for_an_unknown_model_names_the_pretrained_ones_past_a_broken_plugin(
    site: Path,
) -> None:
    result = _run(site, "-m", "mnistkit", "evaluate", "no_such_model")

    assert result.returncode == 1
    warning, error = result.stderr.splitlines()
    assert warning.startswith("mnistkit: warning: The model 'broken_net' from plugin ")
    assert "neither a model file" in error
    assert error.endswith("a model with pretrained weights: deep_cnn, softmax.")


@pytest.mark.slow
def test_the_model_tests_do_not_run_over_an_unrelated_broken_plugin(site: Path) -> None:
    tests = Path(__file__).parent
    result = _run(
        site,
        "-m",
        "pytest",
        "--collect-only",
        "-q",
        "-p",
        "no:cacheprovider",
        str(tests / "test_models.py"),
    )

    assert result.returncode == 0, result.stdout[-4000:]
    assert "test_each_own_model_maps_a_batch_to_ten_finite_logits[softmax]" in result.stdout
    assert "broken_net" not in result.stdout
