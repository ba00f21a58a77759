"""nvvideoconvert and capsfilter. The converter takes its output format/size from the capsfilter
that follows it (GStreamer caps negotiation, simplified): ``nvvideoconvert ! capsfilter
caps="video/x-raw(memory:NVMM), format=RGB"`` makes RGB frames, which ``retrieve`` consumers get
as (H, W, 3) tensors from ``buffer.extract(i)``."""

from __future__ import annotations

from typing import Any, Optional

from pysm._native import _core
from pysm.errors import ConfigError
from pysm.pipeline.colorconvert import convert_payload
from pysm.pipeline.element import Element
from pysm.pipeline.elements.app_source import parse_caps
from pysm.pipeline.items import FrameItem
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register

_FORMATS = ("NV12", "RGB", "BGR", "RGBA", "BGRA", "GRAY8", "RGBx", "BGRx", "I420")


def _check_caps(caps: str) -> str:
    parsed = parse_caps(caps)
    fmt = parsed.get("format")
    if caps and parsed["media"] not in ("video/x-raw", "audio/x-raw", ""):
        raise ConfigError(f"capsfilter: unsupported caps '{caps}' (pysm handles video/x-raw)")
    if fmt and fmt not in _FORMATS:
        raise ConfigError(f"capsfilter: unsupported format '{fmt}' in caps '{caps}' (use one of {', '.join(_FORMATS)})")
    return caps


class CapsFilter(Element):
    factory = "capsfilter"
    aliases = ("pysm_capsfilter",)
    PROPS = {"caps": Prop(str, "", "e.g. 'video/x-raw(memory:NVMM), format=RGB'", validate=_check_caps)}


class VideoConvert(Element):
    factory = "nvvideoconvert"
    aliases = ("pysm_convert", "videoconvert", "nvvidconv", "videoscale")
    PROPS = {
        "gpu-id": Prop(int, 0, "GPU", minimum=0),
        "compute-hw": Prop(int, 0, "accepted for compatibility"),
        "nvbuf-memory-type": Prop(int, 0, "accepted for compatibility"),
        "interpolation-method": Prop(int, 1, "accepted; pysm scales bilinearly"),
        "src-crop": Prop(str, "", "accepted for compatibility"),
        "dest-crop": Prop(str, "", "accepted for compatibility"),
        "flip-method": Prop(int, 0, "accepted (0 only)", choices=(0,)),
        "copy-hw": Prop(int, 0, "accepted for compatibility"),
        "format": Prop(str, "", "pysm: output format when no capsfilter follows", choices=("",) + _FORMATS),
    }

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self._fmt: Optional[str] = None
        self._size: Optional[tuple[int, int]] = None
        self._scaler = None

    def prepare(self) -> None:
        fmt = self.props["format"] or None
        size = None
        for links in self.src_links.values():
            for dst, _ in links:
                if isinstance(dst, CapsFilter):
                    caps = parse_caps(dst.props["caps"])
                    fmt = caps.get("format") or fmt
                    if caps.get("width") and caps.get("height"):
                        size = (caps["width"], caps["height"])
        if fmt in ("RGBx",):
            fmt = "RGBA"
        if fmt in ("BGRx",):
            fmt = "BGRA"
        if fmt == "I420":
            fmt = "NV12"  # pysm keeps 4:2:0 frames as NV12
        self._fmt = fmt
        self._size = size
        self._scaler = _core.NativeMux(size[0], size[1], False, self.props["gpu-id"], 0) if size else None

    def _convert_one(self, payload: Any, index: int) -> Any:
        if isinstance(payload, _core.Buffer):
            w, h, fmt, _ = _core.buffer_frame_format(payload, index)
        else:
            w, h, fmt = _core.payload_info(payload)[:3]
        out = payload
        if self._fmt and fmt != self._fmt:
            out = convert_payload(payload, index, self._fmt)
            index = 0
        if self._size and (w, h) != self._size:
            scaled = self._scaler.batch([(out if not isinstance(out, _core.Buffer) else _core.batch_select(out, [index]),
                                          0, 0, 0, -1, 0)])
            return scaled
        if out is payload and isinstance(payload, _core.Buffer):
            return _core.batch_select(payload, [index])
        return out

    def process(self, pad: str, item: Any) -> None:
        if not self._fmt and not self._size:
            self.emit(item)
            return
        if isinstance(item, FrameItem):
            item.payload = self._convert_one(item.payload, 0)
            self.emit(item)
            return
        n = item.batch_size
        frames = []
        changed = False
        for i in range(n):
            w, h, fmt, _ = _core.buffer_frame_format(item, i)
            if (self._fmt and fmt != self._fmt) or (self._size and (w, h) != self._size):
                frames.append(self._convert_one(item, i))
                changed = True
            else:
                frames.append(_core.batch_select(item, [i]))
        self.emit(_core.buffer_with_frames(item, frames) if changed else item)


register(CapsFilter)
register(VideoConvert)
