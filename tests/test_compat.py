"""The TensorFlow 1 ``input_data`` drop-in, and the Keras-style ``load_data``.

The tutorials' own data-handling logic runs here against the drop-in, with NumPy in place
of their TensorFlow 1 graphs; ``DataSet`` is compared batch by batch with a reference
written from TensorFlow 1's source; and the rules about which data is served are pinned.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import inspect
import logging
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnistkit import DataFormatError, DataNotFoundError, InvalidArgumentError, MnistkitError
from mnistkit.compat import input_data
from mnistkit.compat.input_data import (
    DEFAULT_SOURCE_URL,
    DataSet,
    Datasets,
    dense_to_one_hot,
    extract_images,
    extract_labels,
    read_data_sets,
)
from mnistkit.datasets import IDX_FILES, load_data
from mnistkit.errors import InvalidTypeError
from mnistkit.idx import write_idx

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
LOGGER = "mnistkit.compat.input_data"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"


# A reference: TensorFlow 1's DataSet ------------------------------------------------------
#
# Written from tensorflow/contrib/learn/python/learn/datasets/mnist.py of TensorFlow 1.x
# (commit 13aeec48521c431ee95a28d2e1db2164132005f5, DataSet.__init__ and next_batch), and
# tensorflow/python/framework/random_seed.py for get_seed without a graph-level seed. It
# seeds and draws from NumPy's global generator, as the original did.

_TF1_DEFAULT_GRAPH_SEED = 87654321
_TF1_MAXINT32 = 2**31 - 1


class TF1DataSet:
    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        dtype: type = np.float32,
        reshape: bool = True,
        seed: int | None = None,
    ) -> None:
        seed1, seed2 = (
            (None, None) if seed is None else (_TF1_DEFAULT_GRAPH_SEED, seed % _TF1_MAXINT32)
        )
        np.random.seed(seed1 if seed is None else seed2)
        self._num_examples = images.shape[0]
        if reshape:
            assert images.shape[3] == 1
            images = images.reshape(images.shape[0], images.shape[1] * images.shape[2])
        if dtype == np.float32:
            images = np.multiply(images.astype(np.float32), 1.0 / 255.0)
        self._images, self._labels = images, labels
        self._epochs_completed = 0
        self._index_in_epoch = 0

    def next_batch(self, batch_size: int, shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            perm0 = np.arange(self._num_examples)
            np.random.shuffle(perm0)
            self._images, self._labels = self._images[perm0], self._labels[perm0]
        if start + batch_size > self._num_examples:
            self._epochs_completed += 1
            rest = self._num_examples - start
            images_rest, labels_rest = self._images[start:], self._labels[start:]
            if shuffle:
                perm = np.arange(self._num_examples)
                np.random.shuffle(perm)
                self._images, self._labels = self._images[perm], self._labels[perm]
            self._index_in_epoch = batch_size - rest
            end = self._index_in_epoch
            return (
                np.concatenate((images_rest, self._images[:end]), axis=0),
                np.concatenate((labels_rest, self._labels[:end]), axis=0),
            )
        self._index_in_epoch += batch_size
        end = self._index_in_epoch
        return self._images[start:end], self._labels[start:end]


@contextlib.contextmanager
def _global_numpy_state_kept() -> Iterator[None]:
    state = np.random.get_state()
    try:
        yield
    finally:
        np.random.set_state(state)


def _numbered(n: int, *, side: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, side, side, 1) whose pixels all hold i, and labels i % 10."""
    values = np.arange(n, dtype=np.uint8)
    images = np.broadcast_to(values[:, None, None, None], (n, side, side, 1)).copy()
    return images, (values % 10).astype(np.uint8)


def _write_idx_folder(folder: Path, arrays: Arrays, *, gz: bool = True) -> Path:
    for array, name in zip(arrays, IDX_FILES.values(), strict=True):
        write_idx(folder / (name if gz else name.removesuffix(".gz")), array)
    return folder


@pytest.fixture
def fashion_arrays() -> Arrays:
    """A small data set in MNIST's format whose content is not MNIST's."""
    rng = np.random.default_rng(7)
    return (
        rng.integers(0, 256, (40, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 40, dtype=np.uint8),
        rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, 12, dtype=np.uint8),
    )


# The tutorials' logic, with NumPy in place of the graph ------------------------------------


