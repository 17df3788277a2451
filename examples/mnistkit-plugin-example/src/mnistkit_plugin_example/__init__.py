"""An example mnistkit plugin: a model, its custom layer, and a data loader.

Nothing is imported here, so that importing one submodule costs only that submodule:
``models`` (no Keras until a model is built), ``datasets`` (NumPy) and ``layers``
(Keras, imported when a model is built or loaded).
"""

__version__ = "0.1.0"
