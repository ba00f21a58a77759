"""Metadata views: create/read/update/delete, every field, vectorised accessors, classifier,
display and user metadata, event messages, lifetime after release, threads."""

from __future__ import annotations

import datetime as dt
import gc
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import pysm
from pysm import osd
from pysm.errors import ExpiredViewError, InvalidArgument
from pysm.metadata import (
    UNTRACKED_OBJECT_ID,
    BatchMetadata,
    Buffer,
    ClassifierMetadata,
    DisplayMetadata,
    EventMessageUserMetadata,
    EventType,
    FrameMetadata,
    ObjectMetadata,
    ObjectType,
    SegmentationUserMetadata,
    TensorOutputUserMetadata,
    UserMetadata,
    UserMetaType,
)

FRAME_FIELDS = dict(frame_number=41, pad_index=2, batch_id=1, source_id=7, source_width=1920,
                    source_height=1080, pipeline_width=960, pipeline_height=540,
                    buffer_pts=1_700_000_000_123_000_000, ntp_timestamp=1_700_000_000_456_000_000)


def make_batch(n_frames=1, **fields):
    """A Buffer whose batch holds `n_frames` frames (pad_index = index unless given)."""
    buf = Buffer()
    bm = buf.batch_meta
    for i in range(n_frames):
        f = dict(fields)
        f.setdefault("pad_index", i)
        f.setdefault("batch_id", i)
        bm.append(bm.acquire_frame_meta(**f))
    return buf, bm


def add_object(bm, frame, **fields):
    o = bm.acquire_object_meta()
    for k, v in fields.items():
        setattr(o, k, v)
    frame.append(o)
    return o


def first_frame(bm) -> FrameMetadata:
    return next(iter(bm.frame_items))


# ---- public names -----------------------------------------------------------------------------

def test_top_level_names_resolve_to_metadata_module():
    assert pysm.Buffer is Buffer
    assert pysm.BatchMetadata is BatchMetadata and pysm.FrameMetadata is FrameMetadata
    assert pysm.ObjectMetadata is ObjectMetadata and pysm.ClassifierMetadata is ClassifierMetadata
    assert pysm.DisplayMetadata is DisplayMetadata and pysm.UserMetadata is UserMetadata
    assert pysm.TensorOutputUserMetadata is TensorOutputUserMetadata
    assert pysm.EventMessageUserMetadata is EventMessageUserMetadata
    assert pysm.osd is osd


def test_views_cannot_be_constructed_directly():
    for cls in (BatchMetadata, FrameMetadata, ObjectMetadata, ClassifierMetadata, DisplayMetadata,
                UserMetadata):
        with pytest.raises(TypeError):
            cls()


# ---- frames -----------------------------------------------------------------------------------

def test_frame_fields_round_trip_and_are_read_only():
    buf, bm = make_batch(1, **FRAME_FIELDS)
    assert bm.n_frames == 1 and bm.is_audio is False
    f = first_frame(bm)
    for k, v in FRAME_FIELDS.items():
        assert getattr(f, k) == v, k
    for k in FRAME_FIELDS:
        with pytest.raises(AttributeError):
            setattr(f, k, 1)
    assert not hasattr(f, "timestamp")


def test_acquire_frame_meta_rejects_unknown_fields():
    buf = Buffer()
    with pytest.raises(InvalidArgument, match="unknown field"):
        buf.batch_meta.acquire_frame_meta(width=3)


def test_frame_items_is_a_single_pass_iterator():
    buf, bm = make_batch(3)
    it = bm.frame_items
    assert [f.pad_index for f in it] == [0, 1, 2]
    assert list(it) == []  # exhausted
    assert [f.pad_index for f in bm.frame_items] == [0, 1, 2]  # a new one starts over
    with pytest.raises(TypeError):
        len(bm.frame_items)


# ---- objects: create, read, update, delete -----------------------------------------------------

