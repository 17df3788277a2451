"""Pictures of a training run: learning curves, confusion matrix, misclassified digits.

Plots need matplotlib, an optional extra (``pip install 'mnistkit[plots]'``). It is
imported when a plot is drawn, never on ``import mnistkit``, and used through its
object-oriented API with the Agg canvas: no window opens, and the pyplot state of a
notebook that calls these functions is left alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistkit._files import atomic_path
from mnistkit.errors import InvalidArgumentError
from mnistkit.validation import invalid

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "INSTALL_HINT",
    "confusion_matrix",
    "plot_confusion_matrix",
    "plot_importances",
    "plot_learning_curves",
    "plot_misclassified",
    "plot_search_history",
]

#: What to run to get the plots.
INSTALL_HINT = "pip install 'mnistkit[plots]'"

NUM_CLASSES = 10

# Legend labels for the series that Keras and the Trainer name.
_LABELS = {
    "loss": "training (mean over the steps)",
    "accuracy": "training (mean over the steps)",
    "train_accuracy": "training batch, dropout off",
    "val_loss": "validation",
    "val_accuracy": "validation",
}


def confusion_matrix(
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    *,
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """Count how often each true label was predicted as each label.

    Args:
        labels: True labels, integers in [0, num_classes).
        predictions: Predicted labels, as many as ``labels``.
        num_classes: How many classes there are.

    Returns:
        An int64 array shaped (num_classes, num_classes), whose row ``t``, column ``p``
        counts the examples of label ``t`` predicted as ``p``.

    Raises:
        InvalidArgumentError: If the two differ in length or hold labels out of range.

    Example:
        >>> confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=2).tolist()
        [[1, 0], [1, 1]]
    """
    true = np.asarray(labels, dtype=np.int64).ravel()
    predicted = np.asarray(predictions, dtype=np.int64).ravel()
    if true.shape != predicted.shape:
        raise InvalidArgumentError(
            f"Labels and predictions differ in number: {true.size} labels, "
            f"{predicted.size} predictions."
        )
    for name, values in (("labels", true), ("predictions", predicted)):
        low, high = (int(np.min(values)), int(np.max(values))) if values.size else (0, 0)
        if low < 0 or high >= num_classes:
            raise InvalidArgumentError(
                f"Invalid value for argument `{name}`. Expected integers in "
                f"[0, {num_classes - 1}]. Received: {name} from {low} to {high}"
            )
    counts = np.bincount(true * num_classes + predicted, minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def plot_learning_curves(
    history: Mapping[str, Sequence[float]], path: str | os.PathLike[str]
) -> Path:
    """Draw the losses and accuracies of a run against its steps or epochs, as a PNG.

    Series whose name holds ``loss`` share one panel, those holding ``acc`` another;
    a ``step`` or ``epoch`` series, if present, is the horizontal axis (otherwise the
    position, counted from 1, is taken as the epoch).

    Args:
        history: Series by name, such as ``keras.callbacks.History.history`` or the
            columns of ``history.csv``.
        path: The PNG file to write.

    Returns:
        The path written.

    Raises:
        InvalidArgumentError: If ``history`` has no loss or accuracy series.
        ModuleNotFoundError: If matplotlib is not installed.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "curves.png"
        >>> plot_learning_curves({"loss": [0.9, 0.4], "accuracy": [0.7, 0.9]}, path).exists()
        True
    """
    panels = {
        "Loss": {k: v for k, v in history.items() if "loss" in k},
        "Accuracy": {k: v for k, v in history.items() if "acc" in k},
    }
    panels = {title: series for title, series in panels.items() if series}
    if not panels:
        raise InvalidArgumentError(
            "Invalid value for argument `history`. Expected at least one loss or accuracy "
            f"series. Received: history with keys {sorted(history)}"
        )
    figure = _figure(width=5.0 * len(panels), height=3.6)
    from matplotlib.ticker import MaxNLocator

    axis_name = next((k for k in ("step", "epoch") if k in history), None)
    for index, (title, series) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, len(panels), index)
        for name, values in sorted(series.items()):
            ys = np.asarray(values, dtype=float)
            xs = (
                np.asarray(history[axis_name], dtype=float)[: len(ys)]
                if axis_name
                else np.arange(1, len(ys) + 1)
            )
            marker = "o" if len(ys) <= 30 else None
            axes.plot(xs, ys, marker=marker, markersize=3, label=_LABELS.get(name, name))
        axes.set_title(title)
        axes.set_xlabel(axis_name or "epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
        if title == "Accuracy":
            axes.set_ylim(top=1.0)
    return _save(figure, path)


def plot_confusion_matrix(
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    title: str = "Confusion matrix",
) -> Path:
    """Draw the confusion matrix of ten-class predictions, counts in each cell, as a PNG.

    Args:
        labels: True labels, integers 0 to 9.
        predictions: Predicted labels, as many as ``labels``.
        path: The PNG file to write.
        title: The heading; the accuracy is added to it.

    Returns:
        The path written.

    Raises:
        InvalidArgumentError: If the two differ in length or hold labels out of range.
        ModuleNotFoundError: If matplotlib is not installed.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "confusion.png"
        >>> plot_confusion_matrix([3, 5, 5], [3, 5, 3], path).exists()
        True
    """
    counts = confusion_matrix(labels, predictions)
    total = int(counts.sum())
    accuracy = np.trace(counts) / total if total else float("nan")
    figure = _figure(width=6.4, height=5.6)
    axes = figure.add_subplot()
    # Share of each true label, so that rare digits stand out as much as common ones.
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true label")
    for (row, col), count in np.ndenumerate(counts):
        if count:
            color = "white" if shares[row, col] > 0.6 else "black"
            axes.text(col, row, str(count), ha="center", va="center", fontsize=7, color=color)
    ticks = range(NUM_CLASSES)
    axes.set_xticks(ticks)
    axes.set_yticks(ticks)
    axes.set_xlabel("predicted label")
    axes.set_ylabel("true label")
    axes.set_title(f"{title} (accuracy {accuracy:.2%}, {total:,} images)")
    return _save(figure, path)


def plot_misclassified(
    images: np.ndarray,
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    path: str | os.PathLike[str],
    *,
    confidence: Sequence[float] | np.ndarray | None = None,
    limit: int = 36,
) -> Path:
    """Draw a grid of the digits a model got wrong, each with its true and predicted label.

    Args:
        images: The images, shaped (N, 28, 28), (N, 28, 28, 1) or (N, 784).
        labels: Their true labels.
        predictions: Their predicted labels.
        path: The PNG file to write.
        confidence: The probability the model gave each prediction; if given, the most
            confident mistakes are shown first, with their probability.
        limit: The most digits to show.

    Returns:
        The path written (a picture that says so when nothing was misclassified).

    Raises:
        InvalidArgumentError: If the arrays differ in length or ``limit`` is not positive.
        ModuleNotFoundError: If matplotlib is not installed.

    Example:
        >>> import tempfile, pathlib
        >>> import numpy as np
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "wrong.png"
        >>> plot_misclassified(np.zeros((2, 784)), [1, 7], [1, 1], path).exists()
        True
    """
    true = np.asarray(labels).ravel()
    predicted = np.asarray(predictions).ravel()
    pictures = np.asarray(images)
    if not len(pictures) == len(true) == len(predicted) or (
        confidence is not None and len(confidence) != len(true)
    ):
        raise InvalidArgumentError(
            "Images, labels, predictions and confidence differ in number: "
            f"{len(pictures)}, {len(true)}, {len(predicted)}"
            f"{'' if confidence is None else f', {len(confidence)}'}."
        )
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise invalid("limit", "a positive integer", limit)
    wrong = np.flatnonzero(true != predicted)
    if confidence is not None:
        wrong = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")]
    shown = wrong[:limit]
    columns = min(len(shown), 6) or 1
    rows = max(1, math.ceil(len(shown) / columns))
    figure = _figure(width=1.5 * columns + 0.4, height=1.75 * rows + 0.6)
    heading = f"{len(wrong):,} of {len(true):,} misclassified"
    if len(shown) < len(wrong):
        heading += f"; the {len(shown)} {'most confident' if confidence is not None else 'first'}"
    figure.suptitle(heading + " (true → predicted)", fontsize=10)
    if not len(shown):
        axes = figure.add_subplot()
        axes.axis("off")
        axes.text(0.5, 0.5, "No misclassified images.", ha="center", va="center")
    for position, index in enumerate(shown, start=1):
        axes = figure.add_subplot(rows, columns, position)
        axes.imshow(pictures[index].reshape(28, 28), cmap="gray_r", vmin=0.0, vmax=None)
        caption = f"{true[index]} → {predicted[index]}"
        if confidence is not None:
            caption += f" ({float(np.asarray(confidence)[index]):.0%})"
        axes.set_title(caption, fontsize=9, color="firebrick")
        axes.set_xticks([])
        axes.set_yticks([])
    return _save(figure, path)


def plot_search_history(
    trials: Sequence[tuple[int, float, bool]], path: str | os.PathLike[str]
) -> Path:
    """Draw a search's validation accuracy trial by trial, and the best so far, as a PNG.

    Args:
        trials: ``(number, accuracy, pruned)`` of each trial that has a score; a pruned
            trial's score is its last reported one, drawn hollow.
        path: The PNG file to write.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "history.png"
        >>> plot_search_history([(0, 0.91, False), (1, 0.93, False)], path).exists()
        True
    """
    figure = _figure(width=6.0, height=3.6)
    axes = figure.add_subplot(1, 1, 1)
    done = [(n, v) for n, v, pruned in trials if not pruned]
    pruned = [(n, v) for n, v, was_pruned in trials if was_pruned]
    if done:
        axes.plot(*zip(*done, strict=False), "o", color="tab:blue", label="trial")
        order = sorted(done)
        best = list(np.maximum.accumulate([v for _, v in order]))
        last = max(n for n, _, _ in trials)  # the line runs on to the last trial
        axes.step([n for n, _ in order] + [last], best + best[-1:], where="post",
                  color="tab:orange", label="best so far")  # fmt: skip
    if pruned:
        axes.plot(*zip(*pruned, strict=False), "o", mfc="none", color="tab:gray", label="pruned")
    axes.set_xlabel("trial")
    axes.set_ylabel("validation accuracy")
    axes.grid(alpha=0.3)
    axes.legend()
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(figure, path)


def plot_importances(importances: Mapping[str, float], path: str | os.PathLike[str]) -> Path:
    """Draw how much each searched setting mattered to the score, as a PNG of bars.

    Args:
        importances: Each setting's share of the score's variation (Optuna's
            ``get_param_importances``), largest first.
        path: The PNG file to write.

    Returns:
        The path written.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "importances.png"
        >>> plot_importances({"learning_rate": 0.8, "batch_size": 0.2}, path).exists()
        True
    """
    names = list(importances)[::-1]
    figure = _figure(width=6.0, height=1.2 + 0.4 * len(names))
    axes = figure.add_subplot(1, 1, 1)
    axes.barh(names, [importances[name] for name in names], color="tab:blue")
    axes.set_xlabel("importance for validation accuracy")
    axes.set_xlim(0, 1)
    axes.grid(alpha=0.3, axis="x")
    return _save(figure, path)


def _figure(*, width: float, height: float) -> Figure:
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ModuleNotFoundError(
            f"Plots need matplotlib, which is not installed: {INSTALL_HINT}",
            name="matplotlib",
        ) from error
    return Figure(figsize=(width, height), layout="constrained")


def _save(figure: Any, path: str | os.PathLike[str]) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    FigureCanvasAgg(figure)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    return path
