"""pyservicemaker's ``utils``: media discovery and extraction, performance and engine monitors.

Names resolve lazily to the module that defines them.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "MediaInfo": "pysm.utils.media_info", "VideoStreamInfo": "pysm.utils.media_info",
    "AudioStreamInfo": "pysm.utils.media_info",
    "MediaExtractor": "pysm.utils.media_extractor", "MediaChunk": "pysm.utils.media_extractor",
    "VideoFrame": "pysm.utils.media_extractor",
    "PerfMonitor": "pysm.utils.perf_monitor",
    "EngineFileMonitor": "pysm.utils.engine_file_monitor",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pysm.utils' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = list(_EXPORTS)
