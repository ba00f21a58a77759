"""The Flow API: the inventory's documented examples (display falls back to discarding), inject ->
retrieve round trips, fork, attach of built-in probes, PerfMonitor, and the not-yet methods."""

from __future__ import annotations

import logging
import queue

import numpy as np
import pytest

import pysm
from pysm import Flow, Pipeline, RenderMode
from pysm._native import _core
from pysm.errors import ModelNotFoundError, NotSupportedYet, SourceError
from pysm.pipeline import Probe, WarningMessage
from pysm.utils import PerfMonitor

from _pipeline_media import make_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("flow") / "clip.mp4", 15)


def test_quick_start_playback_display_falls_back_with_one_warning(clip, caplog):
    msgs = []
    with caplog.at_level(logging.WARNING, logger="pysm.pipeline"):
        Flow(Pipeline("playback")).capture([clip]).render()(msgs.append)
    warnings = [m for m in msgs if isinstance(m, WarningMessage)]
    assert len(warnings) == 1 and "discarded" in warnings[0].message
    assert sum("discarded" in r.getMessage() for r in caplog.records) == 1
    assert any(isinstance(m, pysm.EOSMessage) for m in msgs)


def test_batch_capture_from_source_list_yaml(clip, tmp_path):
    yml = tmp_path / "sources.yaml"
    yml.write_text("source-list:\n"
                   f"- {{uri: 'file://{clip}', sensor-id: camA, sensor-name: front}}\n"
                   f"- {{uri: '{clip}', sensor-id: camB, sensor-name: back}}\n"
                   "source-config:\n  source-bin: nvurisrcbin\n  properties: {file-loop: false}\n")
    got = []

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            got.extend(i[0] for i in _core.batch_frame_info(buffer))
            return 1

    flow = Flow(Pipeline("my-pipeline")).batch_capture(str(yml), width=64, height=48)
    assert "camA" in flow.pipeline and "camB" in flow.pipeline
    assert flow._batch_size == 2
    flow.retrieve(R())()
    assert got.count(0) == 15 and got.count(1) == 15


def test_batch_capture_multiurisrcbin_yaml(clip, tmp_path):
    yml = tmp_path / "multi.yaml"
    yml.write_text("source-list:\n"
                   f"- {{uri: 'file://{clip}', sensor-id: s1, sensor-name: n1}}\n"
                   "source-config:\n  source-bin: nvmultiurisrcbin\n"
                   "  properties: {port: 0, width: 32, height: 32, max-batch-size: 2, batched-push-timeout: 20000}\n")
    flow = Flow(Pipeline("multi")).batch_capture(str(yml))
    assert flow._batch_size == 2
    sink = flow.render(RenderMode.DISCARD)
    flow.pipeline.start().wait(10)
    el = flow.pipeline["batch_capture-multiurisrcbin-0"].element
    assert el.sources()[0]["camera_id"] == "s1" and el.sources()[0]["frames"] == 15


class RGBProvider(pysm.BufferProvider):
    def __init__(self, frames, width, height):
        super().__init__()
        self.frames = list(frames)
        self.width, self.height, self.format, self.framerate, self.device = width, height, "RGB", 30, "cpu"

    def generate(self, size):
        if not self.frames:
            return _core.Buffer()  # empty Buffer = end of stream
        return _core.buffer_from_arrays([self.frames.pop(0)], "RGB")


class Collect(pysm.BufferRetriever):
    def __init__(self):
        self.q = queue.Queue()

    def consume(self, buffer):
        for i in range(buffer.batch_size):
            self.q.put(_core.frame_to_array(buffer, i))  # a copy: the buffer dies after consume
        return 1


def test_inject_render_sample(tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (72, 128, 3), dtype=np.uint8) for _ in range(5)]
    msgs = []
    Flow(Pipeline("renderer")).inject([RGBProvider(frames, 128, 72)]).render(sync=False)(msgs.append)
    assert any(isinstance(m, pysm.EOSMessage) for m in msgs)


