"""The element base class: properties, pads and links, a worker thread with a bounded inbox,
probes on output pads, and end-of-stream bookkeeping. Concrete elements live in
``pysm.pipeline.elements`` and register their factory names (pysm's and DeepStream's)."""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Optional

from pysm.errors import ConfigError, NotSupportedYet
from pysm.pipeline.inbox import Inbox
from pysm.pipeline.items import EndOfStream, FrameItem, SourceEOS
from pysm.pipeline.properties import Prop, normalize_name, unknown_property
from pysm.pipeline.state import PipelineState

if TYPE_CHECKING:
    from pysm.pipeline.pipeline import Pipeline

log = logging.getLogger("pysm.pipeline")

_TEMPLATE = re.compile(r"^(?P<prefix>.*)%u$")


def _template_prefix(template: str) -> Optional[str]:
    m = _TEMPLATE.match(template)
    return m.group("prefix") if m else None


class Element:
    """Base of every pipeline element. Subclasses set ``factory``/``aliases``, ``PROPS``,
    pad templates, and override ``process`` (filters), ``produce`` (sources) or ``run``."""

    factory: str = "element"
    aliases: tuple[str, ...] = ()
    PROPS: dict[str, Prop] = {}
    sink_templates: tuple[str, ...] = ("sink",)
    src_templates: tuple[str, ...] = ("src",)
    inbox_capacity: int = 4
    accepts_any_property: bool = False  # adapters that pass properties through (nvinfer)

    def __init__(self, name: str, pipeline: "Pipeline") -> None:
        self.name = name
        self.pipeline = pipeline
        self.props: dict[str, Any] = {k: p.default for k, p in self._all_props().items()}
        self.extra_props: dict[str, Any] = {}
        self.inbox = Inbox(self.inbox_capacity)
        self.sink_pads: list[str] = []
        self.src_links: dict[str, list[tuple["Element", str]]] = {}
        self.upstream: list[tuple["Element", str, str]] = []  # (element, its src pad, our sink pad)
        self.probes: list[tuple[str, Any]] = []  # (pad or "", probe)
        self.out_limit: Optional[int] = None  # max items queued at each downstream pad
        self.state = PipelineState.EMPTY
        self._thread: Optional[threading.Thread] = None
        self._ended_pads: set[str] = set()
        self._eos_done = False

    # ---- properties --------------------------------------------------------------------------
    @classmethod
    def _all_props(cls) -> dict[str, Prop]:
        out: dict[str, Prop] = {}
        for klass in reversed(cls.__mro__):
            out.update(getattr(klass, "PROPS", {}) or {})
        return out

    def set_property(self, key: str, value: Any) -> None:
        name = normalize_name(key)
        if "::" in name:
            raise NotSupportedYet(f"element '{self.name}': child-proxy property '{key}' is not supported")
        spec = self._all_props().get(name)
        if spec is None:
            if self.accepts_any_property:
                self.extra_props[name] = value
                self.on_property(name, value)
                return
            raise unknown_property(self.name, self.factory, name, self._all_props())
        if not spec.live and self.state in (PipelineState.PAUSED, PipelineState.PLAYING):
            raise ConfigError(f"element '{self.name}': property '{name}' cannot change while the pipeline runs")
        self.props[name] = spec.coerce(self.name, name, value)
        self.on_property(name, self.props[name])

    def get_property(self, key: str) -> Any:
        name = normalize_name(key)
        if name in self.props:
            return self.props[name]
        if name in self.extra_props:
            return self.extra_props[name]
        raise unknown_property(self.name, self.factory, name, self._all_props())

    def on_property(self, name: str, value: Any) -> None:
        """Hook: a property changed (validated already)."""

    # ---- pads and links ----------------------------------------------------------------------
    @staticmethod
    def _resolve(templates: tuple[str, ...], hint: str, existing: list[str], kind: str, owner: str) -> str:
        if not templates:
            raise ConfigError(f"element '{owner}' has no {kind} pads")
        if hint == "":
            tpl = templates[0]
            prefix = _template_prefix(tpl)
            if prefix is None:
                return tpl
            hint = tpl
        if hint in templates:
            prefix = _template_prefix(hint)
            if prefix is None:
                return hint
            used = {int(p[len(prefix):]) for p in existing if p.startswith(prefix) and p[len(prefix):].isdigit()}
            i = 0
            while i in used:
                i += 1
            return f"{prefix}{i}"
        for tpl in templates:
            prefix = _template_prefix(tpl)
            if prefix is not None and hint.startswith(prefix) and hint[len(prefix):].isdigit():
                return hint
            if tpl == hint:
                return hint
        raise ConfigError(f"element '{owner}' has no {kind} pad '{hint}' (pads: {', '.join(templates)})")

    def request_sink_pad(self, hint: str = "") -> str:
        pad = self._resolve(self.sink_templates, hint, self.sink_pads, "sink", self.name)
        if pad in self.sink_pads and _template_prefix(self.sink_templates[0]) is not None and hint not in ("", *self.sink_templates):
            raise ConfigError(f"element '{self.name}': sink pad '{pad}' is already linked")
        if pad not in self.sink_pads:
            self.sink_pads.append(pad)
            self.inbox.add_pad(pad)
            self.on_sink_pad_added(pad)
        return pad

    def request_src_pad(self, hint: str = "") -> str:
        # Sometimes-pads of a single-stream source ("vsrc_%u") always resolve to the one pad.
        if hint in self.src_templates and hint.startswith("vsrc"):
            return hint.replace("%u", "0")
        pad = self._resolve(self.src_templates, hint, list(self.src_links), "src", self.name)
        self.src_links.setdefault(pad, [])
        return pad

    def on_sink_pad_added(self, pad: str) -> None:
        """Hook for request-pad elements (mux)."""

    def release_sink_pad(self, pad: str) -> None:
        if pad in self.sink_pads:
            self.sink_pads.remove(pad)
        self.inbox.remove_pad(pad)
        self._ended_pads.discard(pad)

    @property
    def is_terminal(self) -> bool:
        return not any(self.src_links.values())

    # ---- probes -----------------------------------------------------------------------------
    def add_probe(self, probe: Any, tips: str = "") -> None:
        if tips and tips not in self.src_templates and tips not in self.src_links:
            prefix_ok = any(_template_prefix(t) is not None and tips.startswith(_template_prefix(t) or "")
                            for t in self.src_templates)
            if not prefix_ok:
                raise ConfigError(f"element '{self.name}': pad '{tips}' is not an output pad "
                                  f"(outputs: {', '.join(self.src_templates) or 'none'})")
        self.probes.append((tips, probe))

    def _run_probes(self, item: Any, pad: Optional[str]) -> bool:
        """Runs the probes for ``pad`` (None: the pad-independent ones). False drops the item."""
        for tips, probe in self.probes:
            if pad is None:
                if tips and tips not in self.src_templates:
                    continue
            else:
                if not tips or tips in self.src_templates:
                    continue
                if tips != pad:
                    continue
            buffer = self.pipeline.as_buffer(item)
            ok, keep = self.pipeline.call_user(self, probe, buffer, what=f"probe on '{self.name}'")
            if not ok:
                return False
            if keep is False:
                return False
        return True

    # ---- data flow --------------------------------------------------------------------------
    def emit(self, item: Any, pad: Optional[str] = None) -> None:
        """Send ``item`` downstream on ``pad`` (None: every src pad), running probes first."""
        is_data = not isinstance(item, (SourceEOS, EndOfStream))
        if is_data and self.pipeline._tracer is not None:
            self.pipeline._trace(self, item)  # this element's output time, before its probes run
        if is_data and self.probes and not self._run_probes(item, None):
            return
        pads = list(self.src_links) if pad is None else [pad]
        halt = self.pipeline._halt
        for p in pads:
            if is_data and self.probes and not self._run_probes(item, p):
                continue
            for dst, dpad in list(self.src_links.get(p, ())):
                dst.inbox.put(dpad, item, halt, self.out_limit, force=not is_data)

    def process(self, pad: str, item: Any) -> None:
        """Filters: handle one data item (FrameItem or Buffer). Default: pass through."""
        self.emit(item)

    def on_source_eos(self, pad: str, event: SourceEOS) -> None:
        """A source ended. Unbatched paths end the pad; batched ones (from a mux) pass it on."""
        self.emit(event)

    def on_eos(self) -> None:
        """All inputs ended. Default: send EndOfStream downstream."""
        self.emit(EndOfStream(self.name))

    def _pad_ended(self, pad: str) -> None:
        self._ended_pads.add(pad)
        if not self._eos_done and all(p in self._ended_pads for p in self.sink_pads):
            self._eos_done = True
            self.on_eos()
            self.pipeline._element_eos(self)

    def handle(self, pad: str, item: Any) -> None:
        if isinstance(item, EndOfStream):
            self._pad_ended(pad)
        elif isinstance(item, SourceEOS):
            if item.batched:
                self.on_source_eos(pad, item)
            else:
                self.on_unbatched_source_eos(pad, item)
        else:
            self.process(pad, item)

    def on_unbatched_source_eos(self, pad: str, event: SourceEOS) -> None:
        """The source feeding ``pad`` directly (no mux in between) ended: that pad is done."""
        self.emit(event)
        self._pad_ended(pad)

    # ---- lifecycle --------------------------------------------------------------------------
    def reset(self) -> None:
        """Clear run-time state before a (re)start."""
        self.inbox.clear()
        self._ended_pads.clear()
        self._eos_done = False

    def prepare(self) -> None:
        """READY -> PAUSED: allocate what the element needs (called in the caller's thread)."""

    def start_thread(self) -> None:
        self._thread = threading.Thread(target=self._thread_main, name=f"pysm:{self.name}", daemon=True)
        self._thread.start()

    def _thread_main(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # an element bug or a native failure: report, stop cleanly
            self.pipeline.report_exception(self, exc, fatal=True)

    def run(self) -> None:
        """The worker loop of filters and sinks."""
        halt = self.pipeline._halt
        while not halt.is_set():
            got = self.inbox.get(0.1)
            if got is None:
                continue
            pad, item = got
            self.handle(pad, item)

    def request_end(self) -> None:
        """Graceful stop (Pipeline.stop): sources finish with end-of-stream; others ignore it."""

    def shutdown(self) -> None:
        """After the threads stopped: release engines and other resources."""

    def abort(self) -> None:
        """Hard stop: interrupt blocking native calls if the element can (close sockets...)."""

    def message_source_id(self) -> int:
        """The source id that messages about this source carry: its ``source-id`` property, else
        the index of the mux pad it feeds, which is the id the mux gives its frames."""
        sid = self.props.get("source-id", -1) if hasattr(self, "props") else -1
        if sid is not None and sid >= 0:
            return sid
        el, seen = self, set()
        while el is not None and id(el) not in seen:  # through queues and other one-way elements
            seen.add(id(el))
            links = [link for pads in el.src_links.values() for link in pads]
            if len(links) != 1:
                return -1
            dst, dpad = links[0]
            if getattr(dst, "assigns_source_ids", False):
                tail = dpad.rsplit("_", 1)[-1]
                return int(tail) if tail.isdigit() else -1
            el = dst
        return -1

    def thread_alive(self) -> bool:
        """Whether this element's worker thread (of this run or an abandoned earlier one) runs."""
        t = self._thread
        return t is not None and t.is_alive() and t is not threading.current_thread()

    def join(self, timeout: float) -> bool:
        t = self._thread
        if t is None or t is threading.current_thread():
            return True
        t.join(timeout)
        return not t.is_alive()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.factory} '{self.name}'>"


class SourceElement(Element):
    """Elements that produce data from their own thread: ``produce`` yields until done."""

    sink_templates: tuple[str, ...] = ()
    is_source = True

    def __init__(self, name: str, pipeline: "Pipeline") -> None:
        super().__init__(name, pipeline)
        self._end_requested = threading.Event()

    def reset(self) -> None:
        super().reset()
        self._end_requested.clear()

    def request_end(self) -> None:
        self._end_requested.set()

    @property
    def stopping(self) -> bool:
        return self._end_requested.is_set() or self.pipeline._halt.is_set()

    def run(self) -> None:
        try:
            self.produce()
        finally:
            if not self.pipeline._halt.is_set():
                self.pipeline._source_finished(self)
                self.emit(SourceEOS(self.name, self.props.get("source-id", -1)))
                if self.is_terminal:
                    self.pipeline._element_eos(self)

    def produce(self) -> None:
        raise NotImplementedError


def make_item(payload: Any, frame_number: int, pts: int, origin: str, live: bool = False) -> FrameItem:
    return FrameItem(payload, frame_number, pts, origin, live=live)
