"""InferEngine on Buffers with tiny models of known output: detections in frame coordinates,
labels and drawing defaults, tensor output metadata, secondary classifiers and detectors,
interval, custom parsers, hot reload, and bad input."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

import pysm
from pysm._native import _core
from pysm.errors import InferenceError, StateError
import infer_models

COLOR = (200, 40, 100)


def frame(w=64, h=48, color=COLOR):
    f = np.zeros((h, w, 3), np.uint8)
    f[:] = color
    return f


def objects(buf, i=0):
    meta = _core.infer_buffer_metadata(buf)
    return meta[i]["objects"] if i < len(meta) else []  # a skipped batch has no FrameMeta made for it


def box(o):
    r = o["rect"]
    return [r["left"], r["top"], r["left"] + r["width"], r["top"] + r["height"]]


@pytest.fixture
def tiny(tmp_path):
    return infer_models.detector(tmp_path / "tiny.onnx")


def det_engine(model, **kw):
    props = dict(onnx_file=model, infer_dims="3;32;32", net_scale_factor=1 / 255, parse_bbox_func_name="yolo",
                 num_detected_classes=2, backend="onnxruntime")
    props.update(kw)
    e = pysm.InferEngine(None, name="pgie", **props)
    e.start()
    return e


def test_detections_in_frame_coordinates(tiny, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("redish\nblueish\n")
    e = det_engine(tiny, labelfile_path=str(labels), unique_id=7, batch_size=2)
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB"), (frame(96, 40, COLOR[::-1]), "RGB"), (frame(), "BGR")])
    e.process(buf)
    meta = _core.infer_buffer_metadata(buf)
    assert [f["infer_done"] for f in meta] == [True, True, True]
    # frame 0: anchor 0 box (16,12,10,8) at 32x32 -> x*2, y*1.5 in a 64x48 frame; class 0 = red mean
    (o,) = meta[0]["objects"]
    assert o["class_id"] == 0 and o["label"] == "redish" and o["unique_component_id"] == 7
    assert o["confidence"] == pytest.approx(200 / 255, abs=1e-5)
    assert box(o) == pytest.approx([22, 12, 42, 24], abs=1e-4)
    assert o["detector_bbox"] == o["rect"]
    assert o["object_id"] == 2**64 - 1
    assert o["rect"]["border_width"] == 3 and o["rect"]["border_color"] == (1, 0, 0, 1)
    t = o["text"]
    assert (t["display_text"], t["x_offset"], t["y_offset"], t["font"], t["font_size"], t["set_bg_clr"]) == \
        ("redish", 22, 2, "Serif", 11, True)
    # frame 1: 96x40, blue-dominant -> class 1; x*3, y*1.25
    (o,) = meta[1]["objects"]
    assert o["class_id"] == 1 and o["label"] == "blueish"
    assert box(o) == pytest.approx([33, 10, 63, 20], abs=1e-4)
    # frame 2 holds the same bytes as frame 0 but as BGR: blue is 200, so class 1
    (o,) = meta[2]["objects"]
    assert o["class_id"] == 1 and o["confidence"] == pytest.approx(200 / 255, abs=1e-5)


def test_letterbox_is_undone(tiny):
    # 128x64 frame into 32x32 with symmetric letterbox: scale 4, image rows 8..24 of the input
    e = det_engine(tiny, maintain_aspect_ratio=1, symmetric_padding=1)
    buf = _core.infer_buffer_from_arrays([(frame(128, 64), "RGB")])
    e.process(buf)
    (o,) = objects(buf)
    # network box x 11..21, y 8..16 -> frame x 44..84, y (8-8)*4..(16-8)*4
    assert box(o) == pytest.approx([44, 0, 84, 32], abs=1e-3)


def test_torch_backend_with_module_on_cpu():
    torch = pytest.importorskip("torch")
    e = pysm.InferEngine(None, model=infer_models.torch_detector(), infer_dims="3;32;32", net_scale_factor=1 / 255,
                         parse_bbox_func_name="yolo", num_detected_classes=2, backend="torch", batch_size=3)
    e.start()
    assert e.backend_name == "torch" and e.backend.device == "cpu"
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB")] * 2)
    e.process(buf)
    for i in range(2):
        (o,) = objects(buf, i)
        assert o["class_id"] == 0 and box(o) == pytest.approx([22, 12, 42, 24], abs=1e-4)
    del torch


def test_tensor_output_metadata(tiny):
    e = det_engine(tiny, output_tensor_meta=True, network_type=100, unique_id=4)
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB"), (frame(color=(0, 255, 0)), "RGB")])
    e.process(buf)
    meta = _core.infer_buffer_metadata(buf)
    for f, col in zip(meta, [COLOR, (0, 255, 0)]):
        assert f["objects"] == []  # network-type 100: no parsing
        (um,) = f["user_meta"]
        assert um["meta_type"] == 12 and um["unique_id"] == 4 and um["names"] == ["output"]
        out = um["layers"]["output"]
        r, g, b = (c / 255 for c in col)
        np.testing.assert_allclose(out, [[16, 12, 10, 8, r, b], [8, 8, 4, 4, 0, g]], atol=1e-5)


def test_filter_and_class_attrs(tiny, tmp_path):
    cfg = tmp_path / "c.txt"
    cfg.write_text(f"""[property]
