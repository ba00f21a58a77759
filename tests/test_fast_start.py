"""Fast start (pysm.codec.fast_start): the first frame decoded on the CPU while the hardware session is
created, then the hardware decodes alone and its copy of that frame is dropped.

CPU: the hand-over logic, with a CPU decoder that waits at a gate standing in for NVDEC creating its
session. GPU (``gpu``): NVDEC with the fast start against NVDEC without it, frame for frame.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from codec_media import encoder_for, make_clip

import pysm.codec
from pysm import errors
from pysm.codec import Decoder, Demuxer, VideoReader
from pysm.codec.decoder import _CpuBackend
from pysm.codec.fast_start import FastStart


class _Gated:
    """A CPU backend whose first call blocks until ``gate`` is set: the driver creating a session."""

    def __init__(self, info, fail: Exception | None = None) -> None:
        self.inner = _CpuBackend(info, False, None, 0)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.first_done = threading.Event()
        self.fail = fail
        self.closed_after_first = None
        self.calls = 0  # calls that reached the decoder

    def _first(self):
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(30)
            self.first_done.set()
            if self.fail is not None:
                raise self.fail

    def decode(self, packet, pts):
        self._first()
        self.calls += 1
        return self.inner.decode(packet, pts)

    def decode_many(self, packets, offset):
        if len(packets):
            self._first()
        self.calls += 1
        return self.inner.decode_many(packets, offset)

    def flush(self):
        self._first()
        return self.inner.flush()

    def starts_sequence(self, packet):
        return self.inner.starts_sequence(packet)

    @property
    def stats(self):
        return self.inner.stats

    def close(self):
        self.closed_after_first = self.first_done.is_set()
        self.inner.close()


def _fast(info, hw):
    return FastStart(hw, lambda: _CpuBackend(info, True, None, 0), info, 0, upload=lambda f: f)


def _packets(path):
    with Demuxer(path) as d:
        out = []
        while True:
            batch = d.read_batch(8)
            if not batch:
                return d.info, out
            out += batch


def _reference(path):
    info, packets = _packets(path)
    dec = Decoder(info, "cpu")
    return dec.decode_many(packets) + dec.flush()


def _same_frames(got, ref):
    assert [f.pts for f in got] == [f.pts for f in ref]
    for g, r in zip(got, ref):
        assert (g.format, g.width, g.height, g.matrix, g.range) == (r.format, r.width, r.height, r.matrix, r.range)
        assert np.array_equal(g.numpy(), r.numpy())


@pytest.fixture(scope="module")
def h264(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("fast") / "b.mp4", "h264", n=30, width=160, height=96, bframes=2, gop=12)


def test_first_frame_comes_out_while_the_hardware_waits(h264):
    info, packets = _packets(h264)
    hw = _Gated(info)
    fs = _fast(info, hw)
    first = fs.decode_many(packets[:1], 0)
    assert len(first) == 1 and fs.used and fs.stats["fast_start"]
    assert hw.entered.wait(10) and not hw.first_done.is_set()  # handed out while the "driver" works
    hw.gate.set()
    frames = first
    for i in range(1, len(packets), 4):
        frames += fs.decode_many(packets[i:i + 4], 0)
    frames += fs.flush()
    _same_frames(frames, _reference(h264))
    assert fs.dropped_leading == 0


@pytest.mark.parametrize("single", [True, False], ids=["decode", "decode_many"])
def test_cpu_first_frame_with_an_offset(h264, single):
    """The CPU's frame, given out while the hardware waits, and then the hardware's, carry the pts
    offset (looping) and match the plain decode, whether packets come one by one or in batches."""
    info, packets = _packets(h264)
    hw = _Gated(info)
    fs = _fast(info, hw)
    off = 5_000_000_000
    if single:
        first = fs.decode(packets[0], None)
    else:
        first = fs.decode_many(packets[:1], off)
    assert len(first) == 1 and fs.used and not hw.first_done.is_set()
    hw.gate.set()
    frames = first
    if single:
        for p in packets[1:]:
            frames += fs.decode(p, None)
    else:
        frames += fs.decode_many(packets[1:], off)
    frames += fs.flush()
    ref = _reference(h264)
    assert [f.pts for f in frames] == [f.pts + (0 if single else off) for f in ref]


def test_the_cpu_frame_takes_the_timestamp_the_hardware_will_give(h264):
    """Explicit timestamps (``(packet, pts)`` items, ``decode(packet, pts)``) win over the packet's
    own, on the CPU's frame as in the native decoder; an untimed first packet starts no race."""
    from pysm.codec.demux import Packet

    info, packets = _packets(h264)
    hw = _Gated(info)
    fs = _fast(info, hw)
    assert [f.pts for f in fs.decode_many([(packets[0], 7_000_000_000)], 11)] == [7_000_000_011]
    hw.gate.set()
    hw = _Gated(info)
    fs = _fast(info, hw)
    assert [f.pts for f in fs.decode(packets[0], 3_000_000_000)] == [3_000_000_000]
    hw.gate.set()
    hw = _Gated(info)
    hw.gate.set()
    fs = _fast(info, hw)
    fs.decode(Packet(bytes(packets[0]), pts=-1, key=True), None)
    assert not fs.used