def test_object_crud_through_views():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    obj = bm.acquire_object_meta()
    assert obj.object_id == UNTRACKED_OBJECT_ID == 2**64 - 1
    obj.class_id = 2
    obj.label = "person"
    obj.rect_params = osd.Rect(10, 20, 30, 40)
    frame.append(obj)

    (read,) = list(frame.object_items)
    assert read == obj
    assert (read.class_id, read.label) == (2, "person")
    assert (read.rect_params.left, read.rect_params.top, read.rect_params.width, read.rect_params.height) == (
        10, 20, 30, 40)

    read.rect_params.left = 11  # a bound view: writes go to the object
    read.confidence = 0.5
    assert obj.rect_params.left == 11 and obj.confidence == 0.5

    frame.remove(obj)
    assert list(frame.object_items) == []
    assert frame.n_objects == 0
    for view in (obj, read):
        with pytest.raises(ReferenceError):
            view.class_id
    with pytest.raises(ExpiredViewError):
        frame.remove(obj)


def test_every_object_field_round_trips():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    o = add_object(bm, frame)
    o.class_id = 5
    o.object_id = 123456789012345
    o.unique_component_id = 3
    o.confidence = 0.75
    o.tracker_confidence = 0.25
    o.label = "vehicle"
    o.rect_params = osd.Rect(1, 2, 3, 4, rotation_angle=10, border_width=6,
                             border_color=osd.Color(0, 1, 0, 1), bg_color=osd.Color(0, 0, 0, 0.5))
    mask = np.random.default_rng(3).random((4, 3), dtype=np.float32)
    o.mask_params = osd.Mask(mask, threshold=0.4)
    tp = osd.TextParams("vehicle 0.75", 1, -10)
    tp.font_params = osd.Font(size=11, color=osd.Color(1, 1, 1, 1))
    tp.set_bg_clr = True
    o.text_params = tp
    o.detector_bbox_info = {"left": 1.0, "top": 2.0, "width": 3.0, "height": 4.0}
    o.tracker_bbox_info = {"left": 5.0, "top": 6.0, "width": 7.0, "height": 8.0}
    o.nv_bbox_info = {"left": 9.0, "top": 10.0, "width": 11.0, "height": 12.0}

    (r,) = list(frame.object_items)
    assert (r.class_id, r.object_id, r.unique_component_id) == (5, 123456789012345, 3)
    assert r.confidence == pytest.approx(0.75) and r.tracker_confidence == pytest.approx(0.25)
    assert r.label == "vehicle"
    rp = r.rect_params
    assert (rp.left, rp.top, rp.width, rp.height, rp.rotation_angle, rp.border_width) == (1, 2, 3, 4, 10, 6)
    assert rp.border_color == osd.Color(0, 1, 0, 1) and rp.has_bg_color and rp.bg_color.a == 0.5
    np.testing.assert_array_equal(r.mask_params.mask_array, mask)
    assert r.mask_params.threshold == pytest.approx(0.4)
    assert r.text_params.display_text == "vehicle 0.75"
    assert (r.text_params.x_offset, r.text_params.y_offset) == (1, -10)
    assert r.text_params.font_params.size == 11 and r.text_params.set_bg_clr
    assert r.detector_bbox_info == {"left": 1.0, "top": 2.0, "width": 3.0, "height": 4.0}
    assert r.tracker_bbox_info == {"left": 5.0, "top": 6.0, "width": 7.0, "height": 8.0}
    assert r.nv_bbox_info == {"left": 9.0, "top": 10.0, "width": 11.0, "height": 12.0}

    # bound nested values write through
    r.rect_params.border_color.r = 1.0
    r.text_params.font_params.color.g = 0.0
    r.mask_params.threshold = 0.9
    assert o.rect_params.border_color.r == 1.0
    assert o.text_params.font_params.color.g == 0.0
    assert o.mask_params.threshold == pytest.approx(0.9)

    with pytest.raises(InvalidArgument):
        o.detector_bbox_info = {"left": 1}
    with pytest.raises(TypeError):
        o.rect_params = (1, 2, 3, 4)
    with pytest.raises(OverflowError):
        o.object_id = -1


def test_parent_link():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    car = add_object(bm, frame, label="car")
    plate = add_object(bm, frame, label="plate")
    assert plate.parent is None
    plate.parent = car
    assert plate.parent == car and plate.parent.label == "car"
    with pytest.raises(InvalidArgument):
        car.parent = car
    with pytest.raises(TypeError):
        car.parent = "car"
    frame.remove(car)
    assert plate.parent is None  # the parent is gone; the child stays valid
    plate.parent = None
    assert plate.label == "plate"