onnx-file={tiny}
infer-dims=3;32;32
net-scale-factor=0.00392156862745098
parse-bbox-func-name=yolo
num-detected-classes=2
backend=onnxruntime
[class-attrs-all]
pre-cluster-threshold=0.1
[class-attrs-1]
border-color=0;0;1;1
bg-color=0.5;0.5;0.5;0.3
""")
    e = pysm.InferEngine(str(cfg))
    e.start()
    buf = _core.infer_buffer_from_arrays([(frame(color=(0, 120, 200)), "RGB")])
    e.process(buf)
    objs = objects(buf)
    # anchor 0 -> class 1 (blue 0.78), anchor 1 -> class 1 (green 0.47); both blue-bordered
    assert sorted(o["class_id"] for o in objs) == [1, 1]
    assert all(o["rect"]["border_color"] == (0, 0, 1, 1) and o["rect"]["has_bg_color"] for o in objs)
    e2 = pysm.InferEngine(str(cfg), filter_out_class_ids="1")
    e2.start()
    buf = _core.infer_buffer_from_arrays([(frame(color=(0, 120, 200)), "RGB")])
    e2.process(buf)
    assert objects(buf) == []


def test_interval_skips_batches(tiny):
    e = det_engine(tiny, interval=2)
    counts = []
    for _ in range(7):
        buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
        e.process(buf)
        counts.append(len(objects(buf)))
    assert counts == [1, 0, 0, 1, 0, 0, 1]


def test_secondary_classifier_on_primary_objects(tmp_path, tiny):
    clf = infer_models.classifier(tmp_path / "clf.onnx")
    labels = tmp_path / "colours.txt"
    labels.write_text("red;green;blue\n")
    # Primary: two objects per frame from a tiny detector, on a frame whose object areas have
    # different colours.
    pgie = det_engine(tiny, unique_id=1)
    f = np.zeros((48, 64, 3), np.uint8)
    f[:] = (220, 10, 10)  # red everywhere -> anchor 0 class 0 at [22,12,42,24]
    f[12:24, 22:42] = (10, 10, 230)  # ... but the object itself is blue
    buf = _core.infer_buffer_from_arrays([(f, "RGB"), (f, "RGB")])
    pgie.process(buf)
    assert [len(objects(buf, i)) for i in range(2)] == [1, 1]
    sgie = pysm.InferEngine(None, name="sgie", onnx_file=clf, infer_dims="3;16;16", net_scale_factor=1 / 255,
                            network_type=1, process_mode=2, infer_on_gie_id=1, unique_id=2,
                            labelfile_path=str(labels), classifier_threshold=0.5, backend="onnxruntime", batch_size=4)
    sgie.start()
    sgie.process(buf)
    for i in range(2):
        (o,) = objects(buf, i)
        (cm,) = o["classifiers"]
        assert cm["unique_component_id"] == 2
        label, cls, prob, layer, ncls = cm["labels"][0]
        assert (label, cls, layer, ncls) == ("blue", 2, 0, 3)
        assert prob == pytest.approx(230 / 255, abs=1e-3)
        assert o["text"]["display_text"].endswith("blue")
    # operate-on-gie-id: objects of another producer are not classified
    other = pysm.InferEngine(None, onnx_file=clf, infer_dims="3;16;16", network_type=1, process_mode=2,
                             infer_on_gie_id=9, backend="onnxruntime")
    other.start()
    other.process(buf)
    assert all(len(objects(buf, i)[0]["classifiers"]) == 1 for i in range(2))


def test_secondary_detector_sets_parent_and_offsets(tiny):
    pgie = det_engine(tiny, unique_id=1)
    buf = _core.infer_buffer_from_arrays([(frame(128, 96), "RGB")])
    pgie.process(buf)
    (parent,) = objects(buf)
    px0, py0, px1, py1 = box(parent)  # [44, 24, 84, 48]
    sgie = det_engine(tiny, process_mode=2, unique_id=5, infer_on_gie_id=1)
    sgie.process(buf)
    objs = objects(buf)
    assert len(objs) == 2
    child = objs[1]
    assert child["parent"] == 0 and child["unique_component_id"] == 5
    # crop 40x24 -> 32x32: x * 1.25, y * 0.75, offset by the parent's corner
    assert box(child) == pytest.approx([px0 + 11 * 1.25, py0 + 8 * 0.75, px0 + 21 * 1.25, py0 + 16 * 0.75], abs=1e-3)


def tracked_frame(k, colour, box=(20, 10, 20, 16), object_ids=(7, None), pad=0):
    """A 64x48 frame numbered k whose objects (ids; None = untracked) cover `box` in `colour`."""
    f = np.full((48, 64, 3), 120, np.uint8)
    x, y, w, h = box
    f[y:y + h, x:x + w] = colour
    return infer_models.buffer_with_objects(f, k, [(oid, box) for oid in object_ids], pad=pad)


def colour_classifier(tmp_path, **kw):
    clf = infer_models.classifier(tmp_path / "clf.onnx")
    labels = tmp_path / "colours.txt"
    labels.write_text("red;green;blue\n")
    e = pysm.InferEngine(None, name="sgie", onnx_file=clf, infer_dims="3;16;16", net_scale_factor=1 / 255,
                         network_type=1, process_mode=2, unique_id=2, labelfile_path=str(labels),
                         classifier_threshold=0.5, backend="onnxruntime", batch_size=4, **kw)
    e.start()
    return e, infer_models.count_runs(e)


def object_labels(buf):
    return [[lab[0] for c in o["classifiers"] for lab in c["labels"]] for o in objects(buf)]


BLUE, RED = (10, 10, 230), (230, 10, 10)


def test_tracked_objects_are_classified_once_per_track(tmp_path):
    e, runs = colour_classifier(tmp_path)
    labels = []
    for k in range(5):
        buf = tracked_frame(k, BLUE if k == 0 else RED)
        e.process(buf)
        labels.append(object_labels(buf))
    # the tracked object keeps its first result (attached again, the model not run on it); the
    # untracked one is classified on every frame
    assert runs == [2, 1, 1, 1, 1]
    assert labels == [[["blue"], ["blue"]]] + [[["blue"], ["red"]]] * 4
    assert len(e._settings["select"]["history"]) == 1
    # the cached result is a copy per frame, with its display text
    buf = tracked_frame(5, RED)
    e.process(buf)
    (tracked, _) = objects(buf)
    assert tracked["classifiers"][0]["unique_component_id"] == 2 and tracked["text"]["display_text"].endswith("blue")


def test_secondary_reinfer_interval_area_growth_and_restart(tmp_path):
    e, runs = colour_classifier(tmp_path, secondary_reinfer_interval=2)
    seen = []
    for k in range(5):  # inferred at 0 and 3 (3 - 0 > 2)
        buf = tracked_frame(k, BLUE if k < 2 else RED, object_ids=(7,))
        e.process(buf)
        seen.append(object_labels(buf)[0])
    assert runs == [1, 1] and seen == [["blue"]] * 3 + [["red"]] * 2
    # a box more than 20 % larger is classified again at once
    buf = tracked_frame(5, BLUE, box=(18, 8, 24, 18), object_ids=(7,))
    e.process(buf)
    assert runs == [1, 1, 1] and object_labels(buf) == [["blue"]]
    # the same id on another source is another object
    buf = tracked_frame(5, RED, box=(18, 8, 24, 18), object_ids=(7,), pad=1)
    e.process(buf)
    assert runs == [1, 1, 1, 1] and object_labels(buf) == [["red"]]
    # frame numbers going back (the source restarted) forget its objects
    buf = tracked_frame(0, RED, box=(18, 8, 24, 18), object_ids=(7,))
    e.process(buf)
    assert runs == [1, 1, 1, 1, 1] and object_labels(buf) == [["red"]]


def test_secondary_detector_reinfer_interval(tmp_path, tiny):
    det = det_engine(tiny, process_mode=2, unique_id=5, infer_on_gie_id=1)
    runs = infer_models.count_runs(det)
    for k in range(3):  # default interval: a secondary detector runs on every frame
        det.process(tracked_frame(k, BLUE, object_ids=(7,)))
    assert runs == [1, 1, 1]
    det2 = det_engine(tiny, process_mode=2, unique_id=5, infer_on_gie_id=1, secondary_reinfer_interval=1)
    counts = []
    for k in range(4):
        buf = tracked_frame(k, BLUE, object_ids=(7,))
        det2.process(buf)
        counts.append(len(objects(buf)) - 1)  # children found
    assert counts == [1, 0, 1, 0]
    with pytest.raises(pysm.errors.ConfigError, match="secondary-reinfer-interval"):
        det_engine(tiny, process_mode=2, secondary_reinfer_interval=-1)


def test_empty_secondary_is_a_noop(tmp_path):
    clf = infer_models.classifier(tmp_path / "clf.onnx")
    sgie = pysm.InferEngine(None, onnx_file=clf, infer_dims="3;16;16", network_type=1, process_mode=2,
                            backend="onnxruntime")
    sgie.start()
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
    sgie.process(buf)
    meta = _core.infer_buffer_metadata(buf)
    assert meta[0]["objects"] == [] and meta[0]["user_meta"] == []


def test_custom_python_parser(tiny, tmp_path, monkeypatch):
    mod = tmp_path / "my_parsers.py"
    mod.write_text("""
