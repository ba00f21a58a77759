"""GPU pipelines (run on the GPU host with PYSM_REQUIRE_GPU=1): device frames stay on the device
from the source through the GPU mux to the sink, results match the CPU pipeline, and NVDEC
sources batch every frame with the right source ids."""

from __future__ import annotations

import numpy as np
import pytest

import pysm
from pysm import Flow, Pipeline, RenderMode
from pysm._native import _core

from _pipeline_media import make_clip

pytestmark = pytest.mark.gpu


def _run_testsrc(device: int, width: int, height: int, padding: bool):
    out = []

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            for i in range(buffer.batch_size):
                out.append((_core.buffer_frame_format(buffer, i)[3], _core.batch_frame_info(buffer)[i][0],
                            _core.frame_to_array(buffer, i)))
            return 1

    p = Pipeline(f"gpu{device}")
    for k, (w, h) in enumerate([(1920, 1080), (1280, 720), (640, 480)]):
        p.add("videotestsrc", f"s{k}", {"num-buffers": 8, "width": w, "height": h, "device": device})
    p.add("nvstreammux", "mux", {"batch-size": 3, "width": width, "height": height, "enable-padding": padding})
    p.add("appsink", "sink")
    for k in range(3):
        p.link((f"s{k}", "mux"), ("", "sink_%u"))
    p.link("mux", "sink")
    p.attach("sink", pysm.Receiver("r", R()))
    p.start().wait(60)
    return out


@pytest.mark.parametrize("padding", [False, True])
def test_gpu_mux_pipeline_stays_on_device_and_matches_cpu(padding):
    gpu = _run_testsrc(0, 960, 544, padding)
    cpu = _run_testsrc(-1, 960, 544, padding)
    assert len(gpu) == len(cpu) == 24
    assert all(on_dev for on_dev, _, _ in gpu) and not any(on_dev for on_dev, _, _ in cpu)
    key = lambda r: r[1]
    for (_, sg, ag), (_, sc, ac) in zip(sorted(gpu, key=key), sorted(cpu, key=key)):
        assert sg == sc and ag.shape == ac.shape == (544 * 3 // 2, 960)
    by_src = {}
    for _, s, a in cpu:
        by_src.setdefault(s, []).append(a)
    for _, s, a in gpu:
        ref = by_src[s].pop(0)
        assert np.abs(a.astype(int) - ref.astype(int)).max() <= 1


def test_nvdec_batch_capture_keeps_frames_on_device(tmp_path):
    try:
        from pysm import codec  # noqa: F401
    except ImportError:
        pytest.skip("pysm.codec (NVDEC decoder) is not available in this build")
    clips = [make_clip(tmp_path / f"c{i}.mp4", n, width=320, height=240, seed=i) for i, n in enumerate((10, 17, 23))]
    seen = []

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            for i, info in enumerate(_core.batch_frame_info(buffer)):
                seen.append((info[0], info[3], _core.buffer_frame_format(buffer, i)[3]))
            return 1

    p = Pipeline("nvdec")
    p.add("nvstreammux", "mux", {"batch-size": 3, "width": 640, "height": 360, "batched-push-timeout": 33000})
    for i, c in enumerate(clips):
        p.add("nvurisrcbin", f"s{i}", {"uri": c, "device": "cuda"})
        p.link((f"s{i}", "mux"), ("vsrc_%u", "sink_%u"))
    p.add("appsink", "sink").link("mux", "sink")
    p.attach("sink", pysm.Receiver("r", R()))
    p.start().wait(60)
    counts = {s: sum(1 for x in seen if x[0] == s) for s in (0, 1, 2)}
    assert counts == {0: 10, 1: 17, 2: 23}
    assert all(on_dev for _, _, on_dev in seen)


def test_gpu_fork_discard_and_demux():
    p = Pipeline("gpufork")
    p.add("videotestsrc", "s0", {"num-buffers": 12, "width": 1280, "height": 720, "device": 0})
    p.add("videotestsrc", "s1", {"num-buffers": 9, "width": 640, "height": 360, "device": 0})
    p.add("nvstreammux", "mux", {"batch-size": 2, "width": 1280, "height": 720, "batched-push-timeout": 33000})
    p.add("tee", "tee").add("fakesink", "a").add("nvstreamdemux", "demux").add("fakesink", "d0").add("fakesink", "d1")
    p.link(("s0", "mux"), ("", "sink_%u")).link(("s1", "mux"), ("", "sink_%u")).link("mux", "tee")
    p.link(("tee", "a"), ("src_%u", "")).link(("tee", "demux"), ("src_%u", ""))
    p.link(("demux", "d0"), ("src_0", "")).link(("demux", "d1"), ("src_1", ""))
    p.start().wait(60)
    assert p["d0"].element.buffers == 12 and p["d1"].element.buffers == 9