def test_append_rules():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    o = add_object(bm, frame)
    with pytest.raises(ValueError, match="already appended"):
        frame.append(o)
    other_buf, other_bm = make_batch(1)
    foreign = other_bm.acquire_object_meta()
    with pytest.raises(ValueError, match="not acquired from this batch"):
        frame.append(foreign)
    with pytest.raises(TypeError):
        frame.append(42)
    with pytest.raises(TypeError):
        bm.append(o)
    with pytest.raises(TypeError):
        o.append(o)


def test_acquired_but_not_appended_lives_with_the_batch():
    buf, bm = make_batch(1)
    o = bm.acquire_object_meta()
    o.label = "kept"
    gc.collect()
    assert o.label == "kept"
    del buf, bm
    gc.collect()
    with pytest.raises(ReferenceError):
        o.label


# ---- vectorised accessors ----------------------------------------------------------------------

def test_vectorised_accessors_equal_per_object_reads():
    rng = np.random.default_rng(1234)
    n = 1000
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    boxes = rng.uniform(0, 1000, size=(n, 4)).astype(np.float32)
    cls = rng.integers(-5, 80, size=n, dtype=np.int32)
    conf = rng.random(n, dtype=np.float32)
    tconf = rng.random(n, dtype=np.float32)
    oid = rng.integers(0, 2**63, size=n, dtype=np.uint64)
    oid[::7] = UNTRACKED_OBJECT_ID
    uid = rng.integers(1, 9, size=n, dtype=np.int32)
    for i in range(n):
        o = bm.acquire_object_meta()
        o.rect_params = osd.Rect(*boxes[i].tolist())
        o.class_id = int(cls[i])
        o.confidence = float(conf[i])
        o.tracker_confidence = float(tconf[i])
        o.object_id = int(oid[i])
        o.unique_component_id = int(uid[i])
        frame.append(o)

    per_object = list(frame.object_items)
    ltwh = frame.boxes()
    assert ltwh.dtype == np.float32 and ltwh.shape == (n, 4)
    expect = np.array([[o.rect_params.left, o.rect_params.top, o.rect_params.width, o.rect_params.height]
                       for o in per_object], dtype=np.float32)
    np.testing.assert_array_equal(ltwh, expect)
    np.testing.assert_array_equal(ltwh, boxes)
    xyxy = frame.boxes("xyxy")
    np.testing.assert_allclose(xyxy, np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1),
                               rtol=1e-6)

    assert frame.class_ids().dtype == np.int32
    np.testing.assert_array_equal(frame.class_ids(), [o.class_id for o in per_object])
    np.testing.assert_array_equal(frame.confidences(), np.array([o.confidence for o in per_object], np.float32))
    np.testing.assert_array_equal(frame.tracker_confidences(),
                                  np.array([o.tracker_confidence for o in per_object], np.float32))
    assert frame.object_ids().dtype == np.uint64
    np.testing.assert_array_equal(frame.object_ids(), np.array([o.object_id for o in per_object], np.uint64))
    np.testing.assert_array_equal(frame.unique_component_ids(), [o.unique_component_id for o in per_object])

    cols = frame.object_arrays()
    assert set(cols) == {"boxes", "class_ids", "confidences", "tracker_confidences", "object_ids",
                         "unique_component_ids"}
    np.testing.assert_array_equal(cols["boxes"], ltwh)
    np.testing.assert_array_equal(cols["object_ids"], oid)
    assert frame.n_objects == n


def test_vectorised_accessors_on_empty_frame_and_bad_args():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    assert frame.boxes().shape == (0, 4)
    assert frame.class_ids().shape == (0,)
    assert frame.object_ids().dtype == np.uint64
    with pytest.raises(ValueError):
        frame.boxes("cxcywh")
    with pytest.raises(ValueError):
        frame.object_arrays(columns=["nope"])


# ---- classifier metadata -----------------------------------------------------------------------

def test_classifier_metadata():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    o = add_object(bm, frame, label="car")
    c = bm.acquire_classifier_meta()
    c.unique_component_id = 5
    c.classifier_type = 1
    c.add_label("red", class_id=3, prob=0.8, num_classes=12)
    c.add_label(b"blue", class_id=4, prob=0.1, label_id=9)
    o.append(c)
    (r,) = list(o.classifier_items)
    assert (r.n_labels, r.unique_component_id, r.classifier_type) == (2, 5, 1)
    assert r.get_n_label(0) == "red" and r.get_n_label(1) == "blue"
    info = r.get_label_info(0)
    assert (info.label, info.class_id, info.label_id, info.num_classes) == ("red", 3, 0, 12)
    assert info.prob == pytest.approx(0.8)
    assert r.get_label_info(1).label_id == 9
    with pytest.raises(IndexError):
        r.get_n_label(2)
    with pytest.raises(IndexError):
        r.get_label_info(-1)
    o.remove(c)
    assert list(o.classifier_items) == []
    with pytest.raises(ReferenceError):
        r.n_labels


