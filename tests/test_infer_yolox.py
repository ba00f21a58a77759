"""Real-model checks with YOLOX-Nano from the shared data folder, on ONNX Runtime (CPU):
the golden output bit for bit through InferEngine, dog.jpg at 416 and 640 against the reference
boxes, and persons on the 1080p retail clip (NV12 frames, as a decoder gives them)."""

from __future__ import annotations

import numpy as np
import pytest

import pysm
from pysm._native import _core

pytest.importorskip("onnxruntime")
av = pytest.importorskip("av")

REF_416 = {"dog": (0.807, [133, 207, 326, 542]), "car": (0.804, [466, 77, 690, 171]),
           "bicycle": (0.804, [46, 132, 571, 431])}
REF_640 = {"dog": (0.889, [130, 221, 329, 537]), "bicycle": (0.812, [93, 128, 561, 440]),
           "truck": (0.683, [466, 77, 685, 171])}


def yolox_config(tmp_path, data, model="yolox_nano_416.onnx", size=416, **extra):
    lines = {
        "onnx-file": data / model, "labelfile-path": data / "coco_labels.txt", "backend": "onnxruntime",
        "infer-dims": f"3;{size};{size}", "model-color-format": 1, "net-scale-factor": 1.0,
        "maintain-aspect-ratio": 1, "symmetric-padding": 0, "padding-value": 114, "parse-bbox-func-name": "yolox",
        "num-detected-classes": 80, "cluster-mode": 2, "nms-class-agnostic": 1, "gie-unique-id": 1,
        "scaling-filter": 3,
    }
    lines.update(extra)
    p = tmp_path / "yolox.txt"
    body = "\n".join(f"{k}={v}" for k, v in lines.items())
    p.write_text(f"[property]\n{body}\n[class-attrs-all]\npre-cluster-threshold=0.3\nnms-iou-threshold=0.45\n")
    return str(p)


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def detections(buf, i=0):
    out = []
    for o in _core.infer_buffer_metadata(buf)[i]["objects"]:
        r = o["rect"]
        out.append((o["label"], o["confidence"], [r["left"], r["top"], r["left"] + r["width"], r["top"] + r["height"]]))
    return out


def dog_rgb(data):
    with av.open(str(data / "dog.jpg")) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def check_reference(dets, ref):
    for name, (score, box) in ref.items():
        cands = [d for d in dets if d[0] == name or (name in ("car", "truck") and d[0] in ("car", "truck"))]
        assert cands, f"no {name} in {dets}"
        best = max(cands, key=lambda d: iou(d[2], box))
        assert iou(best[2], box) >= 0.9, (name, best, box)
        if best[0] == name:
            assert abs(best[1] - score) <= 0.03, (name, best[1], score)


def test_golden_output_bit_for_bit(shared_data, tmp_path):
    """The golden input as a 416x416 BGR frame: preprocessing is then the identity, so the
    model output (as tensor output metadata) must equal the golden output exactly."""
    g_in = np.load(shared_data / "dog_yolox416_input_u8.npy")
    g_out = np.load(shared_data / "dog_yolox416_output_f32.npy")
    frame = np.ascontiguousarray(g_in[0].transpose(1, 2, 0))  # BGR HWC
    e = pysm.InferEngine(yolox_config(tmp_path, shared_data, **{"output-tensor-meta": 1, "scaling-filter": 1}))
    e.start()
    buf = _core.infer_buffer_from_arrays([(frame, "BGR")])
    e.process(buf)
    (um,) = _core.infer_buffer_metadata(buf)[0]["user_meta"]
    out = um["layers"]["output"]
    assert out.shape == g_out.shape[1:]
    np.testing.assert_array_equal(out, g_out[0])
    # and the worked check of the README: row 3050 is the dog
    row = out[3050]
    assert np.argmax(row[5:]) == 16 and row[4] * row[5 + 16] == pytest.approx(0.8066, abs=1e-3)


def test_dog_416(shared_data, tmp_path):
    e = pysm.InferEngine(yolox_config(tmp_path, shared_data))
    e.start()
    buf = _core.infer_buffer_from_arrays([(dog_rgb(shared_data), "RGB")])
    e.process(buf)
    dets = detections(buf)
    assert len(dets) == 3, dets
    check_reference(dets, REF_416)


def test_dog_640_dynamic_model(shared_data, tmp_path):
    e = pysm.InferEngine(yolox_config(tmp_path, shared_data, model="yolox_nano_dynamic.onnx", size=640))
    e.start()
    buf = _core.infer_buffer_from_arrays([(dog_rgb(shared_data), "RGB")])
    e.process(buf)
    check_reference(detections(buf), REF_640)


def test_retail_clip_persons(shared_data, tmp_path):
    """About 6 persons per frame on the 1080p retail clip (README: mean 6.0 at 416), from NV12
    frames as the decoder hands them over, batched 4 at a time."""
    frames = []
    with av.open(str(shared_data / "retail_1080p30_h264.mp4")) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i in (30, 150, 300, 450):
                frames.append((f.to_ndarray(format="nv12"), "NV12", 1, 0))  # BT.709 limited
            if len(frames) == 4:
                break
    e = pysm.InferEngine(yolox_config(tmp_path, shared_data, **{"batch-size": 4}))
    e.start()
    buf = _core.infer_buffer_from_arrays(frames)
    e.process(buf)
    persons = [sum(1 for d in detections(buf, i) if d[0] == "person") for i in range(4)]
    assert all(3 <= p <= 9 for p in persons), persons
    assert 4.5 <= np.mean(persons) <= 7.5, persons
