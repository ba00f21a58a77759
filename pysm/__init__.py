"""pysm: stream analytics on NVIDIA GPUs, compatible with DeepStream's Service Maker Python API.

``import pysm`` works on any machine; GPU features load the driver on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

from pysm import cuda, errors
from pysm._native import _core
from pysm.errors import (
    ConfigError,
    CudaError,
    DecodeError,
    Error,
    InferenceError,
    PipelineError,
    SourceError,
)


def memory_stats() -> dict:
    """Per-pool memory statistics: bytes in use, cached, peak, and allocation counts."""
    return _core.memory_stats()


def empty_cache() -> None:
    """Release every cached block of pysm's memory pools back to the system."""
    _core.empty_cache()


__all__ = [
    "__version__", "cuda", "errors", "memory_stats", "empty_cache",
    "Error", "ConfigError", "SourceError", "DecodeError", "InferenceError", "PipelineError", "CudaError",
]