def test_the_hardware_wins_when_the_cpu_is_slower(h264):
    """A first picture the CPU decodes slower than the driver makes its session (a large H.264 IDR)
    costs nothing: NVDEC's frames go out and the CPU's frame is never uploaded."""
    info, packets = _packets(h264)
    hw = _Gated(info)
    hw.gate.set()
    slow = threading.Event()
    uploads = []

    def make_cpu():
        b = _CpuBackend(info, True, None, 0)
        orig = b.decode_many
        b.decode_many = lambda p, o: (slow.wait(10), orig(p, o))[1]
        return b

    fs = FastStart(hw, make_cpu, info, 0, upload=lambda f: uploads.append(f) or f)
    frames = fs.decode_many(packets[:1], 0)
    assert not fs.used and hw.first_done.is_set()
    slow.set()
    for t in threading.enumerate():
        if t.name == "pysm-fast-start-cpu":
            t.join(10)
    frames += fs.decode_many(packets[1:], 0) + fs.flush()
    _same_frames(frames, _reference(h264))
    assert uploads == []


@pytest.mark.parametrize("error, raised", [
    (errors.DecodeError("every packet rejected"), False),   # a rejected packet: the stream goes on
    (errors.UnsupportedError("no session for this stream"), True),  # nothing more will decode
])
def test_a_hardware_error_after_the_cpu_frame(h264, error, raised):
    """NVDEC rejecting the first packet (which the CPU showed) does not cost the next call's
    packets; an error that ends the stream is raised at the next call."""
    info, packets = _packets(h264)
    hw = _Gated(info, fail=error)
    fs = _fast(info, hw)
    assert len(fs.decode_many(packets[:1], 0)) == 1
    hw.gate.set()
    if raised:
        with pytest.raises(type(error), match=str(error)):
            fs.decode_many(packets[1:3], 0)
    else:
        fs.decode_many(packets[1:3], 0)
        assert hw.calls == 1  # this call's packets went in


def test_no_race_when_the_first_packet_does_not_start_a_sequence(h264):
    info, packets = _packets(h264)
    hw = _Gated(info)
    hw.gate.set()
    fs = _fast(info, hw)
    fs.decode_many(packets[1:2], 0)  # a P/B picture: nothing to show on its own
    assert not fs.used and hw.first_done.is_set()


