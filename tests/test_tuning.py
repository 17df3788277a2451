"""``mnistkit tune`` and :func:`mnistkit.tune`: trials, records, resuming, shared studies."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mnistkit import (
    Datasets,
    InvalidArgumentError,
    MissingDependencyError,
    Recipe,
    Split,
    Trainer,
    register_dataset,
)
from mnistkit.datasets import DATASETS
from mnistkit.errors import DataFormatError, DataNotFoundError
from mnistkit.recipe_files import is_recipe_file, read_provenance, read_recipe_file
from mnistkit.tuning import search_space

optuna = pytest.importorskip("optuna", reason="mnistkit[tune] is not installed")
from mnistkit.tuning import tune  # noqa: E402 - after the skip: it imports Optuna

# A few hundred steps of softmax regression: a trial takes a second or two.
QUICK = ("--trials", "3", "--steps", "30")


class WatchedSplit(Split):
    """A split that records each read of its images or labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        super().__init__(images, labels, seed=0)
        self.reads = 0

    @property
    def images(self) -> np.ndarray:  # type: ignore[override]
        self.reads += 1
        return super().images

    @property
    def raw_images(self) -> np.ndarray:
        self.reads += 1
        return super().raw_images

    @property
    def labels(self) -> np.ndarray:
        self.reads += 1
        return super().labels


@pytest.fixture
def watched_test_split(mnist_arrays: Any) -> Iterator[WatchedSplit]:
    """A dataset ``watched``, MNIST whose test split counts its reads."""
    x_train, y_train, x_test, y_test = mnist_arrays
    arrays = Datasets.from_arrays(x_train, y_train, x_test, y_test)
    test = WatchedSplit(x_test, y_test)

    @register_dataset("watched")
    def watched() -> Datasets:
        """MNIST; the test split counts its reads."""
        return Datasets(arrays.train, arrays.validation, test, source="watched")

    yield test
    DATASETS.unregister("watched")


def study_of(folder: Path) -> Any:
    storage = optuna.storages.RDBStorage(f"sqlite:///{folder / 'study.db'}")
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def test_a_search_prints_its_trials_and_writes_the_plots_and_a_recipe_that_trains(
    run_main: Any, tmp_path: Path
) -> None:
    folder = tmp_path / "search"
    result = run_main("tune", "softmax", *QUICK, "--output", folder)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    trial_lines = [line for line in lines if line.startswith("trial ")]
    assert [line.split(" [")[1].split("]")[0] for line in trial_lines] == ["1/3", "2/3", "3/3"]
    assert all("learning_rate=" in line and "best 0." in line for line in trial_lines)
    assert any(line.startswith("Test accuracy of the winner, measured once") for line in lines)
    for name in ("best_recipe.json", "optimization_history.png", "param_importances.png"):
        assert (folder / name).stat().st_size > 0, name

    recipe_file = folder / "best_recipe.json"
    provenance = read_provenance(recipe_file)
    winner = study_of(folder).best_trial
    assert provenance["trial"] == winner.number
    assert provenance["validation_accuracy"] == pytest.approx(winner.value)
    assert 0.5 < provenance["test_accuracy"] <= 1.0
    assert provenance["seed"] == 0
    assert provenance["command"].startswith("mnistkit tune softmax")
    assert {"keras", "backend"} <= set(provenance["versions"])
    assert set(provenance["cpu"]) == {"model", "flags"}
    recipe = read_recipe_file(recipe_file)
    assert recipe.learning_rate == pytest.approx(winner.params["learning_rate"])
    assert recipe.batch_size == winner.params["batch_size"]
    assert recipe.steps == 30

    trained = run_main("train", "softmax", "--recipe", recipe_file, "--output", tmp_path / "run")
    assert trained.returncode == 0, trained.stderr
    assert "Recipe tuned:" in trained.stdout
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["settings"]["recipe"]["learning_rate"] == recipe.learning_rate
    assert Trainer("softmax", recipe=Recipe.from_file(recipe_file)).recipe.label == "tuned"


def test_the_test_split_is_read_only_once_the_search_is_over(
    watched_test_split: WatchedSplit, tmp_path: Path
) -> None:
    reads_after_each_trial = []

    def after_trial(study: Any, trial: Any) -> None:
        reads_after_each_trial.append(watched_test_split.reads)

    result = tune("softmax", dataset="watched", trials=3, steps=5, output=tmp_path,
                  callbacks=[after_trial], verbose=0)  # fmt: skip
    assert reads_after_each_trial == [0, 0, 0]
    assert watched_test_split.reads > 0
    assert result.test_accuracy is not None