def test_inject_retrieve_round_trip_exact():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(7)]
    out = Collect()
    Flow(Pipeline("rt")).inject([RGBProvider(frames, 64, 48)]).batch(width=64, height=48).retrieve(out)()
    got = [out.q.get_nowait() for _ in range(out.q.qsize())]
    assert len(got) == 7
    for a, b in zip(frames, got):
        np.testing.assert_array_equal(a, b)


def test_inject_retrieve_scaled_and_two_providers():
    rng = np.random.default_rng(2)
    f1 = [rng.integers(0, 256, (40, 80, 3), dtype=np.uint8) for _ in range(4)]
    f2 = [rng.integers(0, 256, (30, 30, 3), dtype=np.uint8) for _ in range(6)]
    seen = []

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            for i, info in enumerate(_core.batch_frame_info(buffer)):
                seen.append((info[0], _core.frame_to_array(buffer, i).shape))
            return 1

    (Flow(Pipeline("two")).inject([RGBProvider(f1, 80, 40), RGBProvider(f2, 30, 30)])
     .batch(width=32, height=24, batched_push_timeout=20000).retrieve(R()))()
    assert sorted(s for s, _ in seen) == [0] * 4 + [1] * 6
    assert all(shape == (24, 32, 3) for _, shape in seen)


def test_capture_retrieve_yields_rgb(clip):
    out = Collect()
    Flow(Pipeline("rgb")).capture([clip]).batch(width=32, height=32).retrieve(out)()
    frames = [out.q.get_nowait() for _ in range(out.q.qsize())]
    assert len(frames) == 15 and frames[0].shape == (32, 32, 3) and frames[0].dtype == np.uint8
    assert frames[0].std() > 10  # real picture content, not a constant


def test_fork_ten_discard_branches(clip):
    f = Flow(Pipeline("fork")).capture([clip]).batch(width=32, height=32).fork()
    for _ in range(10):
        f.render(RenderMode.DISCARD)
    f()
    sinks = [e for e in f.pipeline.elements if e.factory == "fakesink"]
    assert len(sinks) == 10 and all(s.buffers == 15 for s in sinks)


def test_attach_builtin_probes_and_custom_probe(clip, capsys):
    calls = []

    class Marker(pysm.BufferOperator):
        def handle_buffer(self, buffer):
            calls.append(buffer.batch_size)
            return True

    flow = (Flow(Pipeline("probes")).batch_capture([clip, clip], width=32, height=32)
            .attach(what="measure_fps_probe", name="fps", properties={"interval": 0})
            .attach(what="measure_latency_probe", name="lat", properties={"interval": 0})
            .attach(what=Probe("marker", Marker())))
    flow.render(RenderMode.DISCARD)()
    assert sum(calls) == 30
    fps = flow.pipeline.find("fps")
    assert set(fps.average_fps) == {0, 1}
    lat = flow.pipeline.find("lat")
    assert lat.frames == 30 and lat.total_latency_ms > 0
    assert any(k.startswith("batch_capture-mux") for k in lat.stage_latency_ms)
    out = capsys.readouterr().out
    assert "**PERF" in out and "**LATENCY" in out
    with pytest.raises(pysm.ConfigError, match="no property 'intervall'"):
        Flow(Pipeline("bad")).batch_capture([clip]).attach(what="measure_fps_probe", name="f",
                                                           properties={"intervall": 1})


def test_perf_monitor_per_stream(clip):
    lines = []
    pm = PerfMonitor(batch_size=2, interval=0.0, source_type="nvurisrcbin", show_name=True, printer=lines.append)
    flow = Flow(Pipeline("perf")).batch_capture([clip, clip], width=32, height=32)
    pm.add_stream(0, clip, "cam0", "front")
    pm.apply(flow.pipeline[flow.streams[0].originator], "")
    flow.render(RenderMode.DISCARD)()
    assert pm.reports > 0 and lines and "front" in lines[0]
    assert set(pm.fps()) <= {0, 1}
    pm.remove_stream(1)
    assert 1 not in pm.fps()


