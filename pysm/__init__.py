"""pysm: stream analytics on NVIDIA GPUs, compatible with DeepStream's Service Maker Python API.

``import pysm`` works on any machine (no GPU, no driver); GPU features load the driver on first
use. A pyservicemaker program runs on pysm with its import changed::

    from pysm import Pipeline, Flow, RenderMode, Probe, BatchMetadataOperator
"""

from __future__ import annotations

import importlib
from typing import Any

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

# Public names and the module that defines each. Resolved lazily so that `import pysm` stays
# cheap and a missing optional dependency only fails the feature that needs it.
_EXPORTS: dict[str, str] = {
    # data model
    "Tensor": "pysm.tensor", "ColorFormat": "pysm.tensor", "as_tensor": "pysm.tensor",
    "Buffer": "pysm.metadata", "BatchMetadata": "pysm.metadata", "FrameMetadata": "pysm.metadata",
    "ObjectMetadata": "pysm.metadata", "ClassifierMetadata": "pysm.metadata",
    "DisplayMetadata": "pysm.metadata", "UserMetadata": "pysm.metadata",
    "TensorOutputUserMetadata": "pysm.metadata", "EventMessageUserMetadata": "pysm.metadata",
    "osd": "pysm.osd", "utils": "pysm.utils", "codec": "pysm.codec",
    # pipeline runtime
    "Pipeline": "pysm.pipeline", "PipelineState": "pysm.pipeline", "Node": "pysm.pipeline",
    "StateTransitionMessage": "pysm.pipeline", "DynamicSourceMessage": "pysm.pipeline",
    "EOSMessage": "pysm.pipeline", "PipelineMessage": "pysm.pipeline",
    "Probe": "pysm.pipeline", "Receiver": "pysm.pipeline", "Feeder": "pysm.pipeline",
    "BufferRetriever": "pysm.pipeline", "BufferProvider": "pysm.pipeline",
    "BufferOperator": "pysm.pipeline", "BatchMetadataOperator": "pysm.pipeline",
    "BufferObserver": "pysm.pipeline", "CommonFactory": "pysm.pipeline", "signal": "pysm.pipeline",
    "probe": "pysm.pipeline", "register_probe": "pysm.pipeline", "ErrorMessage": "pysm.pipeline",
    "Flow": "pysm.flow", "RenderMode": "pysm.flow", "MediaType": "pysm.flow", "StreamInfo": "pysm.flow",
    "SourceConfig": "pysm.source_config", "SensorInfo": "pysm.source_config",
    "RecordConfig": "pysm.source_config",
    # inference
    "InferEngine": "pysm.infer",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pysm' has no attribute '{name}'")
    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


def memory_stats() -> dict:
    """Per-pool memory statistics: bytes in use, cached, peak, and allocation counts."""
    return _core.memory_stats()


def empty_cache() -> None:
    """Release every cached block of pysm's memory pools back to the system."""
    _core.empty_cache()


def set_cache_limit(limit_bytes: int, device: str = "cuda:0") -> None:
    """Bound the free blocks one memory pool keeps for reuse (``memory_stats()[...]["cache_limit_bytes"]``).

    ``device`` is ``"cuda:N"`` (``"cuda"`` for device 0) or ``"host"`` (the pool that
    ``memory_stats()`` lists as ``host_pinned`` on a machine with CUDA, else ``host``). Defaults: a
    quarter of the GPU's memory and at least 8 GiB per GPU, 2 GiB on the host. A block returned
    while the cache is full is freed at once, and for device memory that is a ``cudaFree``, which
    waits for all work on the GPU: when many streams hold frames ahead (several decoder sessions per
    file, deep queues), a working set that swings by more than the limit shows as a growing
    ``system_frees`` count and stalls every stream. Raise the limit then. The limit applies to
    blocks returned from now on; what is cached already stays until reused or :func:`empty_cache`
    returns it.
    """
    from pysm.errors import InvalidArgument

    if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or not 0 <= limit_bytes < 2**63:
        raise InvalidArgument(f"limit_bytes must be an int from 0 to 2**63 - 1, got {limit_bytes!r}")
    if device == "host":
        index = -1
    else:
        from pysm.codec.decoder import parse_device

        kind, index = parse_device(device)
        if kind != "cuda":
            raise InvalidArgument(f"device must be 'host', 'cuda' or 'cuda:N', got {device!r}")
    _core.set_cache_limit(limit_bytes, index)


__all__ = [
    "__version__", "cuda", "errors", "memory_stats", "empty_cache", "set_cache_limit",
    "Error", "ConfigError", "SourceError", "DecodeError", "InferenceError", "PipelineError", "CudaError",
    *_EXPORTS,
]
