"""nvmultiurisrcbin: N URI sources plus the batching mux in one element, with sources added and
removed while the pipeline runs (``add_source``/``remove_source``, a REST endpoint, or the
``uri-list`` property), and a DynamicSourceMessage on every change."""

from __future__ import annotations

import threading
from typing import Any, Optional

from pysm.errors import ConfigError, SourceError
from pysm.pipeline.elements.mux import MUX_PROPS, StreamMux
from pysm.pipeline.elements.uri_source import URI_SOURCE_PROPS, UriSource
from pysm.pipeline.messages import DynamicSourceMessage
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register
from pysm.pipeline.state import PipelineState

_CHILD_PROPS = [k for k in URI_SOURCE_PROPS if k not in ("uri", "source-id")]

MULTI_PROPS: dict[str, Prop] = {
    **MUX_PROPS,
    **{k: v for k, v in URI_SOURCE_PROPS.items() if k not in ("uri", "source-id")},
    "uri-list": Prop(str, "", "comma-separated URIs started with the pipeline", live=False),
    "sensor-id-list": Prop(str, "", "comma-separated sensor ids (1:1 with uri-list)", live=False),
    "sensor-name-list": Prop(str, "", "comma-separated sensor names (1:1 with uri-list)", live=False),
    "mode": Prop(int, 0, "0 video (audio is not supported)", choices=(0,)),
    "ip-address": Prop(str, "127.0.0.1", "REST server address (loopback by default)", live=False),
    "port": Prop(str, "9000", "REST server port; '0' disables REST", live=False),
    "rest-token": Prop(str, "", "pysm: bearer token required by the REST server (empty: none)", live=False),
    "max-batch-size": Prop(int, 30, "batch size when batch-size is 0", minimum=1, maximum=1024),
    "sensorID-padID-mapping": Prop(str, "", "accepted for compatibility"),
    "enable-error-propagation": Prop(bool, False, "accepted for compatibility"),
    "proto-lib": Prop(str, "", "accepted for compatibility"),
    "conn-str": Prop(str, "", "accepted for compatibility"),
    "topic": Prop(str, "", "accepted for compatibility"),
}


class _SourceEntry:
    __slots__ = ("source_id", "uri", "sensor_id", "sensor_name", "child", "pad")

    def __init__(self, source_id: int, uri: str, sensor_id: str, sensor_name: str, child: UriSource, pad: str) -> None:
        self.source_id = source_id
        self.uri = uri
        self.sensor_id = sensor_id
        self.sensor_name = sensor_name
        self.child = child
        self.pad = pad


