"""Bad input from a clumsy or hostile user: refused in one line, never silently taken.

Each test here pins a case found by trying mnistkit as such a user (the table of cases
and outcomes is in the docs' "What mnistkit guarantees" page): a builtin exception
escaping where a :class:`~mnistkit.MnistkitError` is promised, a traceback where a
one-line error is, or a bad value silently accepted and recorded.
"""

from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import pytest

from mnistkit import (
    DataFormatError,
    InvalidArgumentError,
    InvalidTypeError,
    MnistkitError,
    Predictor,
    Trainer,
    load_dataset,
)
from mnistkit.cli import main
from mnistkit.datasets import mnist, read_npz
from mnistkit.runs import Run

if TYPE_CHECKING:
    from conftest import Plugins, RunMain

PLUGINS = """
import sys

import numpy as np

from mnistkit import Datasets


def raising(**options):
    raise RuntimeError("the factory broke")


def wrong_type(**options):
    return [1, 2]


def empty_test(**options):
    x, y = np.zeros((20, 28, 28), np.uint8), np.arange(20, dtype=np.uint8) % 10
    return Datasets.from_arrays(x, y, x[:0], y[:0], validation_size=0)
"""


@pytest.fixture
def broken_plugins(plugins: Plugins) -> None:
    """An installed distribution declaring broken model and dataset plugins."""
    plugins.install(
        "broken-plugins",
        {
            "mnistkit.models": {
                "exiting": "broken_exit:factory",
                "raising": "broken_plugins:raising",
            },
            "mnistkit.datasets": {
                "wrong_type": "broken_plugins:wrong_type",
                "empty_test": "broken_plugins:empty_test",
            },
        },
        {"broken_plugins.py": PLUGINS, "broken_exit.py": "import sys\nsys.exit(0)\n"},
        summary="Broken.",
    )


def one_line(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mnistkit: error: ")
    return lines[0]


# ---------------------------------------------------------------- plugins


@pytest.mark.usefixtures("broken_plugins")
def test_a_plugin_that_calls_sys_exit_on_import_is_an_error_not_a_silent_exit(
    run_main: RunMain,
) -> None:
    line = one_line(run_main("train", "exiting", "--steps", "1"))

    assert "importing it called sys.exit(0)" in line


@pytest.mark.usefixtures("broken_plugins")
def test_models_with_recipes_lists_the_others_when_one_plugin_is_broken(
    run_main: RunMain,
) -> None:
    result = run_main("models", "--recipes")

    assert result.returncode == 1
    assert "softmax recipes:" in result.stdout
    assert "deep_cnn recipes:" in result.stdout
    assert "exiting recipes:\n  (unknown: its plugin failed to load)" in result.stdout
    assert result.stderr.strip().splitlines() == [
        "mnistkit: error: The model 'exiting' from plugin broken-plugins 1.0 could not be "
        "loaded from 'broken_exit:factory': importing it called sys.exit(0)."
    ]


@pytest.mark.slow
@pytest.mark.usefixtures("broken_plugins")
def test_a_plugin_factory_that_raises_is_a_plugin_error(run_main: RunMain) -> None:
    line = one_line(run_main("train", "raising", "--steps", "1"))

    assert "The model 'raising' from plugin broken-plugins 1.0 failed: RuntimeError" in line


@pytest.mark.slow
@pytest.mark.usefixtures("broken_plugins")
@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("wrong_type", "returned a list, not a Datasets"),
        ("empty_test", "has no test images"),
    ],
)
def test_a_broken_dataset_plugin_is_one_line_and_leaves_the_users_folder(
    tmp_path: Path, dataset: str, message: str, run_main: RunMain
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("the user's")

    line = one_line(run_main("train", "softmax", "--dataset", dataset, "--output", mine))

    assert message in line
    assert sorted(path.name for path in mine.iterdir()) == ["notes.txt"]


# ---------------------------------------------------------------- train's options


@pytest.mark.slow
@pytest.mark.parametrize(
    ("options", "status", "message"),
    [
        (["--keep-prob", "0.5"], 2, "the model 'softmax' has no dropout layer"),
        (["--batch-size", "1000000000"], 1, "Expected at most the 55,000 training examples"),
        (["--steps", "10" + "0" * 30], 1, "longer than the 2,147,483,647 steps a run may have"),
    ],
)
def test_train_options_a_run_cannot_use_are_refused_and_nothing_is_left(
    tmp_path: Path, options: list[str], status: int, message: str, run_main: RunMain
) -> None:
    result = run_main("train", "softmax", "--steps", "2", *options, "--output", tmp_path / "run")

    assert message in one_line(result, status)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_changed_learning_rate_or_optimizer_on_resume_is_refused(
    tmp_path: Path, run_main: RunMain
) -> None:
    recipe = {"optimizer": "sgd", "learning_rate": 0.5, "batch_size": 100, "steps": 50}
    with Run.start(
        "softmax", settings={"dataset": "mnist", "recipe": recipe}, command="", output=tmp_path
    ):
        pass

    changed = run_main(
        "train", "softmax", "--output", tmp_path, "--resume",
        "--learning-rate", "0.001", "--optimizer", "adam",
    )  # fmt: skip

    line = one_line(changed)
    assert "learning_rate: the run has 0.5, given 0.001" in line
    assert "optimizer: the run has 'sgd', given 'adam'" in line


@pytest.mark.slow
@pytest.mark.usefixtures("tiny_digits")  # 50 test digits to evaluate and plot, not 10,000
def test_an_unreadable_history_does_not_block_the_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "run"
    train = ["train", "softmax", "--dataset", "tiny_digits", "--steps", "20", "--batch-size", "10"]
    assert main([*train, "--log-every", "5", "--seed", "0", "--output", str(folder)]) == 0
    (folder / "metrics.json").unlink()  # as if interrupted while the plots were drawn
    (folder / "history.csv").write_bytes(b"step,loss\n1,2,3\n\xff")
    capsys.readouterr()

    assert main(["train", "softmax", "--output", str(folder), "--resume"]) == 0

    err = capsys.readouterr().err
    assert "mnistkit: warning: " in err
    assert "history.csv: not a training history" in err
    assert (folder / "history.csv.unreadable").read_bytes().endswith(b"\xff")
    assert (folder / "metrics.json").is_file()


# ---------------------------------------------------------------- the data API


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"seed": -5}, "seed"),
        ({"seed": "x"}, "seed"),
        ({"seed": 2**40}, "seed"),
        ({"source": 123}, "source"),
        ({"one_hot": "no"}, "one_hot"),
        ({"flatten": 1}, "flatten"),
    ],
)
def test_bad_loader_options_are_invalid_arguments(options: dict[str, Any], argument: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"argument `{argument}`"):
        mnist(**options)


