"""The commands that take a model: the one rule for MODEL, pretrained weights by name,
``predict``'s per-image failures, non-finite models, and ``export`` and ``demo``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from mnistkit import build, model_weights, register_model, save_model
from mnistkit.cli import build_parser
from mnistkit.models import MODELS

if TYPE_CHECKING:
    from conftest import RunMain

QUICK = [["export", "--help"], ["demo", "--help"], ["models", "--pretrained"]]


def run_cli(*args: str | os.PathLike[str], timeout: float = 180) -> subprocess.CompletedProcess:
    """``python -m mnistkit ARGS`` in a new process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "mnistkit", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("mnistkit: error: ")
    return lines[0]


def write_png(path: Path, image: np.ndarray) -> Path:
    import tensorflow as tf

    path.write_bytes(tf.io.encode_png(np.asarray(image, np.uint8)[..., None]).numpy())
    return path


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, int]]:
    """The sample digits shipped with mnistkit that come from the test set, or, where none
    are shipped, the first test digit of each class written to PNG."""
    try:
        from mnistkit.samples import sample_images  # type: ignore[import-not-found]
    except ImportError:
        from mnistkit import load_dataset

        _, _, x_test, y_test = load_dataset("mnist").raw
        folder = tmp_path_factory.mktemp("digits")
        firsts = [int(np.flatnonzero(y_test == label)[0]) for label in range(10)]
        return [(write_png(folder / f"{i}.png", x_test[i]), int(y_test[i])) for i in firsts]
    return [(sample.path, sample.label) for sample in sample_images("mnist")]


@pytest.fixture(scope="module")
def nan_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = build("softmax")
    model.set_weights([np.full(w.shape, np.nan, np.float32) for w in model.weights])
    return save_model(model, tmp_path_factory.mktemp("nan") / "nan.keras")


# ---------------------------------------------------------------- help and the rule


@pytest.mark.parametrize("command", ["export", "demo"])
def test_new_commands_have_help_with_examples(command: str, run_main: RunMain) -> None:
    result = run_main(command, "--help")

    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: mnistkit {command} ")
    assert "examples:" in result.stdout


def test_help_and_pretrained_listing_do_not_import_tensorflow() -> None:
    script = (
        "import contextlib, io, sys\n"
        "from mnistkit.cli import main\n"
        f"for argv in {QUICK!r}:\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_export_offers_the_formats_the_export_module_writes() -> None:
    from mnistkit.export import FORMATS

    commands = next(a for a in build_parser()._actions if a.dest == "command")
    export = commands.choices["export"]  # type: ignore[index]
    option = next(a for a in export._actions if a.dest == "format")

    assert tuple(option.choices) == FORMATS


def test_models_pretrained_lists_each_weight_set_with_its_accuracy(run_main: RunMain) -> None:
    result = run_main("models", "--pretrained")

    assert result.returncode == 0, result.stderr
    accuracy = model_weights("deep_cnn")["mnist"].meta["test_accuracy"]
    assert f"deep_cnn weights 'mnist': {accuracy:.2%} test accuracy, recipe 'best'" in result.stdout
    assert "softmax weights 'mnist'" in result.stdout


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("deep_cnnn", "deep_cnnn: neither a model file (no such file) nor a registered model name. "
                      "Did you mean 'deep_cnn'?"),
        ("runs/cnn/model", "runs/cnn/model: neither a model file"),
        ("missing.keras", "missing.keras: no such model file"),
    ],
)  # fmt: skip
def test_a_model_neither_file_nor_name_is_a_one_line_error(
    model: str, message: str, run_main: RunMain
) -> None:
    line = one_line_error(run_main("evaluate", model))

    assert message in line
    assert "with pretrained weights: deep_cnn, softmax" in line or model.endswith(".keras")


def test_a_folder_as_model_points_at_its_model_file(tmp_path: Path, run_main: RunMain) -> None:
    save_model(build("softmax"), tmp_path / "model.keras")

    line = one_line_error(run_main("evaluate", tmp_path))

    assert f"is a folder, not a .keras model file (did you mean {tmp_path}/model.keras?)" in line


@pytest.fixture
def tiny_model() -> Iterator[str]:
    """A model registered in this process, without pretrained weights."""

    @register_model("tiny")
    def tiny() -> Any:
        """A tiny model."""
        import keras

        return keras.Sequential(
            [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]
        )

    yield "tiny"
    MODELS.unregister("tiny")


