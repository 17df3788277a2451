"""A Keras callback that writes a run's figures and its model's graph for TensorBoard.

:class:`TensorBoardLog` writes event files with ``tf.summary``, whose summaries
TensorFlow 2.21 takes from the TensorBoard package: both writing and viewing them need
the ``tensorboard`` extra (``pip install 'mnistkit[tensorboard]'``, then
``tensorboard --logdir DIR``). ``mnistkit train --tensorboard`` passes one to the
Trainer, writing into the run folder's ``tensorboard/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from mnistkit._extras import require
from mnistkit.layers import parameter_count
from mnistkit.models import model_info

__all__ = ["TensorBoardLog"]


class TensorBoardLog(keras.callbacks.Callback):
    """Write a run's figures and, once, its model's graph, as TensorBoard event files.

    Figures go into two folders under ``log_dir``, ``train`` and ``validation``, so that
    TensorBoard draws the two curves of a tag on one chart. Every figure is plotted
    against the training step, under two groups of tags:

    - ``steps/``, at each step the Trainer logs (``Trainer.fit(log_every=N)``,
      ``mnistkit train --log-every N``): in ``train``, ``steps/batch_accuracy``, the
      tutorial's "training accuracy" (on the batch about to be trained, dropout off),
      ``steps/loss`` and ``steps/accuracy``, the means over the steps since the last
      logged one, and ``steps/learning_rate``; in ``validation``, ``steps/loss`` and
      ``steps/accuracy`` on the validation data, if ``fit`` has any;
    - ``epochs/``, at the end of each epoch: ``epochs/loss`` and ``epochs/accuracy``,
      the epoch's means in ``train`` and the validation figures in ``validation``
      (and ``steps/learning_rate`` there too).

    When training begins, the graph of the model's forward pass (inference mode) is
    written, and a text summary of the model (name, parameters, recipe).

    It works as well with plain ``keras.Model.fit``, which gives it the epoch figures.

    Args:
        log_dir: The folder to write into; made if missing. Event files already there
            are kept, and TensorBoard shows them beside the new ones.
        graph: Write the model's graph.

    Raises:
        MissingDependencyError: If TensorBoard is not installed; the message names the
            extra that installs it.

    Example:
        >>> import tempfile
        >>> from mnistkit import Trainer, load_dataset
        >>> data = load_dataset("mnist")
        >>> log_dir = tempfile.mkdtemp()
        >>> _ = Trainer("softmax", seed=0).fit(
        ...     data.train, steps=20, log_every=10, validation_data=data.validation,
        ...     callbacks=[TensorBoardLog(log_dir)], verbose=0)
        >>> sorted(path.name for path in Path(log_dir).iterdir())
        ['train', 'validation']
    """

    def __init__(self, log_dir: str | os.PathLike[str], *, graph: bool = True) -> None:
        require("tensorboard", extra="tensorboard", purpose="Writing TensorBoard logs")
        super().__init__()
        self.log_dir = Path(log_dir)
        self.graph = graph
        self._writers: dict[str, Any] = {}
        self._graph_written = False

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Open the event files, and write the graph and the model's summary once."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._writers = {
            kind: tf.summary.create_file_writer(str(self.log_dir / kind))
            for kind in ("train", "validation")
        }
        if self.graph and not self._graph_written:
            self._write_graph()
            self._graph_written = True

    def on_log(self, step: int, logs: dict[str, float]) -> None:
        """Write the figures of one logged step (the Trainer calls this hook).

        Args:
            step: The step; the figures of ``logs`` are about the steps up to it.
            logs: A record of :attr:`RunHistory.log <mnistkit.training.RunHistory.log>`.
        """
        figures = dict(logs)
        figures.pop("step", None)
        if "train_accuracy" in figures:
            figures["batch_accuracy"] = figures.pop("train_accuracy")
        self._write(step, "steps", figures)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Write an epoch's figures (``epochs/`` tags) at the step it ends on.

        Args:
            epoch: The epoch's number, from 0.
            logs: Its mean training figures and its validation figures (``val_loss``...).
        """
        figures = {key: value for key, value in (logs or {}).items() if np.ndim(value) == 0}
        self._write(self._step(epoch), "epochs", figures)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Close the event files; a later ``fit`` opens new ones beside them."""
        for writer in self._writers.values():
            writer.close()
        self._writers = {}

    def _write(self, step: int, group: str, figures: dict[str, Any]) -> None:
        """Write ``val_``-prefixed figures to the validation run, the others to train."""
        if not self._writers:  # a record after training ended, or before it began
            self.on_train_begin()
        runs: dict[str, dict[str, Any]] = {"train": {}, "validation": {}}
        for key, value in figures.items():
            kind = "validation" if key.startswith("val_") else "train"
            runs[kind][f"{group}/{key.removeprefix('val_')}"] = value
        runs["train"].update(self._learning_rate())
        for kind, values in runs.items():
            if not values:
                continue
            writer = self._writers[kind]
            with writer.as_default(step=int(step)):
                for tag, value in sorted(values.items()):
                    tf.summary.scalar(tag, float(value))
            writer.flush()

    def _step(self, epoch: int) -> int:
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            return int(optimizer.iterations.numpy())
        return (epoch + 1) * int(self.params.get("steps") or 1)

    def _learning_rate(self) -> dict[str, float]:
        optimizer = getattr(self.model, "optimizer", None)
        rate = getattr(optimizer, "learning_rate", None)
        if rate is None:
            return {}
        try:
            return {"steps/learning_rate": float(np.asarray(rate))}
        except (TypeError, ValueError):
            return {}

    def _write_graph(self) -> None:
        model = self.model
        shape = (None, *(int(size) for size in model.input_shape[1:]))

        def forward(images: tf.Tensor) -> tf.Tensor:
            return model(images, training=False)

        traced = tf.function(forward, input_signature=[tf.TensorSpec(shape, tf.float32)])
        graph = traced.get_concrete_function().graph
        info = model_info(model)
        described = [f"**{model.name}**, {parameter_count(model):,} parameters"]
        if info is not None and info.recipe is not None:
            described.append(f"recipe {info.recipe.label!r}: {info.recipe.describe()}")
        with self._writers["train"].as_default(step=0):
            tf.summary.graph(graph)
            tf.summary.text("model", "; ".join(described))
        self._writers["train"].flush()
