"""The nvinfer element over the real InferEngine: decoded 1080p frames -> mux -> nvinfer (YOLOX-Nano,
ONNX Runtime on the CPU) -> probes, with objects on the metadata (needs ../shared/data)."""

from __future__ import annotations

import pysm
from pysm import Pipeline

from test_infer_yolox import yolox_config


def test_nvinfer_element_detects_persons_in_retail_clip(shared_data, tmp_path):
    cfg = yolox_config(tmp_path, shared_data)
    clip = str(shared_data / "retail_1080p30_h264.mp4")
    p = Pipeline("detect")
    for i in range(2):
        p.add("nvurisrcbin", f"cam{i}", {"uri": clip, "num-buffers": 3, "device": "cpu"})
    p.add("nvstreammux", "mux", {"batch-size": 2, "width": 1920, "height": 1080, "batched-push-timeout": 33000})
    p.add("nvinfer", "pgie", {"config-file-path": cfg, "batch-size": 2, "unique-id": 1})
    p.add("appsink", "sink")
    for i in range(2):
        p.link((f"cam{i}", "mux"), ("vsrc_%u", "sink_%u"))
    p.link("mux", "pgie", "sink")
    p.attach("pgie", "measure_fps_probe", "fps", properties={"interval": 60})
    persons = {}

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            for f in buffer.batch_meta.frame_items:
                persons[(f.source_id, f.frame_number)] = sum(
                    1 for o in f.object_items if o.label == "person" and o.unique_component_id == 1)
            return 1

    p.attach("sink", pysm.Receiver("r", R()))
    msgs = []
    p.start(msgs.append).wait(120)
    assert not [m for m in msgs if isinstance(m, pysm.ErrorMessage)]
    assert sorted(persons) == [(s, n) for s in (0, 1) for n in range(3)]
    assert all(2 <= v <= 10 for v in persons.values()), persons
    assert persons[(0, 0)] == persons[(1, 0)]  # same frame, same detections