def test_not_yet_methods_name_the_missing_element(clip):
    f = Flow(Pipeline("t2")).batch_capture([clip])
    with pytest.raises(NotSupportedYet, match="nvtrackerbin"):
        f.track(ll_config_file="x", ll_lib_file="y")
    with pytest.raises(NotSupportedYet, match="nvmsgbrokersinkbin"):
        f.publish(topic="t")
    with pytest.raises(NotImplementedError, match="nvv4l2h264enc"):
        f.encode("/tmp/out.mp4")
    with pytest.raises(ModelNotFoundError, match="nope.yml"):
        f.infer("/nope.yml")


def test_single_stream_rule_and_uri_checks(clip):
    f = Flow(Pipeline("multi")).capture([clip, clip])
    with pytest.raises(Exception, match="multiple streams must be batched"):
        f.render()
    with pytest.raises(SourceError, match="doesn't exist"):
        Flow(Pipeline("x")).capture(["/no/such.mp4"])
    with pytest.raises(TypeError):
        Flow(Pipeline("y")).capture([])
    with pytest.raises(pysm.ConfigError, match="'batched-push-timeot'"):
        Flow(Pipeline("z")).capture([clip]).batch(batched_push_timeot=1)


def test_infer_flow_uses_engine(clip, tmp_path, monkeypatch):
    """Flow.infer builds nvinfer with config + flow batch size and calls the engine per batch."""
    import sys
    import types

    calls = {"init": None, "process": 0, "stopped": False}

    class FakeEngine:
        def __init__(self, config_file_path=None, *, name, **props):
            calls["init"] = (config_file_path, name, props)

        def start(self):
            pass

        def process(self, buffer):
            calls["process"] += 1

        def stop(self):
            calls["stopped"] = True

    mod = types.ModuleType("pysm.infer")
    mod.InferEngine = FakeEngine
    monkeypatch.setitem(sys.modules, "pysm.infer", mod)
    cfg = tmp_path / "pgie.yml"
    cfg.write_text("property: {}\n")
    Flow(Pipeline("inf")).batch_capture([clip, clip], width=32, height=32).infer(str(cfg), unique_id=3) \
        .render(RenderMode.DISCARD)()
    assert calls["init"] == (str(cfg), "infer-infer-0", {"batch_size": 2, "unique_id": 3})
    assert calls["process"] == 15 and calls["stopped"]


def test_inject_retrieve_round_trip_of_tensors():
    """The advanced-features pattern: as_tensor(...).wrap(ColorFormat.RGB) in, extract(i) out."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    frames = [torch.from_numpy(rng.integers(0, 256, (36, 44, 3), dtype=np.uint8)) for _ in range(5)]
    pending = list(frames)

    class TensorProvider(pysm.BufferProvider):
        def __init__(self):
            super().__init__()
            self.width, self.height, self.format, self.framerate, self.device = 44, 36, "RGB", 30, "cpu"

        def generate(self, size):
            if not pending:
                return pysm.Buffer()
            return pysm.as_tensor(pending.pop(0), "HWC").wrap(pysm.ColorFormat.RGB)

    got = []

    class TensorRetriever(pysm.BufferRetriever):
        def consume(self, buffer):
            for i in range(buffer.batch_size):
                t = buffer.extract(i)
                assert t.shape == (36, 44, 3)
                got.append(torch.from_dlpack(t.clone()))  # clone: the buffer dies after consume
            return 1

    Flow(Pipeline("tensors")).inject([TensorProvider()]).batch(width=44, height=36).retrieve(TensorRetriever())()
    assert len(got) == 5
    for a, b in zip(frames, got):
        assert torch.equal(a, b)