def test_an_npz_that_is_text_says_so_without_numpys_pickle_advice(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_text("x_train,y_train\n1,2\n")

    with pytest.raises(DataFormatError, match="not an npz archive") as caught:
        read_npz(path)
    assert "pickle" not in str(caught.value)


def test_an_npz_header_claiming_730_gib_is_refused_without_allocating(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": (730 * 2**30,)}
    np.lib.format.write_array_header_1_0(buffer, header)
    path = tmp_path / "mnist.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for key in ("x_train", "y_train", "x_test", "y_test"):
            archive.writestr(f"{key}.npy", buffer.getvalue() + bytes(16))

    with pytest.raises(DataFormatError, match="array x_train cannot be read"):
        read_npz(path)


def test_a_loader_returning_another_type_is_an_invalid_type_error() -> None:
    from mnistkit.datasets import register_dataset, unregister_dataset

    @register_dataset("not_datasets")
    def not_datasets() -> Any:
        return {"train": None}

    try:
        with pytest.raises(InvalidTypeError, match="returned a dict, not a Datasets"):
            load_dataset("not_datasets")
    finally:
        unregister_dataset("not_datasets")


# ---------------------------------------------------------------- the Trainer


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    train = load_dataset("mnist", validation_size=0).train
    return train.images[:100], train.labels[:100]


def test_float_images_in_0_to_255_are_refused_not_trained_unscaled(data: Any) -> None:
    images, labels = data
    with pytest.raises(InvalidArgumentError, match=r"Expected float pixels in \[0, 1\]"):
        Trainer("softmax", seed=0).fit((images * 255.0, labels), steps=1, verbose=0)


@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_a_non_finite_pixel_is_refused_before_any_work_naming_its_image(
    data: Any, value: float
) -> None:
    images, labels = data
    poisoned = images.copy()
    poisoned[37].flat[300] = value
    trainer = Trainer("softmax", seed=0)
    before = [weight.numpy().copy() for weight in trainer.model.weights]
    expected = rf"Expected finite float pixels in \[0, 1\]\. Received: {value} in images\[37\]$"

    with pytest.raises(InvalidArgumentError, match=expected):
        trainer.fit((poisoned, labels), steps=5, batch_size=10, verbose=0)
    with pytest.raises(InvalidArgumentError, match=expected):
        Predictor(trainer.model).predict(poisoned)
    for old, weight in zip(before, trainer.model.weights, strict=True):
        np.testing.assert_array_equal(old, weight.numpy())


def test_empty_data_is_refused_by_fit_and_evaluate(data: Any) -> None:
    images, labels = data
    trainer = Trainer("softmax", seed=0)
    with pytest.raises(InvalidArgumentError, match="Expected at least one example"):
        trainer.fit((images[:0], labels[:0]), steps=1, verbose=0)
    with pytest.raises(InvalidArgumentError, match="Expected at least one example"):
        trainer.evaluate((images[:0], labels[:0]))


def test_a_callback_that_is_not_a_callback_is_refused_before_training(data: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="argument `callbacks`"):
        Trainer("softmax", seed=0).fit(data, steps=1, callbacks=[42], verbose=0)  # type: ignore[list-item]


def test_a_batch_larger_than_the_data_is_refused(data: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="Expected at most the 100 training examples"):
        Trainer("softmax", seed=0).fit(data, steps=1, batch_size=101, verbose=0)


def test_a_model_with_two_outputs_is_refused_with_its_shape() -> None:
    inputs = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(10)(flat), keras.layers.Dense(10)(flat)])

    with pytest.raises(MnistkitError):
        Trainer(model)


def test_json_of_a_run_is_valid_json_even_with_non_finite_numbers(tmp_path: Path) -> None:
    from mnistkit.records import write_json

    text = write_json(tmp_path / "m.json", {"loss": float("nan")}).read_text()

    assert json.loads(text) == {"loss": None}
