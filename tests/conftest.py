"""Fixtures shared by the test modules: the embedded MNIST arrays, read once; Ctrl-C;
the command line run in this process; plugins installed on ``sys.path``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Set before any test imports TensorFlow, and inherited by the subprocesses tests start.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@pytest.fixture(scope="session")
def mnist_arrays() -> Arrays:
    """The embedded ``x_train, y_train, x_test, y_test``, as the ``mnist`` loader reads them."""
    from mnistkit import load_dataset

    return load_dataset("mnist").raw  # type: ignore[return-value]


@pytest.fixture(scope="session")
def small_arrays(mnist_arrays: Arrays) -> Arrays:
    """The first 100 training and 50 test images and labels of the embedded MNIST."""
    x_train, y_train, x_test, y_test = mnist_arrays
    return x_train[:100].copy(), y_train[:100].copy(), x_test[:50].copy(), y_test[:50].copy()


@pytest.fixture
def tiny_digits(small_arrays: Arrays) -> Iterator[Callable[..., Any]]:
    """A dataset registered as ``tiny_digits`` for one test: :func:`small_arrays`."""
    from mnistkit import Datasets, register_dataset
    from mnistkit.datasets import DATASETS

    @register_dataset("Tiny-Digits")
    def tiny_digits(*, validation_size: int = 10, one_hot: bool = False) -> Datasets:
        """The first 100 training and 50 test digits."""
        return Datasets.from_arrays(
            *small_arrays, validation_size=validation_size, one_hot=one_hot, source="tiny"
        )

    yield tiny_digits
    DATASETS.unregister("tiny_digits")


@pytest.fixture(scope="session")
def trained_softmax() -> Any:
    """A softmax model trained for 200 steps: about 90% test accuracy in seconds."""
    from mnistkit import Trainer, load_dataset

    trainer = Trainer("softmax", seed=0)
    trainer.fit(load_dataset("mnist").train, steps=200, verbose=0)
    return trainer.model


@pytest.fixture(scope="session")
def trained_deep_cnn() -> Any:
    """A deep CNN trained for 400 steps (about 95% test accuracy, under a minute)."""
    from mnistkit import Trainer, load_dataset

    trainer = Trainer("deep_cnn", seed=0)
    trainer.fit(load_dataset("mnist").train, steps=400, verbose=0)
    return trainer.model


@pytest.fixture
def default_sigint() -> Iterator[None]:
    """Ctrl-C raises ``KeyboardInterrupt`` during the test, here and in the processes it starts.

    A runner started with SIGINT ignored (``tox &`` in a script, ``nohup``) passes the
    ignored disposition on, and Python then leaves it ignored at start-up. Installing
    Python's handler here undoes that in this process; a process the test starts gets
    SIGINT's default action back at ``exec``, as it does for every caught signal, so its
    Python installs its own handler too. The previous handler comes back afterwards.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


RunMain = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_main(capfd: pytest.CaptureFixture[str]) -> RunMain:
    """``mnistkit ARGS`` run in this process by :func:`mnistkit.cli.main`.

    It returns what ``subprocess.run`` would: the exit status, and what was written to
    stdout and stderr, file descriptors included, during the call. It spares a test the
    5 to 15 seconds a new process takes to import TensorFlow; tests of what only a new
    process shows (signals, TensorFlow's start-up log, what an import loads) start one.
    """
    from mnistkit.cli import main

    def run(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
        argv = [os.fspath(arg) for arg in args]
        capfd.readouterr()
        try:
            status = main(argv)
        except SystemExit as stop:  # as the interpreter would end with it
            status = stop.code if isinstance(stop.code, int) else int(stop.code is not None)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(["mnistkit", *argv], status, out, err)

    return run


class Plugins:
    """Installs fake distributions (a dist-info folder and modules) on ``sys.path``."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self._root = root
        self._monkeypatch = monkeypatch
        self._modules: set[str] = set()

    def install(
        self,
        distribution: str,
        entry_points: dict[str, dict[str, str]],
        files: dict[str, str] | None = None,
        *,
        summary: str | None = None,
    ) -> Path:
        """Write ``distribution`` 1.0 into a folder of its own and put it first on sys.path."""
        site = self._root / distribution
        info = site / f"{distribution.replace('-', '_')}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n"
            f"Summary: {summary or f'Models of {distribution}.'}\n"
        )
        sections = [
            f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
            for group, points in entry_points.items()
        ]
        (info / "entry_points.txt").write_text("\n".join(sections))
        for relative, source in (files or {}).items():
            path = site / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(source))
            self._modules.add(Path(relative).parts[0].removesuffix(".py"))
        self._monkeypatch.syspath_prepend(str(site))
        _refresh_registries()
        return site

    def uninstall_all(self) -> None:
        """Take every fake distribution off sys.path, forget its modules, re-read plugins."""
        self._monkeypatch.undo()
        for name in list(sys.modules):
            if name.split(".")[0] in self._modules:
                del sys.modules[name]
        _refresh_registries()


def _refresh_registries() -> None:
    from mnistkit import datasets, models

    models.MODELS.refresh()
    datasets.DATASETS.refresh()


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Plugins]:
    """Install fake plugin distributions for one test; they are gone afterwards."""
    installed = Plugins(tmp_path, monkeypatch)
    yield installed
    installed.uninstall_all()


@pytest.fixture(scope="session")
def pip_install_target() -> Callable[[Path, Path], Path]:
    """Install a package's source into a folder of its own (``pip --target``), not the venv."""

    def install(source: Path, site: Path) -> Path:
        pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation"]
        installed = subprocess.run(
            [*pip, "--disable-pip-version-check", "--target", str(site), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert installed.returncode == 0, installed.stdout + installed.stderr
        return site

    return install
