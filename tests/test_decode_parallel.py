"""Decoding one file on several decoder sessions at once (pysm.codec.parallel), on the CPU.

The same machinery runs NVDEC sessions on the GPU (tests/test_decode_gpu.py); here PyAV decoders
stand in for them, and a fake decoder with random delays checks order, bounds and errors.
"""

from __future__ import annotations

import functools
import itertools
import logging
import random
import threading
import time

import av
import numpy as np
import pytest

from codec_media import available, encoder_for, joined_recordings, make_clip, open_gop_options
from parallel_fakes import FakeDecoder as _FakeDecoder
from parallel_fakes import Frame as _Frame
from parallel_fakes import NoSessionDecoder, OpenGopDecoder, open_gop_batches, open_gop_display_order, open_gop_packets
from parallel_fakes import TimedDecoder as _TimedDecoder
from parallel_fakes import batches as _batches
from pysm import errors
from pysm.codec import AnnexBConverter, Decoder, Demuxer, VideoReader
from pysm.codec.decoder import CLEAN_RESTART, LEADING, OPEN_RESTART
from pysm.codec.parallel import (LOOKAHEAD_MAX_MIB, LOOKAHEAD_MIB, MAX_AUTO_SESSIONS, ParallelDecode,
                                 auto_lookahead_mib, auto_sessions)
from pysm.codec.parameter_sets import ParameterSets
from pysm.codec.reader import _restart_kind

pytestmark = pytest.mark.skipif(not available("h264"), reason="PyAV without H.264")

HEVC_CLOSED_GOP = {"x265-params": "bframes=2:keyint=12:no-open-gop=1:log-level=none"}


def _read(path, n: int | None = None, **kw) -> tuple[list, VideoReader]:
    out = []
    with VideoReader(path, "cpu", **kw) as reader:
        for f in reader:
            out.append((f.pts, f.error, f.numpy().copy()))
            if n is not None and len(out) >= n:
                break
    return out, reader


def _same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for i, ((pa, ea, fa), (pb, eb, fb)) in enumerate(zip(a, b)):
        assert (pa, ea) == (pb, eb), i
        np.testing.assert_array_equal(fa, fb, err_msg=f"frame {i}")


def _session_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("pysm-decode-session"))


@pytest.mark.parametrize("codec, options", [("h264", None), ("hevc", HEVC_CLOSED_GOP)])
@pytest.mark.parametrize("sessions", [2, 3])
def test_sessions_give_the_frames_of_a_serial_decode(tmp_path, codec, options, sessions):
    if encoder_for(codec) is None:
        pytest.skip(f"no {codec} encoder")
    # B-frames, an IDR every 12 frames, 100 frames: segments of 24 (the shortest cut), 5 in all.
    clip = make_clip(tmp_path / "c.mp4", codec, n=100, width=320, height=240, gop=12, bframes=2, options=options)
    serial, _ = _read(clip, sessions=1)
    parallel, reader = _read(clip, sessions=sessions)
    _same(serial, parallel)
    assert len(serial) == 100
    # (a session that is done with its segment may take the next one before another starts)
    assert 2 <= reader.sessions_used <= sessions


def test_looping_with_sessions_keeps_the_serial_timeline(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=60, width=320, height=240, gop=12)
    serial, _ = _read(clip, 200, loop=True, sessions=1)
    parallel, reader = _read(clip, 200, loop=True, sessions=3)
    _same(serial, parallel)
    pts = [p for p, _, _ in parallel]
    assert all(b > a for a, b in zip(pts, pts[1:]))  # rising across three restarts
    assert 2 <= reader.sessions_used <= 3
    assert _session_threads() == 0  # the break stopped every session




def _roles(path) -> list:
    with Demuxer(path) as d:
        conv = AnnexBConverter(d.info.codec, d.info.extradata or b"")
        return [conv.picture_role(p.data, p.key) for p in d]


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("sessions", [2, 3])
@pytest.mark.parametrize("codec", ["hevc", "h264"])
def test_open_gop_is_cut_at_its_open_restart_points(tmp_path, codec, sessions, loop):
    if encoder_for(codec) is None:
        pytest.skip(f"no {codec} encoder")
    # x265's default open GOP: after the first IDR, every key frame is a CRA whose leading (RASL)
    # pictures predict from the GOP before; x264's: I pictures with a recovery point, the B
    # pictures after them likewise. Each segment from such a point on is decoded by its own
    # session without them; the session of the segment before decodes the point hidden and then
    # those leading pictures. The frames must be exactly a serial decode's.
    clip = make_clip(tmp_path / "c.mp4", codec, n=100, width=320, height=240, gop=12, bframes=3,
                     options=open_gop_options(codec))
    roles = _roles(clip)
    assert roles[0] == CLEAN_RESTART and roles.count(OPEN_RESTART) >= 6, roles
    if codec == "hevc":
        assert roles.count(LEADING) >= 6, roles
    n = 260 if loop else None
    serial, _ = _read(clip, n, loop=loop, sessions=1)
    parallel, reader = _read(clip, n, loop=loop, sessions=sessions)
    _same(serial, parallel)
    assert len(serial) == (260 if loop else 100)
    assert 2 <= reader.sessions_used <= sessions
    assert not any(e for _, e, _ in parallel)