def test_the_same_call_resumes_a_finished_search_without_training_again(tmp_path: Path) -> None:
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    first = tune("softmax", trials=2, steps=5, output=tmp_path, verbose=0)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    again = tune("softmax", trials=2, steps=5, output=tmp_path, verbose=0)
    assert (again.trial, again.validation_accuracy) == (first.trial, first.validation_accuracy)
    assert len(study_of(tmp_path).trials) == 2
    more = tune("softmax", trials=3, steps=5, output=tmp_path, verbose=0)
    assert more.trials == 3
    assert len(study_of(tmp_path).trials) == 3


def test_a_study_started_with_other_settings_is_refused(tmp_path: Path) -> None:
    tune("softmax", trials=1, steps=5, output=tmp_path, verbose=0)
    with pytest.raises(InvalidArgumentError, match=r"was started with another seed; "):
        tune("softmax", trials=1, steps=5, seed=1, output=tmp_path, verbose=0)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"momentum": [0.9]}, r"names 'momentum', which is not a setting a search can vary"),
        ({"learning_rate": {"low": 0.5, "high": 0.1}}, r"'learning_rate' range is empty"),
        ({"batch_size": []}, r"'batch_size' has no values"),
        ({"batch_size": [50, 100_000]}, r"'batch_size' goes up to 100000, more than the 55,000"),
        ({"keep_prob": {"low": 0.5, "high": 1.5}}, r"'keep_prob' holds 1.5, which a recipe"),
        ({"learning_rate": {"low": 0, "high": 1, "log": True}}, r"log scale, so its low end"),
        ({"shift": {"low": 0, "high": 2.5}}, r"'shift' takes whole numbers"),
        ({"steps": [10], "epochs": [1]}, r"varies both `steps` and `epochs`"),
    ],
)
def test_a_bad_search_space_is_refused_before_any_trial(
    tmp_path: Path, space: dict[str, Any], message: str
) -> None:
    file = tmp_path / "space.json"
    file.write_text(json.dumps(space))
    with pytest.raises(InvalidArgumentError, match=message):
        tune("softmax", space=file, trials=1, output=tmp_path / "search", verbose=0)
    assert not (tmp_path / "search").exists()


def test_a_space_file_in_toml_narrows_the_space(tmp_path: Path) -> None:
    file = tmp_path / "space.toml"
    file.write_text('learning_rate = {low = 0.1, high = 0.2}\nbatch_size = 64\nschedule = "none"\n')
    space = search_space("softmax", file=file)
    assert space.describe() == "learning_rate 0.1 to 0.2, batch_size 64, schedule none"
    result = tune("softmax", space=file, trials=2, steps=5, output=tmp_path / "s", verbose=0)
    assert 0.1 <= result.recipe.learning_rate <= 0.2
    assert result.recipe.batch_size == 64


def test_a_malformed_space_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "space.toml"
    file.write_text("learning_rate = {low = 0.1}\n")
    with pytest.raises(DataFormatError, match=r"space.toml: 'learning_rate' must be a range"):
        tune("softmax", space=file, trials=1, output=tmp_path / "s", verbose=0)


def test_without_optuna_the_command_names_the_extra(
    run_main: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "optuna", None)
    result = run_main("tune", "softmax", "--output", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "mnistkit: error: Searching recipes needs optuna, which is not installed: "
        "pip install 'mnistkit[tune]'"
    )
    with pytest.raises(MissingDependencyError, match=r"mnistkit\[tune\]"):
        tune("softmax", output=tmp_path)


def test_recipe_arguments_follow_one_rule(run_main: Any, tmp_path: Path) -> None:
    assert is_recipe_file("fast") is False
    assert is_recipe_file("mine.TOML") is True
    missing = run_main("train", "softmax", "--recipe", tmp_path / "gone.json")
    assert missing.returncode == 1
    assert missing.stderr.strip().endswith("gone.json: no such file.")
    unknown = run_main("train", "deep_cnn", "--recipe", "fastest")
    assert unknown.returncode == 2
    assert "its recipes: best, default, fast (or give a .json or .toml recipe file)" in (
        unknown.stderr
    )
    toml = tmp_path / "mine.toml"
    toml.write_text('[recipe]\noptimizer = "sgd"\nlearning_rate = 0.5\nsteps = 3\n')
    assert read_recipe_file(toml).describe() == "sgd at 0.5, 3 steps of 32"
    toml.write_text('optimizer = "sgd"\n')
    with pytest.raises(DataFormatError, match=r"has no \[recipe\] table"):
        read_recipe_file(toml)
    with pytest.raises(DataNotFoundError, match=r"a folder, not a recipe file"):
        read_recipe_file(tmp_path)


# ------------------------------------------------------------------ processes


