"""The version of mnistkit, in a module that imports nothing.

Internal modules read it from here, so that asking for the version never imports the
package's ``__init__`` (and with it the registries and the data loaders).
"""

__version__ = "0.2.0"