@pytest.mark.parametrize("lead", [1, 2])
@pytest.mark.parametrize("ext", ["mkv", "mp4"])
@pytest.mark.parametrize("codec, keep", [("hevc", 0.3), ("h264", 0.3), ("h264", 7)])
def test_a_damaged_leading_picture_stays_with_the_segment_before(tmp_path, codec, keep, ext, lead):
    # A leading picture whose slice is cut short (a NAL length past its packet's end) is still a
    # leading picture: it and the ones after it go to the session that has their references, as
    # in a serial decode (found by review: it used to end the leading pictures there). H.264 reads
    # its order count from what there is of its slice header, or, with too little of it left
    # (7 bytes), goes by the container's timestamps (found by review too).
    if encoder_for(codec) is None:
        pytest.skip(f"no {codec} encoder")
    src = make_clip(tmp_path / f"src.{ext}", codec, n=60, width=192, height=128, gop=12, bframes=3,
                    options=open_gop_options(codec))
    cra = [k for k, r in enumerate(_roles(src)) if r == OPEN_RESTART][2]
    dst = tmp_path / f"damaged.{ext}"
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        s = i.streams.video[0]
        out = o.add_stream_from_template(s)
        for k, p in enumerate(x for x in i.demux(s) if x.size):
            if k == cra + lead:
                q = av.Packet(bytes(p)[:keep if keep > 1 else int(p.size * keep)])
                q.pts, q.dts, q.time_base, q.is_keyframe = p.pts, p.dts, p.time_base, p.is_keyframe
                p = q
            p.stream = out
            o.mux(p)
    with Demuxer(dst) as d:
        info, pkts = d.info, list(d)
    if codec == "hevc":
        assert _roles(dst)[cra + lead] == LEADING
    else:
        conv = AnnexBConverter(info.codec, info.extradata or b"")
        assert conv.leads(pkts[cra + lead].data, pkts[cra].data) is (None if keep == 7 else True)

    def decoder() -> Decoder:
        # One thread: FFmpeg's frame threads report a damaged picture's error from the flush at a
        # segment's end, and PyAV then drops the frames drained with it (a CPU-only limit).
        return Decoder(info, "cpu", threads=1)

    one = decoder()
    serial = one.decode_many(pkts) + one.flush()
    first = decoder()
    sets = ParameterSets(first)
    par = ParallelDecode(first, decoder, lambda: 3, functools.partial(_restart_kind, first, sets),
                         leading=first.is_leading, hidden=first.hidden_copy, parameter_sets=sets,
                         batch=4, min_segment=8, eager=True)
    got = [f for frames in par.run(iter([(pkts[i:i + 4], 0) for i in range(0, len(pkts), 4)])) for f in frames]
    assert par.sessions_used >= 2
    assert [(f.pts, f.error) for f in got] == [(f.pts, f.error) for f in serial]
    assert any(f.error for f in serial)
    for a, b in zip(got, serial):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("open_gop", [False, True])
@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_parameter_sets_that_change_part_way_reach_every_session(tmp_path, ext, open_gop):
    # A session that starts at a later restart point of the second part must be given its in-band
    # SPS/PPS: with only the container's, it dropped or damaged most of that part's frames without
    # an error (found by review). Asked-for sessions and an automatic hand-over alike.
    if encoder_for("h264") != "libx264":
        pytest.skip("no libx264")
    clip = joined_recordings(tmp_path, ext, open_gop)
    serial, _ = _read(clip, sessions=1)
    # (PyAV 17's MP4 muxer writes an edit list that ends one frame early on this join.)
    assert len(serial) in ((223, 224) if ext == "mp4" else (224,)) and not any(e for _, e, _ in serial)
    for sessions in (2, 3):
        parallel, reader = _read(clip, sessions=sessions)
        _same(serial, parallel)
        assert reader.sessions_used >= 2
    with _auto_reader(clip, 3, keeps_up=True) as reader:
        got = [(f.pts, f.error, f.numpy().copy()) for f in reader]
        assert reader.sessions_used >= 2
    _same(serial, got)


# Joins whose second part needs its own parameter sets where a cut is decided and where a
# session starts (found by review): x264 parameters of the two parts, and whether the second
# repeats its SPS alone at its later key frames.
_JOINS = {
    # Open-GOP restart points read with the first part's SPS (another MaxPicOrderCntLsb) gave
    # wrong picture order counts: leading pictures went to the session without their references.
    "open-gop-after-other-sps": ("keyint=12:min-keyint=12:scenecut=0:bframes=1:ref=1",
                                 "open-gop=1:keyint=30:min-keyint=30:scenecut=0:bframes=6:ref=4:b-pyramid=normal",
                                 False),
    # pic_order_cnt_type 2 in the first part's SPS (no B-frames): no leading picture was seen.
    "open-gop-after-no-b-frames": ("keyint=12:min-keyint=12:scenecut=0:bframes=0:ref=1",
                                   "open-gop=1:keyint=40:min-keyint=40:scenecut=0:bframes=3:ref=4:b-pyramid=normal",
                                   False),
    # A session given the remembered PPS ahead of its packet's own SPS bound it to the
    # container's SPS of that id: the later segments gave no frames.
    "sps-repeated-alone": ("keyint=12:min-keyint=12:scenecut=0:bframes=1:ref=1",
                           "keyint=40:min-keyint=40:scenecut=0:bframes=6:ref=4", True),
}


@pytest.mark.parametrize("join", list(_JOINS))
@pytest.mark.parametrize("ext", ["mkv", "mp4"])
def test_a_later_parts_own_parameter_sets_decide_its_cuts_and_start_its_sessions(tmp_path, ext, join):
    if encoder_for("h264") != "libx264":
        pytest.skip("no libx264")
    first, second, sps_at_keys = _JOINS[join]
    clip = joined_recordings(tmp_path, ext, False, first=first, second=second, sps_at_keys=sps_at_keys)
    serial, _ = _read(clip, sessions=1)
    assert len(serial) >= 223 and not any(e for _, e, _ in serial)
    for sessions in (2, 3):
        parallel, reader = _read(clip, sessions=sessions)
        _same(serial, parallel)
        assert reader.sessions_used >= 2