def test_no_race_for_an_h264_picture_the_cpu_cannot_decode_first(h264, monkeypatch):
    """An H.264 first packet above the size FFmpeg decodes within the driver's session time goes
    to NVDEC alone (the race would only slow it)."""
    from pysm.codec import fast_start

    info, packets = _packets(h264)
    monkeypatch.setattr(fast_start, "_H264_RACE_MAX_BYTES", packets[0].size - 1)
    hw = _Gated(info)
    hw.gate.set()
    fs = _fast(info, hw)
    fs.decode_many(packets[:1], 0)
    assert not fs.used and hw.first_done.is_set()
    monkeypatch.setattr(fast_start, "_H264_RACE_MAX_BYTES", packets[0].size)
    fs = _fast(info, _Gated(info))
    assert len(fs.decode_many(packets[:1], 0)) == 1 and fs.used  # at the limit: raced
    fs._hw.gate.set()


def test_an_empty_first_call_keeps_the_fast_start(h264):
    info, packets = _packets(h264)
    hw = _Gated(info)
    fs = _fast(info, hw)
    assert fs.decode_many([], 0) == []
    assert len(fs.decode_many(packets[:1], 0)) == 1 and fs.used
    hw.gate.set()


def test_no_race_on_a_first_call_of_several_packets(h264):
    info, packets = _packets(h264)
    hw = _Gated(info)
    threading.Timer(0.3, hw.gate.set).start()  # a race would be the CPU's
    fs = _fast(info, hw)
    frames = fs.decode_many(packets, 0) + fs.flush()
    assert not fs.used
    _same_frames(frames, _reference(h264))


@pytest.mark.skipif(not encoder_for("hevc"), reason="no HEVC encoder")
def test_no_race_at_an_idr_that_may_have_leading_pictures(tmp_path):
    """Decoding from an HEVC IDR_W_RADL (a seek into an x265 stream with RADL pictures): the pictures
    after it in decoding order shown before it must not be lost; the race is skipped there."""
    clip = make_clip(tmp_path / "radl.mp4", "hevc", n=30, width=160, height=96, gop=10,
                     options={"x265-params": "bframes=2:keyint=10:open-gop=0:radl=2:log-level=none"})
    info, packets = _packets(clip)
    conv = pysm.codec.AnnexBConverter("hevc", info.extradata)
    at = next(i for i, p in enumerate(packets) if i and p.is_keyframe)
    assert conv.starts_sequence(packets[at], True) and not conv.starts_sequence(packets[at], True, True)
    assert conv.starts_sequence(packets[0], True, True)  # the stream's first IDR has none
    tail = packets[at:]
    ref = Decoder(info, "cpu")
    ref_frames = ref.decode_many(tail) + ref.flush()
    hw = _Gated(info)
    threading.Timer(0.3, hw.gate.set).start()  # a race would be the CPU's
    fs = _fast(info, hw)
    frames = []
    for p in tail:
        frames += fs.decode_many([p], 0)
    frames += fs.flush()
    assert not fs.used and fs.dropped_leading == 0
    _same_frames(frames, ref_frames)


def test_no_cpu_frame_for_interlaced_pictures(tmp_path):
    """NVDEC deinterlaces interlaced content, FFmpeg does not: such a first frame is never the CPU's."""
    clip = make_clip(tmp_path / "il.mp4", "h264", n=10, width=160, height=96,
                     options={"x264-params": "interlaced=1:tff=1"})
    info, packets = _packets(clip)
    hw = _Gated(info)
    fs = _fast(info, hw)
    threading.Timer(0.3, hw.gate.set).start()
    fs.decode_many(packets[:1], 0)
    assert not fs.used


def test_close_waits_for_the_hardware_call(h264):
    info, packets = _packets(h264)
    hw = _Gated(info)
    fs = _fast(info, hw)
    fs.decode_many(packets[:1], 0)
    threading.Timer(0.2, hw.gate.set).start()
    fs.close()
    assert hw.closed_after_first is True


class _F:
    def __init__(self, pts):
        self.pts = pts
        self.error = False


