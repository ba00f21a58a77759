"""Pipeline: pyservicemaker's Pipeline API over pysm's threaded element runtime.

Each element runs on its own thread with bounded per-pad queues (backpressure). A bus thread
delivers messages to ``on_message`` (one or two arguments), in order, and tears the pipeline
down after end of stream, a fatal error or ``stop()``: element threads are halted and joined with
bounded timeouts (stuck ones are daemon threads and are abandoned), then states step down to EMPTY.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
import traceback
from typing import Any, Callable, Optional, Union

from pysm.errors import ConfigError, PipelineError, StateError
from pysm.gil import tune_switch_interval
from pysm.pipeline.element import Element, SourceElement
from pysm.pipeline.items import FrameItem
from pysm.pipeline.messages import (EOSMessage, ErrorMessage, PipelineMessage, StateTransitionMessage,
                                    StreamEOSMessage)
from pysm.pipeline.node import Node
from pysm.pipeline.probe import Feeder, Probe, Receiver
from pysm.pipeline.registry import lookup
from pysm.pipeline.state import PipelineState, StateMachine

log = logging.getLogger("pysm.pipeline")
#: How long prepare() waits for threads that the last stop() abandoned before refusing to start.
_RESTART_WAIT_S = 5.0

_FINISH = object()  # bus control item: tear down


def _arity(cb: Callable) -> int:
    try:
        params = [p for p in inspect.signature(cb).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if any(p.kind == p.VAR_POSITIONAL for p in inspect.signature(cb).parameters.values()):
            return 2
        return 2 if len(params) >= 2 else 1
    except (TypeError, ValueError):
        return 1


class Pipeline:
    """A graph of elements. ``Pipeline(name, config_file=None)``; ``config_file`` is a YAML graph
    (``deepstream: {nodes: [...], edges: {...}}``)."""

    def __init__(self, name: str, config_file: Optional[str] = None) -> None:
        self.name = name
        self._elements: dict[str, Element] = {}
        self._nodes: dict[str, Node] = {}
        self._objects: dict[str, Any] = {}  # CommonFactory objects by instance name
        self._sm = StateMachine(f"pipeline '{name}'")
        self._halt = threading.Event()
        self._done = threading.Event()
        self._done.set()
        self._bus: "queue.Queue" = queue.Queue()
        self._bus_thread: Optional[threading.Thread] = None
        self._on_message: Optional[Callable] = None
        self._lock = threading.RLock()
        self._eos_elements: set[str] = set()
        self._finishing = False
        self._tracer = None
        self.stop_timeout = 5.0
        self._join_timeout = 2.0  # per teardown: how long stuck element threads get to exit
        self.errors: list[ErrorMessage] = []
        if config_file:
            from pysm.pipeline.yaml_graph import load_graph

            load_graph(self, config_file)

    # ---- building ----------------------------------------------------------------------------
    def add(self, factory: str, name: str, properties: Optional[dict] = None) -> "Pipeline":
        """Create element ``name`` from ``factory`` with hyphenated ``properties``."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"element name must be a non-empty string, got {name!r}")
        with self._lock:
            if name in self._elements:
                raise ConfigError(f"pipeline '{self.name}' already has an element named '{name}'")
            if self._sm.state != PipelineState.EMPTY:
                raise StateError(f"pipeline '{self.name}': add elements before starting it")
            cls = lookup(factory, name)
            el = cls(name, self)
            if properties:
                if not isinstance(properties, dict):
                    raise ConfigError(f"element '{name}': properties must be a dict, got {type(properties).__name__}")
                for k, v in properties.items():
                    el.set_property(k, v)
            self._elements[name] = el
        return self

    def __getitem__(self, name: str) -> Node:
        node = self._nodes.get(name)
        if node is None:
            if name not in self._elements:
                raise KeyError(f"{name} Not found in pipeline '{self.name}'")
            node = self._nodes[name] = Node(self, name)
        return node

    def __contains__(self, name: str) -> bool:
        return name in self._elements

    def element(self, name: str) -> Element:
        try:
            return self._elements[name]
        except KeyError:
            raise KeyError(f"{name} Not found in pipeline '{self.name}'") from None

    @property
    def elements(self) -> list[Element]:
        return list(self._elements.values())

    def link(self, *args: Any) -> "Pipeline":
        """``link(a, b, c, ...)`` chains elements; ``link((src, dst), (src_pad, sink_pad))`` links two
        with pad names or templates (e.g. ``("", "sink_%u")``)."""
        if len(args) == 2 and isinstance(args[0], (tuple, list)):
            (a, b), hints = args
            hints = tuple(hints) if hints else ("", "")
            if len(hints) != 2:
                raise ConfigError("link pad hints must be a (src_pad, sink_pad) pair")
            self._link(a, b, hints[0] or "", hints[1] or "")
            return self
        if len(args) < 2:
            raise ConfigError("Invalid number of arguments: link needs at least two elements")
        for a, b in zip(args, args[1:]):
            self._link(a, b, "", "")
        return self

    def _link(self, a: str, b: str, src_hint: str, sink_hint: str) -> None:
        src, dst = self.element(a), self.element(b)
        if src is dst:
            raise ConfigError(f"cannot link element '{a}' to itself")
        src_pad = src.request_src_pad(src_hint)
        sink_pad = dst.request_sink_pad(sink_hint)
        src.src_links.setdefault(src_pad, []).append((dst, sink_pad))
        dst.upstream.append((src, src_pad, sink_pad))

    def attach(self, target: str, what: Any, name: str = "", tips: str = "",
               properties: Optional[dict] = None) -> "Pipeline":
        """Attach a Probe/Receiver/Feeder (or a CommonFactory object by factory name) to ``target``."""
        el = self.element(target)
        if isinstance(what, str):
            from pysm.pipeline.factory import CommonFactory

            obj = CommonFactory.create(what, name or what)
            if obj is None:
                raise ConfigError(f"attach: unknown object factory '{what}' for element '{target}'")
            if properties:
                obj.set(properties)
            self._objects[name or what] = obj
            attach = getattr(obj, "attach_to", None)
            if attach is not None:
                attach(self, el, tips)
            else:
                el.add_probe(obj, tips)
            return self
        if isinstance(what, Probe):
            el.add_probe(what, tips)
        elif isinstance(what, Receiver):
            if not hasattr(el, "attach_receiver"):
                raise ConfigError(f"attach: a Receiver needs an appsink, '{target}' is {el.factory}")
            el.attach_receiver(what, tips)
        elif isinstance(what, Feeder):
            if not hasattr(el, "attach_feeder"):
                raise ConfigError(f"attach: a Feeder needs an appsrc, '{target}' is {el.factory}")
            for sig in [s for s in (tips or "need-data/enough-data").split("/") if s]:
                if sig not in ("need-data", "enough-data"):
                    raise ConfigError(f"appsrc '{target}' has no signal '{sig}'")
            el.attach_feeder(what)
        elif hasattr(what, "attach_to"):
            what.attach_to(self, el, tips)
        else:
            raise ConfigError("Unsupported object type for Pipeline.attach: "
                              f"{type(what).__name__} (use Probe, Receiver, Feeder or a factory name)")
        return self

    def find(self, name: str) -> Any:
        """A CommonFactory object attached under ``name`` (None if absent)."""
        return self._objects.get(name)

    # ---- sources at run time ------------------------------------------------------------------
    def _multi_source(self, element: Optional[str]) -> Any:
        if element is not None:
            el = self.element(element)
            if not hasattr(el, "add_source"):
                raise ConfigError(f"element '{element}' ({el.factory}) cannot add sources")
            return el
        cands = [e for e in self._elements.values() if hasattr(e, "add_source")]
        if len(cands) != 1:
            raise ConfigError("add_source/remove_source: name the nvmultiurisrcbin element "
                              f"(found {len(cands)} candidates)")
        return cands[0]

    def add_source(self, uri: str, sensor_id: Optional[str] = None, sensor_name: Optional[str] = None,
                   element: Optional[str] = None) -> int:
        """Add a URI to the pipeline's nvmultiurisrcbin while it runs; returns the source id."""
        el = self._multi_source(element)
        return el.add_source(uri, sensor_id, sensor_name)

    def remove_source(self, source: Union[int, str], element: Optional[str] = None) -> bool:
        """Remove a source (id, sensor id or URI) from the pipeline's nvmultiurisrcbin."""
        return self._multi_source(element).remove_source(source)

    # ---- messages -----------------------------------------------------------------------------
    def post(self, message: PipelineMessage) -> None:
        """Queue a message for the on_message callback (delivered in order on the bus thread)."""
        if isinstance(message, ErrorMessage):
            self.errors.append(message)
        self._bus.put(message)

    def _deliver(self, message: PipelineMessage) -> None:
        cb = self._on_message
        if cb is None:
            if isinstance(message, ErrorMessage):
                log.error("%s: %s%s", message.origin, message.message,
                          ("\n" + message.traceback) if message.traceback else "")
            return
        try:
            if _arity(cb) >= 2:
                cb(self, message)
            else:
                cb(message)
        except Exception:
            # An on_message callback that raises must not kill the bus: report it once in the log.
            log.exception("on_message callback raised while handling %r", message)

    def _bus_main(self, bus: "queue.Queue", done: threading.Event) -> None:
        # This run's queue and end event, not the attributes: on_message may start the next run
        # while this thread still drains (prepare() then replaces both).
        while True:
            item = bus.get()
            if item is _FINISH:
                self._teardown()
                # Deliver what the teardown posted (state transitions), then finish.
                while True:
                    try:
                        m = bus.get_nowait()
                    except queue.Empty:
                        break
                    if m is not _FINISH:
                        self._deliver(m)
                done.set()
                return
            self._deliver(item)

    # ---- errors and user code -----------------------------------------------------------------
    def call_user(self, element: Element, fn: Callable, *args: Any, what: str = "callback") -> tuple[bool, Any]:
        """Run user code; an exception becomes an ErrorMessage with its traceback and stops the
        pipeline. Returns (ok, result)."""
        try:
            return True, fn(*args)
        except Exception as exc:
            if self._finishing:  # already stopping for an earlier error: report only the first
                return False, None
            tb = traceback.format_exc()
            err = PipelineError(f"{what} raised {type(exc).__name__}: {exc}")
            err.__cause__ = exc
            self.post(ErrorMessage(element.name, err, fatal=True, traceback=tb))
            self._request_finish()
            return False, None

    def report_exception(self, element: Element, exc: BaseException, fatal: bool = True) -> None:
        if self._halt.is_set() and not fatal:
            return
        self.post(ErrorMessage(element.name, exc, fatal=fatal, traceback=traceback.format_exc()))
        if fatal:
            self._request_finish()

    def report_source_error(self, element: Element, exc: BaseException) -> None:
        """An error of one source: reported, the rest of the pipeline goes on."""
        self.post(ErrorMessage(element.name, exc, source_id=element.message_source_id(), fatal=False))

    # ---- end of stream ------------------------------------------------------------------------
    def _element_eos(self, element: Element) -> None:
        if isinstance(element, SourceElement) and not element.is_terminal:
            return
        with self._lock:
            self._eos_elements.add(element.name)
            terminals = [e for e in self._elements.values() if e.is_terminal]
            done = all(e.name in self._eos_elements for e in terminals)
        if done:
            self.post(EOSMessage(self.name))
            self._request_finish()

    def _source_finished(self, element: Element) -> None:
        self.post(StreamEOSMessage(element.name, element.message_source_id(), element.props.get("uri", "")))

    # ---- buffers for user code ------------------------------------------------------------------
    _passthrough_mux = None

    def as_buffer(self, item: Any) -> Any:
        """The Buffer user code sees: batches as they are; an unbatched frame as a batch of one
        (with its FrameMetadata)."""
        if not isinstance(item, FrameItem):
            return item
        from pysm._native import _core

        if Pipeline._passthrough_mux is None:
            Pipeline._passthrough_mux = _core.NativeMux(0, 0, False, 0, 1)
        sid = item.source_id if item.source_id >= 0 else 0
        return Pipeline._passthrough_mux.batch([(item.payload, sid, sid, item.frame_number, item.pts, 0)])

    def _trace(self, element: Element, item: Any) -> None:
        t = self._tracer
        if t is not None and not isinstance(item, FrameItem):
            t.stage(element.name, item)

    def enable_latency_tracing(self) -> Any:
        from pysm.pipeline.latency import LatencyTracer

        if self._tracer is None:
            self._tracer = LatencyTracer()
        return self._tracer

    # ---- lifecycle ------------------------------------------------------------------------------
    @property
    def state(self) -> PipelineState:
        return self._sm.state

    def _order(self) -> list[Element]:
        """Elements from sinks to sources (GStreamer changes states downstream first)."""
        order: list[Element] = []
        seen: set[str] = set()

        def visit(e: Element) -> None:
            if e.name in seen:
                return
            seen.add(e.name)
            for links in e.src_links.values():
                for dst, _ in links:
                    visit(dst)
            order.append(e)

        for e in self._elements.values():
            if not e.upstream:
                visit(e)
        for e in self._elements.values():
            visit(e)
        return order

    def _step(self, target: PipelineState) -> None:
        for old, new in self._sm.steps_to(target):
            for el in self._order():
                el.state = new
                self._bus.put(StateTransitionMessage(old, new, el.name))
            self._sm.state = new
            self._bus.put(StateTransitionMessage(old, new, self.name))

    def _validate(self) -> None:
        if not self._elements:
            raise PipelineError(f"pipeline '{self.name}' has no elements")
        for el in self._elements.values():
            if el.sink_templates and not el.sink_pads and not isinstance(el, SourceElement) \
                    and not hasattr(el, "add_source"):
                raise PipelineError(f"element '{el.name}' ({el.factory}) has no input: link something into it")

    def prepare(self, on_message: Optional[Callable] = None) -> "Pipeline":
        """EMPTY -> READY -> PAUSED in the calling thread (message callback installed).

        Raises StateError when a thread that the last stop() had to abandon (a source blocked in a
        read, a probe that would not return) still runs after a further 5 s: started beside its
        replacement it would feed the new run twice."""
        if self._sm.state == PipelineState.EMPTY:  # else the state check below raises at once
            self._wait_for_abandoned_threads()
        with self._lock:
            if self._sm.state not in (PipelineState.EMPTY,):
                raise StateError(f"pipeline '{self.name}' is {self._sm.state.name}: prepare() needs EMPTY "
                                 "(call wait() or stop() first)")
            self._validate()
            self._on_message = on_message if on_message is not None else self._on_message
            self._halt.clear()
            self._done = threading.Event()  # this run's; the last run's bus thread sets its own
            self._finishing = False
            self._eos_elements.clear()
            self._bus = queue.Queue()
            for el in self._elements.values():
                el.reset()
            self._bus_thread = threading.Thread(target=self._bus_main, args=(self._bus, self._done),
                                                name=f"pysm-bus:{self.name}", daemon=True)
            self._bus_thread.start()
            try:
                self._step(PipelineState.READY)
                for el in self._order():
                    el.prepare()
                self._step(PipelineState.PAUSED)
            except BaseException:
                self._halt.set()
                self._request_finish()
                self._done.wait(self.stop_timeout)
                raise
        return self

    def activate(self) -> "Pipeline":
        """PAUSED -> PLAYING: start every element's thread."""
        with self._lock:
            self._sm.require(PipelineState.PAUSED, action="activate (call prepare() first)")
            tune_switch_interval()
            self._step(PipelineState.PLAYING)
            for el in reversed(self._order()):
                el.start_thread()
        return self

    def start(self, on_message: Optional[Callable] = None) -> "Pipeline":
        """prepare + activate; returns at once (use wait() to block)."""
        self.prepare(on_message)
        return self.activate()

    def wait(self, timeout: Optional[float] = None) -> "Pipeline":
        """Block until the pipeline stopped (end of stream, fatal error or stop())."""
        if not self._done.wait(timeout):
            raise PipelineError(f"pipeline '{self.name}' still running after {timeout} s")
        t = self._bus_thread
        if t is not None and t is not threading.current_thread():
            t.join(1.0)
        return self

    def stop(self, timeout: Optional[float] = None) -> "Pipeline":
        """Graceful stop, bounded in time: sources end their streams; if the pipeline has not
        drained within ``timeout`` seconds (default ``stop_timeout``), it is halted."""
        timeout = self.stop_timeout if timeout is None else timeout
        if self._done.is_set():
            return self
        for el in self._elements.values():
            el.request_end()
        on_bus = threading.current_thread() is self._bus_thread
        in_element = any(el._thread is threading.current_thread() for el in self._elements.values())
        if on_bus or in_element:
            self._request_finish()
            return self
        if not self._done.wait(timeout / 2):
            self._join_timeout = max(0.1, timeout / 2 - 0.2)
            self._halt.set()
            self._request_finish()
            self._done.wait(timeout / 2 + 0.5)
        return self

    def _wait_for_abandoned_threads(self) -> None:
        stale = [el for el in self._elements.values() if el.thread_alive()]
        if not stale:
            return
        end = time.monotonic() + _RESTART_WAIT_S
        for el in stale:
            el.join(max(0.0, end - time.monotonic()))
        still = [el.name for el in stale if el.thread_alive()]
        if still:
            raise StateError(f"pipeline '{self.name}': the threads of {still} from the previous run have not "
                             f"stopped yet (a source read waits up to its read-timeout, a probe until it "
                             f"returns); try again later")

    def _request_finish(self) -> None:
        with self._lock:
            if self._finishing:
                return
            self._finishing = True
        self._bus.put(_FINISH)

    def _teardown(self) -> None:
        self._halt.set()
        for el in self._elements.values():
            el.inbox.wake_all()
            el.abort()
        end = time.monotonic() + self._join_timeout
        for el in self._elements.values():
            if not el.join(max(0.05, end - time.monotonic())):
                log.warning("pipeline '%s': element '%s' did not stop in time; abandoning its thread",
                            self.name, el.name)
        for el in self._elements.values():
            shutdown = getattr(el, "shutdown", None)
            if shutdown is not None:
                try:
                    shutdown()
                except Exception as exc:
                    self.post(ErrorMessage(el.name, exc, traceback=traceback.format_exc()))
        if self._sm.state != PipelineState.EMPTY:
            self._step(PipelineState.EMPTY)

    # ---- pyservicemaker extras ------------------------------------------------------------------
    def seek(self, time_in_seconds: float) -> "Pipeline":
        from pysm.errors import NotSupportedYet

        raise NotSupportedYet("Pipeline.seek is not supported by pysm yet")

    def start_recording(self, *args: Any, **kwargs: Any) -> int:
        from pysm.errors import NotSupportedYet

        raise NotSupportedYet("smart record (Pipeline.start_recording) is not supported by pysm yet")

    def __repr__(self) -> str:
        return f"<Pipeline '{self.name}' {self._sm.state.name} elements={list(self._elements)}>"
