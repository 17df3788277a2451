"""Write keras.inv and tensorflow.inv: the Keras and TensorFlow names these pages link to.

Keras and TensorFlow publish no Sphinx inventory. These two small ones map the public
names that mnistkit's signatures and pages use to their pages on keras.io and
tensorflow.org, so that ``keras.Model`` in a signature is a link. A signature names a
class by where it is defined (``keras.src.models.model.Model``); ``docs/conf.py`` turns
that into the public name (``keras.Model``) before the inventories are searched. Add a
line to KERAS or TENSORFLOW when a page or signature names another class, then run
``python docs/_inv/make_keras_inv.py``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

# (name, domain:role, address relative to https://keras.io/api/)
KERAS = [
    ("keras.Model", "py:class", "models/model/#model-class"),
    ("keras.models.Model", "py:class", "models/model/#model-class"),
    ("keras.Model.fit", "py:method", "models/model_training_apis/#fit-method"),
    ("keras.Model.evaluate", "py:method", "models/model_training_apis/#evaluate-method"),
    ("keras.Model.predict", "py:method", "models/model_training_apis/#predict-method"),
    ("keras.layers.Layer", "py:class", "layers/base_layer/#layer-class"),
    ("keras.layers.Dropout", "py:class", "layers/regularization_layers/dropout/#dropout-class"),
    ("keras.callbacks.Callback", "py:class", "callbacks/base_callback/#callback-class"),
    ("keras.callbacks.EarlyStopping", "py:class", "callbacks/early_stopping/#earlystopping-class"),
    ("keras.optimizers.Optimizer", "py:class", "optimizers/#optimizer-class"),
    ("keras.losses.Loss", "py:class", "losses/#loss-class"),
]

# (name, domain:role, address relative to https://www.tensorflow.org/api_docs/python/)
TENSORFLOW = [
    ("tf.Tensor", "py:class", "tf/Tensor"),
    ("tf.data.Dataset", "py:class", "tf/data/Dataset"),
    ("tf.distribute.Strategy", "py:class", "tf/distribute/Strategy"),
    ("tf.distribute.MirroredStrategy", "py:class", "tf/distribute/MirroredStrategy"),
    (
        "tf.distribute.MultiWorkerMirroredStrategy",
        "py:class",
        "tf/distribute/MultiWorkerMirroredStrategy",
    ),
    # keras.io has no page for History; TensorFlow's tf.keras pages document Keras 3.
    ("keras.callbacks.History", "py:class", "tf/keras/callbacks/History"),
]


def write(path: Path, project: str, entries: list[tuple[str, str, str]]) -> None:
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        "# Version: 3\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(f"{name} {role} 1 {address} -\n" for name, role, address in entries)
    path.write_bytes(header.encode() + zlib.compress(body.encode(), 9))


def main() -> None:
    here = Path(__file__).parent
    write(here / "keras.inv", "Keras", KERAS)
    write(here / "tensorflow.inv", "TensorFlow", TENSORFLOW)


if __name__ == "__main__":
    main()
