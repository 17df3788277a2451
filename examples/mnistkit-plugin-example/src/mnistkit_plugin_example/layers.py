"""The plugin's Keras layer, registered so that saved models load with ``safe_mode`` on.

This module imports Keras. The model factory imports it when it runs, and
:func:`mnistkit.load_model` imports it when a saved model names it, so nobody has to.
"""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="mnistkit_plugin_example")
class Scale(keras.layers.Layer):
    """Multiply the inputs by a constant factor, stored in the layer's config.

    Args:
        factor: The constant to multiply by.
        **kwargs: Passed to :class:`keras.layers.Layer`.

    Example:
        >>> import numpy as np
        >>> Scale(0.5)(np.array([[2.0, 4.0]], "float32")).numpy().tolist()
        [[1.0, 2.0]]
    """

    def __init__(self, factor: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.factor = float(factor)

    def call(self, inputs: Any) -> Any:
        return inputs * self.factor

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config.update(factor=self.factor)
        return config
