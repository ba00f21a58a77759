"""PerfMonitor: per-stream frames per second at a node, printed every ``interval`` seconds."""

from __future__ import annotations

import threading
import time
from typing import Any, Optional

from pysm._native import _core


class _Stream:
    __slots__ = ("uri", "sensor_id", "sensor_name", "count", "total", "since")

    def __init__(self, uri: str, sensor_id: str, sensor_name: str) -> None:
        self.uri, self.sensor_id, self.sensor_name = uri, sensor_id, sensor_name
        self.count = 0
        self.total = 0
        self.since = time.monotonic()


class PerfMonitor:
    """``PerfMonitor(batch_size, interval, source_type, show_name)``; ``apply(node, tips)`` starts
    measuring at a node's output. Streams appear by themselves as frames arrive, or explicitly
    with ``add_stream`` (to carry uri/sensor names) and go away with ``remove_stream``."""

    def __init__(self, batch_size: int = 1, interval: float = 5, source_type: str = "nvurisrcbin",
                 show_name: bool = True, printer: Optional[Any] = print) -> None:
        self.batch_size = batch_size
        self.interval = float(interval)
        self.source_type = source_type
        self.show_name = show_name
        self._printer = printer
        self._lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._paused = False
        self._t0 = time.monotonic()
        self.last_fps: dict[int, float] = {}
        self.reports = 0

    # -- pyservicemaker API --------------------------------------------------------------------------
    def apply(self, node: Any, tips: str = "") -> "PerfMonitor":
        from pysm.pipeline.probe import BufferObserver, Probe

        monitor = self

        class _Counter(BufferObserver):
            def handle_buffer(self, buffer: Any) -> None:
                monitor._count(buffer)

        node.attach(Probe(f"perf-monitor-{id(self):x}", _Counter()), tips)
        return self

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._t0 = time.monotonic()
            for s in self._streams.values():
                s.count = 0

    def add_stream(self, source_id: int, uri: str = "", sensor_id: str = "", sensor_name: str = "") -> None:
        with self._lock:
            self._streams[int(source_id)] = _Stream(uri, sensor_id, sensor_name)

    def remove_stream(self, source_id: int) -> None:
        with self._lock:
            self._streams.pop(int(source_id), None)
            self.last_fps.pop(int(source_id), None)

    # -- measurement ---------------------------------------------------------------------------------
    def _count(self, buffer: Any) -> None:
        if self._paused:
            return
        infos = _core.batch_frame_info(buffer)
        now = time.monotonic()
        with self._lock:
            for info in infos:
                s = self._streams.get(info[0])
                if s is None:
                    s = self._streams[info[0]] = _Stream("", "", "")
                s.count += 1
                s.total += 1
            if now - self._t0 >= self.interval:
                self._report(now)

    def _report(self, now: float) -> None:
        dt = max(now - self._t0, 1e-9)
        self.last_fps = {sid: s.count / dt for sid, s in self._streams.items()}
        parts = []
        for sid in sorted(self._streams):
            s = self._streams[sid]
            avg = s.total / max(now - s.since, 1e-9)
            name = f" {s.sensor_name or s.sensor_id}" if self.show_name and (s.sensor_name or s.sensor_id) else ""
            parts.append(f"stream{sid}{name}: {self.last_fps[sid]:.2f} ({avg:.2f})")
            s.count = 0
        self._t0 = now
        self.reports += 1
        if self._printer is not None:
            self._printer("**PERF: " + "\t".join(parts))

    def fps(self) -> dict[int, float]:
        """Per-stream fps over the last interval (updated at each report)."""
        with self._lock:
            return dict(self.last_fps)
