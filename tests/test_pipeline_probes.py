"""Built-in probes over real metadata: kitti_dump_probe writes the objects a detector-like probe
attached, sample_video_probe draws the per-class counts as DisplayMetadata, the probe registry."""

from __future__ import annotations

import pysm
from pysm import Pipeline, osd
from pysm.pipeline import BatchMetadataOperator, Probe, probe, register_probe


class FakeDetector(BatchMetadataOperator):
    """Attaches one vehicle (class 0) and two persons (class 2) per frame."""

    def handle_metadata(self, batch_meta):
        for frame in batch_meta.frame_items:
            for k, cls in enumerate((0, 2, 2)):
                obj = batch_meta.acquire_object_meta()
                obj.class_id = cls
                obj.confidence = 0.5 + 0.1 * k
                obj.label = "car" if cls == 0 else "person"
                r = osd.Rect()
                r.left, r.top, r.width, r.height = 10.0 * k, 5.0, 20.0, 30.0
                obj.rect_params = r
                frame.append(obj)


def _pipeline(n=4):
    p = Pipeline("probes")
    p.add("videotestsrc", "src", {"num-buffers": n, "width": 64, "height": 48})
    p.add("nvstreammux", "mux", {"batch-size": 2, "width": 64, "height": 48}).add("queue", "q").add("appsink", "sink")
    p.link(("src", "mux"), ("", "sink_%u")).link("mux", "q", "sink")
    p.attach("mux", Probe("detector", FakeDetector()))
    return p


def test_kitti_dump_and_sample_video_probe(tmp_path):
    p = _pipeline()
    p.attach("q", "kitti_dump_probe", "kitti", properties={"kitti-dir": str(tmp_path)})
    p.attach("q", "sample_video_probe", "counter", properties={"font-size": 15})
    texts = []

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            for frame in buffer.batch_meta.frame_items:
                for dm in frame.display_items:
                    texts.extend((t.display_text, t.font.size) for t in dm.texts)
            return 1

    p.attach("sink", pysm.Receiver("r", R()))
    p.start().wait(10)
    assert texts == [("Vehicle=1 Person=2", 15)] * 4
    files = sorted(f.name for f in tmp_path.iterdir())
    assert files == [f"000_{i:06d}.txt" for i in range(4)]
    lines = (tmp_path / "000_000002.txt").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("car ")
    fields = lines[1].split()
    assert fields[0] == "person" and [float(x) for x in fields[4:8]] == [10.0, 5.0, 30.0, 35.0]
    assert abs(float(fields[-1]) - 0.6) < 1e-5


def test_registered_python_probe_with_params():
    seen = []

    @probe("count_people_probe", params={"min-class": ("integer", 2, "class id to count")})
    class CountPeople(BatchMetadataOperator):
        def handle_metadata(self, batch_meta):
            k = self.get_property("min-class")
            for frame in batch_meta.frame_items:
                seen.append(sum(1 for o in frame.object_items if o.class_id == k))

    p = _pipeline(n=2)
    p.attach("q", "count_people_probe", "people")
    p.start().wait(10)
    assert seen == [2, 2]
    seen.clear()
    p2 = _pipeline(n=2)
    p2.attach("q", "count_people_probe", "vehicles", properties={"min-class": 0})
    p2.start().wait(10)
    assert seen == [1, 1]
    import pytest

    with pytest.raises(pysm.ConfigError):
        register_probe("bad", int)
