"""Draw the pictures the pages show that no example draws, when the pages are built.

- ``_figures/deep-cnn-architecture.png``: the deep CNN's layers, read from the model
  that ``mnistkit.build("deep_cnn")`` makes, with their output shapes and parameters;
- ``_figures/scaling.png``: the deep CNN's training times and speeds, read from the
  figures of ``_measurements.rst``, which the pages quote in words.

Both take a second or two, without training anything. A figure that ``_measurements.rst``
no longer gives in the expected form fails the build.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

FOLDER = "_figures"

# Layer colours by kind, and how each kind is described.
_KINDS = {
    "InputLayer": ("#e8e8e8", lambda c: "input"),
    "Conv2D": (
        "#c6dbef",
        lambda c: f"conv {c['kernel_size'][0]}x{c['kernel_size'][1]}, {c['activation']}",
    ),
    "MaxPooling2D": ("#c7e9c0", lambda c: f"max-pool {c['pool_size'][0]}x{c['pool_size'][1]}"),
    "Flatten": ("#e8e8e8", lambda c: "flatten"),
    "Dense": (
        "#fdd0a2",
        lambda c: "dense" + (f", {c['activation']}" if c["activation"] != "linear" else ""),
    ),
    "KeepProbDropout": ("#dadaeb", lambda c: f"dropout, keep {c['keep_prob']:g}"),
    "ModelOutput": ("#e8e8e8", lambda c: "output: logits"),
}


def _shape(layer: Any) -> str:
    return "x".join(str(d) for d in layer.output.shape[1:])


def draw_architecture(path: Path) -> None:
    """Draw the deep CNN's layers as two rows of boxes joined by arrows."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    import mnistkit

    model = mnistkit.build("deep_cnn", seed=0)
    layers = model.layers
    per_row = (len(layers) + 1) // 2
    width, height, gap = 1.65, 1.45, 0.42
    figure = Figure(figsize=(per_row * (width + gap) + 0.1, 2 * height + 1.35))
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(-0.05, per_row * (width + gap) + 0.05)
    axes.set_ylim(-0.05, 2 * height + 1.3)
    axes.axis("off")
    centres = []
    for index, layer in enumerate(layers):
        row, column = divmod(index, per_row)
        x = column * (width + gap) + gap / 2
        y = (1 - row) * (height + 0.75) + 0.05
        colour, describe = _KINDS.get(type(layer).__name__, ("#ffffff", lambda c: ""))
        axes.add_patch(
            FancyBboxPatch(
                (x, y),
                width,
                height,
                boxstyle="round,pad=0.02,rounding_size=0.08",
                facecolor=colour,
                edgecolor="#555",
                linewidth=0.8,
            )
        )
        params = layer.count_params()
        lines = [
            (layer.name, 12, "bold"),
            (describe(layer.get_config()), 10, "normal"),
            (_shape(layer), 11, "normal"),
            (f"{params:,} parameters" if params else "no parameters", 9.5, "normal"),
        ]
        for line, (text, size, weight) in enumerate(lines):
            axes.text(
                x + width / 2,
                y + height - 0.24 - line * 0.32,
                text,
                ha="center",
                va="center",
                fontsize=size,
                fontweight=weight,
            )
        centres.append((x, y, row))
    for (x0, y0, row0), (x1, y1, row1) in itertools.pairwise(centres):
        start, end = (x0 + width, y0 + height / 2), (x1, y1 + height / 2)
        if row0 != row1:  # down from the end of the first row, left, down to the second
            middle = (y0 + y1 + height) / 2
            start, end = (x0 + width / 2, y0), (x1 + width / 2, y1 + height)
            axes.plot(
                [start[0], start[0], end[0]], [start[1], middle, middle], color="#555", lw=1.2
            )
            start = (end[0], middle)
        axes.add_patch(
            FancyArrowPatch(
                start, end, arrowstyle="-|>", mutation_scale=12, color="#555", shrinkB=2
            )
        )
    total = model.count_params()
    axes.text(
        0.02,
        2 * height + 1.2,
        f"deep_cnn: {total:,} parameters; shapes are those of one image",
        fontsize=11,
        va="top",
        color="#333",
    )
    figure.savefig(path, dpi=110)


_NUMBER = r"(\d[\d,]*(?:\.\d+)?)"


def _substitutions(text: str) -> dict[str, str]:
    return dict(re.findall(r"^\.\. \|([\w-]+)\| replace:: (.+)$", text, flags=re.MULTILINE))


def _range(values: dict[str, str], name: str) -> tuple[float, float]:
    """Read ``"620 to 640 s"`` or ``"406 s"`` from a substitution as (low, high)."""
    text = values.get(name)
    match = None if text is None else re.match(rf"{_NUMBER}(?: to {_NUMBER})?", text)
    if match is None:
        raise ExtensionError(
            f"_measurements.rst: |{name}| should begin with a number or 'N to M'; it is {text!r}."
        )
    low = float(match.group(1).replace(",", ""))
    high = float((match.group(2) or match.group(1)).replace(",", ""))
    return low, high


def draw_scaling(path: Path, measurements: Path) -> None:
    """Draw the deep CNN's training times and speeds that ``_measurements.rst`` gives."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    values = _substitutions(measurements.read_text())
    times = [
        ("tutorial recipe\nfloat32", "deep-cnn-time", "deep-cnn-accuracy", "#9ab"),
        (
            "tutorial recipe\nbfloat16 (auto)",
            "deep-cnn-auto-time",
            "deep-cnn-auto-accuracy",
            "#79a",
        ),
        ("fast recipe\nbfloat16 (auto)", "fast-time", "fast-accuracy", "#357"),
    ]
    speeds = [
        ("float32,\nbatch 50", "float32-speed-50", "#9ab"),
        ("bfloat16,\nbatch 50", "bfloat16-speed-50", "#79a"),
        ("bfloat16,\nbatch 128-256", "bfloat16-speed-large", "#357"),
    ]
    figure = Figure(figsize=(8.2, 3.3), layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, width_ratios=[1.25, 1])
    for row, (_, time_name, accuracy_name, colour) in enumerate(times):
        low, high = _range(values, time_name)
        left.barh(row, high, color=colour)
        if high > low:
            left.plot([low, high], [row, row], color="black", linewidth=1.5)
        accuracy = values[accuracy_name].split(" (")[0]
        left.text(high + 12, row, f"{high:.0f} s, {accuracy}", va="center", fontsize=8)
    left.set_yticks(range(len(times)), [label for label, *_ in times], fontsize=8)
    left.invert_yaxis()
    left.set_xlim(0, 1000)
    left.set_xlabel("seconds to train (longest run); test accuracy")
    left.set_title("Training the deep CNN", fontsize=10)
    for row, (_, name, colour) in enumerate(speeds):
        low, high = _range(values, name)
        right.barh(row, high, color=colour)
        right.plot([low, high], [row, row], color="black", linewidth=1.5)
    right.set_yticks(range(len(speeds)), [label for label, *_ in speeds], fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("training examples a second (range)")
    right.set_title("Its speed by precision", fontsize=10)
    for axes in (left, right):
        axes.grid(axis="x", alpha=0.3)
        axes.tick_params(axis="x", labelsize=8)
    figure.savefig(path, dpi=110)


def draw_all(app: Sphinx) -> None:
    folder = Path(app.srcdir) / FOLDER
    folder.mkdir(exist_ok=True)
    draw_architecture(folder / "deep-cnn-architecture.png")
    draw_scaling(folder / "scaling.png", Path(app.srcdir) / "_measurements.rst")


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("builder-inited", draw_all)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