@pytest.mark.parametrize("sessions", [1, 2])
def test_each_pass_of_a_looped_file_starts_with_its_configuration(tmp_path, sessions):
    # After the second part's in-band SPS/PPS, the next pass's first part must decode with the
    # container's again, on one decoder as on several (it decoded damaged with the second part's).
    if encoder_for("h264") != "libx264":
        pytest.skip("no libx264")
    clip = joined_recordings(tmp_path, "mkv", open_gop=False)
    frames, reader = _read(clip, 3 * 224, loop=True, sessions=sessions)
    assert reader.sessions_used == sessions
    assert not any(e for _, e, _ in frames)
    assert all(b[0] > a[0] for a, b in zip(frames, frames[1:]))
    for k in (1, 2):
        for i in range(224):
            np.testing.assert_array_equal(frames[k * 224 + i][2], frames[i][2], err_msg=f"pass {k + 1} frame {i}")


def test_a_looped_file_without_in_band_parameter_sets_is_read_as_it_is(tmp_path, monkeypatch):
    # Only a file whose first pass carried other parameter sets than its configuration's has its
    # later passes' first packets copied (most files carry none in band, or repeat the same).
    from pysm.codec.decoder import Decoder as _Decoder

    def refuse(self, packet):
        raise AssertionError("a pass's first packet was copied")

    monkeypatch.setattr(_Decoder, "with_configuration", refuse)
    for ext in ("mp4", "ts"):
        clip = make_clip(tmp_path / f"c.{ext}", "h264", n=30, gop=10)
        frames, _ = _read(clip, 75, loop=True, sessions=1)
        assert len(frames) == 75


def test_truncated_file_with_sessions_matches_serial(tmp_path):
    clip = make_clip(tmp_path / "c.ts", "h264", n=80, gop=12)  # MPEG-TS: readable when cut short
    cut = tmp_path / "cut.ts"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    serial, _ = _read(cut, sessions=1)
    parallel, reader = _read(cut, sessions=2)
    _same(serial, parallel)
    assert 24 < len(serial) < 80
    assert reader.sessions_used <= 2


def test_sessions_argument_is_checked(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=4)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(errors.InvalidArgument, match="sessions"):
            VideoReader(clip, "cpu", sessions=bad)
    with pytest.raises(errors.InvalidArgument, match="lookahead_mib"):
        VideoReader(clip, "cpu", lookahead_mib=0)


def test_cpu_and_low_latency_readers_decode_serially_by_default(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=40, gop=12)
    _, reader = _read(clip)
    assert reader.sessions_used == 1
    _, reader = _read(clip, sessions=3, low_latency=True)
    assert reader.sessions_used == 1


def test_auto_sessions():
    # 7 NVDECs: one reader takes the most, 7 readers 3 each, up to 14 two each, more one each.
    assert auto_sessions(7, 1) == MAX_AUTO_SESSIONS
    assert auto_sessions(7, 4) == MAX_AUTO_SESSIONS
    assert auto_sessions(7, 7) == 3
    assert auto_sessions(7, 8) == 2
    assert auto_sessions(7, 14) == 2
    assert auto_sessions(7, 15) == 1
    assert auto_sessions(7, 64) == 1
    assert auto_sessions(0, 1) == 1
    assert auto_sessions(1, 1) == 3
    # HEVC: more than one session only while readers < engines
    assert auto_sessions(7, 6, "hevc") == 3
    assert auto_sessions(7, 7, "hevc") == 1
    assert auto_sessions(7, 8, "hevc") == 1
    assert auto_sessions(7, 8, "h264") == 2


# ---- the machinery with a fake decoder --------------------------------------------------------

def _fake(sessions: int, rng: random.Random, made: list, fail_at=None, most_s=0.002, **kw) -> ParallelDecode:
    def make():
        d = _FakeDecoder(rng, fail_at, most_s=most_s)
        made.append(d)
        return d

    first = _FakeDecoder(rng, fail_at, most_s=most_s)
    made.append(first)
    return ParallelDecode(first, make, lambda: sessions, lambda p: p.key, batch=4, min_segment=8, **kw)


@pytest.mark.parametrize("free_first", [False, True])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sessions", [1, 2, 4])
def test_frames_come_in_order_whatever_the_timing(seed, sessions, free_first):
    rng = random.Random(seed)
    made: list = []
    par = _fake(sessions, rng, made, max_lookahead_frames=32, free_first=free_first)
    got = [f.n for frames in par.run(_batches(200, 10, 5, passes=2, cut_between_passes=bool(seed % 2)))
           for f in frames]
    assert got == list(range(200)) + [1000 + i for i in range(200)]
    assert par.produced == 400
    assert par.sessions_used <= sessions
    assert all(d.closed for d in made[1:]) and not made[0].closed  # the caller owns the first


def _open_gop(sessions: int, rng: random.Random, made: list, cuts_open: bool = True, **kw) -> ParallelDecode:
    def make():
        made.append(OpenGopDecoder(rng))
        return made[-1]

    first = make()
    return ParallelDecode(first, make, lambda: sessions, lambda p: p.role if p.role in (1, 2) else 0,
                          leading=(lambda p, _restart: p.role == LEADING) if cuts_open else None,
                          hidden=lambda p: p.hidden(), batch=4, min_segment=8, **kw)


