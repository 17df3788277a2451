"""The exceptions mnistkit raises.

Every error a user can cause derives from :class:`MnistkitError` and from the
builtin exception it resembles, so both ``except MnistkitError`` and, say,
``except LookupError`` catch it.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ClusterError",
    "DataFormatError",
    "DataNotFoundError",
    "ExportError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MissingDependencyError",
    "MnistkitError",
    "PluginError",
    "StorageError",
    "TrainingDivergedError",
    "UnknownNameError",
]


class MnistkitError(Exception):
    """Base class of every error that mnistkit raises on purpose."""


class UnknownNameError(MnistkitError, LookupError):
    """Nothing is registered under the requested name."""


class InvalidArgumentError(MnistkitError, ValueError):
    """An argument has a value outside what the function accepts.

    Args:
        message: The whole message, naming the argument, what was expected and what
            was received.
        argument: The argument's name, where one argument is at fault.
        expected: What the argument accepts, as a phrase ("a positive integer").
    """

    def __init__(
        self, message: str, *, argument: str | None = None, expected: str | None = None
    ) -> None:
        super().__init__(message)
        #: The argument at fault, or ``None``.
        self.argument = argument
        #: What it accepts, as a phrase, or ``None``.
        self.expected = expected


class InvalidTypeError(MnistkitError, TypeError):
    """An argument is of a type the function does not accept."""


class DataFormatError(MnistkitError, ValueError):
    """A data file exists but its content is not what it should be."""


class DataNotFoundError(MnistkitError, FileNotFoundError):
    """A data file or folder that was asked for does not exist."""


class PluginError(MnistkitError, ImportError):
    """An installed plugin could not be imported or does not provide its entry."""


class CheckpointError(MnistkitError, ValueError):
    """A training checkpoint is corrupt or does not match the run resuming it."""


class StorageError(MnistkitError, OSError):
    """A file could not be written: no space left, a size limit reached, or not allowed.

    The file it would have replaced is left as it was, and no partial file remains.
    ``errno`` and ``filename`` are those of the operating system's error.
    """

    def __str__(self) -> str:
        # The message as given, not OSError's "[Errno 28] ...: 'file'" form.
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(MnistkitError, FloatingPointError):
    """The training loss became NaN or infinite."""


class MissingDependencyError(MnistkitError, ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra that brings it."""


class ExportError(MnistkitError, RuntimeError):
    """A converter failed, or an exported model disagrees with the model it came from."""


class ClusterError(MnistkitError, ConnectionError):
    """A process of a cluster did not come in time, or the chief did not answer."""