import numpy as np
calls = []
def parse(outputs, info):
    calls.append((sorted(outputs), info.batch_size, info.network_width))
    out = np.from_dlpack(outputs["output"])
    rows = []
    for item in out:
        cx, cy, w, h = item[0, :4]
        rows.append([(3, 0.9, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2),
                     (3, 0.8, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)])  # a duplicate for NMS
    return rows
def boom(outputs, info):
    raise RuntimeError("parser exploded")
""")
    monkeypatch.syspath_prepend(str(tmp_path))
    e = det_engine(tiny, parse_bbox_func_name="my_parsers:parse", batch_size=2)
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB")] * 3)
    e.process(buf)
    import my_parsers

    assert my_parsers.calls == [(["output"], 2, 32), (["output"], 1, 32)]
    for i in range(3):
        (o,) = objects(buf, i)
        assert o["class_id"] == 3 and o["confidence"] == pytest.approx(0.9)
        assert box(o) == pytest.approx([22, 12, 42, 24], abs=1e-4)
    bad = det_engine(tiny, parse_bbox_func_name="my_parsers:boom")
    with pytest.raises(InferenceError) as ei:
        bad.process(_core.infer_buffer_from_arrays([(frame(), "RGB")]))
    msg = str(ei.value)
    assert "my_parsers:boom" in msg and "parser exploded" in msg and "Traceback" in msg


@pytest.mark.parametrize("mode,expect", [(1, 1), (3, 1), (2, 2), (4, 4)])
def test_cluster_modes_from_a_config_file(tiny, tmp_path, monkeypatch, mode, expect):
    """cluster-mode and the DBSCAN keys of [class-attrs-all] reach the clustering: three
    overlapping boxes and a lone one -> DBSCAN keeps one merged box, the hybrid the best member,
    NMS the best of the three and the lone box, none all four."""
    mod = tmp_path / "cluster_parsers.py"
    mod.write_text("""
