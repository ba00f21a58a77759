"""The tiny detector through the whole pipeline: decode -> mux -> nvinfer (InferEngine) ->
appsink, with Flow.infer and the Pipeline API; primary + secondary; EngineFileMonitor on a node."""

from __future__ import annotations

import numpy as np
import pytest

from pysm import Flow, Pipeline
import pysm
import infer_models

av = pytest.importorskip("av")


def colour_clip(path, frames=6, w=64, h=48, colour=(200, 40, 100)):
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = colour
    with av.open(str(path), "w") as c:
        s = c.add_stream("h264", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "qp": "0"}
        for _ in range(frames):
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def config(tmp_path, model, extra=""):
    (tmp_path / "labels.txt").write_text("redish\nblueish\n")
    p = tmp_path / "pgie.txt"
    p.write_text(f"""[property]
onnx-file={model}
labelfile-path=labels.txt
infer-dims=3;32;32
net-scale-factor=0.00392156862745098
parse-bbox-func-name=yolo
num-detected-classes=2
backend=onnxruntime
gie-unique-id=1
{extra}
[class-attrs-all]
pre-cluster-threshold=0.3
""")
    return str(p)


class Collect(pysm.BufferRetriever):
    def __init__(self):
        super().__init__()
        self.frames = []

    def consume(self, buffer):
        for f in buffer.batch_meta.frame_items:
            self.frames.append([(o.class_id, o.label, round(o.confidence, 2),
                                 (o.rect_params.left, o.rect_params.top, o.rect_params.width, o.rect_params.height),
                                 o.unique_component_id) for o in f.object_items])
        return 1


def test_flow_infer_attaches_detections(tmp_path):
    clip = colour_clip(tmp_path / "red.mp4")
    model = infer_models.detector(tmp_path / "tiny.onnx")
    got = Collect()
    Flow(Pipeline("infer")).batch_capture([clip, clip], width=64, height=48).infer(config(tmp_path, model)).retrieve(got)()
    assert len(got.frames) == 12
    for objs in got.frames:
        assert len(objs) == 1
        cls, label, conf, rect, uid = objs[0]
        assert (cls, label, uid) == (0, "redish", 1)
        assert abs(conf - 200 / 255) < 0.03  # H.264 + YUV round trip
        assert rect == pytest.approx((22, 12, 20, 12), abs=1e-3)


def test_pipeline_primary_and_secondary_with_properties(tmp_path):
    clip = colour_clip(tmp_path / "blue.mp4", colour=(20, 30, 220))
    model = infer_models.detector(tmp_path / "tiny.onnx")
    clf = infer_models.classifier(tmp_path / "clf.onnx", size=16)
    (tmp_path / "colours.txt").write_text("red;green;blue\n")
    sgie_cfg = tmp_path / "sgie.yml"
    sgie_cfg.write_text(f"property:\n  onnx-file: {clf}\n  labelfile-path: colours.txt\n  infer-dims: 3;16;16\n"
                        "  net-scale-factor: 0.00392156862745098\n  network-type: 1\n  process-mode: 2\n"
                        "  classifier-threshold: 0.5\n  backend: onnxruntime\n")
    got = []

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            for f in buffer.batch_meta.frame_items:
                for o in f.object_items:
                    got.append((o.class_id, o.unique_component_id,
                                [c.get_n_label(0) for c in o.classifier_items]))
            return 1

    p = Pipeline("p2")
    p.add("nvurisrcbin", "src", {"uri": clip})
    p.add("nvstreammux", "mux", {"batch-size": 1, "width": 64, "height": 48})
    p.add("nvinfer", "pgie", {"config-file-path": config(tmp_path, model), "unique-id": 3})
    p.add("nvinfer", "sgie", {"config-file-path": str(sgie_cfg), "unique-id": 4, "infer-on-gie-id": 3})
    p.add("appsink", "sink")
    p.link(("src", "mux"), ("vsrc_%u", "sink_%u")).link("mux", "pgie", "sgie", "sink")
    p.attach("sink", pysm.Receiver("r", R()))
    p.start().wait(20)
    assert len(got) == 6
    assert all(g == (1, 3, ["blue"]) for g in got), got


@pytest.mark.parametrize("how", ["property", "config"])
def test_interval_skips_batches_once(tmp_path, how):
    # interval=1 infers every other batch: set as an element property or a config key, it must be
    # applied exactly once (by the engine), not once by the element and again by the engine.
    clip = colour_clip(tmp_path / "red.mp4", frames=8)
    model = infer_models.detector(tmp_path / "tiny.onnx")
    got = Collect()
    cfg = config(tmp_path, model, extra="interval=1" if how == "config" else "")
    kw = {"interval": 1} if how == "property" else {}
    Flow(Pipeline("interval")).batch_capture([clip], width=64, height=48).infer(cfg, **kw).retrieve(got)()
    assert len(got.frames) == 8
    assert [len(objs) for objs in got.frames] == [1, 0] * 4
