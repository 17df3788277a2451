"""Tests of the ``mnistkit`` command line.

Most run it in this process through :func:`mnistkit.cli.main` (the ``run_main`` fixture),
which spares each the import of TensorFlow; those about what only a new process shows
(Ctrl-C, TensorFlow's start-up log, what a command imports) run ``python -m mnistkit``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

import mnistkit
from mnistkit.cli import build_parser

if TYPE_CHECKING:
    from conftest import Plugins, RunMain

COMMANDS = ["train", "evaluate", "predict", "models", "datasets", "samples"]
RUN_FILES = [
    "model.keras",
    "metrics.json",
    "history.csv",
    "run.json",
    "learning_curves.png",
    "confusion_matrix.png",
    "misclassified.png",
]


def run_cli(
    *args: str | os.PathLike[str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m mnistkit ARGS`` in a new process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mnistkit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mnistkit: error: ")
    return lines[0]


# ---------------------------------------------------------------- help, version, listings


def test_help_lists_every_command_and_examples(run_main: RunMain) -> None:
    result = run_main("--help")

    assert result.returncode == 0
    for command in COMMANDS:
        assert f"\n    {command} " in result.stdout
    assert "examples:" in result.stdout


def test_help_examples_align_their_comments_in_one_column() -> None:
    epilog = build_parser().epilog or ""
    examples = [line for line in epilog.splitlines() if line.startswith("  mnistkit ")]

    columns = {
        len(line) - len(line.split("   ")[-1].lstrip()) for line in examples if "   " in line
    }
    assert len(examples) > 5
    assert len(columns) == 1, columns


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str, run_main: RunMain) -> None:
    result = run_main(command, "--help")

    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: mnistkit {command} ")
    assert "examples:" in result.stdout


def test_version_prints_the_package_version(run_main: RunMain) -> None:
    result = run_main("--version")

    assert result.returncode == 0
    assert result.stdout.strip() == f"mnistkit {mnistkit.__version__}"


def test_parser_gives_every_option_a_help_text() -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    parsers = [parser, *commands.choices.values()]  # type: ignore[union-attr]

    for each in parsers:
        assert each.epilog or each.description, each.prog
        for action in each._actions:
            assert action.help, f"{each.prog} {action.option_strings or action.dest}"


def test_quick_commands_do_not_import_tensorflow() -> None:
    script = (
        "import contextlib, io, sys\n"
        "from mnistkit.cli import main\n"
        "import tempfile\n"
        "folder = tempfile.mkdtemp()\n"
        "for argv in (['--help'], ['--version'], ['models'], ['datasets'], ['samples', folder]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_models_lists_the_built_ins_with_origin_and_summary(run_main: RunMain) -> None:
    result = run_main("models")

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ORIGIN", "SUMMARY"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) >= {"softmax", "deep_cnn"}
    assert "built-in  Softmax regression" in rows["softmax"]


def test_models_json_with_recipes_gives_the_default_recipe(run_main: RunMain) -> None:
    result = run_main("models", "soft*", "--json", "--recipes")

    assert result.returncode == 0
    (record,) = json.loads(result.stdout)
    assert record["name"] == "softmax"
    assert record["origin"] == "built-in"
    assert record["recipes"]["default"]["learning_rate"] == 0.5


def test_datasets_lists_mnist_as_built_in(run_main: RunMain) -> None:
    text = run_main("datasets")
    records = json.loads(run_main("datasets", "--json").stdout)

    assert text.returncode == 0
    assert text.stdout.splitlines()[1].split()[:2] == ["mnist", "built-in"]
    assert [(r["name"], r["origin"]) for r in records] == [("mnist", "built-in")]


@pytest.mark.filterwarnings("default::mnistkit.PluginConflictWarning")  # as outside pytest
def test_models_shows_plugins_and_notes_a_name_clash(plugins: Plugins, run_main: RunMain) -> None:
    plugins.install(
        "clashing-plugin",
        {
            "mnistkit.models": {
                "softmax": "clashing_plugin:softmax",
                "wide_mlp": "clashing_plugin:wide",
            }
        },
        summary="Two models.",
    )

    result = run_main("models")

    assert result.returncode == 0, result.stderr
    assert "wide_mlp  plugin (clashing-plugin 1.0)  Two models." in result.stdout
    assert "note: plugin clashing-plugin 1.0 also declares 'softmax'" in result.stdout
    warning = result.stderr.strip().splitlines()
    assert len(warning) == 1
    assert warning[0].startswith("mnistkit: warning: Plugin clashing-plugin 1.0 declares")


# ---------------------------------------------------------------- user mistakes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "softmx"], "Did you mean 'softmax'?"),
        (["train", "softmax", "--dataset", "mnits"], "Unknown dataset 'mnits'"),
        (["train", "softmax", "--keep-prob", "1.5"], "--keep-prob: expected a float in (0, 1]"),
        (["train", "softmax", "--steps", "0"], "--steps: expected a positive integer"),
        (["train", "softmax", "--batch-size", "ten"], "--batch-size: expected a positive"),
        (["train", "softmax", "--learning-rate", "0"], "--learning-rate: expected a positive"),
        (["train", "softmax", "--seed", "-1"], "--seed: expected an integer from 0 to"),
        (["train", "softmax", "--seed", "4294967296"], "--seed: expected an integer from 0 to"),
        (["train", "softmax", "--output", ""], "--output: expected a folder"),
        (["train", "softmax", "--steps", "5", "--epochs", "1"], "not allowed with argument"),
        (["train", "softmax", "--recipe", "fast"], "has no recipe 'fast'"),
        (["train", "softmax", "--resume"], "--resume: needs --output DIR"),
        (["train", "softmax", "--processes", "2"], "need --coordinator, --process-id as well"),
        (["train", "softmax", "--coordinator", "nohost"], "--coordinator: expected an address"),
        (["train", "softmax", "--coordinator", "h:0"], "--coordinator: expected an address"),
        (["train", "softmax", "--processes", "0"], "--processes: expected a positive integer"),
        (
            ["train", "softmax", "--coordinator", "h:1", "--processes", "2", "--process-id", "2"],
            "--process-id: expected an id from 0 to 1; received 2",
        ),
        (
            [
                "train",
                "softmax",
                "--coordinator",
                "h:1",
                "--processes",
                "2",
                "--process-id",
                "0",
                "--strategy",
                "mirrored",
            ],
            "--strategy: not allowed with --processes",
        ),
        (
            [
                "train",
                "softmax",
                "--output",
                "run",
                "--resume",
                "--coordinator",
                "h:1",
                "--processes",
                "2",
                "--process-id",
                "1",
            ],
            "--resume: not supported yet with --processes",
        ),
        (["evaluate", "m.keras", "--dataset", "nope"], "Unknown dataset 'nope'"),
        (["predict", "m.keras"], "required: IMAGE"),
        (["fly"], "invalid choice: 'fly'"),
        ([], "required: COMMAND"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, run_main: RunMain
) -> None:
    line = assert_one_line_error(run_main(*args), 2)

    assert message in line


def test_missing_model_file_is_a_failure_without_traceback(
    tmp_path: Path, run_main: RunMain
) -> None:
    line = assert_one_line_error(run_main("evaluate", tmp_path / "none.keras"), 1)

    assert "none.keras: no such model file" in line


def test_a_file_that_is_not_a_model_is_a_failure(tmp_path: Path, run_main: RunMain) -> None:
    path = tmp_path / "model.keras"
    path.write_text("hello")

    line = assert_one_line_error(run_main("evaluate", path, "--json"), 1)

    assert "not a .keras model file" in line


def test_missing_image_is_a_failure(tmp_path: Path, run_main: RunMain) -> None:
    line = assert_one_line_error(run_main("predict", tmp_path / "m.keras", tmp_path / "7.png"), 1)

    assert "7.png: no such image file" in line


@pytest.mark.parametrize(
    ("flag", "env"), [(["--debug"], {}), ([], {"MNISTKIT_DEBUG": "1"})], ids=["flag", "env"]
)
def test_debug_shows_the_traceback(
    flag: list[str],
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_main: RunMain,
) -> None:
    monkeypatch.delenv("MNISTKIT_DEBUG", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    result = run_main(*flag, "evaluate", tmp_path / "none.keras")

    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "DataNotFoundError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("mnistkit: error: ")


def test_train_refuses_a_folder_that_holds_a_run(tmp_path: Path, run_main: RunMain) -> None:
    (tmp_path / "metrics.json").write_text("{}")

    line = assert_one_line_error(run_main("train", "softmax", "--output", tmp_path), 1)

    assert "already holds a run" in line
    assert "--resume" in line


def test_resuming_a_finished_run_says_there_is_nothing_to_resume(
    tmp_path: Path, run_main: RunMain
) -> None:
    (tmp_path / "metrics.json").write_text("{}")

    line = assert_one_line_error(run_main("train", "softmax", "--output", tmp_path, "--resume"), 1)

    assert "nothing to resume" in line


# ---------------------------------------------------------------- with a trained model


@pytest.fixture(scope="session")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A softmax regression trained for 300 steps (about 90% on the test digits)."""
    from mnistkit import Trainer, load_dataset

    trainer = Trainer("softmax", seed=0)
    trainer.fit(load_dataset("mnist").train, steps=300, verbose=0)
    return trainer.save(tmp_path_factory.mktemp("model") / "softmax.keras")


