"""The sample pictures shipped with mnistkit, and what a model reads in them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import tensorflow as tf

from mnistkit import InvalidArgumentError, MnistkitError
from mnistkit.images import prepare_image, read_image
from mnistkit.samples import STYLES, Sample, sample_images, write_samples

Arrays = tuple[np.ndarray, ...]
TOOLS = Path(__file__).resolve().parent.parent / "tools"


def load_maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_samples", TOOLS / "make_samples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def norms(*arrays: np.ndarray) -> float:
    return float(np.prod([np.linalg.norm(array) for array in arrays]))


def decode(path: Path) -> np.ndarray:
    return np.asarray(tf.io.decode_png(path.read_bytes()))


def test_one_picture_of_each_digit_in_each_style() -> None:
    samples = sample_images()

    assert [(s.label, s.style) for s in samples] == [(d, st) for d in range(10) for st in STYLES]
    assert all(s.path.is_file() and s.path.suffix == ".png" for s in samples)
    assert sample_images("photo") == [s for s in samples if s.style == "photo"]


def test_each_sample_is_the_first_test_image_of_its_class_not_passed_over(
    mnist_arrays: Arrays,
) -> None:
    *_, x_test, y_test = mnist_arrays
    passed_over = load_maker().PASSED_OVER

    for sample in sample_images("mnist"):
        of_class = [int(i) for i in np.flatnonzero(y_test == sample.label)]
        assert sample.test_index == next(i for i in of_class if i not in passed_over)
        np.testing.assert_array_equal(decode(sample.path)[..., 0], x_test[sample.test_index])


@pytest.mark.parametrize("style", ["Photo", "scan", ""])
def test_an_unknown_style_is_refused_in_kerass_words(style: str, tmp_path: Path) -> None:
    for call in (lambda: sample_images(style), lambda: write_samples(tmp_path, style=style)):
        with pytest.raises(InvalidArgumentError, match=r"argument `style`.*Received: style="):
            call()
    assert not any(tmp_path.iterdir())
    assert issubclass(InvalidArgumentError, MnistkitError)


def test_write_samples_copies_them_into_a_new_folder(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "samples"
    folder.mkdir(parents=True)
    (folder / "3-photo.png").write_bytes(b"an older file")

    copies = write_samples(folder)

    assert sorted(p.name for p in folder.iterdir()) == sorted(s.path.name for s in copies)
    for copy, original in zip(copies, sample_images(), strict=True):
        assert copy.path.parent == folder
        assert copy.path.read_bytes() == original.path.read_bytes()
        assert (copy.label, copy.style, copy.test_index) == (
            original.label,
            original.style,
            original.test_index,
        )
    photos = write_samples(tmp_path / "photos", style="photo")
    assert [type(s) for s in photos] == [Sample] * 10
    assert len(list((tmp_path / "photos").iterdir())) == 10


def test_the_shipped_pictures_are_what_the_script_makes(mnist_arrays: Arrays) -> None:
    *_, x_test, y_test = mnist_arrays
    pictures, manifest = load_maker().make_samples(x_test, y_test)
    shipped = {s.path.name: s for s in sample_images()}

    folder = next(iter(shipped.values())).path.parent
    assert json.loads((folder / "samples.json").read_text()) == manifest
    assert sorted(pictures) == sorted(shipped)
    for name, picture in pictures.items():
        stored = decode(shipped[name].path).astype(int)
        assert stored.shape == picture.shape, name
        # A last-bit difference in floating point may round a pixel the other way.
        assert np.abs(stored - picture).max() <= 1, name


def test_photos_read_as_the_mnist_digit_they_show(mnist_arrays: Arrays) -> None:
    *_, x_test, _ = mnist_arrays

    similarities = []
    for sample in sample_images("photo"):
        read = read_image(sample.path)[..., 0]
        rows, cols = np.nonzero(read > 0.25)
        assert rows.max() - rows.min() < 20
        assert cols.max() - cols.min() < 20
        centre = np.array([read.sum(axis=1) @ np.arange(28), read.sum(axis=0) @ np.arange(28)])
        np.testing.assert_allclose(centre / read.sum(), 14.0, atol=0.75)
        original = prepare_image(x_test[sample.test_index])[..., 0]
        similarities.append(np.dot(read.ravel(), original.ravel()) / norms(read, original))
    assert min(similarities) > 0.65
    assert np.mean(similarities) > 0.8


@pytest.mark.slow
def test_a_softmax_trained_for_1000_steps_reads_most_samples() -> None:
    from mnistkit import Trainer, load_dataset

    trainer = Trainer("softmax", seed=0)
    trainer.fit(load_dataset("mnist").train, verbose=0)
    samples = sample_images()
    predicted = trainer.predict(np.stack([read_image(s.path) for s in samples])).argmax(axis=1)

    correct = {s.path.name for s, p in zip(samples, predicted, strict=True) if p == s.label}
    assert len(correct) >= 17, sorted(correct)
    assert len([name for name in correct if "photo" in name]) >= 8, sorted(correct)
