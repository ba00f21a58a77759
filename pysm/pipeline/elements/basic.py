"""Routing elements: queue, tee, identity, nvstreamdemux."""

from __future__ import annotations

from typing import Any

from pysm._native import _core
from pysm.pipeline.element import Element
from pysm.pipeline.items import EndOfStream, FrameItem, SourceEOS
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register


class Queue(Element):
    """A thread boundary with a larger buffer; ``leaky`` 2 drops the oldest item when full."""

    factory = "queue"
    aliases = ("pysm_queue", "queue2")
    PROPS = {
        "max-size-buffers": Prop(int, 200, "items held (0: 200)", minimum=0, live=False),
        "max-size-bytes": Prop(int, 10485760, "accepted for compatibility"),
        "max-size-time": Prop(int, 1000000000, "accepted for compatibility"),
        "leaky": Prop(int, 0, "0 no, 1 upstream (drop new), 2 downstream (drop old)", choices=(0, 1, 2)),
        "silent": Prop(bool, False, "accepted for compatibility"),
    }
    inbox_capacity = 200

    def on_property(self, name: str, value: Any) -> None:
        if name == "max-size-buffers":
            self.inbox.capacity = value or 200
        elif name == "leaky":
            self.inbox.leaky = value


class Tee(Element):
    """Sends every item to each branch (the same Buffer: branches see each other's metadata)."""

    factory = "tee"
    aliases = ("pysm_tee",)
    src_templates = ("src_%u",)
    PROPS = {"allow-not-linked": Prop(bool, False, "accepted for compatibility"),
             "silent": Prop(bool, True, "accepted for compatibility")}


class Identity(Element):
    """Passes items through (also what a YAML node with ``enable: false`` becomes)."""

    factory = "identity"
    aliases = ("pysm_identity",)
    PROPS = {"silent": Prop(bool, True, "accepted for compatibility"),
             "sync": Prop(bool, False, "accepted for compatibility"),
             "drop-probability": Prop(float, 0.0, "accepted for compatibility")}


class StreamDemux(Element):
    """nvstreamdemux: splits batches per stream onto ``src_<pad_index>``; a stream's end becomes
    the end of its branch."""

    factory = "nvstreamdemux"
    aliases = ("pysm_demux", "streamdemux")
    src_templates = ("src_%u",)
    PROPS = {"per-stream-eos": Prop(bool, True, "end a branch when its stream ends")}

    def process(self, pad: str, item: Any) -> None:
        if isinstance(item, FrameItem):
            self.emit(item)
            return
        # One buffer per frame (streams leave the demuxer unbatched, in batch order).
        for i, info in enumerate(_core.batch_frame_info(item)):
            out = f"src_{info[1]}"
            if out in self.src_links:
                self.emit(_core.batch_select(item, [i]), out)

    def on_source_eos(self, pad: str, event: SourceEOS) -> None:
        out = f"src_{event.pad_index}"
        if out in self.src_links and self.props["per-stream-eos"]:
            self.emit(EndOfStream(self.name), out)

    def on_eos(self) -> None:
        self.emit(EndOfStream(self.name))


for _cls in (Queue, Tee, Identity, StreamDemux):
    register(_cls)