class MultiUriSource(StreamMux):
    """Sources + mux + optional REST control in one element (src pad ``src``)."""

    factory = "nvmultiurisrcbin"
    aliases = ("pysm_multiurisrc",)
    PROPS = MULTI_PROPS
    sink_templates = ("sink_%u",)
    src_templates = ("src",)

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self._sources: dict[int, _SourceEntry] = {}
        self._retired: list[UriSource] = []
        self._lock = threading.RLock()
        self._next_id = 0
        self.rest = None
        self._initial_done = False

    def _batch_size(self) -> int:
        bs = self.props["batch-size"]
        return bs if bs > 0 else self.props["max-batch-size"]

    # -- sources -----------------------------------------------------------------------------------
    def add_source(self, uri: str, sensor_id: Optional[str] = None, sensor_name: Optional[str] = None) -> int:
        """Adds a URI; returns its source id. Works before and while the pipeline runs."""
        if not uri:
            raise ConfigError(f"element '{self.name}': add_source needs a URI")
        with self._lock:
            if sensor_id and any(e.sensor_id == sensor_id for e in self._sources.values()):
                raise ConfigError(f"element '{self.name}': sensor id '{sensor_id}' is already streaming")
            sid = self._next_id
            self._next_id += 1
            child = UriSource(f"{self.name}_src_{sid}", self.pipeline)
            for k in _CHILD_PROPS:
                child.props[k] = self.props[k]
            child.props["uri"] = uri
            child.props["source-id"] = sid
            child.sensor_id = sensor_id or "N/A"
            child.sensor_name = sensor_name or "N/A"
            pad = self.request_sink_pad(f"sink_{sid}")
            child.src_links["vsrc_0"] = [(self, pad)]
            entry = _SourceEntry(sid, uri, child.sensor_id, child.sensor_name, child, pad)
            self._sources[sid] = entry
            # Announced before its thread starts: a source that fails at once (a missing file)
            # reports its error after the message that it was added.
            self.pipeline.post(DynamicSourceMessage(True, sid, entry.sensor_id, entry.sensor_name, uri,
                                                    origin=self.name))
            running = self.state == PipelineState.PLAYING and not self.pipeline._halt.is_set()
            if running:
                child.state = PipelineState.PLAYING
                child.start_thread()
        return sid

    def find_source(self, key: Any) -> Optional[int]:
        with self._lock:
            if isinstance(key, int) and key in self._sources:
                return key
            for e in self._sources.values():
                if key in (e.sensor_id, e.uri) or str(key) == str(e.source_id):
                    return e.source_id
        return None

    def remove_source(self, key: Any) -> bool:
        """Removes a source by id, sensor id or URI; False when it is unknown."""
        with self._lock:
            sid = self.find_source(key)
            if sid is None:
                return False
            e = self._sources.pop(sid)
            e.child.request_end()
            e.child.abort()
            self.release_sink_pad(e.pad)
            self._retired = [c for c in self._retired if c._thread is not None and c._thread.is_alive()]
            self._retired.append(e.child)
        self.pipeline.post(DynamicSourceMessage(False, sid, e.sensor_id, e.sensor_name, e.uri, origin=self.name))
        return True

    def sources(self) -> list[dict]:
        with self._lock:
            return [{"source_id": e.source_id, "camera_id": e.sensor_id, "camera_name": e.sensor_name,
                     "camera_url": e.uri, "frames": e.child.frames_out,
                     "running": bool(e.child._thread and e.child._thread.is_alive())}
                    for e in self._sources.values()]

    # -- lifecycle ---------------------------------------------------------------------------------
    def prepare(self) -> None:
        super().prepare()
        if not self._initial_done:
            self._initial_done = True
            uris = [u.strip() for u in self.props["uri-list"].split(",") if u.strip()]
            ids = [s.strip() for s in self.props["sensor-id-list"].split(",")] if self.props["sensor-id-list"] else []
            names = [s.strip() for s in self.props["sensor-name-list"].split(",")] if self.props["sensor-name-list"] else []
            for i, u in enumerate(uris):
                self.add_source(u, ids[i] if i < len(ids) else None, names[i] if i < len(names) else None)
        port = self.props["port"].strip()
        if port not in ("", "0") and self.rest is None:
            from pysm.pipeline.rest import RestServer

            try:
                self.rest = RestServer(self, self.props["ip-address"], int(port), self.props["rest-token"] or None)
            except ValueError:
                raise ConfigError(f"element '{self.name}': property 'port' must be a number, got {port!r}") from None
            except OSError as exc:
                raise SourceError(f"element '{self.name}': REST server cannot listen on "
                                  f"{self.props['ip-address']}:{port}: {exc}") from exc

    def reset(self) -> None:
        super().reset()
        with self._lock:
            for e in self._sources.values():
                e.child.reset()

    def start_thread(self) -> None:
        super().start_thread()
        with self._lock:
            for e in self._sources.values():
                e.child.state = PipelineState.PLAYING
                e.child.start_thread()

    def request_end(self) -> None:
        with self._lock:
            for e in self._sources.values():
                e.child.request_end()

    def abort(self) -> None:
        with self._lock:
            for e in self._sources.values():
                e.child.abort()
        if self.rest is not None:
            self.rest.close()
            self.rest = None

    def thread_alive(self) -> bool:
        """Its own (mux) thread or any of its sources' threads, removed ones included."""
        with self._lock:
            children = [e.child for e in self._sources.values()] + self._retired
        return super().thread_alive() or any(c.thread_alive() for c in children)

    def join(self, timeout: float) -> bool:
        import time

        end = time.monotonic() + timeout
        ok = super().join(timeout)
        with self._lock:
            children = [e.child for e in self._sources.values()] + self._retired
        for c in children:
            ok = c.join(max(0.0, end - time.monotonic())) and ok
        return ok


register(MultiUriSource)
