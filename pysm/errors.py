"""pysm's exception hierarchy.

Every error pysm raises is a :class:`pysm.Error`; each kind also subclasses the matching Python
builtin, so ``except ValueError`` or ``except FileNotFoundError`` keep working in existing code.
Messages name the element, source, codec or config key involved, and what to do about it.
"""

from __future__ import annotations

import builtins

__all__ = [
    "Error", "ConfigError", "ModelNotFoundError", "SourceError", "DecodeError", "UnsupportedError",
    "InferenceError", "PipelineError", "StateError", "CudaError", "DriverError", "InvalidArgument",
    "OutOfRangeError", "ExpiredViewError", "OutOfMemoryError", "TimeoutError", "NotSupportedYet",
]


class Error(Exception):
    """Base class of every pysm error."""


class ConfigError(Error, ValueError):
    """A configuration value, property, factory name or config file is wrong."""


class ModelNotFoundError(ConfigError, FileNotFoundError):
    """A model, engine or label file named by a config does not exist."""


class SourceError(Error, OSError):
    """A source (file, RTSP, HTTP, camera) could not be opened or read."""


class DecodeError(Error, RuntimeError):
    """A bitstream could not be decoded (corrupt data, decoder failure)."""


class UnsupportedError(DecodeError):
    """The codec, profile or size is not supported by this GPU or build."""


class InferenceError(Error, RuntimeError):
    """A model could not be loaded or run, or its shapes contradict the config."""


class PipelineError(Error, RuntimeError):
    """A pipeline could not be built, linked or run."""


class StateError(PipelineError):
    """An operation is not allowed in the pipeline's current state."""


class CudaError(Error, RuntimeError):
    """A CUDA call failed; the message carries the CUDA/CUresult error name."""


class DriverError(CudaError):
    """An NVIDIA driver library (libcuda, libnvcuvid, libnvidia-encode) could not be loaded."""


class InvalidArgument(Error, ValueError):
    """An argument has the wrong dtype, layout, shape, device or value."""


class OutOfRangeError(Error, IndexError):
    """An index is out of range."""


class ExpiredViewError(Error, builtins.ReferenceError):
    """A view (metadata, tensor) was used after the buffer that owns it was released."""


class OutOfMemoryError(Error, MemoryError):
    """Host or device memory is exhausted."""


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001 - deliberately mirrors the builtin
    """An operation did not finish in time (connect, read, stop)."""


class NotSupportedYet(Error, NotImplementedError):
    """A feature of the pyservicemaker API that pysm does not provide yet."""


# Native error kinds (csrc/include/pysm/error.hpp ErrorKind) -> exception classes.
_NATIVE_KINDS: dict[int, type[Error]] = {
    0: Error,
    1: ConfigError,
    2: SourceError,
    3: DecodeError,
    4: InferenceError,
    5: PipelineError,
    6: CudaError,
    7: DriverError,
    8: InvalidArgument,
    9: OutOfRangeError,
    10: ExpiredViewError,
    11: OutOfMemoryError,
    12: TimeoutError,
    13: NotSupportedYet,
    14: SourceError,
    15: UnsupportedError,
}


def from_native(kind: int, message: str) -> Error:
    """Build the exception for a native error kind."""
    return _NATIVE_KINDS.get(kind, Error)(message)