# ---- display metadata --------------------------------------------------------------------------

def test_display_metadata_add_and_read_back():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    d = bm.acquire_display_meta()
    t = osd.Text()
    t.display_text = "Count: 4".encode("ascii")
    t.x_offset, t.y_offset = 5, 6
    d.add_text(t)
    d.add_rect(osd.Rect(1, 2, 3, 4))
    d.add_line(osd.Line(0, 0, 10, 10, width=2))
    d.add_arrow(osd.Arrow(1, 1, 5, 5, head=osd.ArrowHead.Start))
    d.add_circle(osd.Circle(30, 30, 5))
    assert (d.n_labels, d.n_rects, d.n_lines, d.n_arrows, d.n_circles) == (1, 1, 1, 1, 1)
    frame.append(d)
    (r,) = list(frame.display_items)
    assert r.texts[0].display_text == "Count: 4" and r.texts[0].x_offset == 5
    assert r.rects[0].width == 3
    assert r.lines[0].x2 == 10 and r.lines[0].width == 2
    assert r.arrows[0].head is osd.ArrowHead.Start
    assert r.circles[0].radius == 5
    t.display_text = "changed"  # add_text copied it
    assert r.texts[0].display_text == "Count: 4"
    with pytest.raises(TypeError):
        d.add_rect(osd.Line())
    with pytest.raises(TypeError):
        d.add_text("plain string")


@pytest.mark.parametrize("kind", ["text", "rect", "line", "arrow", "circle"])
def test_display_metadata_caps_each_kind_at_16(kind):
    buf, bm = make_batch(1)
    d = bm.acquire_display_meta()
    make = {"text": osd.Text, "rect": osd.Rect, "line": osd.Line, "arrow": osd.Arrow, "circle": osd.Circle}[kind]
    add = getattr(d, f"add_{kind}")
    for _ in range(16):
        add(make())
    with pytest.raises(IndexError, match="at most 16.*acquire another DisplayMetadata"):
        add(make())
    count = {"text": d.n_labels, "rect": d.n_rects, "line": d.n_lines, "arrow": d.n_arrows,
             "circle": d.n_circles}[kind]
    assert count == 16


# ---- user metadata -----------------------------------------------------------------------------

def test_user_meta_json_round_trip_and_items():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    u = bm.acquire_user_meta()
    assert bool(u) and u.get_user_data_json() is None
    payload = {"zone": "A", "count": 3, "ids": [1, 2, 3], "nested": {"ok": True}}
    u.set_user_data_json(payload, 4242)
    assert u.meta_type == 4242
    frame.append(u)
    other = bm.acquire_user_meta()
    other.set_user_data_json([1, 2], 7)
    frame.append(other)
    items = list(frame.user_meta_items(4242))
    assert len(items) == 1 and items[0].get_user_data_json() == payload
    assert [x.get_user_data_json() for x in frame.user_meta_items(7)] == [[1, 2]]
    assert list(frame.user_meta_items(99)) == []
    u.meta_type = 99
    assert len(list(frame.user_meta_items(99))) == 1
    # casts do not match JSON data
    assert u.as_tensor_output() is None and u.as_segmentation() is None and u.as_event_message() is None
    assert u.as_preprocess_batch() is None and u.as_obj_reid() is None and u.as_structure_str() == ""
    with pytest.raises(TypeError):
        u.set_user_data_json({1, 2}, 1)  # not JSON-serialisable
    # batch and object level
    bu = bm.acquire_user_meta()
    bu.set_user_data_json("batch", 5)
    bm.append(bu)
    assert [x.get_user_data_json() for x in bm.user_meta_items(5)] == ["batch"]
    o = add_object(bm, frame)
    ou = bm.acquire_user_meta()
    ou.set_user_data_json(1.5, 6)
    o.append(ou)
    assert [x.get_user_data_json() for x in o.user_meta_items(6)] == [1.5]
    frame.remove(other)
    assert not other
    with pytest.raises(ReferenceError):
        other.meta_type


