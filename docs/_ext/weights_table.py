"""A table of the pretrained weights, generated at build time from their metadata.

In a document::

    .. weights-table::

writes one column per weight set of every model that ships some
(:func:`mnistkit.list_models` with ``pretrained=True``), and one row per fact of its
metadata: accuracy, recipe, seed, the command that made it, storage, SHA-256, versions,
licence. Regenerating the weights updates the table at the next build.
"""

from __future__ import annotations

from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _rows(meta: Any, recipe: Any) -> list[tuple[str, str]]:
    size = int(meta["size_bytes"])
    versions = meta.get("versions", {})
    trained_with = ", ".join(
        f"{name} {versions[name]}"
        for name in ("mnistkit", "keras", "tensorflow", "numpy", "python")
        if name in versions
    )
    errors = meta.get("test_errors")
    return [
        (
            "test accuracy",
            f"{meta['test_accuracy']:.2%} ({errors} errors in {meta['test_examples']:,})",
        ),
        ("before float16 rounding", f"{meta.get('float32_test_accuracy', 0.0):.2%}"),
        ("recipe", f"``{recipe.label}``: {recipe.describe()}"),
        ("seed", f"{meta['seed']}{', deterministic' if meta.get('deterministic') else ''}"),
        ("command", f"``{meta['command']}``"),
        ("parameters", f"{meta['parameters']:,}"),
        ("stored as", f"{meta['dtype']}, {size / 1e6:.2f} MB ({size:,} bytes)"),
        ("SHA-256", f"``{meta['sha256']}``"),
        ("trained with", trained_with),
        ("trained on", str(meta.get("trained_on", "?"))),
        ("licence", str(meta["license"]).split(" (")[0] + " (see below)"),
    ]


class WeightsTable(SphinxDirective):
    """``.. weights-table::``: the metadata of every shipped weight set."""

    def run(self) -> list[nodes.Node]:
        from mnistkit import list_models, model_weights

        columns = [
            (model, name, weights)
            for model in list_models(pretrained=True)
            for name, weights in sorted(model_weights(model).items())
        ]
        table = [(field, []) for field, _ in _rows(columns[0][2].meta, columns[0][2].recipe)]
        for _, _, weights in columns:
            self.env.note_dependency(str(weights.path.with_suffix(".json")))
            rows = _rows(weights.meta, weights.recipe)
            for (_, cells), (_, value) in zip(table, rows, strict=True):
                cells.append(value)
        lines = [".. list-table::", "   :header-rows: 1", "   :stub-columns: 1", ""]
        lines += ["   * -", *(f'     - ``build("{m}", weights="{n}")``' for m, n, _ in columns)]
        for field, cells in table:
            lines += [f"   * - {field}", *(f"     - {cell}" for cell in cells)]
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(StringList(lines, source="weights-table"), 0, container)
        return list(container.children)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("weights-table", WeightsTable)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