class _Fake:
    """Backends giving made-up frames: the hardware shows ``hw_pts`` at its first call."""

    def __init__(self, hw_pts):
        self.hw_pts = hw_pts

    def decode_many(self, packets, offset):
        out, self.hw_pts = [_F(p) for p in self.hw_pts], []
        return out

    def flush(self):
        return []

    def starts_sequence(self, packet):
        return True

    def close(self):
        pass


class _FakeCpu(_Fake):
    def decode_many(self, packets, offset):
        return [_F(100)]


def _idr_packet():
    from pysm.codec.demux import Packet

    return Packet(b"\x00\x00\x00\x01\x65\x88\x84\x00", pts=100, key=True)  # an Annex-B H.264 IDR slice


@pytest.mark.parametrize("hw_pts, kept, leading", [
    ([100, 110], [110], 0),       # NVDEC's copy of the CPU's frame is dropped
    ([90, 100, 110], [110], 1),   # a leading picture cannot follow a frame already out: dropped
    ([110, 120], [110, 120], 0),  # NVDEC never showed that picture: nothing of its own is dropped
])
def test_dedupe(hw_pts, kept, leading):
    from fractions import Fraction

    info = type("Info", (), {"codec": "h264", "uri": "x", "bit_depth": 8, "width": 2, "height": 2,
                             "time_base": Fraction(1, 1000), "extradata": b""})()
    fs = FastStart(_Fake(hw_pts), lambda: _FakeCpu([]), info, 0, upload=lambda f: f)
    gate = threading.Event()
    orig = fs._hw.decode_many
    fs._hw.decode_many = lambda p, o: (gate.wait(10), orig(p, o))[1]
    assert [f.pts for f in fs.decode_many([_idr_packet()], 0)] == [100]
    gate.set()
    assert [f.pts for f in fs.decode_many([_idr_packet()], 0)] == kept
    assert fs.dropped_leading == leading


def test_eligibility():
    from pysm.codec.demux import StreamInfo

    from fractions import Fraction

    base = dict(uri="x", width=1920, height=1080, fps=Fraction(30), time_base=Fraction(1, 90000), chroma="420",
                bit_depth=8)
    assert FastStart.eligible(StreamInfo(codec="h264", **base), None)
    assert FastStart.eligible(StreamInfo(codec="hevc", **{**base, "bit_depth": 10}), None)
    assert not FastStart.eligible(StreamInfo(codec="h264", **base), (640, 360))  # NVDEC's scaler
    assert not FastStart.eligible(StreamInfo(codec="mpeg2video", **base), None)  # IDCT not exact
    assert not FastStart.eligible(StreamInfo(codec="hevc", **{**base, "chroma": "444"}), None)
    assert not FastStart.eligible(StreamInfo(codec="hevc", **{**base, "bit_depth": 12}), None)


def test_cpu_decoder_is_never_wrapped(h264):
    with VideoReader(h264, "cpu") as r:
        list(r)
        assert "fast_start" not in r.decoder.stats


# ---- GPU: NVDEC with the fast start against NVDEC without it ---------------------------------------

@pytest.fixture(scope="module")
def nvdec():
    try:
        return pysm.codec.nvdec_capabilities(0)
    except errors.DriverError as exc:
        if os.environ.get("PYSM_REQUIRE_GPU") == "1":
            pytest.fail(f"PYSM_REQUIRE_GPU=1 but NVDEC is unavailable: {exc}")
        pytest.skip(f"NVDEC unavailable: {exc}")


@pytest.fixture
def no_cache():
    before = pysm.codec.decoder_cache_info()
    pysm.codec.configure_decoder_cache(enabled=False)
    yield
    pysm.codec.configure_decoder_cache(enabled=before["enabled"])


def _gpu_clips(root):
    out = {"h264": make_clip(root / "h264.mp4", "h264", n=30, width=320, height=240, bframes=2, gop=10, seed=3)}
    if encoder_for("hevc"):
        out["hevc"] = make_clip(root / "hevc.mp4", "hevc", n=30, width=320, height=240, gop=10, seed=4)
        out["hevc10"] = make_clip(root / "hevc10.mp4", "hevc", n=16, width=320, height=240,
                                  pix_fmt="yuv420p10le", seed=5)
    return out