def start_search(folder: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "mnistkit", "tune", "softmax", "--output", str(folder), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_running_trial(folder: Path, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / "study.db").exists():
            try:
                study = study_of(folder)
            except Exception:  # the search is still making its tables
                study = None
            running = [t for t in study.trials if t.state.name == "RUNNING"] if study else []
            if running and running[0].number >= 1 and running[0].params:  # training
                return running[0].number
        time.sleep(0.2)
    raise AssertionError("no trial started in time")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_stopped_search_resumes_and_tries_the_stopped_trial_again(
    tmp_path: Path, how: str
) -> None:
    # Long trials (2,000 steps), so that the signal lands inside one.
    command = ("--trials", "3", "--steps", "2000", "--no-pruning")
    search = start_search(tmp_path, *command)
    stopped = wait_for_running_trial(tmp_path)
    search.send_signal(getattr(signal, how))
    out, err = search.communicate(timeout=120)
    if how == "SIGTERM":
        assert search.returncode == 143, out + err
        assert "terminated; finished trials are kept. Resume the search with:" in err
    else:
        assert search.returncode == -signal.SIGKILL
    params = study_of(tmp_path).trials[stopped].params

    resumed = start_search(tmp_path, *command)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert f"trial {stopped} tried again" in out
    trials = study_of(tmp_path).trials
    assert trials[stopped].state.name == "FAIL"
    retries = [t for t in trials if t.user_attrs.get("retry_of") == stopped]
    assert len(retries) == 1
    assert retries[0].params == params
    assert retries[0].state.name == "COMPLETE"
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of its own for the test, from Debian's ``postgresql`` package."""
    servers = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not servers:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg (the PostgreSQL driver) is not installed")
    bin = servers[-1].parent
    # PostgreSQL refuses to run as root: run it as Debian's postgres user there.
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    data = Path(tempfile.mkdtemp(prefix="mnistkit-pg-"))
    if as_owner:
        shutil.chown(data, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = functools.partial(subprocess.run, check=True, capture_output=True)
    try:
        run([*as_owner, bin / "initdb", "-D", data / "db", "-A", "trust", "-U", "mnistkit"])
        options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
        run([*as_owner, bin / "pg_ctl", "-D", data / "db", "-l", data / "log", "-w", "-o",
             options, "start"])  # fmt: skip
        yield f"postgresql://mnistkit@127.0.0.1:{port}/postgres"
    finally:
        stop = [*as_owner, bin / "pg_ctl", "-D", data / "db", "-m", "immediate", "stop"]
        subprocess.run(stop, capture_output=True, check=False)
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["journal", "postgresql"])
def test_two_processes_share_one_study(tmp_path: Path, kind: str, request: Any) -> None:
    if kind == "journal":
        url = str(tmp_path / "study.journal")
        storage: Any = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(url)
        )
    else:
        url = storage = request.getfixturevalue("postgres_url")
    common = ("--trials", "4", "--steps", "200", "--storage", url)
    searches = [start_search(tmp_path / name, *common) for name in ("a", "b")]
    outputs = [search.communicate(timeout=600) for search in searches]
    for search, (_, err) in zip(searches, outputs, strict=True):
        assert search.returncode == 0, err
    study = optuna.load_study(study_name="softmax-default", storage=storage)
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))
    assert 4 <= len(numbers) <= 5
    pids = {t.user_attrs["process"]["pid"] for t in study.trials}
    assert pids == {search.pid for search in searches}
    found = [read_provenance(tmp_path / name / "best_recipe.json") for name in "ab"]
    complete = {t.number: t.value for t in study.trials if t.state.name == "COMPLETE"}
    assert all(complete[f["trial"]] == f["validation_accuracy"] for f in found)
    assert max(f["validation_accuracy"] for f in found) == study.best_value
    assert not (tmp_path / "a" / "study.db").exists()


def test_a_journal_storage_needs_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder.journal").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"folder.journal is a folder"):
        tune("softmax", storage=tmp_path / "folder.journal", output=tmp_path / "s", verbose=0)
    with pytest.raises(InvalidArgumentError, match=r"Expected a journal file \(PATH.journal\)"):
        tune("softmax", storage=tmp_path / "study.txt", output=tmp_path / "s", verbose=0)
    assert not (tmp_path / "s").exists()


def test_a_registered_model_without_a_declared_space_is_searched_from_its_recipe(
    tmp_path: Path,
) -> None:
    import keras

    from mnistkit import register_model, with_recipes
    from mnistkit.models import MODELS

    @register_model("tiny_dense")
    @with_recipes(default=Recipe(optimizer="sgd", learning_rate=0.1, steps=5, batch_size=50))
    def tiny_dense() -> keras.Model:
        """A dense layer to 10 logits."""
        inputs = keras.Input((28, 28, 1))
        return keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))

    try:
        space = search_space("tiny_dense")
        assert [d.name for d in space.dimensions] == [
            "learning_rate", "batch_size", "schedule", "label_smoothing"
        ]  # fmt: skip
        result = tune("tiny_dense", trials=2, output=tmp_path, verbose=0)
        assert 0.01 <= result.recipe.learning_rate <= 1.0
        assert result.recipe.batch_size in (25, 50, 100)
    finally:
        MODELS.unregister("tiny_dense")