def _ink_on_paper(digit: np.ndarray, at: tuple[int, int]) -> np.ndarray:
    """A white-on-black MNIST digit drawn 2x larger in dark ink on a 90x70 page."""
    page = np.zeros((90, 70), np.uint8)
    top, left = at
    page[top : top + 56, left : left + 56] = np.kron(digit, np.ones((2, 2), np.uint8))
    return (255 - 0.85 * page).astype(np.uint8)


@pytest.mark.slow
def test_predict_json_reads_digits_drawn_in_ink(
    model_file: Path, mnist_arrays: tuple[np.ndarray, ...], tmp_path: Path, run_main: RunMain
) -> None:
    import tensorflow as tf

    x_test, y_test = mnist_arrays[2], mnist_arrays[3]
    model = mnistkit.load_model(model_file)
    logits = model.predict(x_test[:40, ..., None] / 255.0, verbose=0)
    readable = np.flatnonzero(logits.argmax(axis=1) == y_test[:40])
    chosen = readable[:6]
    paths = []
    for number, index in enumerate(chosen):
        page = _ink_on_paper(x_test[index], at=[(2, 3), (30, 12), (12, 0)][number % 3])
        encode = tf.io.encode_png if number % 2 else tf.io.encode_jpeg
        path = tmp_path / f"digit{number}.{'png' if number % 2 else 'jpg'}"
        path.write_bytes(encode(page[..., None]).numpy())
        paths.append(path)

    result = run_main("predict", model_file, *paths, "--json")

    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["file"] for r in records] == [str(p) for p in paths]
    assert all(0.0 <= r["probability"] <= 1.0 for r in records)
    right = sum(r["label"] == y_test[i] for r, i in zip(records, chosen, strict=True))
    assert right >= len(chosen) - 1, (records, y_test[chosen])


