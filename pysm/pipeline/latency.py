"""Per-stage latency: the mux records when each frame left its source; every element then stamps
the batches it emits; ``measure_latency_probe`` reads the stamps per frame."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from pysm._native import _core


class LatencyTracer:
    def __init__(self, max_frames: int = 4096) -> None:
        self._lock = threading.Lock()
        self._frames: "collections.OrderedDict[tuple[int, int], list]" = collections.OrderedDict()
        self._max = max_frames

    def begin(self, source_id: int, frame_number: int, t0: float, origin: str) -> None:
        with self._lock:
            self._frames[(source_id, frame_number)] = [(origin, t0)]
            while len(self._frames) > self._max:
                self._frames.popitem(last=False)

    def stage(self, element: str, buffer: Any) -> None:
        now = time.perf_counter()
        try:
            infos = _core.batch_frame_info(buffer)
        except Exception:
            return
        with self._lock:
            for info in infos:
                stamps = self._frames.get((info[0], info[3]))
                if stamps is not None and stamps[-1][0] != element:
                    stamps.append((element, now))

    def frame_stages(self, source_id: int, frame_number: int) -> list[tuple[str, float]]:
        """[(stage, seconds spent since the previous stage)] for one frame."""
        with self._lock:
            stamps = list(self._frames.get((source_id, frame_number), ()))
        return [(stamps[i][0], stamps[i][1] - stamps[i - 1][1]) for i in range(1, len(stamps))]

    def frame_total(self, source_id: int, frame_number: int) -> float:
        with self._lock:
            stamps = self._frames.get((source_id, frame_number))
            return time.perf_counter() - stamps[0][1] if stamps else -1.0
