"""The embedded MNIST, its loaders and splits, and the dataset registry."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mnistkit import (
    DataFormatError,
    DataNotFoundError,
    Datasets,
    InvalidArgumentError,
    MnistkitError,
    Split,
    UnknownNameError,
    describe_datasets,
    list_datasets,
    load_dataset,
    register_dataset,
)
from mnistkit import datasets as datasets_module
from mnistkit.datasets import IDX_FILES, has_idx_files, read_idx_folder, read_npz
from mnistkit.idx import write_idx

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
KEYS = ("x_train", "y_train", "x_test", "y_test")
REPO = Path(__file__).parents[1]

# The published spec of the data: /work/shared/data/README.md.
PUBLISHED_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _write_idx_folder(folder: Path, arrays: Arrays, *, gz: tuple[bool, ...]) -> Path:
    for array, name, compress in zip(arrays, IDX_FILES.values(), gz, strict=True):
        write_idx(folder / (name if compress else name.removesuffix(".gz")), array)
    return folder


def _numbered_split(n: int = 10, *, seed: int | None = 0) -> Split:
    """A split whose image i holds the value i everywhere, and whose label i is i."""
    images = np.repeat(np.arange(n, dtype=np.float32)[:, None], 784, axis=1)
    return Split(images, np.arange(n), seed=seed)


def _labels_of(batches: list[tuple[np.ndarray, np.ndarray]]) -> list[int]:
    for images, labels in batches:
        np.testing.assert_array_equal(images[:, 0], labels)  # images travel with their labels
    return [int(label) for _, labels in batches for label in labels]


@pytest.fixture(scope="module")
def default_mnist() -> Datasets:
    return load_dataset("mnist")


# The embedded copy ----------------------------------------------------------------------


def test_embedded_arrays_match_the_published_checksums(mnist_arrays: Arrays) -> None:
    found = {key: _sha256(array) for key, array in zip(KEYS, mnist_arrays, strict=True)}
    assert found == PUBLISHED_SHA256


def test_embedded_arrays_have_the_published_class_counts(mnist_arrays: Arrays) -> None:
    _, y_train, _, y_test = mnist_arrays
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_CLASS_COUNTS
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS


def test_default_splits_hold_55000_5000_10000_examples(default_mnist: Datasets) -> None:
    sizes = [s.num_examples for s in (default_mnist.train, default_mnist.validation)]
    assert [*sizes, default_mnist.test.num_examples] == [55000, 5000, 10000]
    assert default_mnist.source == "embedded MNIST"


def test_validation_split_is_the_first_training_images(
    default_mnist: Datasets, mnist_arrays: Arrays
) -> None:
    x_train, y_train, _, _ = mnist_arrays
    assert default_mnist.validation.labels[:10].tolist() == FIRST_TRAIN_LABELS
    np.testing.assert_array_equal(default_mnist.train.labels, y_train[5000:])
    np.testing.assert_allclose(default_mnist.train.images[0, :, :, 0], x_train[5000] / 255.0)


def test_default_images_are_float32_in_unit_range_shaped_for_convolutions(
    default_mnist: Datasets,
) -> None:
    for split, count in [(default_mnist.train, 55000), (default_mnist.test, 10000)]:
        assert split.images.shape == (count, 28, 28, 1)
        assert split.images.dtype == np.float32
        assert split.images.min() == 0.0
        assert split.images.max() == 1.0
        assert split.labels.shape == (count,)
        assert np.issubdtype(split.labels.dtype, np.integer)
        assert not split.one_hot


def test_flatten_and_one_hot_give_the_tutorials_layout(default_mnist: Datasets) -> None:
    data = load_dataset("mnist", flatten=True, one_hot=True)
    assert data.test.images.shape == (10000, 784)
    assert data.test.labels.shape == (10000, 10)
    assert data.test.labels.dtype == np.float32
    assert data.test.one_hot
    np.testing.assert_array_equal(data.test.labels.sum(axis=1), 1.0)
    np.testing.assert_array_equal(data.test.labels.argmax(axis=1), default_mnist.test.labels)
    np.testing.assert_array_equal(data.test.images, default_mnist.test.images.reshape(10000, 784))


@pytest.mark.parametrize(("size", "train", "validation"), [(0, 60000, 0), (60000, 0, 60000)])
def test_validation_size_accepts_its_bounds(
    mnist_arrays: Arrays, size: int, train: int, validation: int
) -> None:
    data = Datasets.from_arrays(*mnist_arrays, validation_size=size)
    assert (data.train.num_examples, data.validation.num_examples) == (train, validation)


@pytest.mark.parametrize(
    ("size", "shown"),
    [(-1, "-1"), (60001, "60001"), (True, "True"), (5000.0, "5000.0"), ("10", "'10'")],
)
def test_validation_size_out_of_range_is_rejected_in_keras_wording(
    mnist_arrays: Arrays, size: object, shown: str
) -> None:
    expected = (
        "Invalid value for argument `validation_size`. Expected an integer in [0, 60000]. "
        f"Received: validation_size={shown}"
    )
    with pytest.raises(InvalidArgumentError) as caught:
        Datasets.from_arrays(*mnist_arrays, validation_size=size)  # type: ignore[arg-type]
    assert str(caught.value) == expected


def test_mnist_loader_checks_validation_size() -> None:
    with pytest.raises(ValueError, match=r"argument `validation_size`.*validation_size=60001"):
        load_dataset("mnist", validation_size=60001)


def test_checksum_identifies_the_arrays_not_their_layout(small_arrays: Arrays) -> None:
    plain = Datasets.from_arrays(*small_arrays, validation_size=0)
    other = Datasets.from_arrays(*small_arrays, one_hot=True, flatten=True, validation_size=7)
    changed = list(small_arrays)
    changed[3] = changed[3].copy()
    changed[3][0] = (changed[3][0] + 1) % 10
    assert plain.checksum == other.checksum
    assert plain.checksum != Datasets.from_arrays(*changed, validation_size=0).checksum


def test_uint8_images_given_to_a_split_are_scaled_to_unit_range() -> None:
    split = Split(np.array([[0, 51, 255]], np.uint8), np.array([3]))
    assert split.images.dtype == np.float32
    np.testing.assert_allclose(split.images, [[0.0, 0.2, 1.0]])


def test_split_rejects_images_and_labels_of_different_numbers() -> None:
    with pytest.raises(InvalidArgumentError, match="3 images, 2 labels"):
        Split(np.zeros((3, 784), np.float32), np.arange(2))


# next_batch -------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 3, 4, 5, 10])
def test_next_batch_covers_every_example_once_per_epoch(batch_size: int) -> None:
    split = _numbered_split(10)
    batches = [split.next_batch(batch_size) for _ in range(-(-30 // batch_size))]
    stream = _labels_of(batches)[:30]
    for epoch in range(3):
        assert sorted(stream[10 * epoch : 10 * (epoch + 1)]) == list(range(10))


def test_next_batch_reshuffles_at_each_epoch_boundary() -> None:
    split = _numbered_split(10)
    epochs = [_labels_of([split.next_batch(10)]) for _ in range(3)]
    assert epochs[0] != list(range(10))
    assert epochs[0] != epochs[1] != epochs[2]


def test_batch_crossing_the_epoch_boundary_ends_the_old_epoch_and_starts_the_new() -> None:
    split = _numbered_split(10)
    first = _labels_of([split.next_batch(4), split.next_batch(4)])
    assert split.epochs_completed == 0
    crossing = _labels_of([split.next_batch(4)])
    assert split.epochs_completed == 1
    assert sorted(first + crossing[:2]) == list(range(10))
    rest = _labels_of([split.next_batch(4), split.next_batch(4)])
    assert sorted(crossing[2:] + rest) == list(range(10))


def test_next_batch_without_shuffle_walks_the_split_in_order() -> None:
    split = _numbered_split(10)
    batches = [split.next_batch(4, shuffle=False) for _ in range(3)]
    assert _labels_of(batches) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_same_seed_gives_the_same_batches_and_different_seeds_differ() -> None:
    def stream(seed: int) -> list[int]:
        split = _numbered_split(10, seed=seed)
        return _labels_of([split.next_batch(3) for _ in range(8)])

    assert stream(1) == stream(1)
    assert stream(1) != stream(2)


def test_loader_seed_makes_next_batch_reproducible(small_arrays: Arrays) -> None:
    def first_labels(seed: int) -> list[int]:
        return (
            Datasets.from_arrays(*small_arrays, validation_size=10, seed=seed)
            .train.next_batch(20)[1]
            .tolist()
        )

    assert first_labels(7) == first_labels(7)
    assert first_labels(7) != first_labels(8)


@pytest.mark.parametrize("batch_size", [0, -1, 11, 2.5, "3", None, True])
def test_next_batch_rejects_bad_batch_sizes(batch_size: object) -> None:
    split = _numbered_split(10)
    with pytest.raises(InvalidArgumentError) as caught:
        split.next_batch(batch_size)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "Invalid value for argument `batch_size`. Expected an integer in [1, 10]. "
        f"Received: batch_size={batch_size!r}"
    )


# as_dataset -------------------------------------------------------------------------------


def _passes(dataset: object, count: int) -> list[list[int]]:
    labels = [int(y) for images, batch in dataset for y in batch.numpy()]  # type: ignore[attr-defined]
    return [labels[i * 10 : (i + 1) * 10] for i in range(count)]


def test_as_dataset_batches_in_order_without_shuffle() -> None:
    dataset = _numbered_split(10).as_dataset(4, shuffle=False)
    batches = [(images.numpy(), labels.numpy()) for images, labels in dataset]
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert _labels_of(batches) == list(range(10))
    assert batches[0][0].dtype == np.float32


def test_as_dataset_can_drop_the_last_partial_batch() -> None:
    dataset = _numbered_split(10).as_dataset(4, shuffle=False, drop_remainder=True)
    assert [int(labels.shape[0]) for _, labels in dataset] == [4, 4]


def test_as_dataset_shuffles_each_pass_reproducibly_with_a_seed() -> None:
    dataset = _numbered_split(10).as_dataset(10, seed=3)
    first, second = _passes(dataset, 1)[0], _passes(dataset, 1)[0]
    again = _passes(_numbered_split(10).as_dataset(10, seed=3), 1)[0]
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != list(range(10))
    assert first != second
    assert first == again


def test_as_dataset_repeat_goes_on_past_one_pass() -> None:
    dataset = _numbered_split(10).as_dataset(4, seed=0, repeat=True).take(5)
    labels = [int(y) for _, batch in dataset for y in batch.numpy()]
    assert len(labels) == 20
    assert sorted(labels[:10]) == sorted(labels[10:]) == list(range(10))


@pytest.mark.parametrize("batch_size", [0, -4, 1.5, True])
def test_as_dataset_rejects_bad_batch_sizes(batch_size: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"Invalid value for argument `batch_size`"):
        _numbered_split(10).as_dataset(batch_size)  # type: ignore[arg-type]


# Other sources ----------------------------------------------------------------------------


def test_source_npz_in_keras_layout_is_read(tmp_path: Path, small_arrays: Arrays) -> None:
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, **dict(zip(KEYS, small_arrays, strict=True)))

    data = load_dataset("mnist", source=path, validation_size=10)

    assert (data.train.num_examples, data.validation.num_examples) == (90, 10)
    assert data.test.num_examples == 50
    assert data.source == str(path)
    assert data.checksum == Datasets.from_arrays(*small_arrays, validation_size=0).checksum
    np.testing.assert_allclose(data.test.images[..., 0], small_arrays[2] / 255.0)


@pytest.mark.parametrize(
    "gz",
    [(True,) * 4, (False,) * 4, (True, False, False, True)],
    ids=["gz", "plain", "mixed"],
)
def test_source_idx_folder_gives_the_checksum_of_the_same_arrays(
    tmp_path: Path, small_arrays: Arrays, gz: tuple[bool, ...]
) -> None:
    folder = _write_idx_folder(tmp_path / "MNIST_data", small_arrays, gz=gz)

    data = load_dataset("mnist", source=folder, validation_size=10, one_hot=True)

    assert has_idx_files(folder)
    assert data.source == f"IDX folder {folder}"
    assert data.checksum == Datasets.from_arrays(*small_arrays, validation_size=0).checksum
    assert data.train.labels.shape == (90, 10)
    for read, written in zip(read_idx_folder(folder), small_arrays, strict=True):
        np.testing.assert_array_equal(read, written)


def _npz_case(name: str) -> Callable[[Arrays], dict[str, np.ndarray]]:
    def mutate(arrays: Arrays) -> dict[str, np.ndarray]:
        found = dict(zip(KEYS, arrays, strict=True))
        if name == "missing-key":
            del found["y_test"]
        elif name == "wrong-shape":
            found["x_train"] = np.zeros((100, 28, 27), np.uint8)
        elif name == "flat-images":
            found["x_test"] = found["x_test"].reshape(50, 784)
        elif name == "wrong-dtype":
            found["x_train"] = found["x_train"].astype(np.float32)
        elif name == "float-labels":
            found["y_train"] = found["y_train"].astype(np.float64)
        elif name == "label-ten":
            found["y_test"] = np.full(50, 10, np.int16)
        elif name == "label-negative":
            found["y_train"] = np.full(100, -1, np.int16)
        elif name == "count-mismatch":
            found["y_train"] = found["y_train"][:99]
        return found

    return mutate


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-key", r"missing array\(s\) y_test"),
        ("wrong-shape", r"x_train must be uint8 images shaped \(N, 28, 28\); found uint8"),
        ("flat-images", r"x_test must be uint8 images shaped \(N, 28, 28\)"),
        ("wrong-dtype", r"x_train must be uint8 images .* found float32"),
        ("float-labels", r"y_train must be integer labels"),
        ("label-ten", r"y_test holds labels outside 0\.\.9"),
        ("label-negative", r"y_train holds labels outside 0\.\.9"),
        ("count-mismatch", r"100 images but 99 labels in y_train"),
    ],
)
def test_malformed_npz_raises_data_format_error_naming_the_file(
    tmp_path: Path, small_arrays: Arrays, case: str, message: str
) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(path, **_npz_case(case)(small_arrays))
    with pytest.raises(DataFormatError, match=message) as caught:
        load_dataset("mnist", source=path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("case", "write"),
    [
        ("not-a-zip", lambda path: path.write_bytes(b"hello, not a zip")),
        ("empty", lambda path: path.write_bytes(b"")),
        ("truncated-zip", lambda path: path.write_bytes(_tiny_npz_bytes(path)[:100])),
        ("pickled-object-array", lambda path: np.savez(path, x_train=np.array([None]))),
        ("npy-not-npz", lambda path: np.save(path.with_suffix(".npy"), np.zeros(3))),
        ("corrupt-member", lambda path: path.write_bytes(_corrupt_npz_bytes(path))),
    ],
)
def test_unreadable_npz_raises_data_format_error_naming_the_file(
    tmp_path: Path, case: str, write: Callable[[Path], object]
) -> None:
    path = tmp_path / "mnist.npz"
    write(path)
    if case == "npy-not-npz":
        path = path.with_suffix(".npy")
    with pytest.raises(DataFormatError) as caught:
        read_npz(path)
    assert str(path) in str(caught.value)


def _tiny_npz_bytes(beside: Path) -> bytes:
    scratch = beside.with_name("scratch.npz")
    np.savez(scratch, x_train=np.zeros((3, 28, 28), np.uint8))
    content = scratch.read_bytes()
    scratch.unlink()
    return content


def _corrupt_npz_bytes(beside: Path) -> bytes:
    """A compressed npz with all four keys whose x_train member has a flipped byte."""
    scratch = beside.with_name("scratch.npz")
    pixels = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.zeros(3, np.uint8)
    np.savez_compressed(scratch, x_train=pixels, y_train=labels, x_test=pixels, y_test=labels)
    content = bytearray(scratch.read_bytes())
    scratch.unlink()
    content[len(content) // 8] ^= 0xFF  # inside the first member's compressed data
    return bytes(content)


@pytest.mark.parametrize("name", ["mnist.npz", "MNIST_data"])
def test_missing_source_raises_data_not_found_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataNotFoundError) as caught:
        load_dataset("mnist", source=tmp_path / name)
    assert isinstance(caught.value, FileNotFoundError)
    assert str(tmp_path / name) in str(caught.value)
    assert not (tmp_path / name).exists()


def test_readers_raise_data_not_found_for_a_missing_file_or_folder(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="no such file"):
        read_npz(tmp_path / "mnist.npz")
    with pytest.raises(DataNotFoundError, match="no such folder"):
        read_idx_folder(tmp_path / "MNIST_data")


def test_idx_folder_missing_one_file_names_it(tmp_path: Path, small_arrays: Arrays) -> None:
    folder = _write_idx_folder(tmp_path, small_arrays, gz=(True,) * 4)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    assert not has_idx_files(folder)
    with pytest.raises(DataNotFoundError, match=r"missing t10k-labels-idx1-ubyte\.gz"):
        load_dataset("mnist", source=folder)


def test_idx_folder_holding_the_wrong_arrays_raises_data_format_error(
    tmp_path: Path, small_arrays: Arrays
) -> None:
    x_train, y_train, x_test, y_test = small_arrays
    folder = _write_idx_folder(
        tmp_path, (x_train.reshape(100, 784), y_train, x_test, y_test), gz=(True,) * 4
    )
    with pytest.raises(DataFormatError, match=r"x_train must be uint8 images") as caught:
        load_dataset("mnist", source=folder)
    assert str(folder) in str(caught.value)


# The registry of loaders ------------------------------------------------------------------


def test_unknown_dataset_name_suggests_a_close_match() -> None:
    with pytest.raises(UnknownNameError) as caught:
        load_dataset("mnsit")
    assert isinstance(caught.value, LookupError)
    assert isinstance(caught.value, MnistkitError)
    assert "Unknown dataset 'mnsit'. Did you mean 'mnist'?" in str(caught.value)
    assert "mnistkit.list_datasets()" in str(caught.value)


def test_registered_loader_is_listed_described_and_loaded(
    tiny_digits: Callable[..., Datasets],
) -> None:
    names = list_datasets()
    assert names == sorted(names)
    assert {"mnist", "tiny_digits"} <= set(names)
    assert list_datasets("TINY*") == ["tiny_digits"]
    (entry,) = describe_datasets("tiny_digits")
    assert entry.origin == "local"
    assert entry.summary == "The first 100 training and 50 test digits."
    assert entry.target == f"{tiny_digits.__module__}:tiny_digits.<locals>.tiny_digits"

    data = load_dataset("Tiny Digits", validation_size=20, one_hot=True)

    assert (data.train.num_examples, data.validation.num_examples) == (80, 20)
    assert data.train.labels.shape == (80, 10)


def test_loader_option_it_does_not_accept_lists_those_it_does(
    tiny_digits: Callable[..., Datasets],
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        load_dataset("tiny_digits", flatten=True)
    assert "'tiny_digits'" in str(caught.value)
    assert "Accepted arguments: validation_size, one_hot." in str(caught.value)


def test_registering_a_taken_dataset_name_raises_unless_override(
    tiny_digits: Callable[..., Datasets],
) -> None:
    with pytest.raises(InvalidArgumentError, match="'tiny_digits' is already registered"):
        register_dataset("tiny-digits")(tiny_digits)
    with pytest.raises(InvalidArgumentError, match="'mnist' is already registered"):
        register_dataset("MNIST")(tiny_digits)

    register_dataset("tiny_digits", override=True)(datasets_module.mnist)

    assert describe_datasets("tiny_digits")[0].target == "mnistkit.datasets:mnist"


def test_unregistered_loader_is_gone(small_arrays: Arrays) -> None:
    register_dataset("fleeting")(lambda: Datasets.from_arrays(*small_arrays, validation_size=0))
    datasets_module.DATASETS.unregister("fleeting")
    assert "fleeting" not in list_datasets()
    with pytest.raises(UnknownNameError):
        load_dataset("fleeting")


# Packaging --------------------------------------------------------------------------------


@pytest.mark.slow
def test_built_wheel_ships_the_embedded_data_and_its_licence(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(
        REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, project / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    built = subprocess.run(
        [*command, "--wheel-dir", str(tmp_path / "dist"), str(project)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr

    (wheel,) = (tmp_path / "dist").glob("mnistkit-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        embedded = archive.read("mnistkit/data/mnist.npz")
    assert {"mnistkit/data/LICENSE.txt", "mnistkit/py.typed"} <= names
    source = REPO / "src" / "mnistkit" / "data" / "mnist.npz"
    assert hashlib.sha256(embedded).digest() == hashlib.sha256(source.read_bytes()).digest()