class Placeholder:
    """What feeding ``tf.placeholder(dtype, shape)`` checked: conversion and shape."""

    def __init__(self, dtype: type, shape: Sequence[int | None]) -> None:
        self.dtype, self.shape = np.dtype(dtype), tuple(shape)

    def feed(self, value: Any) -> np.ndarray:
        array = np.asarray(value, dtype=self.dtype)
        assert array.ndim == len(self.shape), (array.shape, self.shape)
        assert all(want in (None, got) for want, got in zip(self.shape, array.shape, strict=True))
        return array


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


class SoftmaxRegression:
    """The tutorial's ``y = x W + b`` with the gradient of the softmax cross-entropy."""

    def __init__(self, learning_rate: float) -> None:
        self.weights = np.zeros((784, 10), np.float32)
        self.biases = np.zeros(10, np.float32)
        self.learning_rate = learning_rate

    def logits(self, images: np.ndarray) -> np.ndarray:
        return images @ self.weights + self.biases

    def train_step(self, images: np.ndarray, one_hot: np.ndarray) -> None:
        error = (_softmax(self.logits(images)) - one_hot) / len(images)
        self.weights -= self.learning_rate * (images.T @ error).astype(np.float32)
        self.biases -= self.learning_rate * error.sum(axis=0).astype(np.float32)

    def accuracy(self, images: np.ndarray, one_hot: np.ndarray) -> float:
        return float(np.mean(self.logits(images).argmax(axis=1) == one_hot.argmax(axis=1)))


def test_mnist_softmax_learns_from_read_data_sets_as_in_the_tutorial(tmp_path: Path) -> None:
    mnist = read_data_sets(str(tmp_path / "data"), one_hot=True)
    x, y_ = Placeholder(np.float32, [None, 784]), Placeholder(np.float32, [None, 10])
    model = SoftmaxRegression(learning_rate=0.5)

    for _ in range(1000):
        batch_xs, batch_ys = mnist.train.next_batch(100)
        model.train_step(x.feed(batch_xs), y_.feed(batch_ys))

    accuracy = model.accuracy(x.feed(mnist.test.images), y_.feed(mnist.test.labels))
    assert accuracy > 0.9  # the tutorial's "about 92%"
    assert mnist.train.epochs_completed == 1  # 100,000 examples drawn from 55,000


def test_mnist_deep_batches_index_as_a_pair(tmp_path: Path) -> None:
    mnist = read_data_sets(str(tmp_path / "input_data"), one_hot=True)
    x, y_ = Placeholder(np.float32, [None, 784]), Placeholder(np.float32, [None, 10])
    model = SoftmaxRegression(learning_rate=0.5)

    for _ in range(20):
        batch = mnist.train.next_batch(50)
        model.train_step(x.feed(batch[0]), y_.feed(batch[1]))

    assert x.feed(batch[0]).shape == (50, 784)
    # 20 steps reach about 0.8 (chance is 0.1): the pairs held the right labels.
    assert model.accuracy(x.feed(mnist.test.images), y_.feed(mnist.test.labels)) > 0.6


def _fully_connected_feed(flags: argparse.Namespace) -> list[tuple[int, int]]:
    """fully_connected_feed.py's run_training: its data calls, a NumPy model, its eval loop."""
    data_sets = read_data_sets(flags.train_dir, flags.fake_data)
    images_placeholder = Placeholder(np.float32, (flags.batch_size, 784))
    labels_placeholder = Placeholder(np.int32, (flags.batch_size,))
    model = SoftmaxRegression(learning_rate=flags.learning_rate)

    def fill_feed_dict(data_set: DataSet) -> tuple[np.ndarray, np.ndarray]:
        images_feed, labels_feed = data_set.next_batch(flags.batch_size, flags.fake_data)
        return images_placeholder.feed(images_feed), labels_placeholder.feed(labels_feed)

    def do_eval(data_set: DataSet) -> tuple[int, int]:
        true_count = 0
        steps_per_epoch = data_set.num_examples // flags.batch_size
        num_examples = steps_per_epoch * flags.batch_size
        for _ in range(steps_per_epoch):
            images, labels = fill_feed_dict(data_set)
            true_count += int(np.sum(model.logits(images).argmax(axis=1) == labels))
        return num_examples, true_count

    evaluations = []
    for step in range(flags.max_steps):
        images, labels = fill_feed_dict(data_sets.train)
        model.train_step(images, np.eye(10, dtype=np.float32)[labels])
        if (step + 1) % 1000 == 0 or (step + 1) == flags.max_steps:
            for data_set in (data_sets.train, data_sets.validation, data_sets.test):
                evaluations.append(do_eval(data_set))
    return evaluations


