"""appsrc: frames pushed by the application, through a ``Feeder`` (its BufferProvider's
``generate(size)`` is called once per frame; an empty Buffer ends the stream) or ``push_buffer``."""

from __future__ import annotations

import queue
import re
import time
from typing import Any, Optional

from pysm.errors import ConfigError, InvalidArgument
from pysm.pipeline.element import SourceElement
from pysm.pipeline.items import FrameItem
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register


def parse_caps(caps: str) -> dict:
    """'video/x-raw(memory:NVMM), format=RGB, width=1280, height=720, framerate=30/1' -> dict with
    media, nvmm, format, width, height, framerate (float)."""
    out: dict = {"media": "", "nvmm": False}
    if not caps:
        return out
    parts = [p.strip() for p in caps.split(",")]
    head = parts[0]
    out["nvmm"] = "memory:NVMM" in head
    out["media"] = re.sub(r"\(.*\)", "", head).strip()
    for p in parts[1:]:
        if "=" not in p:
            continue
        k, v = (s.strip() for s in p.split("=", 1))
        v = re.sub(r"^\([a-z]+\)", "", v).strip().strip('"')
        if k in ("width", "height"):
            out[k] = int(v)
        elif k == "framerate":
            num, _, den = v.partition("/")
            out[k] = float(num) / float(den or 1) if float(den or 1) else 0.0
        else:
            out[k] = v
    return out


class AppSource(SourceElement):
    factory = "appsrc"
    aliases = ("pysm_appsrc",)
    src_templates = ("src",)
    PROPS = {
        "caps": Prop(str, "", "format of the pushed frames, e.g. 'video/x-raw, format=RGB, width=640, height=480, framerate=30/1'"),
        "do-timestamp": Prop(bool, False, "stamp frames with the running time"),
        "is-live": Prop(bool, False, "the application pushes in real time"),
        "format": Prop(int, 2, "accepted for compatibility (3 = time)"),
        "block": Prop(bool, False, "accepted (pysm always applies backpressure)"),
        "max-bytes": Prop(int, 200000, "accepted for compatibility"),
        "emit-signals": Prop(bool, True, "accepted for compatibility"),
        "stream-type": Prop(int, 0, "accepted for compatibility"),
        "min-latency": Prop(int, -1, "accepted for compatibility"),
        "source-id": Prop(int, -1, "source id on the batch (-1: the mux pad index)", minimum=-1),
    }

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self.feeder: Optional[Any] = None
        self._pushed: "queue.Queue" = queue.Queue(maxsize=8)

    def attach_feeder(self, feeder: Any) -> None:
        if self.feeder is not None:
            raise ConfigError(f"appsrc '{self.name}' already has a Feeder")
        self.feeder = feeder

    def push_buffer(self, buffer: Any, timeout: Optional[float] = None) -> None:
        """Push one frame (a Buffer, a Tensor or a NumPy image matching 'caps'); None ends."""
        self._pushed.put(buffer, timeout=timeout)

    def end_of_stream(self) -> None:
        self._pushed.put(None)

    def _to_payload(self, obj: Any, caps: dict) -> Any:
        from pysm._native import _core

        if isinstance(obj, _core.Buffer):
            if obj.batch_size and _core.buffer_is_raw(obj):
                return self._from_bytes(obj, caps)
            return obj
        if hasattr(obj, "wrap") and hasattr(obj, "__dlpack__") and caps.get("format"):
            from pysm import ColorFormat  # the tensor helper's ColorFormat

            return obj.wrap(getattr(ColorFormat, caps["format"].upper()))
        try:
            import numpy as np

            if isinstance(obj, np.ndarray):
                fmt = caps.get("format", "RGB")
                return _core.buffer_from_arrays([obj], fmt, -1)
        except ImportError:
            pass
        raise InvalidArgument(f"appsrc '{self.name}': expected a Buffer, a Tensor or a NumPy image, got "
                              f"{type(obj).__name__}")

    def _from_bytes(self, buf: Any, caps: dict) -> Any:
        """Buffer(data) holds raw bytes: reinterpret them with the caps (format, width, height)."""
        import numpy as np

        from pysm._native import _core

        fmt = str(caps.get("format", "")).upper()
        w, h = caps.get("width"), caps.get("height")
        if not fmt or not w or not h:
            raise InvalidArgument(f"appsrc '{self.name}': a raw-bytes Buffer needs caps with format, width "
                                  f"and height (caps: {self.props['caps']!r})")
        data = _core.frame_to_array(buf, 0).reshape(-1)
        shapes = {"RGB": (h, w, 3), "BGR": (h, w, 3), "RGBA": (h, w, 4), "BGRA": (h, w, 4), "GRAY8": (h, w),
                  "NV12": (h * 3 // 2, w), "I420": (h * 3 // 2, w)}
        if fmt not in shapes:
            raise InvalidArgument(f"appsrc '{self.name}': raw {fmt} buffers are not supported")
        shape = shapes[fmt]
        need = int(np.prod(shape))
        if data.size != need:
            raise InvalidArgument(f"appsrc '{self.name}': buffer has {data.size} bytes, {fmt} {w}x{h} needs {need}")
        if fmt == "I420":  # planar chroma -> NV12's interleaved chroma
            y, u, v = data[:w * h], data[w * h:w * h * 5 // 4], data[w * h * 5 // 4:]
            uv = np.empty(w * h // 2, np.uint8)
            uv[0::2], uv[1::2] = u, v
            data, fmt = np.concatenate([y, uv]), "NV12"
        return _core.buffer_from_arrays([data.reshape(shape)], fmt, -1)

    def produce(self) -> None:
        from pysm._native import _core

        caps = parse_caps(self.props["caps"])
        rate = caps.get("framerate") or 0.0
        start = time.monotonic()
        i = 0
        while not self.stopping:
            if self.feeder is not None:
                ok, obj = self.pipeline.call_user(self, self.feeder.provider.generate, 0,
                                                  what=f"BufferProvider.generate of appsrc '{self.name}'")
                if not ok:
                    return
            else:
                try:
                    obj = self._pushed.get(timeout=0.1)
                except queue.Empty:
                    continue
            if obj is None:
                return
            payload = self._to_payload(obj, caps)
            if _core.buffer_is_eos(payload):
                return
            if self.props["do-timestamp"] or rate <= 0:
                pts = int((time.monotonic() - start) * 1e9)
            else:
                pts = int(i * 1e9 / rate)
            self.emit(FrameItem(payload, i, pts, self.name, self.props["source-id"], self.props["is-live"]))
            i += 1


register(AppSource)