@pytest.mark.slow
def test_evaluate_json_reports_what_the_trainer_measures(model_file: Path) -> None:
    from mnistkit import Trainer, load_dataset

    expected = Trainer(mnistkit.load_model(model_file)).evaluate(load_dataset("mnist").test)

    result = run_cli("evaluate", model_file, "--json")

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)
    assert record["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert record["examples"] == 10_000
    assert result.stderr == ""  # TensorFlow's start-up log is held back


# ---------------------------------------------------------------- train


@pytest.mark.slow
def test_train_writes_a_complete_run_folder_that_evaluate_agrees_with(
    tmp_path: Path, run_main: RunMain
) -> None:
    folder = tmp_path / "run"

    result = run_main("train", "softmax", "--steps", "20", "--seed", "3", "--output", folder)

    assert result.returncode == 0, result.stderr
    assert "step 0, training accuracy" in result.stdout
    assert result.stdout.count("Run folder:") == 1
    assert f"Run folder: {folder}" in result.stdout
    assert f"Saved in {folder}: model.keras, metrics.json, history.csv" in result.stdout
    for name in RUN_FILES:
        assert (folder / name).is_file(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_seconds", "data_checksum", "versions"):
        assert key in metrics
    assert (metrics["steps"], metrics["batch_size"], metrics["seed"]) == (20, 100, 3)
    assert metrics["recipe"]["optimizer"] == "sgd"
    assert metrics["recipe"]["steps"] == 20
    assert metrics["recipe_name"] == "default"
    assert set(metrics["versions"]) >= {"tensorflow", "keras", "mnistkit"}
    assert f"Test accuracy {metrics['test_accuracy']:.4f}" in result.stdout
    history = (folder / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,")
    assert [row.split(",")[0] for row in history[1:]] == [str(s) for s in range(0, 21, 2)]
    assert mnistkit.read_metadata(folder / "model.keras")["seed"] == 3

    evaluated = run_main("evaluate", folder / "model.keras", "--json")

    assert json.loads(evaluated.stdout)["accuracy"] == metrics["test_accuracy"]


@pytest.mark.slow
def test_train_without_matplotlib_succeeds_and_says_how_to_get_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_main: RunMain
) -> None:
    for name in [n for n in sys.modules if n.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes every import of it fail
    folder = tmp_path / "run"

    result = run_main("train", "softmax", "--steps", "5", "--output", folder)

    assert result.returncode == 0, result.stderr
    assert "pip install 'mnistkit[plots]'" in result.stdout
    assert (folder / "metrics.json").is_file()
    assert not list(folder.glob("*.png"))


def test_unknown_optimizer_is_a_usage_error_before_tensorflow_loads(
    tmp_path: Path, run_main: RunMain
) -> None:
    result = run_main("train", "softmax", "--optimizer", "adamm", "--output", tmp_path / "run")

    line = assert_one_line_error(result, 2)
    assert "argument --optimizer" in line
    assert "'adamm'" in line
    assert "'adam'," in line  # the valid names are listed


@pytest.mark.slow
@pytest.mark.usefixtures("default_sigint")
def test_interrupted_train_exits_130_and_resumes_to_the_end(
    tmp_path: Path, run_main: RunMain
) -> None:
    folder = tmp_path / "run"
    command = ["train", "softmax", "--steps", "3000", "--batch-size", "50", "--log-every", "500"]
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistkit", *command, "--output", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("step 0,"):
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    printed = stderr.strip().splitlines()[-1].strip()
    expected = [sys.executable, "-m", "mnistkit", *command, "--output", str(folder), "--resume"]
    assert shlex.split(printed) == expected
    assert not (folder / "metrics.json").exists()
    interrupted_at = json.loads((folder / "checkpoints" / "state.json").read_text())["step"]
    assert 0 <= interrupted_at < 3000

    changed = run_main("train", "softmax", "--steps", "5000", "--output", folder, "--resume")

    assert "keeps its settings (steps: the run has 3000, given 5000)" in assert_one_line_error(
        changed, 1
    )

    resumed = run_main("train", "softmax", "--output", folder, "--resume")  # settings kept

    assert resumed.returncode == 0, resumed.stderr
    assert "(resuming)" in resumed.stdout
    metrics: dict[str, Any] = json.loads((folder / "metrics.json").read_text())
    assert (metrics["steps"], metrics["batch_size"]) == (3000, 50)
    assert metrics["test_accuracy"] > 0.9  # about 0.91, as the softmax recipe gives
    steps = [int(row.split(",")[0]) for row in (folder / "history.csv").read_text().split()[1:]]
    assert steps == sorted(set(steps))
    assert steps[-1] == 3000


def test_samples_writes_pictures_that_predict_reads(tmp_path: Path, run_main: RunMain) -> None:
    result = run_main("samples", tmp_path / "digits", "--style", "mnist")

    assert result.returncode == 0, result.stderr
    written = sorted((tmp_path / "digits").glob("*.png"))
    assert [path.name for path in written] == [f"{digit}-mnist.png" for digit in range(10)]
    assert f"{tmp_path / 'digits' / '7-mnist.png'}  7" in result.stdout
    assert f"mnistkit predict MODEL {tmp_path / 'digits' / '*.png'}" in result.stdout
    assert "a model name such as deep_cnn" in result.stdout


@pytest.mark.usefixtures("tiny_digits")  # 50 test digits to evaluate, not 10,000
def test_a_keep_prob_with_many_digits_trains_at_that_value(
    tmp_path: Path, run_main: RunMain
) -> None:
    from mnistkit import get_keep_prob, load_model

    folder = tmp_path / "run"
    train = ["train", "deep_cnn", "--dataset", "tiny_digits", "--batch-size", "10"]
    result = run_main(*train, "--keep-prob", "0.123456789", "--steps", "2", "--output", folder)
    assert result.returncode == 0, result.stderr
    model = load_model(folder / "model.keras")
    assert np.float32(get_keep_prob(model)) == np.float32(0.123456789)
    recorded = json.loads((folder / "run.json").read_text())["settings"]["recipe"]["keep_prob"]
    assert recorded == 0.123456789


def test_a_keep_prob_for_a_model_without_dropout_is_a_usage_error(
    tmp_path: Path, run_main: RunMain
) -> None:
    result = run_main(
        "train", "softmax", "--keep-prob", "0.5", "--steps", "2", "--output", tmp_path / "run"
    )
    assert "has no dropout layer" in assert_one_line_error(result, 2)