def test_tensor_output_meta_layers_and_cast():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    t = bm.acquire_tensor_output_meta(unique_id=1)
    assert isinstance(t, TensorOutputUserMetadata)
    assert t.meta_type == UserMetaType.TENSOR_OUTPUT
    data = Buffer(bytes(range(24)))
    layer = data.extract(0)
    t.set_layer("output_bbox", layer)
    t.set_layer("output_cov", Buffer(b"\x01\x02").extract(0))
    frame.append(t)
    (item,) = list(frame.tensor_items)
    assert item.unique_id == 1
    layers = item.get_layers()
    assert list(layers) == ["output_bbox", "output_cov"]
    assert layers["output_bbox"].shape == (1, 24) and layers["output_cov"].shape == (1, 2)
    as_user = next(frame.user_meta_items(UserMetaType.TENSOR_OUTPUT))
    assert as_user.as_tensor_output() == item
    assert as_user.as_segmentation() is None
    assert as_user.get_user_data_json() is None
    with pytest.raises(InvalidArgument):
        as_user.set_user_data_json({}, 1)
    # a user meta that merely claims meta_type 12 is not a tensor output
    fake = bm.acquire_user_meta()
    fake.set_user_data_json({}, UserMetaType.TENSOR_OUTPUT)
    frame.append(fake)
    assert len(list(frame.tensor_items)) == 1
    del data
    gc.collect()
    assert item.get_layers()["output_bbox"].shape == (1, 24)  # the meta keeps the tensors alive


def test_segmentation_meta_and_extract():
    rng = np.random.default_rng(5)
    buf, bm = make_batch(2, pipeline_width=8, pipeline_height=6, buffer_pts=99)
    frames = list(bm.frame_items)
    seg = bm.acquire_segmentation_meta()
    cmap = rng.integers(-1, 4, size=(6, 8), dtype=np.int32)
    probs = rng.random((6, 8, 4), dtype=np.float32)
    seg.set(cmap, probs, unique_id=3)
    frames[1].append(seg)
    (s,) = list(frames[1].segmentation_items)
    assert isinstance(s, SegmentationUserMetadata)
    assert (s.unique_id, s.classes, s.width, s.height) == (3, 4, 8, 6)
    np.testing.assert_array_equal(s.class_map, cmap)
    np.testing.assert_array_equal(s.class_probabilities_map, probs)
    with pytest.raises(InvalidArgument):
        seg.set(cmap, probs[:, :4])

    o = add_object(bm, frames[0], label="car", confidence=0.5)
    o.rect_params = osd.Rect(1.7, 2.2, 3.9, 4.1)
    o.mask_params = osd.Mask(np.array([[0.0, 1.0], [2.0, 3.9]], np.float32))
    c = bm.acquire_classifier_meta()
    c.add_label("red")
    c.add_label("sedan")
    o.append(c)
    o2 = add_object(bm, frames[0], object_id=17)

    out = bm.extract(3)
    assert len(out) == 3 and out[2] is None
    f0, f1 = out[0], out[1]
    assert f0["shape"] == [6, 8] and f0["timestamp"] == 99
    assert f0["bboxes"] == [[1, 2, 1 + 3, 2 + 4], [0, 0, 0, 0]]
    assert f0["probs"] == pytest.approx([0.5, 0.0])
    assert f0["labels"] == [["car", "red", "sedan"], []]
    assert f0["objects"] == [-1, 17]
    assert len(f0["seg_maps"]) == 1
    np.testing.assert_array_equal(f0["seg_maps"][0], [[0, 1], [2, 3]])
    assert f1["bboxes"] == [] and f1["shape"] == [6, 8]
    np.testing.assert_array_equal(f1["seg_maps"][0], cmap)
    assert o2.object_id == 17
    assert bm.extract(1)[0] is not None and len(bm.extract(1)) == 1  # pad 1 is beyond max_items


# ---- event messages ----------------------------------------------------------------------------

def _event_setup(**frame_fields):
    fields = dict(FRAME_FIELDS)
    fields.update(frame_fields)
    buf, bm = make_batch(1, **fields)
    frame = first_frame(bm)
    return buf, bm, frame