def test_a_model_without_pretrained_weights_is_a_one_line_error(
    tiny_model: str, tmp_path: Path, run_main: RunMain
) -> None:
    write_png(tmp_path / "x.png", np.zeros((28, 28)))

    line = one_line_error(run_main("predict", tiny_model, tmp_path / "x.png"))
    assert "The model 'tiny' has no pretrained weights: train it (`mnistkit train tiny`)" in line


# ---------------------------------------------------------------- pretrained, by name


@pytest.mark.slow
def test_predict_deep_cnn_reads_every_sample_digit_without_a_model_file(
    digits: list[tuple[Path, int]],
) -> None:
    result = run_cli("predict", "deep_cnn", *(path for path, _ in digits), "--json")

    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [record["label"] for record in records] == [label for _, label in digits]
    assert result.stderr == ""


@pytest.mark.slow
def test_evaluate_a_pretrained_name_scores_its_metadata_accuracy(run_main: RunMain) -> None:
    meta = model_weights("softmax")["mnist"].meta

    result = run_main("evaluate", "softmax", "--json")

    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["models"] == ["softmax"]
    assert abs(round((1 - record["accuracy"]) * 10_000) - meta["test_errors"]) <= 2


# ---------------------------------------------------------------- predict's failures


@pytest.mark.slow
def test_predict_prints_the_good_images_and_reports_each_bad_one(
    digits: list[tuple[Path, int]], tmp_path: Path, run_main: RunMain
) -> None:
    (good, label), (other, other_label) = digits[0], digits[1]
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    missing = tmp_path / "missing.png"

    result = run_main("predict", "softmax", good, broken, other, missing)

    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert [line.split()[:2] for line in lines] == [
        [str(good), str(label)],
        [str(other), str(other_label)],
    ]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2
    assert errors[0].startswith(f"mnistkit: error: {broken}: not an image in a format read here")
    assert errors[1] == f"mnistkit: error: {missing}: no such image file."


@pytest.mark.slow
def test_predict_refuses_non_finite_probabilities_and_keeps_json_valid(
    nan_model: Path, digits: list[tuple[Path, int]], run_main: RunMain
) -> None:
    result = run_main("predict", nan_model, digits[0][0], digits[1][0], "--json")

    assert json.loads(result.stdout) == []
    line = one_line_error(result)
    assert "gives non-finite probabilities (NaN or infinity) for all 2 images" in line


@pytest.mark.slow
def test_evaluate_refuses_non_finite_probabilities(nan_model: Path, run_main: RunMain) -> None:
    result = run_main("evaluate", nan_model, "--json")

    assert result.stdout == ""
    line = one_line_error(result)
    assert "gives non-finite probabilities (NaN or infinity) for 10,000 of 10,000" in line


# ---------------------------------------------------------------- export and demo


@pytest.mark.slow
@pytest.mark.extras
def test_export_a_pretrained_name_to_tflite_reports_the_check(
    tmp_path: Path, run_main: RunMain
) -> None:
    meta = model_weights("softmax")["mnist"].meta

    result = run_main("export", "softmax", tmp_path / "softmax.tflite", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["model"] == "softmax"
    assert report["format"] == "tflite"
    assert report["size_bytes"] == (tmp_path / "softmax.tflite").stat().st_size
    assert report["verified_on"] == 10_000
    assert report["keras_accuracy"] == pytest.approx(meta["test_accuracy"], abs=2e-4)
    assert report["max_difference"] <= 1e-4


def test_export_refuses_int8_but_for_tflite_as_a_usage_error(
    tmp_path: Path, run_main: RunMain
) -> None:
    result = run_main("export", "softmax", tmp_path / "m.onnx", "--quantize", "int8")

    assert result.returncode == 2
    assert result.stderr.startswith(
        "mnistkit: error: argument --quantize: int8 is for the tflite format only"
    )
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
@pytest.mark.usefixtures("default_sigint")
def test_demo_serves_a_pretrained_model_until_interrupted() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "mnistkit", "demo", "softmax", "--port", "0", "--samples", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert "(only this computer can open it)" in first, first
        url = first.split(" at ")[1].split(" ")[0]
        with urllib.request.urlopen(url + "info", timeout=30) as response:
            info = json.load(response)
        assert info["model"] == "softmax"
        assert info["parameters"] == 7850
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