def _fully_connected_flags(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--learning_rate", type=float, default=0.01)
    parser.add_argument("--max_steps", type=int, default=2000)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--train_dir", type=str, default="data")
    parser.add_argument("--fake_data", action="store_true")
    return parser.parse_args(argv)


def test_fully_connected_feed_runs_its_upstream_test_with_fake_data(tmp_path: Path) -> None:
    # The upstream test's arguments: --fake_data --max_steps=10.
    flags = _fully_connected_flags(
        ["--fake_data", "--max_steps=10", f"--train_dir={tmp_path / 'mnist'}"]
    )

    evaluations = _fully_connected_feed(flags)

    assert [num_examples for num_examples, _ in evaluations] == [10000] * 3
    # Every fake image is the same, labelled 0: ten steps learn it, and all are right.
    assert [true_count for _, true_count in evaluations] == [10000] * 3
    assert list(tmp_path.iterdir()) == []


def test_fully_connected_feed_trains_and_evaluates_on_real_data(tmp_path: Path) -> None:
    flags = _fully_connected_flags(
        ["--max_steps=300", "--learning_rate=0.5", f"--train_dir={tmp_path / 'data'}"]
    )

    evaluations = _fully_connected_feed(flags)

    assert [num_examples for num_examples, _ in evaluations] == [55000, 5000, 10000]
    assert all(true_count / num_examples > 0.8 for num_examples, true_count in evaluations)


def _mnist_with_summaries(argv: list[str]) -> list[float]:
    """mnist_with_summaries.py's train(): its flags, data calls and feed_dict, in NumPy."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--fake_data", nargs="?", const=True, type=bool, default=False)
    parser.add_argument("--max_steps", type=int, default=1000)
    parser.add_argument("--learning_rate", type=float, default=0.001)
    parser.add_argument("--dropout", type=float, default=0.9)
    parser.add_argument("--data_dir", type=str, default="/tmp/data")
    flags = parser.parse_args(argv)
    mnist = read_data_sets(flags.data_dir, one_hot=True, fake_data=flags.fake_data)
    x, y_ = Placeholder(np.float32, [None, 784]), Placeholder(np.float32, [None, 10])
    model = SoftmaxRegression(learning_rate=flags.learning_rate)

    def feed_dict(train: bool) -> tuple[np.ndarray, np.ndarray, float]:
        if train or flags.fake_data:
            xs, ys = mnist.train.next_batch(100, fake_data=flags.fake_data)
            k = flags.dropout
        else:
            xs, ys = mnist.test.images, mnist.test.labels
            k = 1.0
        return x.feed(xs), y_.feed(ys), k

    accuracies = []
    for i in range(flags.max_steps):
        if i % 10 == 0:
            xs, ys, _ = feed_dict(False)
            accuracies.append(model.accuracy(xs, ys))
        else:
            xs, ys, _ = feed_dict(True)
            model.train_step(xs, ys)
    return accuracies


def test_mnist_with_summaries_runs_its_upstream_test_with_fake_data(tmp_path: Path) -> None:
    argv = ["--fake_data", "--max_steps=10", "--learning_rate=0.00"]

    accuracies = _mnist_with_summaries([*argv, f"--data_dir={tmp_path / 'data'}"])

    # Fake labels are all one-hot 0, and an untrained model's logits tie: argmax picks 0.
    assert accuracies == [1.0]
    assert list(tmp_path.iterdir()) == []


def test_mnist_with_summaries_evaluates_on_the_test_images(tmp_path: Path) -> None:
    argv = ["--max_steps=21", "--learning_rate=0.5", f"--data_dir={tmp_path / 'data'}"]

    accuracies = _mnist_with_summaries(argv)

    assert len(accuracies) == 3
    assert accuracies[0] == pytest.approx(980 / 10000)  # all zeros predicted, 980 test zeros
    assert accuracies[-1] > 0.6


# Datasets, the named tuple ---------------------------------------------------------------


def test_read_data_sets_returns_tf1s_named_tuple() -> None:
    data = read_data_sets("MNIST_data", fake_data=True)

    train, validation, test = data
    replaced = data._replace(test=train)

    assert isinstance(data, tuple)
    assert Datasets._fields == ("train", "validation", "test")
    assert (len(data), data[0], data[1], data[2]) == (3, train, validation, test)
    assert data.train is train
    assert replaced.test is train
    assert replaced.validation is validation


# Signatures, types and attributes ---------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (
            read_data_sets,
            "(train_dir, fake_data=False, one_hot=False, dtype=float32, reshape=True, "
            f"validation_size=5000, seed=None, source_url='{DEFAULT_SOURCE_URL}')",
        ),
        (
            DataSet.__init__,
            "(self, images, labels, fake_data=False, one_hot=False, dtype=float32, "
            "reshape=True, seed=None)",
        ),
        (DataSet.next_batch, "(self, batch_size, fake_data=False, shuffle=True)"),
        (extract_labels, "(f, one_hot=False, num_classes=10)"),
        (dense_to_one_hot, "(labels_dense, num_classes)"),
        (input_data.load_mnist, "(train_dir='MNIST-data')"),
    ],
)
def test_signatures_are_tf1s(function: Any, expected: str) -> None:
    parameters = inspect.signature(function).parameters.values()
    written = []
    for parameter in parameters:
        default = parameter.default
        if default is inspect.Parameter.empty:
            written.append(parameter.name)
        else:
            shown = np.dtype(default).name if default is np.float32 else repr(default)
            written.append(f"{parameter.name}={shown}")
    assert f"({', '.join(written)})" == expected


def test_default_source_url_is_tf1s() -> None:
    assert DEFAULT_SOURCE_URL == "https://storage.googleapis.com/cvdf-datasets/mnist/"


def test_labels_and_images_have_tf1s_types(tmp_path: Path) -> None:
    plain = read_data_sets(tmp_path / "data", validation_size=0)
    one_hot = read_data_sets(tmp_path / "data", one_hot=True)

    assert (plain.train.labels.dtype, plain.train.labels.shape) == (np.uint8, (60000,))
    assert (one_hot.test.labels.dtype, one_hot.test.labels.shape) == (np.float64, (10000, 10))
    np.testing.assert_array_equal(one_hot.test.labels.argmax(axis=1), plain.test.labels)
    assert (plain.train.images.dtype, plain.train.images.shape) == (np.float32, (60000, 784))
    assert 0.0 == plain.train.images.min() < plain.train.images.max() == 1.0


def test_float32_images_are_converted_before_they_are_read(tmp_path: Path) -> None:
    data = read_data_sets(tmp_path / "data")

    # TensorFlow 1 code reads the private attributes directly.
    assert data.train._images.dtype == np.float32
    assert data.train._images is data.train.images
    assert data.train._labels is data.train.labels
    assert data.train._num_examples == data.train.num_examples == 55000
    assert (data.train._epochs_completed, data.train._index_in_epoch) == (0, 0)
    data.train.next_batch(10)
    assert data.train._index_in_epoch == 10


class FakeTensorFlowDType:
    """Duck-types ``tf.uint8``: what a TensorFlow DType offers to name its NumPy type."""

    as_numpy_dtype = np.uint8

    def __repr__(self) -> str:
        return "tf.uint8"


@pytest.mark.parametrize("dtype", [np.uint8, "uint8", np.dtype("uint8"), FakeTensorFlowDType()])
def test_uint8_keeps_the_raw_pixels(tmp_path: Path, mnist_arrays: Arrays, dtype: Any) -> None:
    data = read_data_sets(tmp_path / "data", dtype=dtype, reshape=False)

    assert data.train.images.dtype == np.uint8
    assert data.validation.images.shape == (5000, 28, 28, 1)
    np.testing.assert_array_equal(data.validation.images[..., 0], mnist_arrays[0][:5000])
    np.testing.assert_array_equal(data.test.images[..., 0], mnist_arrays[2])


@pytest.mark.parametrize("dtype", [np.float64, "int32", np.int64, None, "no such type", 3])
def test_other_dtypes_raise_type_error_as_tf1_did(tmp_path: Path, dtype: Any) -> None:
    with pytest.raises(TypeError, match=r"argument `dtype`\. Expected uint8 or float32") as caught:
        read_data_sets(tmp_path / "data", dtype=dtype)
    assert isinstance(caught.value, MnistkitError)
    with pytest.raises(InvalidTypeError):
        DataSet(*_numbered(3), dtype=dtype)


def test_next_batch_of_zero_gives_empty_arrays_and_moves_nothing() -> None:
    data = DataSet(*_numbered(6), seed=0)

    images, labels = data.next_batch(0)

    assert (images.shape, labels.shape) == ((0, 9), (0,))
    assert data._index_in_epoch == 0
    assert sorted(data.next_batch(6)[1].tolist()) == sorted((np.arange(6) % 10).tolist())


@pytest.mark.parametrize(
    ("batch_size", "error", "builtin"),
    [
        (-1, InvalidArgumentError, ValueError),
        (7, InvalidArgumentError, ValueError),
        (2.0, InvalidTypeError, TypeError),
        (True, InvalidTypeError, TypeError),
        ("3", InvalidTypeError, TypeError),
    ],
)
def test_next_batch_refuses_sizes_tf1_mishandled(
    batch_size: Any, error: type[Exception], builtin: type[Exception]
) -> None:
    data = DataSet(*_numbered(6), seed=0)
    with pytest.raises(error, match=r"Invalid value for argument `batch_size`") as caught:
        data.next_batch(batch_size)
    assert isinstance(caught.value, builtin)


def test_next_batch_accepts_numpy_integers() -> None:
    data = DataSet(*_numbered(6), seed=0)
    assert data.next_batch(np.int64(4))[0].shape == (4, 9)


def test_dataset_constructor_checks_its_arrays() -> None:
    images, labels = _numbered(4)
    with pytest.raises(InvalidArgumentError, match="one label per image"):
        DataSet(images, labels[:3])
    with pytest.raises(InvalidArgumentError, match=r"Expected \(N, rows, columns, 1\)"):
        DataSet(np.zeros((4, 3, 3, 2), np.uint8), labels)
    assert DataSet(images[..., 0], labels).images.shape == (4, 9)
    assert DataSet(images, labels, reshape=False).images.shape == (4, 3, 3, 1)
    with pytest.raises(InvalidTypeError, match="argument `seed`"):
        DataSet(images, labels, seed=1.5)  # type: ignore[arg-type]


def test_float32_scales_whatever_type_the_images_have_as_tf1_did() -> None:
    images = np.full((2, 2, 2, 1), 51.0)
    data = DataSet(images, np.zeros(2, np.uint8))
    np.testing.assert_allclose(data.images, 0.2, rtol=1e-6)
    assert data.images.dtype == np.float32


# Fake data --------------------------------------------------------------------------------


@pytest.mark.parametrize("one_hot", [False, True])
def test_fake_data_serves_tf1s_fake_examples(tmp_path: Path, one_hot: bool) -> None:
    data = read_data_sets(tmp_path / "anything", fake_data=True, one_hot=one_hot)

    images, labels = data.validation.next_batch(5, fake_data=True)

    assert [part.num_examples for part in data] == [10000] * 3
    np.testing.assert_array_equal(images, np.ones((5, 784)))
    expected = np.tile(np.eye(10)[0], (5, 1)) if one_hot else np.zeros(5)
    np.testing.assert_array_equal(labels, expected)
    assert len(data.train.images) == len(data.train.labels) == 0
    assert list(tmp_path.iterdir()) == []


def test_fake_batches_have_the_data_sets_image_type() -> None:
    data = read_data_sets("unused", fake_data=True, dtype=np.uint8)
    assert data.train.next_batch(2, True)[0].dtype == np.uint8


def test_fake_batches_ignore_the_real_examples_position() -> None:
    data = DataSet(*_numbered(6), one_hot=True, seed=0)
    data.next_batch(4)

    images, labels = data.next_batch(3, fake_data=True)

    assert images.shape == (3, 784)
    assert labels.shape == (3, 10)
    assert data._index_in_epoch == 4


def test_real_batches_of_a_fake_data_set_are_refused_clearly() -> None:
    data = read_data_sets("unused", fake_data=True)
    with pytest.raises(InvalidArgumentError, match="made with fake_data=True"):
        data.train.next_batch(10)


# Side by side with TensorFlow 1 -----------------------------------------------------------

BATCH_RUNS = {
    "even epochs": [5] * 10,
    "uneven sizes": [3, 7, 9, 1, 0, 12, 20, 20, 2, 5, 11],
    "whole epochs": [20, 20, 20, 1],
}


@pytest.mark.parametrize("run", list(BATCH_RUNS))
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(("dtype", "reshape"), [(np.float32, True), (np.uint8, False)])
@pytest.mark.parametrize("one_hot", [False, True])
def test_next_batch_gives_tf1s_batches_for_the_same_seed(
    run: str, shuffle: bool, dtype: type, reshape: bool, one_hot: bool
) -> None:
    images, labels = _numbered(20)
    labels = dense_to_one_hot(labels, 10) if one_hot else labels
    ours = DataSet(images, labels, dtype=dtype, reshape=reshape, seed=42)
    with _global_numpy_state_kept():
        theirs = TF1DataSet(images, labels, dtype=dtype, reshape=reshape, seed=42)
        np.testing.assert_array_equal(ours.images, theirs._images)
        for batch_size in BATCH_RUNS[run]:
            expected = theirs.next_batch(batch_size, shuffle=shuffle)
            got = ours.next_batch(batch_size, shuffle=shuffle)
            for got_part, expected_part in zip(got, expected, strict=True):
                assert got_part.dtype == expected_part.dtype
                np.testing.assert_array_equal(got_part, expected_part)

    assert (ours.epochs_completed, ours._index_in_epoch) == (
        theirs._epochs_completed,
        theirs._index_in_epoch,
    )
    np.testing.assert_array_equal(ours.images, theirs._images)  # reordered alike
    np.testing.assert_array_equal(ours.labels, theirs._labels)


@settings(deadline=None, max_examples=60)
@given(
    n=st.integers(1, 30),
    fractions=st.lists(st.floats(0, 1), max_size=25),
    shuffles=st.lists(st.booleans(), min_size=1, max_size=4),
    seed=st.integers(0, 2**40),
)
def test_next_batch_matches_tf1_for_any_run(
    n: int, fractions: list[float], shuffles: list[bool], seed: int
) -> None:
    images, labels = _numbered(n)
    ours = DataSet(images, labels, dtype=np.uint8, seed=seed)
    with _global_numpy_state_kept():
        theirs = TF1DataSet(images, labels, dtype=np.uint8, seed=seed)
        for index, fraction in enumerate(fractions):
            batch_size, shuffle = round(fraction * n), shuffles[index % len(shuffles)]
            expected = theirs.next_batch(batch_size, shuffle=shuffle)
            got = ours.next_batch(batch_size, shuffle=shuffle)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])
    assert ours.epochs_completed == theirs._epochs_completed


def test_read_data_sets_train_batches_are_tf1s_for_the_same_seed(tmp_path: Path) -> None:
    data = read_data_sets(tmp_path / "data", one_hot=True, seed=5, validation_size=100)
    (x_train, y_train), _ = load_data()
    with _global_numpy_state_kept():
        theirs = TF1DataSet(x_train[100:, ..., None], dense_to_one_hot(y_train[100:], 10), seed=5)
        for _ in range(3):
            expected = theirs.next_batch(100)
            got = data.train.next_batch(100)
            np.testing.assert_array_equal(got[0], expected[0])
            np.testing.assert_array_equal(got[1], expected[1])


def test_the_global_numpy_generator_is_left_alone() -> None:
    np.random.seed(123)
    expected = np.random.random_sample()
    np.random.seed(123)

    data = DataSet(*_numbered(10), seed=1)
    data.next_batch(7)
    data.next_batch(7)

    assert np.random.random_sample() == expected


def test_seeds_are_taken_modulo_2_31_minus_1_as_tf1_took_them() -> None:
    first = DataSet(*_numbered(30), seed=3)
    second = DataSet(*_numbered(30), seed=3 + 2**31 - 1)
    other = DataSet(*_numbered(30), seed=4)
    batches = [first.next_batch(30)[1], second.next_batch(30)[1], other.next_batch(30)[1]]
    np.testing.assert_array_equal(batches[0], batches[1])
    assert not np.array_equal(batches[0], batches[2])


# Properties of next_batch ---------------------------------------------------------------


@settings(deadline=None, max_examples=80)
@given(
    n=st.integers(1, 40),
    sizes=st.lists(st.integers(0, 40), max_size=30),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_every_example_comes_once_per_epoch(
    n: int, sizes: list[int], shuffle: bool, seed: int
) -> None:
    images, _ = _numbered(n)
    data = DataSet(images, np.arange(n), dtype=np.uint8, seed=seed)
    drawn: list[int] = []
    for size in (min(size, n) for size in sizes):
        batch_images, batch_labels = data.next_batch(size, shuffle=shuffle)
        assert len(batch_images) == len(batch_labels) == size
        np.testing.assert_array_equal(batch_images[:, 0], batch_labels)  # pairs kept
        drawn += batch_labels.tolist()
        assert data.epochs_completed == max(0, math.ceil(len(drawn) / n) - 1)

    for start in range(0, len(drawn) - n + 1, n):
        assert sorted(drawn[start : start + n]) == list(range(n))
    if not shuffle:
        assert drawn == [i % n for i in range(len(drawn))]


# Which data is served ---------------------------------------------------------------------


def test_files_in_the_folder_are_read_whatever_they_hold(
    tmp_path: Path, fashion_arrays: Arrays, caplog: pytest.LogCaptureFixture
) -> None:
    folder = _write_idx_folder(tmp_path / "data" / "fashion", fashion_arrays)

    with caplog.at_level(logging.INFO, logger=LOGGER):
        data = read_data_sets(str(folder), validation_size=10, source_url=FASHION_URL)

    x_train, y_train, x_test, y_test = fashion_arrays
    np.testing.assert_array_equal(data.train.labels, y_train[10:])
    np.testing.assert_array_equal(
        data.train.images, x_train[10:].reshape(30, 784) * np.float32(1 / 255)
    )
    np.testing.assert_array_equal(data.validation.labels, y_train[:10])
    np.testing.assert_array_equal(data.test.labels, y_test)
    np.testing.assert_array_equal(data.test.images, x_test.reshape(12, 784) * np.float32(1 / 255))
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]


def test_uncompressed_files_are_read_too(tmp_path: Path, fashion_arrays: Arrays) -> None:
    folder = _write_idx_folder(tmp_path / "MNIST_data", fashion_arrays, gz=False)
    data = read_data_sets(folder, validation_size=0, dtype=np.uint8, reshape=False)
    np.testing.assert_array_equal(data.train.images[..., 0], fashion_arrays[0])


@pytest.mark.parametrize("name", ["", "/tmp/data", "MNIST_data/"])
def test_a_non_mnist_source_url_without_files_is_an_error(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "data" / "fashion"

    with pytest.raises(DataNotFoundError) as caught:
        read_data_sets(folder, source_url=FASHION_URL + name)

    message = str(caught.value)
    assert isinstance(caught.value, OSError)  # what a failed TensorFlow 1 download raised
    assert FASHION_URL + name in message
    assert "nothing is downloaded" in message
    assert all(file in message for file in IDX_FILES.values())
    assert str(folder) in message
    assert not folder.exists()


@pytest.mark.parametrize(
    "url",
    [
        DEFAULT_SOURCE_URL,
        "https://storage.googleapis.com/cvdf-datasets/mnist",
        "http://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
        "https://yann.lecun.com/exdb/mnist",
        "",
        None,
    ],
)
def test_mnists_own_addresses_fall_back_to_the_embedded_copy_and_say_so(
    tmp_path: Path, mnist_arrays: Arrays, caplog: pytest.LogCaptureFixture, url: str | None
) -> None:
    folder = tmp_path / "MNSIT_data"  # mistyped: nothing there

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        data = read_data_sets(folder, source_url=url, dtype=np.uint8, validation_size=0)

    np.testing.assert_array_equal(data.test.labels, mnist_arrays[3])
    [record] = [record for record in caplog.records if record.name == LOGGER]
    assert record.levelno == logging.WARNING
    assert str(folder) in record.getMessage()
    assert "embedded" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert list(tmp_path.iterdir()) == []


def test_a_file_given_as_train_dir_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"")
    with pytest.raises(InvalidArgumentError, match="not a file") as caught:
        read_data_sets(path)
    assert isinstance(caught.value, ValueError)


def test_a_folder_with_some_of_the_files_names_each_missing_one(
    tmp_path: Path, fashion_arrays: Arrays
) -> None:
    folder = _write_idx_folder(tmp_path / "MNIST_data", fashion_arrays)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    (folder / "train-images-idx3-ubyte.gz").unlink()

    with pytest.raises(DataNotFoundError) as caught:
        read_data_sets(folder)

    missing = str(caught.value).split(";")[0]  # then comes the list of all four
    assert "missing train-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in missing
    assert "train-labels-idx1-ubyte.gz" not in missing


def test_a_malformed_file_raises_value_error(tmp_path: Path, fashion_arrays: Arrays) -> None:
    folder = _write_idx_folder(tmp_path / "MNIST_data", fashion_arrays)
    (folder / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08"))
    with pytest.raises(DataFormatError, match="train-labels-idx1-ubyte") as caught:
        read_data_sets(folder)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "error", "builtin"),
    [
        ({"validation_size": 60001}, InvalidArgumentError, ValueError),
        ({"validation_size": -1}, InvalidArgumentError, ValueError),
        ({"validation_size": 10.0}, InvalidTypeError, TypeError),
        ({"source_url": 3}, InvalidTypeError, TypeError),
    ],
)
def test_bad_arguments_raise_what_tf1_raised(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], builtin: type[Exception]
) -> None:
    argument = next(iter(kwargs))
    with pytest.raises(error, match=f"Invalid value for argument `{argument}`") as caught:
        read_data_sets(tmp_path / "data", **kwargs)
    assert isinstance(caught.value, builtin)


def test_validation_size_may_take_every_training_example(tmp_path: Path) -> None:
    data = read_data_sets(tmp_path / "data", validation_size=60000, dtype=np.uint8)
    assert (data.train.num_examples, data.validation.num_examples) == (0, 60000)


# The file readers -------------------------------------------------------------------------


def test_extract_images_and_labels_read_tf1s_arrays(tmp_path: Path, fashion_arrays: Arrays) -> None:
    folder = _write_idx_folder(tmp_path, fashion_arrays)
    with (folder / IDX_FILES["x_train"]).open("rb") as f:
        images = extract_images(f)
    with (folder / IDX_FILES["y_train"]).open("rb") as f:
        labels = extract_labels(f)
    with (folder / IDX_FILES["y_train"]).open("rb") as f:
        one_hot = extract_labels(f, one_hot=True, num_classes=12)

    assert (images.dtype, images.shape) == (np.uint8, (40, 28, 28, 1))
    np.testing.assert_array_equal(images[..., 0], fashion_arrays[0])
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, fashion_arrays[1])
    assert (one_hot.dtype, one_hot.shape) == (np.float64, (40, 12))
    np.testing.assert_array_equal(one_hot.argmax(axis=1), fashion_arrays[1])


def test_extract_images_refuses_a_label_file_with_value_error(
    tmp_path: Path, fashion_arrays: Arrays
) -> None:
    folder = _write_idx_folder(tmp_path, fashion_arrays)
    with (folder / IDX_FILES["y_test"]).open("rb") as f, pytest.raises(ValueError, match="2051"):
        extract_images(f)
    with (
        (folder / IDX_FILES["x_test"]).open("rb") as f,
        pytest.raises(DataFormatError, match="2049"),
    ):
        extract_labels(f)


def test_dense_to_one_hot_is_tf1s() -> None:
    labels = np.array([3, 0, 9, 3], np.uint8)
    # TensorFlow 1's formula: ones written at flat offsets in a float64 array.
    expected = np.zeros((4, 10))
    expected.flat[np.arange(4) * 10 + labels.ravel()] = 1
    result = dense_to_one_hot(labels, 10)
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result, expected)
    assert dense_to_one_hot(np.zeros(0, np.uint8), 10).shape == (0, 10)


@pytest.mark.parametrize(
    ("labels", "num_classes"), [([0, 10], 10), ([-1], 10), ([0.5], 10), ([1], 0)]
)
def test_dense_to_one_hot_refuses_what_tf1_garbled(labels: list[Any], num_classes: int) -> None:
    with pytest.raises(InvalidArgumentError, match="Invalid value for argument"):
        dense_to_one_hot(np.array(labels), num_classes)


# Keras's load_data ------------------------------------------------------------------------


def test_load_data_returns_what_keras_returns(mnist_arrays: Arrays) -> None:
    (x_train, y_train), (x_test, y_test) = load_data()

    assert (x_train.dtype, x_train.shape) == (np.uint8, (60000, 28, 28))
    assert (y_train.dtype, y_train.shape) == (np.uint8, (60000,))
    assert (x_test.dtype, x_test.shape) == (np.uint8, (10000, 28, 28))
    assert (y_test.dtype, y_test.shape) == (np.uint8, (10000,))
    for got, expected in zip((x_train, y_train, x_test, y_test), mnist_arrays, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_load_data_returns_new_arrays_at_each_call(mnist_arrays: Arrays) -> None:
    (x_train, _), _ = load_data()
    x_train[0] = 255
    (again, _), _ = load_data()
    np.testing.assert_array_equal(again[0], mnist_arrays[0][0])


def test_load_data_reads_a_keras_npz(tmp_path: Path, fashion_arrays: Arrays) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(path, **dict(zip(IDX_FILES, fashion_arrays, strict=True)))

    (x_train, y_train), (x_test, y_test) = load_data(path=path)

    for got, expected in zip((x_train, y_train, x_test, y_test), fashion_arrays, strict=True):
        np.testing.assert_array_equal(got, expected)


def test_load_data_with_a_missing_path_says_how_to_get_the_embedded_copy(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="Leave out `path`"):
        load_data(path=tmp_path / "mnist.npz")


def test_load_data_is_exported() -> None:
    from mnistkit import datasets

    assert "load_data" in datasets.__all__
