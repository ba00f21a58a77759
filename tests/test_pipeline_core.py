"""Pipeline API core: building, linking, states and messages, errors, bounded stop, backpressure,
routing (tee, demux, queue) and YAML graphs."""

from __future__ import annotations

import threading
import time

import pytest

import pysm
from pysm import Pipeline, PipelineState
from pysm.errors import ConfigError, PipelineError
from pysm.pipeline import (BatchMetadataOperator, BufferOperator, ErrorMessage, EOSMessage, Probe,
                           StateTransitionMessage)
from pysm.pipeline.element import SourceElement
from pysm.pipeline.registry import register
from pysm._native import _core


def _testsrc_pipeline(name="p", n=10, batch=1, **mux):
    p = Pipeline(name)
    p.add("videotestsrc", "src", {"num-buffers": n, "width": 64, "height": 48})
    p.add("nvstreammux", "mux", {"batch-size": batch, **mux})
    p.add("fakesink", "sink")
    p.link(("src", "mux"), ("", "sink_%u")).link("mux", "sink")
    return p


def test_state_messages_in_order_and_states():
    p = _testsrc_pipeline()
    msgs = []
    assert p.state == PipelineState.EMPTY
    p.start(lambda m: msgs.append(m)).wait(10)
    assert p.state == PipelineState.EMPTY
    st = [(m.origin, m.old_state, m.new_state) for m in msgs if isinstance(m, StateTransitionMessage)]
    steps = [(PipelineState.EMPTY, PipelineState.READY), (PipelineState.READY, PipelineState.PAUSED),
             (PipelineState.PAUSED, PipelineState.PLAYING), (PipelineState.PLAYING, PipelineState.PAUSED),
             (PipelineState.PAUSED, PipelineState.READY), (PipelineState.READY, PipelineState.EMPTY)]
    expected = [(origin, a, b) for a, b in steps for origin in ("sink", "mux", "src", "p")]
    assert st == expected
    # EOS is delivered before the pipeline leaves PLAYING
    eos_at = next(i for i, m in enumerate(msgs) if isinstance(m, EOSMessage))
    down_at = next(i for i, m in enumerate(msgs) if isinstance(m, StateTransitionMessage)
                   and m.new_state == PipelineState.PAUSED and m.old_state == PipelineState.PLAYING)
    assert eos_at < down_at
    assert p["sink"].element.buffers == 10


def test_prepare_activate_and_two_argument_callback():
    p = _testsrc_pipeline(n=5)
    seen = []

    def on_message(pipeline, message):
        seen.append((pipeline, message))

    p.prepare(on_message)
    assert p.state == PipelineState.PAUSED
    p.activate()
    p.wait(10)
    assert seen and all(pl is p for pl, _ in seen)
    assert any(isinstance(m, EOSMessage) for _, m in seen)


def test_restart_after_eos():
    p = _testsrc_pipeline(n=4)
    p.start().wait(10)
    p.start().wait(10)
    assert p["sink"].element.buffers == 4


def test_unknown_factory_and_properties():
    p = Pipeline("e")
    with pytest.raises(ConfigError, match="nvbogus.*'x'"):
        p.add("nvbogus", "x")
    with pytest.raises(ConfigError, match="'mux'.*'batch-sise'.*batch-size"):
        p.add("nvstreammux", "mux", {"batch-sise": 2})
    p.add("nvstreammux", "mux", {"batch-size": 2})
    with pytest.raises(ConfigError, match="'mux'.*'width'.*int"):
        p["mux"].set({"width": "wide"})
    with pytest.raises(ConfigError, match="'mux'.*'enable-padding'"):
        p["mux"].set("enable-padding", 3.5)
    p["mux"].set({"batched_push_timeout": 40000})  # underscores accepted
    assert p["mux"].get("batched-push-timeout") == 40000
    with pytest.raises(ConfigError, match="already has an element"):
        p.add("fakesink", "mux")
    with pytest.raises(KeyError):
        p["nope"]
    with pytest.raises(ConfigError, match="no sink pad 'video'"):
        p.add("fakesink", "sink").link(("mux", "sink"), ("", "video"))
    with pytest.raises(ConfigError, match="Invalid number of arguments"):
        p.link("mux")


def test_raising_probe_posts_error_with_traceback_and_stops():
    class Boom(BufferOperator):
        def handle_buffer(self, buffer):
            raise RuntimeError("probe exploded")

    p = _testsrc_pipeline(n=-1)  # endless source: only the error can stop it
    p.attach("mux", Probe("boom", Boom()))
    msgs = []
    t = time.monotonic()
    p.start(msgs.append).wait(10)
    assert time.monotonic() - t < 10
    errs = [m for m in msgs if isinstance(m, ErrorMessage)]
    assert len(errs) == 1 and errs[0].fatal and errs[0].origin == "mux"
    assert "probe exploded" in errs[0].message and "Traceback" in errs[0].traceback
    assert "handle_buffer" in errs[0].traceback
    assert p.state == PipelineState.EMPTY


def test_probe_drop_and_count_once_per_batch():
    calls = []

    class EveryOther(BufferOperator):
        def handle_buffer(self, buffer):
            calls.append(buffer.batch_size)
            return len(calls) % 2 == 0

    p = _testsrc_pipeline(n=12, batch=3)
    p.attach("mux", Probe("skip", EveryOther()))
    p.start().wait(10)
    assert calls == [3, 3, 3, 3]
    assert p["sink"].element.buffers == 2


