"""CommonFactory: objects created by name (pyservicemaker's plugin factories) and the built-in
probes: measure_fps_probe, measure_latency_probe, sample_video_probe, kitti_dump_probe and
add_message_meta_probe. Python probes register with ``register_probe`` or ``@probe``."""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Optional

from pysm._native import _core
from pysm.errors import ConfigError
from pysm.pipeline.probe import BatchMetadataOperator, BufferObserver, BufferOperator, Probe

log = logging.getLogger("pysm.pipeline")

_TYPES = {"integer": int, "float": float, "string": str, "boolean": bool, "path": str}


class ParamProbe(Probe):
    """A factory-made probe: typed parameters with defaults, set with ``set(dict)``."""

    PARAMS: dict[str, tuple[str, Any]] = {}

    def __init__(self, name: str, operator: Any = None, params: Optional[dict] = None) -> None:
        super().__init__(name, operator if operator is not None else _Self())
        self.params_spec = dict(params if params is not None else self.PARAMS)
        self.properties = {k: v[1] for k, v in self.params_spec.items()}
        if operator is not None and hasattr(operator, "_properties"):
            operator._properties = self.properties

    def set(self, properties: dict) -> "ParamProbe":
        for k, v in properties.items():
            key = str(k).replace("_", "-")
            spec = self.params_spec.get(key)
            if spec is None:
                raise ConfigError(f"probe '{self.name}' has no property '{key}' "
                                  f"(properties: {', '.join(self.params_spec) or 'none'})")
            t = _TYPES.get(spec[0], str)
            if t is bool and isinstance(v, int):
                v = bool(v)
            if t is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if not isinstance(v, t) or (t is int and isinstance(v, bool)):
                raise ConfigError(f"probe '{self.name}': property '{key}' expects {spec[0]}, got {v!r}")
            self.properties[key] = v
        return self

    def get(self, key: str) -> Any:
        return self.properties[str(key).replace("_", "-")]

    def __call__(self, buffer: Any) -> bool:
        if isinstance(self.operator, _Self):
            return self.handle(buffer) is not False
        return super().__call__(buffer)

    def handle(self, buffer: Any) -> Optional[bool]:
        raise NotImplementedError


class _Self(BufferObserver):
    """Marker operator: the ParamProbe subclass handles buffers itself."""


class MeasureFpsProbe(ParamProbe):
    """Per-stream frames per second, printed every ``interval`` seconds (``**PERF:`` lines)."""

    PARAMS = {"interval": ("integer", 5, "seconds between reports")}

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        self._total: dict[int, int] = {}
        self._t0 = time.monotonic()
        self._start = self._t0
        self.fps: dict[int, float] = {}
        self.average_fps: dict[int, float] = {}

    def handle(self, buffer: Any) -> None:
        infos = _core.batch_frame_info(buffer)
        now = time.monotonic()
        with self._lock:
            for info in infos:
                self._counts[info[0]] = self._counts.get(info[0], 0) + 1
                self._total[info[0]] = self._total.get(info[0], 0) + 1
            if now - self._t0 >= self.properties["interval"]:
                self._report(now)

    def _report(self, now: float) -> None:
        dt = max(now - self._t0, 1e-9)
        self.fps = {k: v / dt for k, v in self._counts.items()}
        self.average_fps = {k: v / max(now - self._start, 1e-9) for k, v in self._total.items()}
        parts = "\t".join(f"stream{k}: {self.fps[k]:.2f} ({self.average_fps[k]:.2f})" for k in sorted(self.fps))
        print(f"**PERF [{self.name}]: {parts}", flush=True)
        self._counts = {k: 0 for k in self._counts}
        self._t0 = now


class MeasureLatencyProbe(ParamProbe):
    """Per-frame latency from source to this point, split by stage; averages printed every
    ``interval`` seconds and kept in ``stage_latency_ms`` / ``total_latency_ms``."""

    PARAMS = {"interval": ("integer", 5, "seconds between reports")}

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._tracer = None
        self._sum: dict[str, float] = {}
        self._n: dict[str, int] = {}
        self._total = 0.0
        self._frames = 0
        self._t0 = time.monotonic()
        self.stage_latency_ms: dict[str, float] = {}
        self.total_latency_ms = 0.0
        self.frames = 0

    def attach_to(self, pipeline: Any, element: Any, tips: str) -> None:
        self._tracer = pipeline.enable_latency_tracing()
        element.add_probe(self, tips)

    def handle(self, buffer: Any) -> None:
        if self._tracer is None:
            return
        for info in _core.batch_frame_info(buffer):
            for stage, dt in self._tracer.frame_stages(info[0], info[3]):
                self._sum[stage] = self._sum.get(stage, 0.0) + dt
                self._n[stage] = self._n.get(stage, 0) + 1
            total = self._tracer.frame_total(info[0], info[3])
            if total >= 0:
                self._total += total
                self._frames += 1
        self.frames = self._frames
        self.stage_latency_ms = {k: 1e3 * self._sum[k] / self._n[k] for k in self._sum}
        self.total_latency_ms = 1e3 * self._total / self._frames if self._frames else 0.0
        now = time.monotonic()
        if now - self._t0 >= self.properties["interval"]:
            self._t0 = now
            stages = ", ".join(f"{k} {v:.2f} ms" for k, v in self.stage_latency_ms.items())
            print(f"**LATENCY [{self.name}]: total {self.total_latency_ms:.2f} ms ({stages})", flush=True)


def _count_objects(frame: Any) -> dict[int, int]:
    counts: dict[int, int] = {}
    for obj in frame.object_items:
        counts[obj.class_id] = counts.get(obj.class_id, 0) + 1
    return counts


