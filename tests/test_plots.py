"""Tests of mnistkit.plots: confusion matrix counts and the PNG plots of a run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mnistkit import InvalidArgumentError
from mnistkit.plots import (
    INSTALL_HINT,
    confusion_matrix,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_misclassified,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_confusion_matrix_counts_true_label_rows_against_predicted_columns() -> None:
    counts = confusion_matrix([3, 3, 5, 9], [3, 5, 5, 3])

    assert counts.shape == (10, 10)
    assert counts[3, 3] == counts[3, 5] == counts[5, 5] == counts[9, 3] == 1
    assert counts.sum() == 4


def test_confusion_matrix_rejects_labels_out_of_range() -> None:
    with pytest.raises(InvalidArgumentError, match="predictions"):
        confusion_matrix([1, 2], [1, 10])


def test_learning_curves_need_a_loss_or_an_accuracy(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="loss or accuracy"):
        plot_learning_curves({"step": [0, 1], "learning_rate": [0.1, 0.1]}, tmp_path / "c.png")


def test_each_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 50)
    predictions = np.where(rng.random(50) < 0.2, (labels + 1) % 10, labels)

    written = [
        plot_learning_curves(
            {"step": [0, 10, 20], "train_accuracy": [0.1, 0.8, float("nan")]},
            tmp_path / "curves.png",
        ),
        plot_confusion_matrix(labels, predictions, tmp_path / "confusion.png"),
        plot_misclassified(
            rng.random((50, 28, 28, 1)),
            labels,
            predictions,
            tmp_path / "wrong.png",
            confidence=rng.random(50),
            limit=4,
        ),
    ]

    for path in written:
        assert path.read_bytes()[:8] == PNG_MAGIC, path
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "confusion.png",
        "curves.png",
        "wrong.png",
    ]


def test_without_matplotlib_plots_say_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail

    with pytest.raises(ModuleNotFoundError, match=r"mnistkit\[plots\]") as caught:
        plot_confusion_matrix([1], [1], tmp_path / "confusion.png")

    assert caught.value.name == "matplotlib"
    assert INSTALL_HINT in str(caught.value)
    assert not (tmp_path / "confusion.png").exists()
