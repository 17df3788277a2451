"""Loading model files that are hostile or broken: refused in one line, nothing run.

Kept as they were found good: a ``Lambda`` layer (Python code in the file) is refused
by Keras's safe mode, and a module that no installed plugin declares is never imported,
whatever the file names. A class nobody registers and a ``Lambda`` are each one line,
with no advice to turn safe mode off. Bounded: the JSON members of a model file are
refused by the size the archive declares for them, before a byte is inflated.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from mnistkit import DataFormatError, DataNotFoundError, MnistkitError, build
from mnistkit.saving import load_model, read_metadata, save_model


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "softmax.keras"
    return save_model(build("softmax"), path, metadata={"seed": 3})


def _rewritten(source: Path, target: Path, **members: bytes) -> Path:
    """A copy of the model file with some members replaced or added."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename not in members:
                new.writestr(info, old.read(info))
        for name, content in members.items():
            new.writestr(name, content, compress_type=zipfile.ZIP_DEFLATED)
    return target


@pytest.fixture(scope="module")
def lambda_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.Lambda(lambda x: keras.ops.reshape(x, (-1, 784)))(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10)(outputs))
    path = tmp_path_factory.mktemp("lambda") / "lambda.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def unknown_class_file(model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with zipfile.ZipFile(model_file) as archive:
        config = json.loads(archive.read("config.json"))
    config["config"]["layers"][-1].update(
        class_name="Nobody", module="nobody_pkg.layers", registered_name="nobody_pkg>Nobody"
    )
    folder = tmp_path_factory.mktemp("unknown")
    return _rewritten(model_file, folder / "nobody.keras", **{"config.json": json.dumps(config)})


def test_a_lambda_layer_is_refused_in_one_line_without_advice_to_run_it(
    lambda_file: Path,
) -> None:
    with pytest.raises(DataFormatError, match="could not be loaded") as caught:
        load_model(lambda_file)

    message = str(caught.value)
    assert "holds Python code (layer 'lambda'), a Lambda layer" in message
    assert "\n" not in message
    assert "safe_mode" not in message
    assert "unsafe" not in message


def test_a_class_nobody_registers_is_named_in_one_line(unknown_class_file: Path) -> None:
    with pytest.raises(DataFormatError) as caught:
        load_model(unknown_class_file)

    message = str(caught.value)
    assert "uses the class 'Nobody' from module 'nobody_pkg.layers'" in message
    assert "nor any installed plugin registers" in message
    assert "\n" not in message
    assert "config" not in message


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_the_command_line_names_an_unloadable_class_in_one_line(
    command: str, lambda_file: Path, unknown_class_file: Path, tmp_path: Path
) -> None:
    image = tmp_path / "one.png"
    pixels = np.zeros((28, 28, 1), np.uint8)
    pixels[4:24, 12:16] = 255
    image.write_bytes(tf.io.encode_png(pixels).numpy())
    for path, expected in ((unknown_class_file, "'Nobody'"), (lambda_file, "Python code")):
        arguments = [path, image] if command == "predict" else [path]
        result = subprocess.run(
            [sys.executable, "-m", "mnistkit", command, *map(str, arguments)],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1, result.stderr
        assert len(lines) == 1, result.stderr
        assert expected in lines[0]
        assert "safe_mode" not in lines[0]


@pytest.mark.slow
def test_a_module_no_plugin_declares_is_never_imported(model_file: Path, tmp_path: Path) -> None:
    sentinel = tmp_path / "imported"
    (tmp_path / "evil_layers.py").write_text(
        f"import pathlib\npathlib.Path({str(sentinel)!r}).write_text('ran')\n"
    )
    with zipfile.ZipFile(model_file) as archive:
        config = json.loads(archive.read("config.json"))
    layer = config["config"]["layers"][-1]
    layer.update(module="evil_layers", registered_name="evil_layers>Evil")
    path = _rewritten(model_file, tmp_path / "evil.keras", **{"config.json": json.dumps(config)})
    script = (
        f"import mnistkit\ntry:\n    mnistkit.load_model({str(path)!r})\n"
        "except mnistkit.MnistkitError:\n    pass"
    )

    subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, check=True, env={"PYTHONPATH": str(tmp_path)}
    )

    assert not sentinel.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "its mnistkit.json is not valid JSON"),
        (b"[1, 2]", "holds a JSON list, not an object"),
        (b"[" * 100_000, "is not valid JSON"),
        (b" " * (2**20 + 1), "declares 1,048,577 bytes, more than the 1,048,576"),
    ],
    ids=["corrupt", "list", "deep", "too-large"],
)
def test_broken_metadata_is_a_format_error_before_keras_loads(
    model_file: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    path = _rewritten(model_file, tmp_path / "m.keras", **{"mnistkit.json": content})

    for read in (read_metadata, load_model):
        with pytest.raises(DataFormatError, match=r"m\.keras: ") as caught:
            read(path)
        assert message in str(caught.value)


def test_a_huge_config_is_refused_by_its_declared_size(model_file: Path, tmp_path: Path) -> None:
    path = _rewritten(model_file, tmp_path / "m.keras", **{"config.json": b" " * (64 * 2**20 + 1)})

    with pytest.raises(DataFormatError, match=r"its config\.json declares 67,108,865 bytes"):
        load_model(path)


def test_a_folder_or_a_missing_file_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"is a folder, not a \.keras model file"):
        load_model(tmp_path)
    with pytest.raises(DataNotFoundError, match="no such model file"):
        read_metadata(tmp_path / "absent.keras")


def test_arbitrary_bytes_as_a_model_file_raise_only_mnistkit_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.keras"
    for content in (b"", b"PK\x03\x04", b"PK\x05\x06" + bytes(18), bytes(range(256))):
        path.write_bytes(content)
        with pytest.raises(MnistkitError):
            load_model(path)
