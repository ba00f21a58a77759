"""utils.MediaExtractor / MediaChunk: several chunks, start/duration/interval, end-of-chunk None."""

from __future__ import annotations

import queue
import time

import numpy as np
import pytest

from codec_media import make_clip, reference_planes, split_nv12

from pysm.utils import MediaChunk, MediaExtractor, VideoFrame

MS = 1_000_000
FRAME = 1_000_000_000 // 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("mx") / "c.mp4", "h264", n=30, gop=10)


def drain(q: queue.Queue, timeout: float = 20.0) -> list:
    out = []
    while True:
        item = q.get(timeout=timeout)
        if item is None:  # the documented end-of-chunk signal
            return out
        out.append(item)


def test_chunks_with_start_duration_interval(clip):
    chunks = [
        MediaChunk(str(clip)),                                            # whole clip
        MediaChunk(str(clip), start_pts=10 * FRAME, duration=5 * FRAME + MS),  # frames 10..15
        MediaChunk(str(clip), interval=100 * MS),                         # every 3rd frame
        MediaChunk(str(clip), start_pts=20 * FRAME, interval=200 * MS),   # 20, 26
    ]
    with MediaExtractor(chunks, q_size=4, blocking=True, n_thread=2, device="cpu") as ex:
        queues = ex()
        assert len(queues) == 4
        results = [drain(q) for q in queues]
    frame_ids = [[round(f.timestamp / FRAME) for f in r] for r in results]
    assert frame_ids[0] == list(range(30))
    assert frame_ids[1] == list(range(10, 16))
    assert frame_ids[2] == list(range(0, 30, 3))
    assert frame_ids[3] == [20, 26]
    assert all(isinstance(f, VideoFrame) for r in results for f in r)
    ref = reference_planes(clip)
    f = results[1][0]
    assert f.tensor.shape == (144, 128)
    np.testing.assert_array_equal(split_nv12(f.frame.numpy(), 128, 96)[0], ref[10][1])
    assert not ex.errors


def test_each_queue_ends_with_one_none_even_on_error(clip, tmp_path):
    chunks = [MediaChunk(str(tmp_path / "missing.mp4")), MediaChunk(str(clip), duration=3 * FRAME + MS)]
    with MediaExtractor(chunks, q_size=8, blocking=True, device="cpu") as ex:
        q_bad, q_good = ex()
        assert drain(q_bad) == []
        assert len(drain(q_good)) == 4  # frames 0..3: pts <= start + duration
        ex.wait(timeout=20)
    assert 0 in ex.errors and "not found" in ex.errors[0]
    assert q_bad.empty() and q_good.empty(), "exactly one None per chunk"


def test_batch_size_scales_frames(clip):
    chunks = [MediaChunk(str(clip), duration=2 * FRAME + MS), MediaChunk(str(clip), duration=2 * FRAME + MS)]
    with MediaExtractor(chunks, batch_size=2, scaling=(64, 48), q_size=8, blocking=True, device="cpu") as ex:
        for q in ex():
            frames = drain(q)
            assert len(frames) == 3
            assert frames[0].tensor.shape == (72, 64)


def test_dynamic_append(clip):
    with MediaExtractor(q_size=16, blocking=True, device="cpu") as ex:
        q1 = ex.append(MediaChunk(str(clip), duration=4 * FRAME + MS))
        q2 = ex.append(MediaChunk(str(clip), start_pts=25 * FRAME))
        assert len(drain(q1)) == 5
        assert [round(f.timestamp / FRAME) for f in drain(q2)] == list(range(25, 30))
    static = MediaExtractor([MediaChunk(str(clip))], device="cpu")
    with pytest.raises(RuntimeError):
        static.append(MediaChunk(str(clip)))
    static.stop()


def test_stop_delivers_none_to_a_full_queue(clip):
    ex = MediaExtractor([MediaChunk(str(clip))], q_size=2, blocking=True, device="cpu")
    (q,) = ex()
    deadline = time.time() + 10
    while not q.full() and time.time() < deadline:
        time.sleep(0.01)
    assert q.full()
    ex.stop(timeout=10)
    items = []
    while not q.empty():
        items.append(q.get_nowait())
    assert items[-1] is None and items.count(None) == 1


def test_non_blocking_drops_instead_of_waiting(clip):
    # pyservicemaker's default: a full queue drops frames (after 1 s) instead of stalling decode.
    with MediaExtractor([MediaChunk(str(clip), duration=3 * FRAME + MS)], q_size=1, device="cpu") as ex:
        (q,) = ex()
        time.sleep(2.5)
        first = q.get(timeout=5)
        rest = drain(q)
    assert first is not None and len(rest) < 3


def test_chunk_properties():
    c = MediaChunk("x.mp4", 1, 2, 3)
    assert (c.source, c.start_pts, c.duration, c.interval) == ("x.mp4", 1, 2, 3)
