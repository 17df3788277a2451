"""The source distribution carries what it needs to check itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NEEDED = [
    "README.md",
    "LICENSE",
    "CHANGELOG.md",
    "tox.ini",
    "pyproject.toml",
    "tests/conftest.py",
    "tests/distributed_run.py",
    "tests/test_samples.py",
    "examples/reproduce_tutorial.py",
    "examples/mnistkit-plugin-example/pyproject.toml",
    "docs/conf.py",
    "docs/_inv/python.inv",
    "tools/make_samples.py",
    "src/mnistkit/data/mnist.npz",
    "src/mnistkit/data/samples/samples.json",
]
# What a fresh checkout does not have (.gitignore): a stale *.egg-info/SOURCES.txt, in
# particular, would add the files it lists to the sdist whatever MANIFEST.in says.
UNTRACKED = shutil.ignore_patterns(
    ".git",
    ".tox",
    ".venv",
    "venv",
    "*.egg-info",
    "_build",
    "generated",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "build",
    "dist",
    "runs",
    "results",
)
# Tests that read tests/conftest.py, tools/ and examples/ besides the installed package.
FROM_INSIDE = [
    "tests/test_samples.py::test_the_shipped_pictures_are_what_the_script_makes",
    "tests/test_examples.py",
]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=300, check=False, env=os.environ
    )


@pytest.mark.slow
def test_the_sdist_runs_its_own_tests_against_the_installed_package(tmp_path: Path) -> None:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("not run from a source tree")
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT, checkout, ignore=UNTRACKED)
    build = run(
        sys.executable,
        "-c",
        f"from setuptools import build_meta; print(build_meta.build_sdist({str(tmp_path)!r}))",
        cwd=checkout,
    )
    assert build.returncode == 0, build.stderr
    archive = tmp_path / build.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as sdist:
        # The "data" filter refuses links and paths out of the folder (Python 3.10.12+).
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        sdist.extractall(tmp_path / "unpacked", **safe)
    (unpacked,) = (tmp_path / "unpacked").iterdir()

    names = {path.relative_to(unpacked).as_posix() for path in unpacked.rglob("*")}
    assert set(NEEDED) <= names, sorted(set(NEEDED) - names)
    assert not [name for name in names if "__pycache__" in name or name.startswith("docs/_build")]

    where = run(sys.executable, "-c", "import mnistkit; print(mnistkit.__file__)", cwd=unpacked)
    assert where.returncode == 0, where.stderr
    assert not Path(where.stdout.strip()).is_relative_to(unpacked)
    tests = run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *FROM_INSIDE, cwd=unpacked
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert " passed" in tests.stdout


def test_a_plain_install_brings_matplotlib_for_the_plots_of_a_run() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    names = [requirement.split(">")[0].split("=")[0] for requirement in project["dependencies"]]
    assert "matplotlib" in names  # `mnistkit train softmax` then draws the README's plots
    assert project["optional-dependencies"]["plots"] == []  # the old extra still resolves