@pytest.mark.parametrize("free_first", [False, True])
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("sessions", [1, 2, 4])
def test_open_gop_segments_leave_the_leading_pictures_to_the_segment_before(seed, sessions, free_first):
    # A fake HEVC session raises on a picture whose references it has not decoded: each segment
    # from a CRA on must get the CRA and its trailing pictures, and the segment before must get
    # the CRA hidden and its leading pictures, whatever the batches and the timing (3 leading
    # pictures across 4-packet batches; 2 passes, cut between them or not).
    rng = random.Random(seed)
    made: list = []
    par = _open_gop(sessions, rng, made, max_lookahead_frames=48, free_first=free_first)
    want = open_gop_display_order(150, 10, 3)
    got = [f.n for frames in par.run(open_gop_batches(150, 10, 3, 4, passes=2, cut_between_passes=bool(seed % 2)))
           for f in frames]
    assert got == want + [1000 + n for n in want]
    assert par.fed == 300  # hidden copies are not the source's packets
    assert par.sessions_used <= sessions
    if sessions > 1:
        assert par.sessions_used >= 2
        # cut at the CRAs, not only per pass (a segment of 7 packets is shorter than min_segment)
        assert sum(s["segments"] for s in par.stats["sessions"]) >= 14
    assert all(d.closed for d in made[1:]) and not made[0].closed


def test_without_leading_pictures_known_open_restart_points_are_not_cut():
    made: list = []
    par = _open_gop(3, random.Random(0), made, cuts_open=False, eager=True)
    got = [f.n for frames in par.run(open_gop_batches(150, 10, 3, 4)) for f in frames]
    assert got == open_gop_display_order(150, 10, 3)
    assert par.sessions_used == 1 and sum(s["segments"] for s in par.stats["sessions"]) == 1


@pytest.mark.parametrize("start", [0, 5, 10, 11, 13, 14, 17, 27])
@pytest.mark.parametrize("free_first", [False, True])
def test_a_run_can_continue_the_first_decoder_mid_stream(start, free_first):
    # A reader hands over to sessions part-way through the stream without draining its decoder:
    # the first segment goes on on that decoder, up to the next restart point, wherever the
    # hand-over falls (mid-GOP, at a CRA, among its leading pictures, just after them).
    rng = random.Random(start)
    made: list = []
    par = _open_gop(3, rng, made, continues=True, eager=True, free_first=free_first, max_lookahead_frames=48)
    pkts = open_gop_packets(150, 10, 3)
    before = [f.n for f in made[0].decode_many(pkts[:start], 0)]
    rest = [(pkts[i:i + 4], 0) for i in range(start, 150, 4)]
    got = before + [f.n for frames in par.run(iter(rest)) for f in frames]
    assert got == open_gop_display_order(150, 10, 3)
    assert par.sessions_used >= 2


def _busy_share(spans: list, at_least: int) -> float:
    """Share of the time some session decoded during which ``at_least`` sessions decoded at once."""
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    busy = both = 0.0
    level, last = 0, edges[0][0]
    for t, d in edges:
        busy += (t - last) if level >= 1 else 0.0
        both += (t - last) if level >= at_least else 0.0
        level, last = level + d, t
    return both / busy


@pytest.mark.parametrize("gop", [30, 150])
def test_sessions_decode_at_once_on_long_gops(gop):
    # The packets of the next segment are read while the ones before still decode, so a GOP
    # longer than a few batches does not leave all but one session waiting for packets.
    spans: list = []
    par = ParallelDecode(_TimedDecoder(spans), lambda: _TimedDecoder(spans), lambda: 2, lambda p: p.key,
                         batch=8, min_segment=24, max_lookahead_frames=1000, eager=True)
    got = [f.n for frames in par.run(_batches(600, gop, 8)) for f in frames]
    assert got == list(range(600))
    assert par.sessions_used == 2
    assert _busy_share(spans, 2) > 0.6  # the feeder bounded per segment gave 0.22 at GOP 150, 0.99 now


def test_stats_account_for_the_sessions_time():
    # The decode seconds match the timed decoders' own spans, and each session's time is all
    # accounted for: decoding, starved, held back or idle adds up to its thread's life.
    spans: list = []
    par = ParallelDecode(_TimedDecoder(spans, 0.0005, most_s=0), lambda: _TimedDecoder(spans, 0.0005, most_s=0),
                         lambda: 3, lambda p: p.key, batch=4, min_segment=8, max_lookahead_frames=40, eager=True)
    t0 = time.perf_counter()
    got = [f.n for frames in par.run(_batches(400, 40, 4)) for f in frames]
    life = time.perf_counter() - t0
    assert got == list(range(400))
    st = par.stats
    assert len(st["sessions"]) == 3
    assert sum(s["segments"] for s in st["sessions"]) == 10
    own = sum(b - a for a, b in spans)
    decode = sum(s["decode_s"] for s in st["sessions"])
    assert own <= decode <= own + 0.05 + 0.2 * own
    for s in st["sessions"]:
        assert s["decode_s"] + s["starved_s"] + s["held_s"] + s["idle_s"] <= life
        assert s["decode_s"] + s["starved_s"] + s["held_s"] + s["idle_s"] > 0.5 * life
    assert st["read_s"] > 0 and st["consumer_wait_s"] >= 0