def test_event_message_generate_rules_for_a_car():
    buf, bm, frame = _event_setup()
    car = add_object(bm, frame, class_id=0, label="car", confidence=0.8, object_id=55)
    car.rect_params = osd.Rect(100, 50, 40, 20)
    for uid, label in ((4, "sedan"), (5, "blue"), (6, "bmw"), (9, "ignored")):
        c = bm.acquire_classifier_meta()
        c.unique_component_id = uid
        c.add_label(label)
        car.append(c)
    ev = bm.acquire_event_message_meta()
    assert isinstance(ev, EventMessageUserMetadata) and ev.meta_type == UserMetaType.EVENT_MESSAGE
    before = dt.datetime.now(dt.timezone.utc)
    ev.generate(car, frame, sensor="cam-1", uri="rtsp://x/1")
    after = dt.datetime.now(dt.timezone.utc)
    frame.append(ev)
    # bbox scaled from pipeline (960x540) to source (1920x1080)
    assert ev.bbox == {"left": 200.0, "top": 100.0, "width": 80.0, "height": 40.0}
    assert ev.frame_id == 41 and ev.tracking_id == 55 and ev.confidence == pytest.approx(0.8)
    assert ev.sensor_id == ev.place_id == ev.module_id == 7
    assert ev.sensor_str == "cam-1" and ev.object_id == "car" and ev.uri == "rtsp://x/1"
    assert ev.event_type == EventType.MOVING and ev.obj_type == ObjectType.VEHICLE and ev.obj_class_id == 0
    assert ev.ext == {"type": "sedan", "color": "blue", "make": "bmw"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ev.ts)
    ts = dt.datetime.strptime(ev.ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    assert before - dt.timedelta(milliseconds=2) <= ts <= after
    assert [e.as_event_message() for e in frame.user_meta_items(UserMetaType.EVENT_MESSAGE)] == [ev]


def test_event_message_default_and_custom_class_maps():
    buf, bm, frame = _event_setup()
    person = add_object(bm, frame, class_id=2, label="person")
    ev = bm.acquire_event_message_meta()
    ev.generate(person, frame)
    assert ev.sensor_str == "N/A" and ev.uri == "N/A"
    assert (ev.event_type, ev.obj_type, ev.obj_class_id) == (EventType.ENTRY, ObjectType.PERSON, 2)
    assert ev.ext == {}

    labels = ["dog", "face", "bag", "bg"]
    expect = {0: ObjectType.UNKNOWN, 1: ObjectType.FACE, 2: ObjectType.BAG, 3: ObjectType.BAG}
    for cls, obj_type in expect.items():
        o = add_object(bm, frame, class_id=cls, label=labels[cls])
        e = bm.acquire_event_message_meta()
        e.generate(o, frame, "s", "u", labels)
        assert e.obj_type == obj_type, labels[cls]
        assert e.obj_class_id == cls and e.event_type == EventType.ENTRY
    # with custom labels, class 0 is no longer "car"
    o = add_object(bm, frame, class_id=0, label="dog")
    e = bm.acquire_event_message_meta()
    e.generate(o, frame, labels=labels)
    assert e.obj_type == ObjectType.UNKNOWN and e.event_type == EventType.ENTRY


def test_event_message_ts_from_pts_for_ipc_and_zero_pipeline_size():
    secs = int(dt.datetime(2024, 3, 1, 12, 30, 15, tzinfo=dt.timezone.utc).timestamp())
    pts = secs * 1_000_000_000 + 250_600_000  # milliseconds truncate, as DeepStream does
    buf, bm, frame = _event_setup(buffer_pts=pts, pipeline_width=0, pipeline_height=0)
    o = add_object(bm, frame, class_id=0, label="car")
    o.rect_params = osd.Rect(10, 20, 30, 40)
    ev = bm.acquire_event_message_meta()
    ev.generate(o, frame, uri="ipc:///tmp/sock")
    assert ev.ts == "2024-03-01T12:30:15.250Z"
    assert ev.bbox == {"left": 10.0, "top": 20.0, "width": 30.0, "height": 40.0}  # no division by zero
    ev.ts = "custom"
    ev.ext = {"license": "AB123"}
    assert ev.ts == "custom" and ev.ext == {"license": "AB123"}


# ---- lifetime ----------------------------------------------------------------------------------

def test_views_after_release_raise_reference_error():
    buf, bm = make_batch(2)
    frame = first_frame(bm)
    obj = add_object(bm, frame, label="x")
    cls = bm.acquire_classifier_meta()
    cls.add_label("a")
    obj.append(cls)
    disp = bm.acquire_display_meta()
    frame.append(disp)
    user = bm.acquire_user_meta()
    frame.append(user)
    ev = bm.acquire_event_message_meta()
    rect = obj.rect_params
    color = rect.border_color
    text = obj.text_params
    mask = obj.mask_params
    frames_iter = bm.frame_items
    objects_iter = frame.object_items
    del buf
    gc.collect()
    touches = [
        lambda: bm.n_frames, lambda: bm.acquire_object_meta(), lambda: bm.extract(2),
        lambda: frame.frame_number, lambda: frame.boxes(), lambda: frame.n_objects,
        lambda: list(frame.object_items), lambda: next(frames_iter), lambda: next(objects_iter),
        lambda: obj.class_id, lambda: setattr(obj, "confidence", 1.0), lambda: obj.rect_params,
        lambda: list(obj.classifier_items), lambda: cls.get_n_label(0), lambda: cls.n_labels,
        lambda: disp.add_rect(osd.Rect()), lambda: disp.n_rects, lambda: user.meta_type,
        lambda: user.get_user_data_json(), lambda: ev.ts, lambda: ev.generate(obj, frame),
        lambda: rect.left, lambda: setattr(rect, "left", 3.0), lambda: color.r, lambda: text.display_text,
        lambda: mask.mask_array,
    ]
    for i, touch in enumerate(touches):
        with pytest.raises(ReferenceError):
            touch()
            pytest.fail(f"touch #{i} did not raise")
    assert not user and not ev
    for v in (bm, frame, obj, cls, disp, user, ev):
        assert "released" in repr(v)


def test_removed_object_views_raise_but_frame_stays_valid():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    keep = add_object(bm, frame, label="keep")
    gone = add_object(bm, frame, label="gone")
    c = bm.acquire_classifier_meta()
    gone.append(c)
    rect = gone.rect_params
    frame.remove(gone)
    for touch in (lambda: gone.label, lambda: c.n_labels, lambda: rect.width, lambda: gone.classifier_items):
        with pytest.raises(ReferenceError):
            touch()
    assert [o.label for o in frame.object_items] == ["keep"]
    assert keep.label == "keep"


def test_use_after_release_does_not_crash_in_a_subprocess():
    code = textwrap.dedent("""
        import gc
        from pysm.metadata import Buffer
        b = Buffer()
        bm = b.batch_meta
        f = bm.acquire_frame_meta(source_id=1)
        bm.append(f)
        objs = []
        for i in range(100):
            o = bm.acquire_object_meta(); o.label = "x" * 100; f.append(o); objs.append(o)
        rects = [o.rect_params for o in objs]
        del b; gc.collect()
        n = 0
        for v in objs + rects + [f, bm]:
            for attr in ("label", "left", "frame_number", "n_frames"):
                try:
                    getattr(v, attr)
                except ReferenceError:
                    n += 1
                except AttributeError:
                    pass
        print(n)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.strip()) == 202


# ---- threads -----------------------------------------------------------------------------------

def test_appends_from_two_threads_with_a_concurrent_reader():
    buf, bm = make_batch(1)
    frame = first_frame(bm)
    per_thread = 2000
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(tag: int) -> None:
        try:
            for i in range(per_thread):
                o = bm.acquire_object_meta()
                o.class_id = tag
                o.rect_params = osd.Rect(i, i, 1, 1)
                frame.append(o)
                if i % 50 == 0:
                    d = bm.acquire_display_meta()
                    d.add_text(osd.Text(f"{tag}:{i}"))
                    frame.append(d)
        except BaseException as e:  # surfaced below
            errors.append(e)

    def reader() -> None:
        try:
            while not done.is_set():
                boxes = frame.boxes()
                ids = frame.class_ids()
                assert boxes.shape[1] == 4 and ids.ndim == 1
                bm.extract(1)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in (1, 2)]
    r = threading.Thread(target=reader)
    r.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    r.join()
    assert not errors, errors
    ids = frame.class_ids()
    assert len(ids) == 2 * per_thread
    assert (ids == 1).sum() == per_thread and (ids == 2).sum() == per_thread
    assert len(list(frame.display_items)) == 2 * (per_thread // 50)
