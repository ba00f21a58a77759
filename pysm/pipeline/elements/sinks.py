"""Sinks: fakesink (discard), appsink (hands each buffer to a Receiver's BufferRetriever), and the
display sinks, which without a display (pysm has no on-screen renderer) discard with one warning."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional

from pysm.errors import ConfigError
from pysm.pipeline.element import Element
from pysm.pipeline.messages import WarningMessage
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register

log = logging.getLogger("pysm.pipeline")

_SINK_PROPS = {
    "sync": Prop(bool, False, "pace output to timestamps"),
    "async": Prop(bool, True, "accepted for compatibility"),
    "qos": Prop(bool, False, "accepted for compatibility"),
    "enable-last-sample": Prop(bool, False, "accepted for compatibility"),
    "max-lateness": Prop(int, -1, "accepted for compatibility"),
}


class _Sink(Element):
    src_templates: tuple[str, ...] = ()
    PROPS = _SINK_PROPS

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self.buffers = 0
        self._t0: Optional[float] = None
        self._pts0: Optional[int] = None

    def reset(self) -> None:
        super().reset()
        self.buffers = 0
        self._t0 = self._pts0 = None

    def _pace(self, item: Any) -> None:
        """sync=true: wait until the item's timestamp is due (relative to the first one)."""
        pts = getattr(item, "pts", None)
        if pts is None:
            pts = getattr(item, "timestamp", None)
        if pts is None or pts < 0:
            return
        now = time.monotonic()
        if self._t0 is None:
            self._t0, self._pts0 = now, pts
            return
        due = self._t0 + (pts - self._pts0) / 1e9
        halt = self.pipeline._halt
        while now < due and not halt.is_set():
            time.sleep(min(0.05, due - now))
            now = time.monotonic()

    def process(self, pad: str, item: Any) -> None:
        if self.props["sync"]:
            self._pace(item)
        self.buffers += 1
        self.consume(item)
        self.pipeline._trace(self, item)

    def consume(self, item: Any) -> None:
        """Default: discard."""

    def on_eos(self) -> None:
        pass

    def on_source_eos(self, pad: str, event: Any) -> None:
        pass

    def on_unbatched_source_eos(self, pad: str, event: Any) -> None:
        self._pad_ended(pad)


class FakeSink(_Sink):
    factory = "fakesink"
    aliases = ("pysm_fakesink",)
    PROPS = {"silent": Prop(bool, True, "accepted for compatibility"),
             "dump": Prop(bool, False, "accepted for compatibility"),
             "signal-handoffs": Prop(bool, False, "accepted for compatibility")}


class AppSink(_Sink):
    factory = "appsink"
    aliases = ("pysm_appsink",)
    PROPS = {
        "emit-signals": Prop(bool, False, "deliver buffers to the attached Receiver"),
        "max-buffers": Prop(int, 0, "accepted (pysm's inbox bounds the queue)"),
        "drop": Prop(bool, False, "drop the oldest buffer when the receiver is slow"),
        "caps": Prop(str, "", "accepted for compatibility"),
        "wait-on-eos": Prop(bool, True, "accepted for compatibility"),
    }

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self.receivers: list = []

    def on_property(self, name: str, value: Any) -> None:
        if name == "drop":
            self.inbox.leaky = 2 if value else 0

    def attach_receiver(self, receiver: Any, tips: str = "") -> None:
        signals = [s for s in (tips or "new-sample").split("/") if s]
        for s in signals:
            if s not in ("new-sample", "new-preroll", "eos"):
                raise ConfigError(f"appsink '{self.name}' has no signal '{s}' (use 'new-sample')")
        self.receivers.append(receiver)

    def consume(self, item: Any) -> None:
        if not self.receivers:
            return
        buf = self.pipeline.as_buffer(item)
        for r in self.receivers:
            ok, _ = self.pipeline.call_user(self, r.retriever.consume, buf,
                                            what=f"BufferRetriever.consume of appsink '{self.name}'")
            if not ok:
                return


class DisplaySink(_Sink):
    """nveglglessink / nv3dsink / autovideosink: pysm has no on-screen renderer; frames are
    discarded, with ONE warning per sink."""

    factory = "nveglglessink"
    aliases = ("nv3dsink", "autovideosink", "xvimagesink", "ximagesink", "glimagesink", "pysm_displaysink")
    PROPS = {"window-x": Prop(int, 0, "accepted"), "window-y": Prop(int, 0, "accepted"),
             "window-width": Prop(int, 0, "accepted"), "window-height": Prop(int, 0, "accepted"),
             "fullscreen": Prop(bool, False, "accepted")}

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self.warned = False

    def reset(self) -> None:
        super().reset()

    def prepare(self) -> None:
        if not self.warned:
            self.warned = True
            why = ("no display is available (DISPLAY/WAYLAND_DISPLAY unset)"
                   if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
                   else "pysm has no on-screen renderer")
            text = f"display sink '{self.name}': {why}; frames are discarded"
            log.warning(text)
            self.pipeline.post(WarningMessage(self.name, text))


for _cls in (FakeSink, AppSink, DisplaySink):
    register(_cls)