class _BlockingSource(SourceElement):
    """A source stuck in a call that ignores the stop flag (a dead camera without timeouts)."""

    factory = "test_blocking_source"
    src_templates = ("src",)
    started = threading.Event()
    forever = threading.Event()

    def produce(self):
        _BlockingSource.started.set()
        _BlockingSource.forever.wait(30)


register(_BlockingSource)


def test_stop_is_bounded_with_a_stuck_source():
    p = Pipeline("stuck")
    p.add("test_blocking_source", "src").add("videotestsrc", "ok", {"is-live": True, "width": 32, "height": 32})
    p.add("nvstreammux", "mux", {"batch-size": 2, "batched-push-timeout": 20000}).add("fakesink", "sink")
    p.link(("src", "mux"), ("", "sink_%u")).link(("ok", "mux"), ("", "sink_%u")).link("mux", "sink")
    p.start()
    assert _BlockingSource.started.wait(5)
    time.sleep(0.3)
    t = time.monotonic()
    p.stop(timeout=1.0)
    elapsed = time.monotonic() - t
    assert elapsed < 2.5
    p.wait(5)
    assert p.state == PipelineState.EMPTY
    assert p["sink"].element.buffers > 0  # the live source was batched despite the dead one


def test_backpressure_bounds_queues():
    p = Pipeline("bp")
    p.add("videotestsrc", "src", {"num-buffers": 60, "width": 32, "height": 32})
    p.add("nvstreammux", "mux", {"batch-size": 1}).add("queue", "q", {"max-size-buffers": 3}).add("fakesink", "sink")
    p.link(("src", "mux"), ("", "sink_%u")).link("mux", "q", "sink")
    peak = [0, 0]
    sink = p["sink"].element
    orig = sink.consume

    def slow_consume(item):
        peak[0] = max(peak[0], p["q"].element.inbox.pending())
        peak[1] = max(peak[1], p["mux"].element.inbox.pending())
        time.sleep(0.005)
        orig(item)

    sink.consume = slow_consume
    p.start().wait(20)
    assert sink.buffers == 60
    # bounded by each inbox's capacity (+2 for the end-of-stream events, which never block)
    assert peak[0] <= 3 + 2 and peak[1] <= 4 + 2


def test_tee_and_demux_routing():
    p = Pipeline("route")
    for i in range(2):
        p.add("videotestsrc", f"s{i}", {"num-buffers": 5 + 3 * i, "width": 32, "height": 32})
    p.add("nvstreammux", "mux", {"batch-size": 2}).add("tee", "tee").add("fakesink", "all")
    p.add("nvstreamdemux", "demux").add("appsink", "a0").add("appsink", "a1")
    for i in range(2):
        p.link((f"s{i}", "mux"), ("", "sink_%u"))
    p.link("mux", "tee")
    p.link(("tee", "all"), ("src_%u", ""))
    p.link(("tee", "demux"), ("src_%u", ""))
    p.link(("demux", "a0"), ("src_0", "")).link(("demux", "a1"), ("src_1", ""))
    got = {0: [], 1: []}

    class R(pysm.BufferRetriever):
        def __init__(self, k):
            self.k = k

        def consume(self, buffer):
            info = _core.batch_frame_info(buffer)
            assert len(info) == 1
            got[self.k].append(info[0][0])
            return 1

    p.attach("a0", pysm.Receiver("r0", R(0)), tips="new-sample")
    p.attach("a1", pysm.Receiver("r1", R(1)), tips="new-sample")
    p.start().wait(10)
    assert got[0] == [0] * 5 and got[1] == [1] * 8


def test_yaml_graph(tmp_path):
    cfg = tmp_path / "graph.yaml"
    cfg.write_text(
        "deepstream:\n"
        "  nodes:\n"
        "  - {type: videotestsrc, name: src, properties: {num-buffers: 6, width: 32, height: 32}}\n"
        "  - {type: nvstreammux, name: mux, properties: {batch-size: 2, width: 16, height: 16}}\n"
        "  - {type: nvinfer, name: infer, enable: false}\n"
        "  - {type: fakesink, name: sink}\n"
        "  - {type: measure_fps_probe, name: fps, properties: {interval: 1}}\n"
        "  edges:\n"
        "    src: mux.sink_%u\n"
        "    mux: infer\n"
        "    infer: [sink, fps]\n")
    p = Pipeline("yaml", config_file=str(cfg))
    assert p["infer"].factory == "identity"
    p.start().wait(10)
    assert p["sink"].element.buffers == 3
    assert p.find("fps") is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline: {elements: []}\n")
    with pytest.raises(ConfigError, match="deepstream"):
        Pipeline("bad", config_file=str(bad))


def test_metadata_operator_needs_batch_meta():
    class Count(BatchMetadataOperator):
        def __init__(self):
            super().__init__()
            self.frames = 0

        def handle_metadata(self, batch_meta):
            self.frames += sum(1 for _ in batch_meta.frame_items)

    if not hasattr(_core.Buffer, "batch_meta"):
        pytest.skip("Buffer.batch_meta comes with the metadata bindings")
    op = Count()
    p = _testsrc_pipeline(n=6, batch=2)
    p.attach("mux", Probe("count", op))
    p.start().wait(10)
    assert op.frames == 6


def test_infer_adapter_missing_engine_is_a_clear_error():
    try:
        import pysm.infer  # noqa: F401
        pytest.skip("pysm.infer is present")
    except ImportError:
        pass
    with pytest.raises(PipelineError, match="nvinfer.*InferEngine"):
        Pipeline("i").add("nvinfer", "infer", {"batch-size": 1})