class SampleVideoProbe(ParamProbe):
    """Draws per-frame object counters ("Vehicle=N Person=M ...") as DisplayMetadata text."""

    PARAMS = {"font-size": ("integer", 12, "text size")}
    LABELS = {0: "Vehicle", 1: "Bicycle", 2: "Person", 3: "Roadsign"}

    def handle(self, buffer: Any) -> None:
        from pysm import osd

        meta = buffer.batch_meta
        for frame in meta.frame_items:
            counts = _count_objects(frame)
            text = " ".join(f"{self.LABELS.get(c, f'class{c}')}={n}" for c, n in sorted(counts.items())) or "no objects"
            dm = meta.acquire_display_meta()
            label = osd.Text()
            label.display_text = text
            label.x_offset = 10
            label.y_offset = 12
            label.font.size = self.properties["font-size"]
            label.font.color = osd.Color(1.0, 1.0, 1.0, 1.0)
            label.set_bg_color = True
            label.bg_color = osd.Color(0.0, 0.0, 0.0, 1.0)
            dm.add_text(label)
            frame.append(dm)


class KittiDumpProbe(ParamProbe):
    """Writes objects per frame in KITTI format to ``kitti-dir/<source>_<frame>.txt``."""

    PARAMS = {"kitti-dir": ("path", "/tmp/kitti", "output folder"),
              "tracker-kitti-output": ("boolean", False, "write tracker ids")}

    def handle(self, buffer: Any) -> None:
        out_dir = self.properties["kitti-dir"]
        os.makedirs(out_dir, exist_ok=True)
        for frame in buffer.batch_meta.frame_items:
            lines = []
            for obj in frame.object_items:
                r = obj.rect_params
                label = (obj.label or str(obj.class_id)).replace(" ", "_")
                track = f" {obj.object_id}" if self.properties["tracker-kitti-output"] else ""
                lines.append(f"{label}{track} 0.0 0 0.0 {r.left:.6f} {r.top:.6f} {r.left + r.width:.6f} "
                             f"{r.top + r.height:.6f} 0.0 0.0 0.0 0.0 0.0 0.0 0.0 {obj.confidence:.6f}\n")
            path = os.path.join(out_dir, "%03u_%06lu.txt" % (frame.source_id, frame.frame_number))
            with open(path, "w") as f:
                f.writelines(lines)


class AddMessageMetaProbe(ParamProbe):
    """Attaches an EventMessageUserMetadata per object every ``frame-interval`` frames."""

    PARAMS = {"frame-interval": ("integer", 1, "frames between messages"),
              "source-config": ("path", "", "source-list YAML (sensor names)"),
              "label-file": ("path", "", "labels, one per line")}

    def handle(self, buffer: Any) -> None:
        labels: list[str] = []
        if self.properties["label-file"]:
            with open(self.properties["label-file"]) as f:
                labels = [ln.strip() for ln in f if ln.strip()]
        sensors: dict[int, Any] = {}
        if self.properties["source-config"]:
            from pysm.source_config import SourceConfig

            cfg = SourceConfig()
            cfg.load(self.properties["source-config"])
            sensors = dict(enumerate(cfg.sensor_list))
        meta = buffer.batch_meta
        interval = max(1, self.properties["frame-interval"])
        for frame in meta.frame_items:
            if frame.frame_number % interval:
                continue
            s = sensors.get(frame.source_id)
            for obj in frame.object_items:
                ev = meta.acquire_event_message_meta()
                ev.generate(obj, frame, s.sensor_id if s else "N/A", s.uri if s else "N/A", labels)
                frame.append(ev)


_BUILTINS: dict[str, Callable[[str], Any]] = {
    "measure_fps_probe": MeasureFpsProbe,
    "measure_latency_probe": MeasureLatencyProbe,
    "sample_video_probe": SampleVideoProbe,
    "kitti_dump_probe": KittiDumpProbe,
    "add_message_meta_probe": AddMessageMetaProbe,
}
_REGISTERED: dict[str, Callable[[str], Any]] = {}


class CommonFactory:
    """Creates custom objects (probes) by factory name."""

    @staticmethod
    def create(factory: str, name: str = "") -> Optional[Any]:
        """The object, or None when no factory has that name. ``"plugin.factory"`` names (YAML
        graphs) resolve by their last part."""
        key = factory.split(".")[-1] if factory not in _REGISTERED and factory not in _BUILTINS else factory
        maker = _REGISTERED.get(key) or _BUILTINS.get(key)
        return maker(name or key) if maker is not None else None

    @staticmethod
    def names() -> list[str]:
        return sorted(set(_BUILTINS) | set(_REGISTERED))


def register_probe(name: str, cls: type, params: Optional[dict] = None) -> None:
    """Register a BatchMetadataOperator/BufferOperator/BufferObserver subclass as factory ``name``;
    ``params`` = ``{"font-size": ("integer", 12[, "brief"])}``; read them with ``get_property``."""
    if not (isinstance(cls, type) and issubclass(cls, (BatchMetadataOperator, BufferOperator, BufferObserver))):
        raise ConfigError(f"register_probe('{name}'): {cls!r} is not an operator class")
    spec = {k: (v[0], v[1]) for k, v in (params or {}).items()}
    for k, (t, _d) in spec.items():
        if t not in _TYPES:
            raise ConfigError(f"register_probe('{name}'): parameter '{k}' has unknown type '{t}' "
                              f"(use {', '.join(_TYPES)})")
    _REGISTERED[name] = lambda inst: ParamProbe(inst, cls(), spec)


def probe(name: str, params: Optional[dict] = None) -> Callable[[type], type]:
    """Class decorator form of ``register_probe``."""

    def deco(cls: type) -> type:
        register_probe(name, cls, params)
        return cls

    return deco
