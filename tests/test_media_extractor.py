"""utils.MediaExtractor / MediaChunk: several chunks, start/duration/interval, end-of-chunk None."""

from __future__ import annotations

import queue
from fractions import Fraction
import time

import numpy as np
import pytest

from codec_media import annexb_file, make_clip, reference_planes, split_nv12

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


def _offset_ts(path, start_frames: int, n: int = 60, gop: int = 10):
    """An MPEG-TS whose clock starts at ``start_frames`` / 30 s, as a camera recording's does."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        s.options = {"bf": "0", "g": str(gop), "preset": "ultrafast"}
        for i in range(n):
            f = av.VideoFrame.from_ndarray(np.full((96, 128, 3), i * 4, np.uint8), format="rgb24")
            f = f.reformat(format="yuv420p")
            f.pts = start_frames + i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_chunks_count_from_the_sources_start(tmp_path):
    # A TS whose clock starts at 100 s: start_pts, duration and timestamps count from its first
    # frame (as GStreamer's stream time does); the frame keeps the container's own pts. Seeking
    # in a TS lands on any packet: frames 15..19 before the keyframe at 20 must not be lost.
    path = _offset_ts(tmp_path / "cam.ts", 3000)
    S = 1_000_000_000
    with MediaExtractor([MediaChunk(str(path)), MediaChunk(str(path), start_pts=S // 2, duration=S // 2)],
                        q_size=128, blocking=True, device="cpu") as ex:
        whole, part = (drain(q) for q in ex())
    assert not ex.errors
    assert [round(f.timestamp / FRAME) for f in whole] == list(range(60))
    assert [round(f.timestamp / FRAME) for f in part] == list(range(15, 30))
    assert round(part[0].frame.pts / FRAME) == 3015


def test_chunks_count_from_the_start_of_an_mkv_that_starts_late(tmp_path):
    # Matroska's header does not say when the video starts (here 1.5 s, behind audio from 0): the
    # chunks still count from its first frame.
    path = make_clip(tmp_path / "cut.mkv", "h264", n=30, first_pts=45, audio=True)
    S = 1_000_000_000
    with MediaExtractor([MediaChunk(str(path), start_pts=S // 2, duration=S // 3 - 10 * MS)],
                        q_size=64, blocking=True, device="cpu") as ex:
        (part,) = (drain(q) for q in ex())
    assert not ex.errors
    assert [round(f.timestamp / FRAME) for f in part] == list(range(15, 25))
    assert round(part[0].frame.pts / FRAME) == 60


def test_chunks_laid_end_to_end_share_no_frame(clip):
    third = 1_000_000_000 // 3  # exactly frame 10's timestamp (mp4 time base 1/15360)
    chunks = [MediaChunk(str(clip), start_pts=k * third, duration=third) for k in range(3)]
    with MediaExtractor(chunks, q_size=32, blocking=True, device="cpu") as ex:
        ids = [[round(f.timestamp / FRAME) for f in drain(q)] for q in ex()]
    assert ids == [list(range(0, 10)), list(range(10, 20)), list(range(20, 30))]


def test_raw_elementary_stream_is_timed_at_its_frame_rate(tmp_path):
    # No timestamps and no seeking in a raw .h264: frames are timed at the frame rate, and a
    # chunk's start is reached by decoding from the beginning.
    raw = annexb_file(make_clip(tmp_path / "c.mp4", "h264", n=30, gop=10), tmp_path / "c.h264")
    def at(k):  # frame k at the rate in the stream's SPS, 30 fps (FFmpeg's own guess would be 25)
        return round(Fraction(k * 1_000_000_000, 30))

    with MediaExtractor([MediaChunk(str(raw), start_pts=at(10), duration=at(15) - at(10))], q_size=32,
                        blocking=True, device="cpu") as ex:
        (q,) = ex()
        got = [f.timestamp for f in drain(q)]
    assert not ex.errors
    assert got == [at(k) for k in range(10, 15)]


def test_seeking_ahead_in_a_source_that_cannot_seek_ends(tmp_path):
    # A raw stream cannot seek: enable_seek decodes through its gaps instead of starting over.
    raw = annexb_file(make_clip(tmp_path / "c.mp4", "h264", n=100, gop=10), tmp_path / "c.h264")
    step = 40 * MS  # 1.6 s = 48 frames at the stream's 30 fps
    with MediaExtractor([MediaChunk(str(raw), interval=40 * step)], q_size=64, blocking=True,
                        enable_seek=True, device="cpu") as ex:
        (q,) = ex()
        got: list = []
        while len(got) < 10 and (item := q.get(timeout=20)) is not None:  # bounded: it looped before
            got.append(item.timestamp)
        ex.stop(timeout=10)
    assert got == [0, 40 * step, 80 * step]


def test_interval_sampling_across_a_gap_keeps_each_frame_once(tmp_path):
    # A camera that paused 4 s: the frame after the gap stands for every grid point it passed;
    # the sampler kept the next consecutive frames instead, one per skipped point.

    import av

    from codec_media import frames_rgb

    path = tmp_path / "gap.mkv"
    stamps = [i * 33 for i in range(30)] + [5000 + i * 33 for i in range(60)]  # ms
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        s.options = {"bf": "0"}
        for t, img in zip(stamps, frames_rgb(len(stamps), 64, 48)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    with MediaExtractor([MediaChunk(str(path), interval=1000 * MS)], q_size=100, blocking=True,
                        device="cpu") as ex:
        kept = [v.timestamp // MS for v in drain(ex()[0])]
    assert kept == [0, 5000, 6023]


def test_seeking_a_raw_stream_gives_the_right_pictures(tmp_path):
    # FFmpeg cannot seek in a raw H.264 stream: the seek reopens it at its start, and the clock
    # that times its frames went on counting (each timestamp then showed a picture 3 frames early).
    src = make_clip(tmp_path / "long.mp4", "h264", n=200, width=64, height=48, bframes=0, gop=25, rate=25)
    raw = annexb_file(src, tmp_path / "long.h264")
    ref = [y[:48, :64] for _, y, _, _ in reference_planes(raw)]
    step = 40 * MS  # 25 fps
    for seek in (False, True):
        chunk = MediaChunk(str(raw), interval=2000 * MS)
        with MediaExtractor([chunk], q_size=64, blocking=True, device="cpu", enable_seek=seek) as ex:
            got = drain(ex()[0], timeout=60)
        assert [v.timestamp // MS for v in got] == [0, 2000, 4000, 6000], seek
        for v in got:
            np.testing.assert_array_equal(v.frame.numpy()[:48, :64], ref[v.timestamp // step])
