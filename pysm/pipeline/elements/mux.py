"""nvstreammux: batches frames of N sources into one Buffer.

A batch is pushed when it holds ``batch-size`` frames, when ``batched-push-timeout`` (µs, from the
first frame of the batch; -1 waits for a full batch) expires, or when every input has ended.
Collection is round robin, at most ceil(batch-size / live inputs) frames per input per batch, so a
fast source cannot starve a slow one; per-input queues are bounded, so a fast source waits
(backpressure) instead of growing memory. An input that ends is dropped from the quota: a dead or
finished source never stalls the others. The batch itself is built natively (GIL released):
frames pass through at native size, or are scaled into uniform surfaces with one batched resize.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional

from pysm._native import _core
from pysm.pipeline.element import Element
from pysm.pipeline.items import EndOfStream, FrameItem, SourceEOS
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register


class _PadState:
    __slots__ = ("name", "index", "ended", "in_batch", "frames", "source_id", "removed")

    def __init__(self, name: str, index: int) -> None:
        self.name = name
        self.index = index
        self.ended = False
        self.in_batch = 0
        self.frames = 0  # frames received (frame_number when the source gives none)
        self.source_id = index
        self.removed = False


MUX_PROPS: dict[str, Prop] = {
    "batch-size": Prop(int, 0, "frames per batch (0: number of inputs)", minimum=0, maximum=1024),
    "width": Prop(int, 0, "output width (0 with height 0: frames keep their native size)", minimum=0, live=False),
    "height": Prop(int, 0, "output height", minimum=0, live=False),
    "enable-padding": Prop(bool, False, "keep the aspect ratio, black bands", live=False),
    "batched-push-timeout": Prop(int, -1, "µs after the first frame of a batch; -1: wait for a full batch", minimum=-1),
    "live-source": Prop(bool, False, "inputs are live"),
    "buffer-pool-size": Prop(int, 4, "batches that may wait downstream", minimum=1, maximum=1024),
    "gpu-id": Prop(int, 0, "GPU of the output surfaces", minimum=0),
    "nvbuf-memory-type": Prop(int, 0, "accepted for compatibility"),
    "compute-hw": Prop(int, 0, "0 default, 1 GPU, 2 VIC (accepted; scaling runs where the frames are)"),
    "interpolation-method": Prop(int, 1, "accepted; pysm scales bilinearly"),
    "attach-sys-ts": Prop(bool, True, "ntp_timestamp = system time when batched"),
    "sync-inputs": Prop(bool, False, "accepted for compatibility"),
    "max-latency": Prop(int, 0, "accepted for compatibility (ns)"),
    "num-surfaces-per-frame": Prop(int, 1, "accepted for compatibility", minimum=1),
    "frame-num-reset-on-eos": Prop(bool, False, "restart frame numbers when an input ends"),
    "frame-num-reset-on-stream-reset": Prop(bool, False, "accepted for compatibility"),
    "frame-duration": Prop(int, -1, "accepted for compatibility"),
    "async-process": Prop(bool, True, "accepted for compatibility"),
    "drop-pipeline-eos": Prop(bool, False, "do not end the pipeline when every input ended"),
    "config-file-path": Prop(str, "", "new-mux config file (accepted; [property] batch-size honoured)"),
}


class StreamMux(Element):
    """The batching mux."""

    factory = "nvstreammux"
    aliases = ("pysm_mux", "streammux")
    PROPS = MUX_PROPS
    sink_templates = ("sink_%u",)
    assigns_source_ids = True  # a source's frames get the index of its sink pad (sink_N -> N)
    inbox_capacity = 4
    dynamic_inputs = False  # True for nvmultiurisrcbin: no pipeline EOS while it may get sources

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self._pads: dict[str, _PadState] = {}
        self._events: list = []
        self._rr = 0
        self._eos_sent = False
        self.native: Optional[Any] = None
        self.batches_pushed = 0

    def on_sink_pad_added(self, pad: str) -> None:
        with self.inbox.cond:
            self._pads[pad] = _PadState(pad, int(pad.split("_")[-1]))
            self.inbox.cond.notify_all()

    def release_sink_pad(self, pad: str) -> None:
        with self.inbox.cond:
            st = self._pads.pop(pad, None)
            super().release_sink_pad(pad)
            if st is not None and not st.ended:
                self._events.append(SourceEOS(self.name, st.source_id, batched=True, pad_index=st.index))
            self.inbox.cond.notify_all()

    def reset(self) -> None:
        super().reset()
        with self.inbox.cond:
            for st in self._pads.values():
                st.ended = False
                st.in_batch = 0
                st.frames = 0
            self._events = []
            self._eos_sent = False

    def prepare(self) -> None:
        w, h = self.props["width"], self.props["height"]
        if (w > 0) != (h > 0):
            from pysm.errors import ConfigError

            raise ConfigError(f"element '{self.name}' (nvstreammux): set both 'width' and 'height', or neither")
        self.native = _core.NativeMux(w, h, self.props["enable-padding"], self.props["gpu-id"], self._batch_size())
        self.out_limit = self.props["buffer-pool-size"]

    def _batch_size(self) -> int:
        bs = self.props["batch-size"]
        return bs if bs > 0 else max(1, len(self._pads))

    # -- collection (called with inbox.cond held) --------------------------------------------------
    def _collect(self, batch: list) -> None:
        pads = [st for st in self._pads.values() if not st.removed]
        if not pads:
            return
        bs = self._batch_size()
        live = [st for st in pads if not st.ended]
        quota = math.ceil(bs / max(1, len(live)))
        n = len(pads)
        progress = True
        while progress and len(batch) < bs:
            progress = False
            for k in range(n):
                st = pads[(self._rr + k) % n]
                dq = self.inbox.pads.get(st.name)
                if not dq:
                    continue
                head = dq[0]
                if isinstance(head, (SourceEOS, EndOfStream)):
                    dq.popleft()
                    self.inbox.space_freed(st.name)
                    self._end_pad(st)
                    progress = True
                    continue
                if st.in_batch >= quota or len(batch) >= bs:
                    continue
                dq.popleft()
                self.inbox.space_freed(st.name)  # wakes this pad's producer only
                st.in_batch += 1
                batch.append((st, head))
                progress = True
            self._rr = (self._rr + 1) % n

    def _end_pad(self, st: _PadState) -> None:
        if st.ended:
            return
        st.ended = True
        if self.props["frame-num-reset-on-eos"]:
            st.frames = 0
        self._events.append(SourceEOS(self.name, st.source_id, batched=True, pad_index=st.index))

    def _all_ended(self) -> bool:
        pads = list(self._pads.values())
        if not pads:
            return False
        return all(st.ended for st in pads) and not any(self.inbox.pads.get(st.name) for st in pads)

    # -- the worker ---------------------------------------------------------------------------------
    def run(self) -> None:
        halt = self.pipeline._halt
        cond = self.inbox.cond
        batch: list = []
        deadline: Optional[float] = None
        while not halt.is_set():
            out = None
            events: list = []
            finish = False
            with cond:
                self._collect(batch)
                now = time.monotonic()
                timeout_us = self.props["batched-push-timeout"]
                if batch and deadline is None and timeout_us >= 0:
                    deadline = now + timeout_us / 1e6
                bs = self._batch_size()
                live_pads = [st for st in self._pads.values() if not st.ended]
                if batch and (len(batch) >= bs or not live_pads or (deadline is not None and now >= deadline)):
                    out, batch, deadline = batch, [], None
                    for st in self._pads.values():
                        st.in_batch = 0
                if not batch:
                    events, self._events = self._events, []
                    finish = (not self._eos_sent and not self.dynamic_inputs and self._all_ended())
                if out is None and not events and not finish:
                    wait = 0.1 if deadline is None else min(0.1, max(0.0, deadline - now))
                    if wait > 0:
                        self._arm(batch, bs, live_pads, timeout_us)
                        cond.wait(wait)
                        self.inbox.disarm()
                    continue
            if out:
                self._push(out)
            for ev in events:
                self.emit(ev)
            if finish:
                self._eos_sent = True
                self.finish_stream()

    def _arm(self, batch: list, bs: int, live_pads: list, timeout_us: int) -> None:
        """Before waiting (cond held): be woken once the batch can be completed, not per frame.
        The first frame of a batch still wakes at once when a push timeout runs from it."""
        if not batch and timeout_us >= 0:
            return  # plain wake-up on the next frame
        quota = math.ceil(bs / max(1, len(live_pads)))
        want = {st.name: quota - st.in_batch for st in live_pads if not st.removed and st.in_batch < quota}
        self.inbox.arm(want, bs - len(batch))

    def finish_stream(self) -> None:
        """Every input ended: end the pipeline's stream unless drop-pipeline-eos."""
        if self.props["drop-pipeline-eos"]:
            return
        self.emit(EndOfStream(self.name))
        if self.is_terminal:
            self.pipeline._element_eos(self)

    def _push(self, frames: list) -> None:
        attach_ts = self.props["attach-sys-ts"]
        items = []
        tracer = self.pipeline._tracer
        for st, item in frames:
            assert isinstance(item, FrameItem) or True
            payload = item.payload if isinstance(item, FrameItem) else item
            fnum = item.frame_number if isinstance(item, FrameItem) and item.frame_number >= 0 else st.frames
            st.frames = fnum + 1
            sid = item.source_id if isinstance(item, FrameItem) and item.source_id >= 0 else st.index
            st.source_id = sid
            pts = item.pts if isinstance(item, FrameItem) else -1
            ntp = time.time_ns() if attach_ts else 0
            items.append((payload, sid, st.index, fnum, pts if pts is not None else -1, ntp))
            if tracer is not None and isinstance(item, FrameItem):
                tracer.begin(sid, fnum, item.t0, item.origin)
        buf = self.native.batch(items)
        self.batches_pushed += 1
        self.emit(buf)


register(StreamMux)