def parse(outputs, info):
    return [[(0, 0.9, 4, 4, 20, 28), (0, 0.6, 5, 3, 21, 27), (0, 0.3, 3, 5, 19, 29), (0, 0.95, 26, 26, 30, 30)]
            for _ in range(info.batch_size)]
""")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = tmp_path / "pgie.txt"
    cfg.write_text(f"[property]\ncluster-mode={mode}\n[class-attrs-all]\npre-cluster-threshold=0.1\n"
                   "nms-iou-threshold=0.5\neps=0.3\nminBoxes=2\n")
    e = pysm.InferEngine(str(cfg), name="pgie", onnx_file=tiny, infer_dims="3;32;32", num_detected_classes=1,
                         parse_bbox_func_name="cluster_parsers:parse", backend="onnxruntime")
    e.start()
    buf = _core.infer_buffer_from_arrays([(frame(32, 32), "RGB")])
    e.process(buf)
    objs = objects(buf)
    assert len(objs) == expect
    if mode == 1:
        w = np.array([0.9, 0.6, 0.3])
        mean = (np.array([[4, 4, 20, 28], [5, 3, 21, 27], [3, 5, 19, 29]]) * w[:, None]).sum(0) / w.sum()
        assert box(objs[0]) == pytest.approx(mean, abs=1e-3) and objs[0]["confidence"] == pytest.approx(0.9)
    if mode == 3:
        assert box(objs[0]) == pytest.approx([4, 4, 20, 28]) and objs[0]["confidence"] == pytest.approx(0.9)


def test_nan_outputs_are_dropped(tmp_path):
    m = infer_models.detector(tmp_path / "nan.onnx", nan_anchor1=True)
    e = det_engine(m)
    buf = _core.infer_buffer_from_arrays([(frame(color=(200, 250, 100)), "RGB")])
    e.process(buf)
    objs = objects(buf)
    # anchor 1 (green 0.98, would win) has a NaN box: only anchor 0 remains
    assert len(objs) == 1 and objs[0]["class_id"] == 0
    assert all(np.isfinite(box(o)).all() for o in objs)


def test_model_shape_contradicting_config(tiny):
    e = pysm.InferEngine(None, onnx_file=tiny, infer_dims="3;64;48", backend="onnxruntime")
    with pytest.raises(InferenceError) as ei:
        e.start()
    msg = str(ei.value)
    assert "[?, 3, 32, 32]" in msg and "[?, 3, 64, 48]" in msg
    m = infer_models.detector(tiny.replace("tiny", "tiny_gray"))
    e = pysm.InferEngine(None, onnx_file=m, infer_dims="1;32;32", model_color_format=2, backend="onnxruntime")
    with pytest.raises(InferenceError, match="3;32;32|1;32;32"):
        e.start()


def test_state_errors_and_missing_model(tmp_path, tiny):
    e = pysm.InferEngine(None, onnx_file=tiny, infer_dims="3;32;32", backend="onnxruntime")
    with pytest.raises(StateError):
        e.process(_core.infer_buffer_from_arrays([(frame(), "RGB")]))
    with pytest.raises(StateError):
        e.reload()
    e = pysm.InferEngine(None, onnx_file=str(tmp_path / "gone.onnx"))
    with pytest.raises(pysm.errors.ModelNotFoundError, match="gone.onnx"):
        e.start()


def test_hot_reload(tmp_path):
    path = tmp_path / "live.onnx"
    infer_models.detector(path, box0=(16, 12, 10, 8))
    e = det_engine(str(path))
    seen = []
    e.on_model_updated(seen.append)
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
    e.process(buf)
    assert box(objects(buf)[0]) == pytest.approx([22, 12, 42, 24], abs=1e-4)
    infer_models.detector(tmp_path / "next.onnx", box0=(8, 8, 8, 8))
    e.reload(str(tmp_path / "next.onnx"))
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
    e.process(buf)
    assert box(objects(buf)[0]) == pytest.approx([8, 6, 24, 18], abs=1e-4)
    assert seen == [str(tmp_path / "next.onnx")]
    # a model with another input is refused and the running one stays
    infer_models.detector(tmp_path / "big.onnx", size=64)
    with pytest.raises(InferenceError, match=r"\[\?, 3, 64, 64\].*\[\?, 3, 32, 32\]"):
        e.reload(str(tmp_path / "big.onnx"))
    buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
    e.process(buf)
    assert box(objects(buf)[0]) == pytest.approx([8, 6, 24, 18], abs=1e-4)


def test_engine_file_monitor_swaps_on_change(tmp_path):
    path = tmp_path / "watched.onnx"
    infer_models.detector(path, box0=(16, 12, 10, 8))
    e = det_engine(str(path))
    errors = []
    mon = pysm.utils.EngineFileMonitor(e, str(path), interval=0.05, on_error=errors.append).start()
    try:
        assert mon.started
        infer_models.detector(tmp_path / "staged.onnx", box0=(8, 8, 8, 8))
        time.sleep(0.1)
        shutil.copyfile(tmp_path / "staged.onnx", path)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # be sure the mtime moves
        deadline = time.time() + 10
        while mon.reloads == 0 and time.time() < deadline and not errors:
            # keep processing while the swap happens: no batch may fail
            buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
            e.process(buf)
            assert len(objects(buf)) == 1
            time.sleep(0.02)
        assert not errors and mon.reloads == 1
        buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
        e.process(buf)
        assert box(objects(buf)[0]) == pytest.approx([8, 6, 24, 18], abs=1e-4)
        # a broken file is reported and the running model stays
        path.write_bytes(b"not a model")
        deadline = time.time() + 10
        while not errors and time.time() < deadline:
            time.sleep(0.02)
        assert errors and mon.reloads == 1
        buf = _core.infer_buffer_from_arrays([(frame(), "RGB")])
        e.process(buf)
        assert len(objects(buf)) == 1
    finally:
        mon.stop()
    assert not mon.started


def test_submit_then_finish_attaches_like_process(tiny):
    """The split the nvinfer element uses to overlap batches: two batches submitted before
    either is finished get the same objects as process()."""
    e = det_engine(tiny, batch_size=2)
    bufs = [_core.infer_buffer_from_arrays([(frame(), "RGB")] * 3) for _ in range(3)]
    e.process(bufs[0])
    t1, t2 = e.submit(bufs[1]), e.submit(bufs[2])
    assert objects(bufs[1]) == []  # nothing attached before finish()
    e.finish(t1)
    e.finish(t2)
    for b in bufs[1:]:
        for i in range(3):
            assert objects(b, i) == objects(bufs[0], i) and len(objects(b, i)) == 1
    e.finish(t1)  # finishing twice is a no-op
    assert e.submit(_core.infer_buffer_from_arrays([])) is None  # no frames: nothing to finish


def test_segmentation_network_attaches_class_maps(tmp_path):
    """network-type=2: the best class per pixel, -1 under segmentation-threshold, probabilities
    kept; readable through the public SegmentationUserMetadata."""
    model = infer_models.segmenter(tmp_path / "seg.onnx")
    f = np.zeros((8, 16, 3), np.uint8)
    f[:, :8] = (255, 0, 0)     # class 0
    f[:, 8:] = (0, 40, 200)    # class 2
    f[2:4, 2:4] = (50, 60, 40)  # strongest channel 60/255 < 0.5: no class
    e = pysm.InferEngine(None, onnx_file=model, infer_dims="3;8;16", net_scale_factor=1 / 255, network_type=2,
                         segmentation_threshold=0.5, backend="onnxruntime", unique_id=7, batch_size=2)
    e.start()
    buf = _core.infer_buffer_from_arrays([(f, "RGB"), (f[:, ::-1].copy(), "RGB")])
    e.process(buf)
    meta = _core.infer_buffer_metadata(buf)
    want = np.full((8, 16), 2, np.int32)
    want[:, :8] = 0
    want[2:4, 2:4] = -1
    for i, expect in enumerate((want, want[:, ::-1])):
        (seg,) = meta[i]["user_meta"]
        assert seg["meta_type"] == 13 and seg["unique_id"] == 7 and seg["classes"] == 3
        np.testing.assert_array_equal(seg["class_map"], expect)
    frame_meta = next(iter(buf.batch_meta.frame_items))
    (sm,) = list(frame_meta.segmentation_items)
    assert (sm.width, sm.height, sm.classes) == (16, 8, 3)
    np.testing.assert_array_equal(sm.class_map, want)
    probs = sm.class_probabilities_map
    assert probs.shape == (8, 16, 3)
    np.testing.assert_allclose(probs[0, 0], [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(probs[0, 15], [0.0, 40 / 255, 200 / 255], atol=1e-6)


def test_segmentation_output_order_nhwc_and_bad_outputs(tmp_path):
    from pysm.infer.config import load_config

    cfg = load_config(None, {"onnx-file": infer_models.segmenter(tmp_path / "s.onnx"), "network-type": 2,
                             "segmentation-output-order": 1})
    assert cfg.segmentation_output_order == 1
    with pytest.raises(pysm.ConfigError, match="segmentation-output-order"):
        load_config(None, {"onnx-file": str(tmp_path / "s.onnx"), "segmentation-output-order": 3})
    # A classifier-shaped output given to a segmentation network: a clear error, no crash.
    e = pysm.InferEngine(None, onnx_file=infer_models.classifier(tmp_path / "c.onnx"), infer_dims="3;16;16",
                         network_type=2, backend="onnxruntime")
    e.start()
    with pytest.raises(pysm.InferenceError, match="segmentation"):
        e.process(_core.infer_buffer_from_arrays([(frame(16, 16), "RGB")]))