def test_free_first_sessions_keep_decoding_when_the_lookahead_holds_few_segments():
    # With free_first, segments go to whichever session is free first. Tied to a session when they
    # opened, behind the one it was decoding, they wait on it while the other sessions fill the
    # lookahead with later segments: 4 sessions with 2.5 GOPs ahead decode all at once 0.58-0.64
    # of the time tied, 0.90-0.93 free first (0.65-0.81 with 4 CPU hogs on 2 cores).
    share = {}
    for free_first in (False, True):
        spans: list = []
        par = ParallelDecode(_TimedDecoder(spans, 0.0004, most_s=0), lambda: _TimedDecoder(spans, 0.0004, most_s=0),
                             lambda: 4, lambda p: p.key, batch=8, min_segment=24, max_lookahead_frames=125,
                             eager=True, free_first=free_first)
        got = [f.n for frames in par.run(_batches(2000, 50, 8)) for f in frames]
        assert got == list(range(2000))
        assert sum(s["segments"] for s in par.stats["sessions"]) == 40
        share[free_first] = _busy_share(spans, 4)
    assert share[True] > 0.6 and share[True] > share[False], share


def _watched(par: ParallelDecode, source, seen: list):
    """``source``'s items, noting the packets queued in segments before each read (the feeder
    reads with the lock released, right after it moved what it could)."""
    for item in source:
        with par._cv:
            assert par._queued == sum(seg.queued for seg in par._segments)
            seen.append((par._queued, par._buffered))
        yield item


@pytest.mark.parametrize("free_first", [False, True])
def test_packets_read_ahead_stay_within_their_bound(free_first):
    spans: list = []
    par = ParallelDecode(_TimedDecoder(spans, 0.0005), lambda: _TimedDecoder(spans, 0.0005), lambda: 3,
                         lambda p: p.key, batch=4, min_segment=8, max_lookahead_frames=24, eager=True,
                         free_first=free_first)
    seen: list = []
    got: list[int] = []
    for frames in par.run(_watched(par, _batches(600, 40, 4), seen)):
        got.extend(f.n for f in frames)
    assert got == list(range(600))
    assert max(q for q, _ in seen) <= par._max_queued == 24 + 2 * 4
    assert par._queued == 0


def test_lookahead_stays_within_its_bound():
    rng = random.Random(7)
    made: list = []
    seen: list[int] = []
    par = _fake(4, rng, made, max_lookahead_frames=16)
    for frames in par.run(_batches(400, 10, 8)):
        seen.append(par._buffered)
    # The bound ahead, two batches of the head, plus one call's frames (batch + held one) per session.
    assert max(seen) <= 16 + 2 * 4 + 4 * 5
    assert par.sessions_used == 4


def test_a_slow_consumer_keeps_one_session_and_little_lookahead():
    rng = random.Random(3)
    made: list = []
    par = _fake(4, rng, made, max_lookahead_frames=64, most_s=0.0005)
    most = 0
    n = 0
    for frames in par.run(_batches(120, 10, 4)):
        most = max(most, par._buffered)
        n += len(frames)
        time.sleep(0.008 * len(frames))  # far slower than the decoder
    assert n == 120
    assert par.sessions_used == 1
    assert most <= 2 * 4 + 5  # two batches of the head and one call's frames


class _PromptDecoder(_FakeDecoder):
    """Holds no frame back: a segment's frames are all out before its flush."""

    def decode_many(self, packets, offset):
        time.sleep(self.rng.uniform(0, self.most_s))
        return [_Frame(p.n + offset) for p in packets]


@pytest.mark.parametrize("seed", range(12))
def test_a_session_held_back_by_the_lookahead_wakes_when_its_segment_becomes_the_head(seed):
    # A session waiting on the lookahead bound must be woken when the head segment is retired and
    # its own becomes the head; with the smallest bound and GOPs shorter than a batch this hung.
    rng = random.Random(seed)
    par = ParallelDecode(_PromptDecoder(rng, most_s=0.0005), lambda: _PromptDecoder(rng, most_s=0.0005),
                         lambda: 3, lambda p: p.key, batch=8, min_segment=1, max_lookahead_frames=1)
    got: list[int] = []

    def consume():
        for frames in par.run(_batches(400, 5, 8, passes=2)):
            got.extend(f.n for f in frames)

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), f"stuck after {len(got)} frames"
    assert got == list(range(400)) + [1000 + i for i in range(400)]


def test_an_error_comes_after_the_frames_before_it():
    rng = random.Random(1)
    made: list = []
    par = _fake(3, rng, made, fail_at=57, max_lookahead_frames=64)
    got: list[int] = []
    with pytest.raises(errors.DecodeError, match="packet 57"):
        for frames in par.run(_batches(200, 10, 5)):
            got.extend(f.n for f in frames)
    # Everything of the segments before the failing one, in order; nothing after it.
    assert got[:50] == list(range(50))
    assert all(n < 57 for n in got)
    assert _session_threads() == 0