def _read(path, fast):
    with VideoReader(path, "cuda", fast_start=fast) as r:
        frames = list(r)
        return frames, r.decoder.stats


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["h264", "hevc", "hevc10"])
def test_gpu_fast_start_gives_nvdec_frames(nvdec, no_cache, tmp_path, kind):
    clips = _gpu_clips(tmp_path)
    if kind not in clips:
        pytest.skip(f"no encoder for {kind}")
    fast, st = _read(clips[kind], True)
    slow, st_slow = _read(clips[kind], False)
    assert st["fast_start"] and "fast_start" not in st_slow
    assert fast[0].device == "cuda:0" and len(fast) == len(slow) > 10
    _same_frames(fast, slow)  # exact: H.264/HEVC decoding is bit-exact by specification
    assert st["displayed"] == st_slow["displayed"] == len(slow)  # NVDEC showed its own copy too (dropped)


@pytest.mark.gpu
def test_gpu_fast_start_steps_aside_for_a_parked_session(nvdec, tmp_path):
    clip = _gpu_clips(tmp_path)["h264"]
    before = pysm.codec.decoder_cache_info()
    pysm.codec.configure_decoder_cache(enabled=True)
    try:
        _read(clip, True)  # parks its session on close
        frames, st = _read(clip, True)
        assert not st["fast_start"] and st["sessions_reused"] == 1 and len(frames) == 30
    finally:
        pysm.codec.configure_decoder_cache(enabled=before["enabled"])


@pytest.mark.gpu
def test_gpu_fast_start_rgb_output_and_close_after_first_frame(nvdec, no_cache, tmp_path):
    clip = _gpu_clips(tmp_path)["h264"]
    with VideoReader(clip, "cuda", output_format="RGB") as r:
        first = next(iter(r))
        assert r.decoder.stats["fast_start"]
    with VideoReader(clip, "cuda", output_format="RGB", fast_start=False) as r:
        ref = next(iter(r))
    assert first.format == ref.format and np.array_equal(first.numpy(), ref.numpy())


@pytest.mark.gpu
def test_gpu_no_fast_start_at_an_idr_with_leading_pictures(nvdec, no_cache, tmp_path):
    """From an HEVC IDR_W_RADL on (a seek into a stream with RADL pictures) NVDEC decodes alone and
    shows the leading pictures, as it does without the fast start."""
    if not encoder_for("hevc"):
        pytest.skip("no HEVC encoder")
    clip = make_clip(tmp_path / "radl.mp4", "hevc", n=30, width=320, height=240, gop=10,
                     options={"x265-params": "bframes=2:keyint=10:open-gop=0:radl=2:log-level=none"})
    info, packets = _packets(clip)
    at = next(i for i, p in enumerate(packets) if i and p.is_keyframe)

    def run(fast):
        dec = Decoder(info, "cuda", fast_start=fast)
        frames = []
        for p in packets[at:]:
            frames += dec.decode_many([p])
        frames += dec.flush()
        st = dec.stats
        dec.close()
        return frames, st

    fast, st = run(True)
    slow, _ = run(False)
    assert not st["fast_start"] and len(fast) == len(slow) >= 18
    _same_frames(fast, slow)


def test_an_interrupted_close_still_closes_the_hardware(h264):
    info, packets = _packets(h264)
    hw = _Gated(info)
    fs = _fast(info, hw)
    fs.decode_many(packets[:1], 0)

    def interrupted(raise_error=True):
        raise KeyboardInterrupt

    real_join = fs._join
    fs._join = interrupted
    with pytest.raises(KeyboardInterrupt):
        fs.close()
    assert hw.closed_after_first is False  # closed although the helper was still inside its call
    hw.gate.set()
    real_join(raise_error=False)