@pytest.mark.parametrize("where", ["creation", "first call"])
@pytest.mark.parametrize("free_first", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_a_session_that_cannot_start_leaves_its_segments_to_the_others(seed, free_first, where, caplog):
    # Sessions 2 and 3 (of 4) cannot be had; the frames still come, all and in order, from the
    # sessions that run, and the run does not stall on segments the failed sessions had taken.
    rng = random.Random(seed)
    made: list = []
    count = itertools.count(1)

    def make():
        k = next(count)
        if k in (2, 3) and where == "creation":
            raise errors.OutOfMemoryError("cuvidCreateDecoder: CUDA_ERROR_OUT_OF_MEMORY (fake)")
        d = NoSessionDecoder(rng) if k in (2, 3) else _FakeDecoder(rng)
        made.append(d)
        return d

    par = ParallelDecode(_FakeDecoder(rng), make, lambda: 4, lambda p: p.key, batch=4, min_segment=8,
                         max_lookahead_frames=16, eager=True, free_first=free_first)
    got: list[int] = []
    seen: list = []

    def consume():
        for frames in par.run(_watched(par, _batches(300, 10, 5, passes=2, cut_between_passes=True), seen)):
            got.extend(f.n for f in frames)

    with caplog.at_level(logging.WARNING, logger="pysm.codec"):
        t = threading.Thread(target=consume, daemon=True)  # a stall fails the test, never hangs it
        t.start()
        t.join(30)
        assert not t.is_alive(), f"stuck after {len(got)} frames"
    assert got == list(range(300)) + [1000 + i for i in range(300)]
    sessions = par.stats["sessions"]  # (which two fail depends on which thread creates first)
    assert [s["failed_to_start"] for s in sessions].count(True) == 2 and not sessions[0]["failed_to_start"]
    assert all(s["segments"] > 0 for s in sessions if not s["failed_to_start"])  # the others decoded
    assert sum("could not start" in r.getMessage() for r in caplog.records) == 2
    assert all(d.closed for d in made) and _session_threads() == 0
    # The bounds hold: frames as in test_lookahead_stays_within_its_bound; packets but for the
    # first call's, which go back to their segment after the feeder may have filled up.
    assert max(q for q, _ in seen) <= par._max_queued + 4
    assert max(b for _, b in seen) <= 16 + 2 * 4 + 4 * 5


@pytest.mark.parametrize("free_first", [False, True])
def test_with_no_further_session_the_first_decodes_everything(free_first):
    rng = random.Random(5)
    par = ParallelDecode(_FakeDecoder(rng), lambda: NoSessionDecoder(rng), lambda: 3, lambda p: p.key,
                         batch=4, min_segment=8, max_lookahead_frames=8, eager=True, free_first=free_first)
    got: list[int] = []
    t = threading.Thread(target=lambda: got.extend(f.n for fr in par.run(_batches(200, 10, 5)) for f in fr),
                         daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive(), f"stuck after {len(got)} frames"
    assert got == list(range(200))
    assert [s["failed_to_start"] for s in par.stats["sessions"]] == [False, True, True]


def test_a_bad_stream_in_a_further_session_is_still_an_error():
    # A DecodeError is the stream's fault, not the session's: no retry elsewhere, raised in order.
    rng = random.Random(3)
    made: list = []
    par = _fake(3, rng, made, fail_at=12, max_lookahead_frames=64, eager=True)
    got: list[int] = []
    with pytest.raises(errors.DecodeError, match="packet 12"):
        for frames in par.run(_batches(200, 10, 5)):
            got.extend(f.n for f in frames)
    assert all(n < 12 for n in got)
    assert not any(s["failed_to_start"] for s in par.stats["sessions"])


def test_stopping_early_stops_every_session():
    rng = random.Random(2)
    made: list = []
    par = _fake(4, rng, made, max_lookahead_frames=64)
    run = par.run(_batches(10_000, 10, 8))
    for i, _frames in enumerate(run):
        if i == 20:
            break
    run.close()
    assert _session_threads() == 0
    assert all(d.closed for d in made[1:])


def _auto_reader(path, sessions_allowed: int, keeps_up: bool | None = None, **kw) -> VideoReader:
    """A CPU reader whose automatic mode behaves as on a GPU with engines to spare.

    keeps_up fixes the consumer-speed verdict for tests about what comes after it: on a many-core
    host FFmpeg's frame threads can make a copying consumer look slow next to its decode."""
    reader = VideoReader(path, "cpu", **kw)
    reader._sessions_now = lambda: sessions_allowed  # noqa: SLF001 - what NVDEC would allow
    if keeps_up is not None:
        reader._consumer_keeps_up = lambda *_: keeps_up  # noqa: SLF001
    return reader


_MIB_360P = 640 * 360 * 3 // 2 / 2**20  # one 640x360 NV12 frame, in MiB


def test_automatic_mode_hands_over_to_sessions_when_the_consumer_keeps_up(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=240, width=640, height=360, gop=12)
    serial, _ = _read(clip, sessions=1)
    with _auto_reader(clip, 3) as reader:
        frames = list(reader)  # a consumer that only collects: faster than one decoder
        got = [(f.pts, f.error, f.numpy().copy()) for f in frames]
        assert reader.sessions_used >= 2
        assert reader.first_frame_latency is not None
    _same(serial, got)


@pytest.mark.parametrize("codec", ["hevc", "h264"])
def test_automatic_mode_hands_over_on_an_open_gop_stream(tmp_path, codec):
    # The reader's own decoder goes on as the first session up to the next open restart point: no
    # IDR is needed after the first picture to hand over (x265 writes none by default).
    if encoder_for(codec) is None:
        pytest.skip(f"no {codec} encoder")
    clip = make_clip(tmp_path / "c.mp4", codec, n=240, width=320, height=240, gop=12, bframes=3,
                     options=open_gop_options(codec))
    serial, _ = _read(clip, sessions=1)
    with _auto_reader(clip, 3, keeps_up=True) as reader:
        got = [(f.pts, f.error, f.numpy().copy()) for f in reader]
        assert reader.sessions_used >= 2
    _same(serial, got)


def test_automatic_mode_stays_serial_when_gops_outgrow_the_lookahead(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=240, width=640, height=360, gop=120,
                     options={"x264-params": "scenecut=0"})  # an IDR every 120 frames, no more
    with _auto_reader(clip, 3, lookahead_mib=100 * _MIB_360P) as reader:  # 100 frames: less than a GOP
        frames = list(reader)
        assert len(frames) == 240
        assert reader.sessions_used == 1 and reader._parallel is None  # noqa: SLF001
        assert reader.lookahead_mib == pytest.approx(100 * _MIB_360P)  # asked for: never grows


def _long_gop_clip(tmp_path):
    return make_clip(tmp_path / "c.mp4", "h264", n=720, width=640, height=360, gop=120,
                     options={"x264-params": "scenecut=0"})


def test_an_automatic_lookahead_grows_to_fit_long_gops_when_the_device_has_room(tmp_path):
    clip = _long_gop_clip(tmp_path)
    serial, _ = _read(clip, sessions=1)
    with _auto_reader(clip, 3, keeps_up=True) as reader:
        reader.lookahead_mib = 100 * _MIB_360P  # the floor, scaled down to less than a GOP
        reader._lookahead_room_mib = lambda: 1000 * _MIB_360P  # noqa: SLF001 - what the GPU would allow
        got = [(f.pts, f.error, f.numpy().copy()) for f in reader]
        assert reader.sessions_used >= 2
        # two GOPs for three sessions at once, and half a GOP to spare; within the room
        assert 240 * _MIB_360P <= reader.lookahead_mib <= 1000 * _MIB_360P
        assert reader.lookahead_mib == pytest.approx(300 * _MIB_360P)
    _same(serial, got)


def test_an_automatic_lookahead_settles_for_two_sessions_when_two_gops_do_not_fit(tmp_path):
    clip = _long_gop_clip(tmp_path)
    with _auto_reader(clip, 3, keeps_up=True) as reader:
        reader.lookahead_mib = 100 * _MIB_360P
        reader._lookahead_room_mib = lambda: 150 * _MIB_360P  # noqa: SLF001 - one GOP fits, two do not
        assert len(list(reader)) == 720
        assert reader._parallel is not None  # noqa: SLF001 - handed over
        assert reader.lookahead_mib == pytest.approx(150 * _MIB_360P)


def test_an_automatic_lookahead_stays_serial_when_not_even_one_gop_fits(tmp_path):
    clip = _long_gop_clip(tmp_path)
    with _auto_reader(clip, 3, keeps_up=True) as reader:
        reader.lookahead_mib = 100 * _MIB_360P
        reader._lookahead_room_mib = lambda: 100 * _MIB_360P  # noqa: SLF001 - no more memory to give
        assert len(list(reader)) == 720
        assert reader.sessions_used == 1 and reader._parallel is None  # noqa: SLF001
        assert reader.lookahead_mib == pytest.approx(100 * _MIB_360P)


def test_automatic_lookahead_room():
    gib = 2**30
    assert auto_lookahead_mib(80 * gib, readers=7, engines=7) == LOOKAHEAD_MIB  # no engine free
    assert auto_lookahead_mib(80 * gib, readers=9, engines=7) == LOOKAHEAD_MIB
    assert auto_lookahead_mib(80 * gib, readers=1, engines=7) == LOOKAHEAD_MAX_MIB
    assert auto_lookahead_mib(80 * gib, readers=4, engines=7) == pytest.approx(80 * 1024 / 8 / 4)
    assert auto_lookahead_mib(2 * gib, readers=1, engines=2) == LOOKAHEAD_MIB  # never below the default
    assert auto_lookahead_mib(80 * gib, readers=0, engines=7) == LOOKAHEAD_MAX_MIB


def test_lookahead_default_is_automatic(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=10)
    with VideoReader(clip, "cpu") as reader:
        assert reader.lookahead_mib == LOOKAHEAD_MIB and reader._auto_lookahead  # noqa: SLF001
        assert reader._lookahead_room_mib() >= LOOKAHEAD_MIB  # noqa: SLF001 - host memory on the CPU
    with VideoReader(clip, "cpu", lookahead_mib=64) as reader:
        assert reader.lookahead_mib == 64.0 and not reader._auto_lookahead  # noqa: SLF001


def test_automatic_mode_stays_serial_for_a_slow_consumer(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=90, gop=12)
    serial, _ = _read(clip, sessions=1)
    got = []
    with _auto_reader(clip, 3) as reader:
        for f in reader:
            got.append((f.pts, f.error, f.numpy().copy()))
            time.sleep(0.005)  # slower than decoding a 128x96 frame
        assert reader.sessions_used == 1 and reader._parallel is None  # noqa: SLF001
    _same(serial, got)
    assert _session_threads() == 0


def test_close_stops_the_sessions(tmp_path):
    # close() left the sessions' threads decoding ahead, on decoders closed or never closed, until
    # the iterator itself was collected.
    clip = make_clip(tmp_path / "c.mp4", "h264", n=120, width=160, height=96, gop=12)
    reader = VideoReader(clip, "cpu", sessions=3)
    it = iter(reader)
    next(it)
    reader.close()
    assert _session_threads() == 0
    p = reader._parallel
    assert all(w.decoder._closed for w in p._workers[1:] if w.decoder is not None)
    assert sum(1 for _ in it) == 0  # the iteration ends: not even the frames of the last batch
    assert _session_threads() == 0


@pytest.mark.parametrize("kw", [{}, {"loop": True}, {"sessions": 3}])
def test_close_from_another_thread_ends_the_iteration_cleanly(tmp_path, kw):
    # A reader stopped from another thread while it decodes: its CPU decoder's context went away
    # under the decode call (AttributeError in 2 of 3 runs).
    clip = make_clip(tmp_path / "c.mp4", "h264", n=120, width=320, height=240, gop=24)
    rng = random.Random(4)
    for _ in range(12):
        reader = VideoReader(clip, "cpu", **kw)
        outcome: list = []

        def iterate(r=reader, o=outcome):
            try:
                o.append(sum(1 for _ in r))
            except BaseException as exc:  # noqa: BLE001 - what the test is about
                o.append(exc)

        t = threading.Thread(target=iterate, daemon=True)
        t.start()
        time.sleep(rng.uniform(0, 0.08))
        reader.close()
        t.join(10)
        assert not t.is_alive() and isinstance(outcome[0], int), outcome
    with pytest.raises(errors.StateError, match="closed"):
        iter(reader).__next__()  # a reader already closed says so


@pytest.mark.parametrize("kw", [{}, {"loop": True}])
def test_close_ends_a_serial_iteration_too(tmp_path, kw):
    # It used to hand out the rest of the last batch, then raise "the demuxer is closed".
    clip = make_clip(tmp_path / "c.mp4", "h264", n=60, width=160, height=96, gop=12)
    reader = VideoReader(clip, "cpu", **kw)
    it = iter(reader)
    next(it)
    reader.close()
    assert list(it) == []


@pytest.mark.parametrize("sessions", [1, 2])
def test_a_looping_source_whose_next_pass_is_empty_ends(tmp_path, sessions):
    # A source whose seek does not bring it back: with sessions the reader sought forever.
    clip = make_clip(tmp_path / "c.mp4", "h264", n=36, width=160, height=96, gop=12)
    reader = VideoReader(clip, "cpu", loop=True, sessions=sessions)
    seeks = []
    reader.demuxer.seek = lambda pts_ns=0: seeks.append(pts_ns)
    got = []
    t = threading.Thread(target=lambda: got.extend(f.pts for f in reader), daemon=True)
    t.start()
    t.join(30)
    assert not t.is_alive() and len(got) == 36 and len(seeks) == 1
    reader.close()


@pytest.mark.parametrize("sessions", [2, 3])
def test_a_read_error_comes_after_the_frames_before_it(tmp_path, sessions):
    # The sessions read far ahead: a read error threw away every frame decoded or queued before it.
    clip = make_clip(tmp_path / "c.mp4", "h264", n=120, width=160, height=96, gop=12)
    reader = VideoReader(clip, "cpu", sessions=sessions)
    read = reader.demuxer.read_batch
    count = [0]

    def failing(n=8):
        if count[0] >= 90:
            raise errors.SourceError(f"reading '{clip}' failed: simulated")
        batch = read(min(n, 90 - count[0]))
        count[0] += len(batch)
        return batch

    reader.demuxer.read_batch = failing
    got = []
    with pytest.raises(errors.SourceError, match="simulated"):
        for f in reader:
            got.append(f.pts)
    reader.close()
    assert len(got) == 90 and got == sorted(got)


def test_a_session_decoder_leaves_leading_damage_to_the_frame_flags(tmp_path):
    # A further session starts at any segment: 64 damaged packets before its first frame are
    # damage to flag, not "a stream that is not its codec" (that check stays on for a decoder).
    from pysm.codec import Decoder, Demuxer

    clip = make_clip(tmp_path / "c.mp4", "h264", n=12, width=160, height=96, gop=12)
    with Demuxer(clip) as d:
        info = d.info
    junk = [bytes(random.Random(i).randbytes(200)) for i in range(400)]  # FFmpeg rejects only some
    quiet = Decoder(info, "cpu")
    quiet.report_empty = False
    for j in junk:
        quiet.decode(j)
    assert quiet.stats["errors"] > 0
    loud = Decoder(info, "cpu")
    with pytest.raises(errors.DecodeError, match="no frame came out"):
        for j in junk:
            loud.decode(j)
    quiet.close()
    loud.close()


def test_a_reader_in_a_cycle_with_its_iterator_is_collected(tmp_path):
    # The sessions' threads held the run, and the run held the reader's methods: a reader that
    # kept its own iterator was never collected, and its threads ran on.
    import gc
    import weakref

    clip = make_clip(tmp_path / "c.mp4", "h264", n=120, width=160, height=96, gop=12)
    reader = VideoReader(clip, "cpu", sessions=3)
    reader.frames_iter = iter(reader)
    next(reader.frames_iter)
    ref = weakref.ref(reader)
    del reader
    for _ in range(50):
        gc.collect()
        if ref() is None and _session_threads() == 0:
            break
        time.sleep(0.05)
    assert ref() is None and _session_threads() == 0


def test_a_collection_inside_a_session_thread_does_not_stall_it(tmp_path, monkeypatch):
    # A reader kept in a cycle with its iterator is collected now; when that collection ran in a
    # session thread holding the run's lock, stop() joined the other sessions, which needed the
    # lock to see the stop: 30 s per session.
    import gc

    from pysm.codec import parallel

    clip = make_clip(tmp_path / "c.mp4", "h264", n=240, width=160, height=96, gop=12)
    armed = threading.Event()
    took = []
    deliver = parallel.ParallelDecode._deliver

    def collecting(self, seg, frames):  # stands in for an automatic collection under the lock
        if armed.is_set() and threading.current_thread().name.startswith("pysm-decode-session"):
            with self._cv:
                armed.clear()
                t = time.monotonic()
                gc.collect()
                took.append(time.monotonic() - t)
        return deliver(self, seg, frames)

    monkeypatch.setattr(parallel.ParallelDecode, "_deliver", collecting)
    gc.disable()
    try:
        reader = VideoReader(clip, "cpu", sessions=2, lookahead_mib=64)
        it = iter(reader)
        reader.cycle = it
        for _ in range(30):
            next(it)
        del reader, it
        armed.set()
        deadline = time.monotonic() + 20
        while (not took or _session_threads()) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        gc.enable()
    assert took and took[0] < 5 and _session_threads() == 0, (took, _session_threads())
