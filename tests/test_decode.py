"""CPU decode path, demux, Annex-B conversion and colour conversion (no GPU needed)."""

from __future__ import annotations

import gc
import itertools
import os
import threading
from fractions import Fraction

import numpy as np
import pytest

from codec_media import (annexb_file, encode_into, encoder_for, make_clip, open_gop_options, random_nv12,
                         reference_planes, split_nv12, yuv_to_rgb_float32_twin, yuv_to_rgb_reference)

import pysm
from pysm import errors
from pysm._native import _core
import pysm.codec.demux as demux_module
from pysm.codec import AnnexBConverter, Decoder, Demuxer, Packet, VideoReader, convert, parse_device
from pysm.utils import MediaInfo

CODECS_8BIT = [c for c in ("h264", "hevc", "mpeg4", "mjpeg", "mpeg2video", "vp9", "av1") if encoder_for(c)]
_MKV = ("mjpeg", "mpeg2video", "vp9", "av1")  # kept in Matroska (mp4 takes them less readily)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    out = {}
    for codec in CODECS_8BIT:
        ext = "mkv" if codec in _MKV else "mp4"
        out[codec] = make_clip(root / f"{codec}.{ext}", codec, n=20, width=128, height=96)
    return out


def _decode_all(path, device="cpu", **kw):
    with VideoReader(path, device, **kw) as r:
        return list(r), r


@pytest.mark.parametrize("codec", CODECS_8BIT)
def test_cpu_decode_matches_pyav(clips, codec):
    path = clips[codec]
    frames, reader = _decode_all(path)
    ref = reference_planes(path)
    assert reader.device == "cpu"
    # The codec's own name, not the decoder FFmpeg picked (libdav1d for AV1): NVDEC keys on it.
    assert reader.info.codec == codec
    assert len(frames) == len(ref) == 20
    pts = [f.pts for f in frames]
    assert pts == sorted(pts) and len(set(pts)) == len(pts), "pts must increase strictly"
    assert pts == [r[0] for r in ref]
    for f, (_, y, u, v) in zip(frames, ref):
        assert f.format == "NV12" and f.device == "cpu" and not f.error
        assert (f.width, f.height) == (128, 96)
        fy, fu, fv = split_nv12(f.numpy(), f.width, f.height)
        np.testing.assert_array_equal(fy, y)
        np.testing.assert_array_equal(fu, u)
        np.testing.assert_array_equal(fv, v)
    if codec == "mjpeg":
        assert frames[0].range == "full"


def test_bframes_are_reordered(clips):
    # libx264 with bf=2: decode order differs from display order; output must be display order.
    with Demuxer(clips["h264"]) as d:
        packet_pts = [p.pts for p in d]
    assert packet_pts != sorted(packet_pts), "the clip should contain B-frames"
    frames, _ = _decode_all(clips["h264"])
    assert [f.pts for f in frames] == sorted(packet_pts)


@pytest.mark.skipif(not encoder_for("hevc"), reason="this PyAV wheel has no HEVC encoder")
def test_cpu_decode_10bit_hevc_to_p016(tmp_path):
    path = make_clip(tmp_path / "hevc10.mp4", "hevc", n=8, pix_fmt="yuv420p10le")
    info = Demuxer(path).info
    assert info.bit_depth == 10
    frames, _ = _decode_all(path)
    ref = reference_planes(path)
    assert len(frames) == len(ref) == 8
    for f, (_, y, u, v) in zip(frames, ref):
        assert f.format == "P016"
        arr = f.numpy()
        assert arr.dtype == np.uint16
        fy, fu, fv = split_nv12(arr, f.width, f.height)
        np.testing.assert_array_equal(fy, y.astype(np.uint16) << 6)
        np.testing.assert_array_equal(fu, u.astype(np.uint16) << 6)
        np.testing.assert_array_equal(fv, v.astype(np.uint16) << 6)


def test_stream_info_and_packets(clips):
    with Demuxer(clips["h264"]) as d:
        info = d.info
        assert (info.codec, info.width, info.height) == ("h264", 128, 96)
        assert info.fps == Fraction(30) and info.framerate == (30, 1)
        assert info.bit_depth == 8 and info.chroma == "420" and not info.is_live
        assert info.frame_count == 20
        assert 600_000_000 <= info.duration <= 700_000_000
        assert info.extradata[:1] == b"\x01", "mp4 carries an avcC record"
        packets = list(d)
    assert len(packets) == 20 and packets[0].key
    first = packets[0]
    assert isinstance(first, Packet) and first.size == len(memoryview(first.data)) > 0
    dts = [p.dts for p in packets]
    assert dts == sorted(dts), "packets come in decode order"


def test_demuxer_errors(tmp_path):
    with pytest.raises(errors.SourceError, match="not found"):
        Demuxer(tmp_path / "missing.mp4")
    with pytest.raises(FileNotFoundError.__mro__[1]):  # SourceError is an OSError
        Demuxer(tmp_path / "missing.mp4")
    blob = tmp_path / "blob.dat"
    blob.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(errors.SourceError):
        Demuxer(blob)


def test_decoder_accepts_raw_buffers_with_pts(clips):
    with Demuxer(clips["h264"]) as d:
        info = d.info
        packets = [(bytes(p.data), p.pts) for p in d]
    dec = Decoder(info, "cpu")
    out = []
    for data, pts in packets:
        out += dec.decode(memoryview(data), pts=pts)
    out += dec.flush()
    assert len(out) == 20
    assert [f.pts for f in out] == sorted(p for _, p in packets)
    dec.close()
    with pytest.raises(errors.StateError):
        dec.decode(packets[0][0])


def test_reader_loop_keeps_pts_increasing(clips):
    with VideoReader(clips["h264"], "cpu", loop=True) as r:
        frames = []
        for f in r:
            frames.append(f)
            if len(frames) == 45:
                break
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in zip(pts, pts[1:]))
    step = pts[1] - pts[0]
    assert pts[20] - pts[19] == step, "the second pass continues one frame after the first"
    np.testing.assert_array_equal(frames[0].numpy(), frames[20].numpy())
    assert r.first_frame_latency is not None and r.first_frame_latency < 5


def test_the_frame_clock_does_not_drift():
    """Untimed frames are k frame durations after the last timed one, rounded once: frame 48 at
    30 fps is at 1.6 s exactly; a timed frame sets the clock."""
    from types import SimpleNamespace

    from pysm.codec.decoder import FrameClock

    clock = FrameClock(30)
    frames = [SimpleNamespace(pts=-1) for _ in range(49)]
    clock.stamp(frames[:7])
    clock.stamp(frames[7:])
    assert frames[0].pts == 0 and frames[48].pts == 1_600_000_000 and frames[1].pts == 33_333_333
    timed, after = SimpleNamespace(pts=5_000_000_000), SimpleNamespace(pts=-1)
    clock.stamp([timed, after])
    assert (timed.pts, after.pts) == (5_000_000_000, 5_033_333_333)
    clock.restart()
    again = SimpleNamespace(pts=-1)
    clock.stamp([again])
    assert again.pts == 0
    unknown = SimpleNamespace(pts=-1)
    FrameClock(0).stamp([unknown])
    assert unknown.pts == -1  # no rate: left unknown


@pytest.mark.parametrize("rate", [24, Fraction(30000, 1001), 60])
@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_a_raw_stream_is_timed_at_the_rate_its_sps_gives(tmp_path, codec, rate):
    if not encoder_for(codec):
        pytest.skip(f"no {codec} encoder")
    if codec == "h264":
        raw = annexb_file(make_clip(tmp_path / "r.mp4", "h264", n=10, rate=rate), tmp_path / "r.h264")
    else:
        raw = make_clip(tmp_path / "r.hevc", "hevc", n=10, rate=rate)  # FFmpeg's raw HEVC muxer
    with Demuxer(raw) as d:
        assert d.info.container == codec and d.info.fps == rate


def test_a_loop_over_a_cut_mp4_has_no_gap_between_passes(tmp_path):
    """An MP4 whose edit list hides the packets before its first shown frame (a stream-copy cut
    decodes from the keyframe before it): the next pass follows one frame after the last."""
    path = make_clip(tmp_path / "cut.mp4", "h264", n=30, bframes=0, gop=10, first_pts=-15)
    with VideoReader(path, "cpu") as r:
        one = [f.pts for f in r]
    with VideoReader(path, "cpu", loop=True) as r:
        pts = [f.pts for f in itertools.islice(r, 2 * len(one) + 1)]
    step = one[1] - one[0]
    assert len(one) == 15 and pts[:len(one)] == one
    assert abs(pts[len(one)] - pts[len(one) - 1] - step) <= 1
    assert all(abs((b - a) - step) <= 1 for a, b in zip(pts, pts[1:]))



@pytest.mark.parametrize("bframes", [0, 2])
def test_discard_packets_are_decoded_and_not_shown(tmp_path, bframes):
    """The pre-roll an MP4 edit list hides comes out of the Demuxer as Packet.discard; the CPU
    decoder shows none of it, whether it gets the demuxed packets (FFmpeg drops their frames) or
    copies timed by hand (pysm marks them), and the frames it shows are the same."""
    path = make_clip(tmp_path / "cut.mp4", "h264", n=30, bframes=bframes, gop=10, first_pts=-5)
    with Demuxer(path) as d:
        info = d.info
        pkts = list(d)
    hidden = [p for p in pkts if p.discard]
    assert len(hidden) == 5 and all(p.pts < 0 for p in hidden)
    assert not any(p.discard for p in pkts if p.pts >= 0)
    shown = {}
    for how in ("demuxed", "copied"):
        with Decoder(info, "cpu") as dec:
            frames = []
            for p in pkts:
                if how == "copied":
                    p = Packet(bytes(p.data), p.pts, p.dts, key=p.key, discard=p.discard)
                frames += dec.decode(p)
            frames += dec.flush()
        shown[how] = [(f.pts, f.numpy().tobytes()) for f in frames]
    assert [t for t, _ in shown["demuxed"]] == sorted(p.pts for p in pkts if not p.discard)
    assert shown["copied"] == shown["demuxed"]


def _packets(path):
    with Demuxer(path) as d:
        info, pkts = d.info, []
        while batch := d.read_batch(16):
            pkts += batch
    return info, pkts


@pytest.mark.parametrize("codec,ext", [("h264", "mp4"), ("h264", "ts"), ("hevc", "mp4"), ("vp9", "mkv"),
                                       ("mpeg4", "mp4"), ("mjpeg", "mkv")])
def test_starts_sequence_finds_clean_restart_points(tmp_path, codec, ext):
    # A looped file continues into its next pass without a decoder flush only from a picture that
    # needs nothing before it: H.264/HEVC IDR (found in the NAL headers, AVCC or Annex-B), or a key
    # frame of VP9/MJPEG. MPEG-4 is never treated as clean (open GOPs).
    if not encoder_for(codec):
        pytest.skip(f"no {codec} encoder")
    info, pkts = _packets(make_clip(tmp_path / f"c.{ext}", codec, n=30, gop=12))
    conv = AnnexBConverter(info.codec, info.extradata or b"")
    clean = [conv.starts_sequence(p, bool(p.is_keyframe)) for p in pkts]
    if codec == "mpeg4":
        assert not any(clean)
        return
    assert clean[0]
    if codec == "mjpeg":
        assert all(clean)
    else:
        assert not all(clean), "inter pictures are not restart points"
        assert all(p.is_keyframe for p, c in zip(pkts, clean) if c)


@pytest.mark.parametrize("ext", ["mp4", "ts"])
def test_picture_roles_of_an_open_gop_hevc_stream(tmp_path, ext):
    # x265's open GOP: an IDR, then CRA key frames, each followed in decoding order by leading
    # (RASL) pictures shown before it. Found in HVCC (MP4) and Annex-B (TS) packets alike.
    if not encoder_for("hevc"):
        pytest.skip("no hevc encoder")
    info, pkts = _packets(make_clip(tmp_path / f"c.{ext}", "hevc", n=40, gop=12, bframes=3,
                                    options=open_gop_options("hevc")))
    conv = AnnexBConverter(info.codec, info.extradata or b"")
    roles = [conv.picture_role(p, bool(p.is_keyframe)) for p in pkts]
    assert roles[0] == 1
    cras = [i for i, r in enumerate(roles) if r == 2]
    assert len(cras) >= 2 and all(pkts[i].is_keyframe for i in cras)
    assert all(roles[i + 1] == 3 for i in cras if i + 1 < len(roles))
    for i, r in enumerate(roles):
        if r == 3:
            cra = max(c for c in cras if c < i)
            assert pkts[i].pts < pkts[cra].pts, "a leading picture is shown before its CRA"
    assert [r == 1 for r in roles] == [conv.starts_sequence(p, bool(p.is_keyframe)) for p in pkts]


def _open_gop_h264(path, bframes=3, pyramid="normal", **x264):
    return make_clip(path, "h264", n=40, gop=12, bframes=bframes,
                     options=open_gop_options("h264", bframes=bframes, **{"b-pyramid": pyramid}, **x264))


@pytest.mark.parametrize("pyramid", ["none", "normal"])
@pytest.mark.parametrize("ext", ["mp4", "ts", "mkv"])
def test_picture_roles_of_an_open_gop_h264_stream(tmp_path, ext, pyramid):
    # x264's open GOP: an IDR, then I pictures with a recovery point SEI, each followed in decoding
    # order by B pictures shown before it (its leading pictures). H.264 has no NAL type for those:
    # their picture order counts, read from the slice headers, must tell exactly the pictures the
    # container shows before the restart point.
    if not encoder_for("h264") == "libx264":
        pytest.skip("no libx264")
    info, pkts = _packets(_open_gop_h264(tmp_path / f"c.{ext}", pyramid=pyramid))
    conv = AnnexBConverter(info.codec, info.extradata or b"")
    roles = [conv.picture_role(p, bool(p.is_keyframe)) for p in pkts]
    assert roles[0] == 1 and set(roles[1:]) == {0, 2}, roles
    opens = [i for i, r in enumerate(roles) if r == 2]
    assert len(opens) >= 2 and all(pkts[i].is_keyframe for i in opens)
    for i in opens:
        leading = [conv.leads(p, pkts[i]) for p in pkts[i + 1:i + 12]]
        assert leading == [p.pts < pkts[i].pts for p in pkts[i + 1:i + 12]]
        assert leading[:2] == [True, True] and leading.count(True) in (2, 3) and not any(leading[3:])
    assert not any(conv.leads(p, pkts[0]) for p in pkts[1:12]), "an IDR has no leading pictures"


class _Bits:
    """An H.264 RBSP writer: fixed-width and Exp-Golomb fields, then the NAL unit with its
    emulation prevention bytes."""

    def __init__(self) -> None:
        self.bits = ""

    def u(self, n: int, v: int) -> "_Bits":
        self.bits += format(v, f"0{n}b") if n else ""
        return self

    def ue(self, v: int) -> "_Bits":
        code = format(v + 1, "b")
        return self.u(len(code) - 1, 0).u(len(code), v + 1)

    def se(self, v: int) -> "_Bits":
        return self.ue(2 * v - 1 if v > 0 else -2 * v)

    def nal(self, header: int | bytes) -> bytes:
        bits = self.bits + "1"
        bits += "0" * (-len(bits) % 8)
        out, zeros = bytearray(), 0
        for b in int(bits, 2).to_bytes(len(bits) // 8, "big"):
            if zeros >= 2 and b <= 3:
                out.append(3)
                zeros = 0
            out.append(b)
            zeros = zeros + 1 if b == 0 else 0
        head = bytes([header]) if isinstance(header, int) else header
        return b"\x00\x00\x00\x01" + head + bytes(out)


def _sps(poc_type=0, log2_lsb=4, log2_frame_num=4, frame_mbs_only=1, high=False, scaling=()):
    b = _Bits().u(8, 100 if high else 66).u(16, 30).ue(0)
    if high:
        b.ue(1).ue(0).ue(0).u(1, 0).u(1, 1 if scaling else 0)
        for i in range(8 if scaling else 0):
            b.u(1, 1 if i in scaling else 0)
            for d in scaling.get(i, ()):
                b.se(d)
    b.ue(log2_frame_num - 4).ue(poc_type)
    if poc_type == 0:
        b.ue(log2_lsb - 4)
    elif poc_type == 1:
        b.u(1, 0).se(1).se(-1).ue(2).se(2).se(2)
    b.ue(1).u(1, 0).ue(7).ue(5).u(1, frame_mbs_only)
    if not frame_mbs_only:
        b.u(1, 0)  # mb_adaptive_frame_field_flag
    return b.u(1, 1).u(1, 0).u(1, 0).nal(0x67)


_PPS = _Bits().ue(0).ue(0).u(1, 0).u(1, 0).ue(0).nal(0x68)


def _sei(frames=0, exact=1, broken=0, before=b""):
    """A recovery point SEI (payload 6), after the SEI messages `before` (type, size, payload)."""
    payload = _Bits().ue(frames).u(1, exact).u(1, broken).u(2, 0).u(1, 1)
    payload.bits += "0" * (-len(payload.bits) % 8)
    body = int(payload.bits, 2).to_bytes(len(payload.bits) // 8, "big")
    return _Bits().nal(0x06)[:-1] + before + bytes([6, len(body)]) + body + b"\x80"


def _slice(slice_type, poc_lsb=0, log2_lsb=4, log2_frame_num=4, idr=False, frame_num=0, field=None):
    b = _Bits().ue(0).ue(slice_type).ue(0).u(log2_frame_num, frame_num)
    if field is not None:
        b.u(1, field)
    if idr:
        b.ue(0)
    if log2_lsb:
        b.u(log2_lsb, poc_lsb)
    return b.u(8, 0x5A).nal(0x65 if idr else 0x41)


def test_h264_picture_order_from_written_headers():
    # Parameter sets and headers written bit by bit: what the parser must read, and what it must
    # refuse to call an open restart point.
    conv = AnnexBConverter("h264", b"")  # Annex-B, parameter sets in band
    sets = _sps() + _PPS
    restart = sets + _sei() + _slice(7, poc_lsb=8)
    assert conv.picture_role(restart, True) == 2
    assert conv.leads(_slice(1, poc_lsb=4), restart) and conv.leads(_slice(6, poc_lsb=6), restart)
    assert not conv.leads(_slice(0, poc_lsb=12), restart) and not conv.leads(_slice(1, poc_lsb=8), restart)
    wrapped = sets + _sei() + _slice(7, poc_lsb=14)  # counts modulo MaxPicOrderCntLsb (16 here)
    assert conv.leads(_slice(1, poc_lsb=10), wrapped) and not conv.leads(_slice(1, poc_lsb=2), wrapped)
    assert not conv.leads(_slice(1, poc_lsb=4), sets + _slice(7, poc_lsb=8, idr=True))
    assert not conv.leads(_slice(1, poc_lsb=4), _sei() + _slice(7, poc_lsb=8)), "no parameter sets: unreadable"
    assert conv.leads(_slice(1, poc_lsb=4)[:6], restart) is None, "too little of the slice header to tell"
    # Annex-B extradata (raw .h264, some MKV muxers) holds the parameter sets too.
    assert AnnexBConverter("h264", sets).picture_role(_sei() + _slice(7, poc_lsb=8), True) == 2
    assert AnnexBConverter("h264", sets).leads(_slice(1, poc_lsb=4), _sei() + _slice(7, poc_lsb=8))
    # A scaling list's delta out of its range (-128..127) makes the SPS malformed.
    assert conv.picture_role(_sps(high=True, scaling={0: [2**31 - 1]}) + _PPS + _sei() + _slice(7, 8), True) == 0
    # Not open restart points: no recovery point, one that is inexact, late or after a broken
    # link; a P picture; field coding (order counts per field); pic_order_cnt_type 1.
    for packet in (sets + _slice(7, 8), sets + _sei(exact=0) + _slice(7, 8), sets + _sei(frames=2) + _slice(7, 8),
                   sets + _sei(broken=1) + _slice(7, 8), sets + _sei() + _slice(5, 8),
                   _sps(frame_mbs_only=0) + _PPS + _sei() + _slice(7, 8, field=0),
                   _sps(poc_type=1) + _PPS + _sei() + _slice(7, log2_lsb=0)):
        assert conv.picture_role(packet, True) == 0
    # pic_order_cnt_type 2 (no B frames): output order is decoding order, nothing leads.
    plain = _sps(poc_type=2) + _PPS + _sei() + _slice(2, log2_lsb=0)
    assert conv.picture_role(plain, True) == 2 and not conv.leads(_slice(0, log2_lsb=0), plain)
    # A high-profile SPS with scaling lists; an SEI message before the recovery point; a slice
    # header whose zero bits need an emulation prevention byte.
    high = _sps(high=True, scaling={0: [3, -2, -9], 1: [1] * 16, 6: [5] * 10 + [-58]}, log2_frame_num=16, log2_lsb=16) + _PPS
    first = _slice(7, poc_lsb=0, log2_frame_num=16, log2_lsb=16)
    assert b"\x00\x00\x03" in first
    assert conv.picture_role(high + _sei(before=bytes([5, 3, 1, 2, 3])) + first, True) == 2
    assert conv.leads(_slice(1, poc_lsb=65534, log2_frame_num=16, log2_lsb=16), high + _sei() + first)
    assert not conv.leads(_slice(1, poc_lsb=2, log2_frame_num=16, log2_lsb=16), high + _sei() + first)
    # The parameter sets a packet carries, before its first slice, without their framing.
    assert conv.parameter_sets(sets + _sei() + _slice(7, 8)) == [((7, 0), _sps()[4:]), ((8, 0), _PPS[4:])]
    assert conv.parameter_sets(_sei() + _slice(7, 8) + _PPS) == [], "after the picture: not its sets"
    pps3 = _Bits().ue(3).ue(0).u(1, 0).u(1, 0).ue(0).nal(0x68)
    assert conv.parameter_sets(pps3 + b"\x00\x00\x00\x01\x68") == [((8, 3), pps3[4:]), ((8, -1), b"\x68")]
    # Length-prefixed (AVCC) with the parameter sets in the extradata.
    record = lambda n: len(n[4:]).to_bytes(2, "big") + n[4:]  # noqa: E731 - {u16 length, NAL}
    avcc = bytes([1, 66, 0, 30, 0xFF, 0xE1]) + record(_sps()) + b"\x01" + record(_PPS)
    conv = AnnexBConverter("h264", avcc)
    prefixed = lambda *nals: b"".join(len(n[4:]).to_bytes(4, "big") + n[4:] for n in nals)  # noqa: E731
    r = prefixed(_sei(), _slice(7, poc_lsb=8))
    assert conv.picture_role(r, True) == 2 and conv.leads(prefixed(_slice(1, poc_lsb=4)), r)
    assert conv.leads(prefixed(_slice(1, poc_lsb=4))[:-1], r), "a slice cut short is read as far as it goes"
    assert not conv.leads(prefixed(_slice(1, poc_lsb=4))[:-3], r), "but not past its end"
    assert conv.picture_role(r[:-1], True) == 0, "a restart point must be whole"
    assert conv.parameter_sets(prefixed(_PPS, _sei(), _slice(7, 8))) == [((8, 0), _PPS[4:])]
    assert conv.parameter_sets(prefixed(_PPS)[:-1]) == [], "a parameter set cut short is not one"


def test_h264_roles_of_closed_gops(tmp_path):
    # x264's default closed GOPs: IDR pictures only.
    if not encoder_for("h264") == "libx264":
        pytest.skip("no libx264")
    info, pkts = _packets(make_clip(tmp_path / "c.mp4", "h264", n=40, gop=12, bframes=3))
    conv = AnnexBConverter(info.codec, info.extradata or b"")
    roles = [conv.picture_role(p, bool(p.is_keyframe)) for p in pkts]
    assert roles.count(1) >= 3 and set(roles) == {0, 1}


def test_h264_parameter_sets_in_band_only(tmp_path):
    # An Annex-B stream without extradata (as in a raw .h264 file): the parameter sets that come
    # with the restart point's packet are used to read the pictures after it.
    if not encoder_for("h264") == "libx264":
        pytest.skip("no libx264")
    info, pkts = _packets(_open_gop_h264(tmp_path / "c.ts", **{"repeat-headers": 1}))
    conv = AnnexBConverter("h264", b"")
    roles = [conv.picture_role(p, bool(p.is_keyframe)) for p in pkts]
    assert roles.count(2) >= 2, roles
    i = roles.index(2)
    assert [conv.leads(p, pkts[i]) for p in pkts[i + 1:i + 5]] == [p.pts < pkts[i].pts for p in pkts[i + 1:i + 5]]


@pytest.mark.parametrize("params", ["", ":temporal-layers=3"])
def test_hevc_parameter_set_ids(tmp_path, params):
    # VPS, SPS and PPS ids, the SPS's after a profile_tier_level with sub-layers too.
    if not encoder_for("hevc"):
        pytest.skip("no hevc encoder")
    info, pkts = _packets(make_clip(tmp_path / "c.ts", "hevc", n=12, gop=6, options={
        "x265-params": f"bframes=2:keyint=6:repeat-headers=1:log-level=none{params}"}))
    conv = AnnexBConverter(info.codec, info.extradata or b"")
    keys = [key for key, _ in conv.parameter_sets(pkts[0])]
    assert keys == [(32, 0), (33, 0), (34, 0)]


def test_hevc_parameter_sets_of_another_layer_are_keyed_apart(tmp_path):
    # MV-HEVC (a second view, as in spatial video): layer 1's SPS and PPS may reuse the base
    # layer's ids and must not replace its sets; such an SPS may also skip its
    # profile_tier_level (sps_ext_or_max_sub_layers_minus1 7).
    if not encoder_for("hevc"):
        pytest.skip("no hevc encoder")
    info, pkts = _packets(make_clip(tmp_path / "c.ts", "hevc", n=6, gop=6, options={
        "x265-params": "bframes=0:keyint=6:repeat-headers=1:log-level=none"}))

    def layer1(nal_type: int) -> bytes:
        return bytes([nal_type << 1, 1 << 3 | 1])  # nuh_layer_id 1, temporal id 0

    ext_sps = _Bits().u(4, 0).u(3, 7).ue(0).nal(layer1(33))  # no profile_tier_level; id 0
    # sub-layers 0: temporal_id_nesting, then a 96-bit general profile_tier_level; id 2
    ptl_sps = _Bits().u(4, 0).u(3, 0).u(1, 1).u(32, 0x01600000).u(32, 0).u(32, 0x5D).ue(2).nal(layer1(33))
    pps = _Bits().ue(0).ue(0).nal(layer1(34))
    conv = AnnexBConverter(info.codec, info.extradata or b"")
    keys = [key for key, _ in conv.parameter_sets(ext_sps + ptl_sps + pps + bytes(pkts[0]))]
    assert keys == [(33, 256), (33, 258), (34, 256), (32, 0), (33, 0), (34, 0)]


def test_starts_sequence_never_trusts_malformed_packets():
    conv = AnnexBConverter("h264", b"")  # Annex-B input
    rng = np.random.default_rng(5)
    for _ in range(200):
        conv.starts_sequence(rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes())
    assert conv.starts_sequence(b"\x00\x00\x01\x65\x88") and not conv.starts_sequence(b"\x00\x00\x01\x41\x9a")
    assert not conv.starts_sequence(b"\x00\x00\x01")  # start code with no NAL header
    avcc = AnnexBConverter("h264", bytes([1, 0x64, 0, 0x1F, 0xFF, 0xE0, 0]))  # 4-byte lengths, no SPS/PPS
    assert avcc.starts_sequence(b"\x00\x00\x00\x02\x65\x88")
    assert not avcc.starts_sequence(b"\x00\x00\x10\x00\x65\x88"), "a length past the packet is not trusted"
    assert avcc.picture_role(b"\x00\x00\x10\x00\x65\x88") == 0, "a restart point must be whole"
    hvcc = AnnexBConverter("hevc", bytes([1] + [0] * 20 + [0xFF, 0]))  # 4-byte lengths, no arrays
    cut = lambda t: b"\x00\x00\x10\x00" + bytes([t << 1, 1, 0xAF])  # noqa: E731 - a slice cut short
    assert hvcc.picture_role(cut(9)) == 3, "a damaged leading picture is still a leading picture"
    assert hvcc.picture_role(cut(21)) == 0 and hvcc.picture_role(cut(19)) == 0 and hvcc.picture_role(cut(1)) == 0
    assert hvcc.picture_role(b"\x00\x00\x00\x03" + bytes([21 << 1, 1, 0xAF])) == 2


def test_picture_role_reads_the_first_slice_and_never_trusts_malformed_packets():
    h264, hevc = AnnexBConverter("h264", b""), AnnexBConverter("hevc", b"")
    rng = np.random.default_rng(6)
    for _ in range(300):
        junk = rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
        assert h264.picture_role(junk) in (0, 1) and hevc.picture_role(junk, True) in (0, 1, 2, 3)
        assert h264.leads(junk, junk[::-1]) in (False, True) and hevc.leads(junk, b"") in (False, True)
    sei, idr, non_idr = b"\x00\x00\x01\x06\x05\x01", b"\x00\x00\x01\x65\x88", b"\x00\x00\x01\x41\x9a"
    assert h264.picture_role(sei + idr) == 1 and h264.picture_role(sei + non_idr) == 0
    nal = lambda t: b"\x00\x00\x01" + bytes([t << 1, 1, 0xAF])  # noqa: E731 - HEVC NAL header of type t
    vps_sps_pps = nal(32) + nal(33) + nal(34)
    assert hevc.picture_role(vps_sps_pps + nal(19)) == 1  # IDR_W_RADL
    assert hevc.picture_role(vps_sps_pps + nal(21)) == 2  # CRA
    assert hevc.picture_role(nal(35) + nal(8)) == 3 and hevc.picture_role(nal(7)) == 3  # RASL_N, RADL_R
    assert hevc.picture_role(nal(1)) == 0 and hevc.picture_role(nal(22)) == 0  # TRAIL_R, reserved IRAP
    assert hevc.picture_role(b"\x00\x00\x01") == 0  # a start code with no NAL header
    assert AnnexBConverter("vp9", b"").picture_role(b"\x82\x49", True) == 1
    assert AnnexBConverter("vp9", b"").picture_role(b"\x86\x00", False) == 0
    assert AnnexBConverter("mpeg4", b"").picture_role(b"\x00\x00\x01\xb6", True) == 0


def test_cpu_reader_loop_flushes_between_passes(clips):
    with VideoReader(clips["h264"], "cpu", loop=True) as r:
        next(iter(r))
        assert r.seamless_loop is False  # the CPU path applies timestamp offsets at output time
    info, pkts = _packets(clips["h264"])
    with Decoder(info, "cpu") as d:
        assert not d.continues_at(pkts[0])


def test_output_format_and_size(clips):
    frames, _ = _decode_all(clips["h264"], output_format="RGB")
    assert frames[0].format == "RGB" and frames[0].numpy().shape == (96, 128, 3)
    frames, _ = _decode_all(clips["h264"], output_size=(64, 48))
    assert (frames[0].width, frames[0].height) == (64, 48)
    assert frames[0].numpy().shape == (72, 64)


def test_frame_tensor_view_and_numpy_zero_copy(clips):
    f = _decode_all(clips["h264"])[0][0]
    t = f.tensor
    assert t.shape == (144, 128) and t.strides[0] == f.pitch and t.layout == "NV12"
    a, b = f.numpy(), f.numpy()
    assert np.shares_memory(a, b), "host frames are viewed, not copied"
    assert "NV12 128x96" in repr(f)


def test_container_variants(tmp_path):
    # MKV (avcC extradata) and MPEG-TS (Annex-B in band, no extradata) decode alike.
    mkv = make_clip(tmp_path / "a.mkv", "h264", n=10)
    ts = make_clip(tmp_path / "a.ts", "h264", n=10)
    for path in (mkv, ts):
        frames, _ = _decode_all(path)
        assert len(frames) == 10
        ref = reference_planes(path)
        np.testing.assert_array_equal(split_nv12(frames[5].numpy(), 128, 96)[0], ref[5][1])


def test_concurrent_cpu_decoders(clips):
    results, errs = {}, []

    def work(i):
        try:
            results[i] = [f.pts for f in _decode_all(clips["h264"])[0]]
        except Exception as exc:  # noqa: BLE001
            errs.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errs
    assert len(results) == 6 and all(len(v) == 20 for v in results.values())


def test_parse_device():
    assert parse_device("auto") == ("auto", 0)
    assert parse_device("cpu") == ("cpu", 0)
    assert parse_device("cuda:1") == ("cuda", 1)
    assert parse_device(0) == ("cuda", 0)
    with pytest.raises(errors.InvalidArgument):
        parse_device("tpu")


def test_auto_falls_back_to_cpu_with_reason(clips):
    with Demuxer(clips["h264"]) as d:
        dec = Decoder(d.info, "auto")
    if not pysm.cuda.is_available():
        assert dec.device == "cpu" and dec.fallback_reason
    else:
        assert dec.device.startswith("cuda") or dec.fallback_reason


def test_unknown_codec_is_unsupported(clips):
    info = Demuxer(clips["h264"]).info
    info.codec = "not_a_codec"
    with pytest.raises(errors.UnsupportedError, match="not_a_codec"):
        Decoder(info, "cpu")


# ---- Annex-B conversion (native) --------------------------------------------------------------

@pytest.mark.parametrize("codec", [c for c in ("h264", "hevc") if encoder_for(c)])
def test_annexb_conversion_decodes_identically(clips, codec):
    import av

    with Demuxer(clips[codec]) as d:
        conv = AnnexBConverter(codec, d.info.extradata)
        assert conv.length_prefixed
        headers = conv.headers
        assert headers.startswith(b"\x00\x00\x00\x01")
        stream = headers + b"".join(conv.convert(p.data) for p in d)
    # FFmpeg's parser + decoder on the raw Annex-B stream (no extradata at all).
    cc = av.CodecContext.create(codec, "r")
    got = []
    for pkt in cc.parse(stream) + cc.parse(None):
        got += cc.decode(pkt)
    got += cc.decode(None)
    ref = reference_planes(clips[codec])
    assert len(got) == len(ref)
    ys = sorted((np.frombuffer(f.planes[0], np.uint8).reshape(f.planes[0].height, -1)[:96, :128]).tobytes()
                for f in got)
    assert ys == sorted(r[1].tobytes() for r in ref)


def test_annexb_rejects_truncated_nal(clips):
    with Demuxer(clips["h264"]) as d:
        conv = AnnexBConverter("h264", d.info.extradata)
        pkt = bytes(next(iter(d)).data)
    with pytest.raises(errors.DecodeError, match="truncated"):
        conv.convert(pkt[:-5])
    with pytest.raises(errors.DecodeError):
        AnnexBConverter("h264", b"\x01\x64\x00")  # a cut avcC record


def test_annexb_passthrough_for_annexb_input():
    conv = AnnexBConverter("h264", b"\x00\x00\x00\x01\x67\x42")
    assert not conv.length_prefixed and conv.headers == b"\x00\x00\x00\x01\x67\x42"
    assert conv.convert(b"\x00\x00\x01\x65\x88") == b"\x00\x00\x01\x65\x88"


# ---- colour conversion (CPU twin vs float64 reference) ----------------------------------------

@pytest.mark.parametrize("matrix", ["bt601", "bt709", "bt2020"])
@pytest.mark.parametrize("rng_name", ["limited", "full"])
@pytest.mark.parametrize("sixteen", [False, True])
def test_color_convert_cpu_vs_reference(matrix, rng_name, sixteen):
    w, h = 66, 38
    nv12 = random_nv12(w, h, seed=hash((matrix, rng_name, sixteen)) % 1000, sixteen=sixteen)
    fmt = "P016" if sixteen else "NV12"
    frame = _core.frame_from_tensor(_tensor_of(nv12, fmt), fmt, matrix, rng_name)
    ref = yuv_to_rgb_reference(nv12, w, h, matrix, rng_name == "full", sixteen)
    out = {name: frame.to(name).numpy() for name in ("RGB", "BGR", "RGBA", "BGRA")}
    assert np.abs(out["RGB"].astype(int) - ref).max() <= 1
    assert np.mean(out["RGB"] != ref) < 0.01, "off-by-one only at rounding ties"
    np.testing.assert_array_equal(out["BGR"], out["RGB"][..., ::-1])
    np.testing.assert_array_equal(out["RGBA"][..., :3], out["RGB"])
    assert (out["RGBA"][..., 3] == 255).all()
    np.testing.assert_array_equal(out["BGRA"][..., :3], out["RGB"][..., ::-1])


@pytest.mark.parametrize("w,h", [(1, 1), (3, 5), (67, 39), (1920, 1080)])
@pytest.mark.parametrize("sixteen", [False, True])
def test_color_convert_cpu_is_exact(w, h, sixteen):
    """The vectorised CPU twin (SIMD clones chosen at load time) computes exactly the float32
    operations the CUDA kernel is written with: odd sizes, full-scale 16-bit samples, every layout."""
    rng = np.random.default_rng(w * 31 + h)
    cw = (w + 1) // 2 * 2
    dtype, top = (np.uint16, 65536) if sixteen else (np.uint8, 256)
    y = rng.integers(0, top, size=(h, w), dtype=dtype)
    uv = rng.integers(0, top, size=((h + 1) // 2, cw), dtype=dtype)
    nv12 = np.zeros((h + (h + 1) // 2, cw), dtype)
    nv12[:h, :w], nv12[h:] = y, uv
    bpp = 2 if sixteen else 1
    for matrix, rng_name in [("bt601", "limited"), ("bt709", "full"), ("bt2020", "limited")]:
        frame = _core.frame_from_yuv420(y, uv, None, w * bpp, cw * bpp, 0, w, h, 16 if sixteen else 8, 0,
                                        matrix, rng_name)
        twin = yuv_to_rgb_float32_twin(nv12, w, h, matrix, rng_name == "full", sixteen)
        np.testing.assert_array_equal(frame.to("RGB").numpy(), twin)
        np.testing.assert_array_equal(frame.to("BGR").numpy(), twin[..., ::-1])
        rgba = frame.to("RGBA").numpy()
        np.testing.assert_array_equal(rgba[..., :3], twin)
        assert (rgba[..., 3] == 255).all()
        np.testing.assert_array_equal(frame.to("BGRA").numpy()[..., :3], twin[..., ::-1])


def test_convert_uses_frame_colour_and_overrides(clips):
    f = _decode_all(clips["h264"])[0][3]
    assert f.matrix == "bt601" and f.range == "limited"  # unspecified SD stream: BT.601 by size
    nv12 = f.numpy()
    np.testing.assert_array_equal(convert(f, "RGB").numpy(), f.to("RGB").numpy())
    ref = yuv_to_rgb_reference(nv12, 128, 96, "bt709", True)
    got = convert(f, "RGB", matrix="bt709", range="full").numpy()
    assert np.abs(got.astype(int) - ref).max() <= 1
    t = convert(f.tensor, "BGR")
    assert t.shape == (96, 128, 3)
    with pytest.raises(errors.InvalidArgument):
        f.to("YUYV")
    with pytest.raises(errors.InvalidArgument):
        f.to("RGB", matrix="bt999")


def test_pack_yuv420_planes():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 256, (10, 16), dtype=np.uint8)
    u = rng.integers(0, 256, (5, 8), dtype=np.uint8)
    v = rng.integers(0, 256, (5, 8), dtype=np.uint8)
    f = _core.frame_from_yuv420(y, u, v, 16, 8, 8, 14, 10, 8, 5)
    fy, fu, fv = split_nv12(f.numpy(), 14, 10)
    np.testing.assert_array_equal(fy, y[:, :14])
    np.testing.assert_array_equal(fu, u[:, :7])
    np.testing.assert_array_equal(fv, v[:, :7])
    assert f.pts == 5
    with pytest.raises(errors.InvalidArgument):
        _core.frame_from_yuv420(y[:2], u, v, 16, 8, 8, 14, 10)
    # Strides that would read before the buffer or overlap rows are refused, not followed.
    for strides in [(-16, 8, 8), (16, -8, 8), (16, 8, -8), (13, 8, 8), (16, 6, 8)]:
        with pytest.raises(errors.InvalidArgument, match="strides"):
            _core.frame_from_yuv420(y, u, v, *strides, 14, 10)
    with pytest.raises(errors.InvalidArgument, match="strides"):
        _core.frame_from_yuv420(y, u, None, 16, 8, 0, 14, 10)  # interleaved CbCr rows need 2 x 7 bytes


def _tensor_of(arr: np.ndarray, fmt: str):
    """A pysm Tensor over a NumPy array, through a host frame (no dependence on DLPack import)."""
    h = arr.shape[0] * 2 // 3
    w = arr.shape[1]
    if fmt == "NV12":
        y, uv = arr[:h], arr[h:]
        f = _core.frame_from_yuv420(np.ascontiguousarray(y), np.ascontiguousarray(uv), None, w, w, 0, w, h, 8)
    else:
        y, uv = arr[:h], arr[h:]
        # P010-style (already MSB-aligned) semi-planar input keeps its samples unchanged.
        f = _core.frame_from_yuv420(np.ascontiguousarray(y), np.ascontiguousarray(uv), None, 2 * w, 2 * w, 0,
                                    w, h, 10)
    np.testing.assert_array_equal(f.numpy(), arr)
    return f.tensor


@pytest.mark.parametrize("name", ["retail_1080p30_h264.mp4", "retail_1080p30_hevc.mp4"])
def test_real_clips_first_frames(shared_data, name):
    import av

    path = shared_data / name
    with VideoReader(path, "cpu") as r:
        assert (r.info.width, r.info.height) == (1920, 1080) and r.info.fps == 30
        frames = []
        for f in r:
            frames.append(f)
            if len(frames) == 8:
                break
    with av.open(str(path)) as c:
        ref = [f for _, f in zip(range(8), c.decode(video=0))]
    for f, rf in zip(frames, ref):
        y = np.frombuffer(rf.planes[0], np.uint8).reshape(rf.planes[0].height, -1)[:1080, :1920]
        np.testing.assert_array_equal(split_nv12(f.numpy(), 1920, 1080)[0], y)
    assert frames[0].matrix == "bt709"


def test_nvdec_capabilities_without_driver_raises_driver_error():
    if pysm.cuda.is_available():
        pytest.skip("a GPU is present (covered by test_decode_gpu.py)")
    from pysm.codec import nvdec_capabilities

    with pytest.raises(errors.DriverError) as exc:
        nvdec_capabilities(0)
    assert "libcuda" in str(exc.value) or "NVDEC" in str(exc.value)
    with pytest.raises((errors.DriverError, errors.CudaError)):
        _core.NvdecDecoder("h264", b"")


# ---- fast open, batched demux/decode ---------------------------------------------------------------

FAST_FIELDS = ("codec", "width", "height", "fps", "time_base", "bit_depth", "chroma", "pix_fmt", "frame_count",
               "duration", "extradata", "is_live", "container")


@pytest.mark.parametrize("variant", ["h264", "h264_ts", "h264_444", "h264_10", "hevc", "hevc10", "mpeg4", "raw",
                                     "h264_mkv", "mkv_no_default_duration", "ts_named_mp4", "h264_bframes"])
def test_fast_open_describes_like_the_full_probe(tmp_path, variant, monkeypatch):
    """The fast open (no probe decode; for MP4/MOV the least probe size too) describes a stream as
    the full probe does, also a file whose extension names another format than its content; the
    least probe size changes none of the packets' timestamps."""
    codec = "hevc" if variant.startswith("hevc") else "mpeg4" if variant == "mpeg4" else "h264"
    if not encoder_for(codec):
        pytest.skip(f"no {codec} encoder in this PyAV wheel")
    pix = {"h264_444": "yuv444p", "h264_10": "yuv420p10le", "hevc10": "yuv420p10le"}.get(variant)
    ext = {"h264_ts": "ts", "ts_named_mp4": "ts", "raw": "h264", "h264_mkv": "mkv",
           "mkv_no_default_duration": "mkv"}.get(variant, "mp4")
    path = make_clip(tmp_path / f"{variant}.{ext}", codec, n=8, pix_fmt=pix,
                     **({"bframes": 2} if variant == "h264_bframes" else {}))
    if variant == "ts_named_mp4":  # MPEG-TS behind an .mp4 name: its rate needs the probe
        path = path.rename(path.with_suffix(".mp4"))
    if variant == "mkv_no_default_duration":  # as many MediaRecorder files: the rate needs the probe
        path.write_bytes(path.read_bytes().replace(b"\x23\xe3\x83", b"\x23\xe3\x84"))  # ID renamed
    with Demuxer(path) as fast, Demuxer(path, fast_open=False) as full:
        for name in FAST_FIELDS:
            assert getattr(fast.info, name) == getattr(full.info, name), name
        assert fast.info.profile == full.info.profile
        fast_packets = [(p.pts, p.dts, p.key, p.size) for p in fast]
        assert len(fast_packets) == len(list(full)) == 8
    monkeypatch.setattr(demux_module, "_FAST_PROBE_SIZE", {})
    with Demuxer(path) as probed:
        assert [(p.pts, p.dts, p.key, p.size) for p in probed] == fast_packets
    expected = {"h264_444": (8, "444"), "h264_10": (10, "420"), "hevc10": (10, "420")}.get(variant, (8, "420"))
    assert (fast.info.bit_depth, fast.info.chroma) == expected


@pytest.mark.parametrize("ext", ["mkv", "webm", "mp4"])
@pytest.mark.parametrize("audio", [False, True], ids=["video", "with_audio"])
def test_the_fast_open_keeps_a_late_start(tmp_path, ext, audio):
    """A file whose video starts at 1.5 s (a cut, or audio ahead of it): the fast open gives the
    start time the full probe gives (Matroska: read from the first packets) and every packet."""
    codec = "vp9" if ext == "webm" else "h264"
    if not encoder_for(codec) or (audio and ext == "webm"):
        pytest.skip(f"no {codec} encoder" if not encoder_for(codec) else "AAC does not go in WebM")
    path = make_clip(tmp_path / f"late.{ext}", codec, n=20, first_pts=45, audio=audio)
    with Demuxer(path) as fast, Demuxer(path, fast_open=False) as full:
        assert fast.info.start_time == full.info.start_time == 1_500_000_000
        # the track's length, not its end time (FFmpeg's Matroska DURATION tag is the end)
        assert fast.info.frame_count == full.info.frame_count == 20
        assert abs(fast.info.duration - 666_666_667) <= 1_000_000 and full.info.duration == fast.info.duration
        # (not the DTS: Matroska stores none, and FFmpeg derives them from a probe decode)
        assert [(p.pts, p.key, p.size) for p in fast] == [(p.pts, p.key, p.size) for p in full]


def test_an_mkv_that_cannot_seek_back_after_the_start_peek_is_opened_again(tmp_path, monkeypatch):
    path = make_clip(tmp_path / "late.mkv", "h264", n=20, first_pts=45)
    with Demuxer(path) as ref:
        want = [p.pts for p in ref]
    monkeypatch.setattr(Demuxer, "_seek_to", lambda self, pts_ns: False)
    with Demuxer(path) as d:
        assert d.info.start_time == 1_500_000_000 and not d.seekable
        assert [p.pts for p in d] == want


def test_read_batch_yields_every_packet_once(clips):
    with Demuxer(clips["h264"]) as d:
        ref = [(p.pts, bytes(p.data)) for p in d]
        d.seek(0)
        got, sizes = [], []
        while True:
            batch = d.read_batch(3)
            if not batch:
                break
            sizes.append(len(batch))
            tb = d.info.time_base
            got += [(p.pts * tb.numerator * 1_000_000_000 // tb.denominator, bytes(p)) for p in batch]
        assert d.read_batch(3) == [], "at the end it stays at the end"
        d.seek(0)
        assert len(d.read_batch(50)) == 20, "seek restarts the batched reads"
    assert got == ref
    assert sizes == [3] * 6 + [2]


def test_decode_many_matches_decode_on_cpu(clips):
    with Demuxer(clips["h264"]) as d:
        info = d.info
        avpk = []
        while batch := d.read_batch(4):
            avpk.append(batch)
        d.seek(0)
        wrapped = list(d)
    one = Decoder(info, "cpu")
    ref = [f for p in wrapped for f in one.decode(p)] + one.flush()
    many = Decoder(info, "cpu")
    offset = 3_000_000_000
    got = [f for b in avpk for f in many.decode_many(b, offset)] + many.flush()
    assert len(got) == len(ref) == 20
    assert [f.pts for f in got] == [f.pts + offset for f in ref], "the offset reaches the flushed frames too"
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # pysm Packets, (buffer, pts) tuples and plain buffers are accepted as well.
    mixed = Decoder(info, "cpu")
    items = [wrapped[0], (bytes(wrapped[1].data), wrapped[1].pts)] + [p for p in wrapped[2:]]
    assert len(mixed.decode_many(items) + mixed.flush()) == 20


@pytest.mark.parametrize("batch", [1, 8])
def test_reader_batches_give_identical_frames(clips, batch):
    ref, _ = _decode_all(clips["hevc" if "hevc" in clips else "h264"], batch_packets=1)
    got, r = _decode_all(clips["hevc" if "hevc" in clips else "h264"], batch_packets=batch)
    assert r.batch_packets == batch and r.frames == len(got) == len(ref) == 20
    assert [f.pts for f in got] == [f.pts for f in ref]
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_cpu_frames_take_the_bitstream_colour(tmp_path):
    # SD content flagged BT.709 in the SPS only (no colr box): the fast open cannot see it, the
    # decoded frames carry it, and the CPU path uses it (as NVDEC does).
    path = make_clip(tmp_path / "c709.mp4", "h264", n=4,
                     options={"x264-params": "colormatrix=bt709:colorprim=bt709:transfer=bt709"})
    with Demuxer(path) as d:
        info = d.info
        dec = Decoder(info, "cpu")
        frames = [f for p in d for f in dec.decode(p)] + dec.flush()
    assert frames and all(f.matrix == "bt709" for f in frames)
    with Demuxer(path, fast_open=False) as d:
        assert d.info.color_matrix == "bt709" and d.info.color_specified


def test_decode_many_packet_views(clips):
    """What NvdecDecoder.decode_many hands to the native decoder: payloads in place, pts in ns."""
    import av

    with Demuxer(clips["h264"]) as d:
        tb = d.info.time_base
        batch = d.read_batch(6)
        d.seek(0)
        wrapped = list(d)[:6]
    ns = 1_000_000_000
    ref = [(bytes(p), (p.pts if p.pts is not None else p.dts) * tb.numerator * ns // tb.denominator) for p in batch]
    assert _core._packet_views_info(batch, tb.numerator, tb.denominator) == ref
    assert _core._packet_views_info(batch) == ref, "without a time base, the packet's own"
    shifted = _core._packet_views_info(batch, tb.numerator, tb.denominator, 10)
    assert [p for _, p in shifted] == [p + 10 for _, p in ref]
    assert _core._packet_views_info(wrapped) == [(bytes(p.data), p.pts) for p in wrapped]
    assert _core._packet_views_info([b"abc", memoryview(b"xyz"), (bytearray(b"q"), 5), (b"r", None)], 1, 1, 3) == \
        [(b"abc", -1), (b"xyz", -1), (b"q", 8), (b"r", -1)]
    # Below 0 a time is unknown, except a discard packet's (its pre-roll is timed before the start);
    # whether it is known is decided before a loop pass's offset is added.
    pre = [Packet(b"a", pts=-5, discard=True), Packet(b"b", pts=-1, discard=True), Packet(b"c", pts=-5)]
    assert _core._packet_views_info(pre, 1, 1, 100) == [(b"a", 95), (b"b", -1), (b"c", -1)]
    # Odd time bases: exact (floor) conversion, no overflow. Negative pts (edit-list lead-in) are
    # unknown to the native decoder (-1), as with decode().
    pkt = av.Packet(b"\x00\x00\x01\x09")
    for value, num, den in [(3, 1, 90000), (1001, 1001, 30000), (2**40, 1, 90000), (7, 1, 2**40), (5, 3, 7),
                            (2**33 + 1, 1, 1000)]:
        pkt.pts = value
        assert _core._packet_views_info([pkt], num, den)[0][1] == value * num * ns // den
    pkt.pts = -3
    assert _core._packet_views_info([pkt], 1, 90000)[0][1] == -1
    pkt.pts = None
    pkt.dts = None
    assert _core._packet_views_info([pkt], 1, 90000)[0][1] == -1
    with pytest.raises(TypeError):
        _core._packet_views_info([b"ok", object()])


def test_raw_stream_frames_get_timestamps_and_loop(tmp_path):
    # A raw elementary stream carries no timestamps and FFmpeg cannot seek in it: frames are timed
    # at the frame rate its SPS gives (30 here; FFmpeg's own guess is 25), and a looping reader
    # opens it again for each pass.
    raw = annexb_file(make_clip(tmp_path / "c.mp4", "h264", n=30, gop=10), tmp_path / "c.h264")
    with VideoReader(raw, "cpu", loop=True) as r:
        assert r.info.fps == 30
        pts = [f.pts for f, _ in zip(r, range(75))]
    assert pts[:30] == [round(Fraction(k * 1_000_000_000, 30)) for k in range(30)]
    assert len(pts) == 75 and all(b > a for a, b in zip(pts, pts[1:]))


@pytest.mark.parametrize("ext", ["mp4", "ts", "mkv"])
def test_seeking_to_a_keyframes_own_pts_lands_on_it(tmp_path, ext):
    """A keyframe's Packet.pts (ns, rounded down from the container's ticks) seeks to that
    keyframe, not to the GOP before it."""
    path = make_clip(tmp_path / f"k.{ext}", "h264", n=60, bframes=0, gop=10)
    with Demuxer(path) as d:
        keys = [p.pts for p in d if p.key]
        assert len(keys) == 6
        for k in keys[1:]:
            d.seek(k)
            first = next(iter(d))
            assert (first.pts, first.key) == (k, True)


def _remuxed(src, dst, **options):
    """``src``'s video stream copied into ``dst`` with muxer ``options``."""
    import av

    with av.open(str(src)) as ic, av.open(str(dst), "w", options=options) as oc:
        ist = ic.streams.video[0]
        ost = oc.add_stream_from_template(ist)
        for p in ic.demux(ist):
            if p.size:
                p.stream = ost
                oc.mux(p)
    return dst


@pytest.mark.parametrize("kind", ["avi", "avi-bframes", "avi-no-index", "fragmented-mp4", "mkv-bframes", "flv", "mp4"])
def test_seeks_land_on_the_last_keyframe_at_or_before_the_target(tmp_path, kind):
    """Where FFmpeg's seek lands early (an AVI index holds decode times, a fragmented MP4 indexes
    its fragments), late (an AVI without an index, whose index grows as it is read) or on nothing
    (FLV, in its last GOP or past its end), the Demuxer still goes on to the last keyframe at or
    before the target, and from there gives the packets a read from the start gives."""
    codec = "mpeg4" if kind == "avi-bframes" else "h264"
    bframes = 2 if kind.endswith("bframes") or kind in ("fragmented-mp4", "flv", "avi-no-index") else 0
    ext = {"fragmented-mp4": "mp4", "mkv-bframes": "mkv", "avi-bframes": "avi", "avi-no-index": "avi"}.get(kind, kind)
    path = make_clip(tmp_path / f"s.{ext}", codec, n=120, gop=15, bframes=bframes)
    if kind == "fragmented-mp4":
        path = _remuxed(path, tmp_path / "frag.mp4", movflags="frag_keyframe+empty_moov")
    if kind == "avi-no-index":  # a recording that stopped before its idx1 was written
        data = bytearray(path.read_bytes())
        at = data.rfind(b"idx1")
        data[at:at + 4] = b"JUNK"
        path.write_bytes(bytes(data))
    with Demuxer(path) as d:
        start, read = d.info.start_time, list(d)
    pkts, keys = [p.pts for p in read], sorted(p.pts for p in read if p.key)
    assert len(keys) >= 7
    frame = 1_000_000_000 // 30
    past = [keys[-1] + frame // 2, start + 119 * frame, start + 200 * frame, start + 10**13]  # last GOP, end, beyond
    for t in [start + k * frame for k in range(0, 120, 7)] + [k for k in keys] + [k - 1 for k in keys[1:]] + past:
        with Demuxer(path) as d:
            d.seek(t)
            got = [p.pts for p in d]
        key = max((k for k in keys if k <= t), default=keys[0])
        assert got == pkts[pkts.index(key):], (t - start) / frame


@pytest.mark.parametrize("ext", ["mkv", "ts", "avi", "mp4"])
def test_after_a_seek_every_iterator_continues_where_the_last_one_stopped(tmp_path, ext):
    """What a seek read ahead to find its keyframe is handed out once, whichever iterator reads
    next: a peek then a loop, a batch then a loop, or an iterator made before the seek."""
    path = make_clip(tmp_path / f"p.{ext}", "h264", n=90, gop=15, bframes=2)
    with Demuxer(path) as d:
        read = list(d)
    pts, keys = [p.pts for p in read], [p.pts for p in read if p.key]
    target = keys[3] + 10 * 1_000_000_000 // 30
    want = pts[pts.index(max(k for k in keys if k <= target)):]
    with Demuxer(path) as d:
        d.seek(target)
        first = next(iter(d))
        assert [first.pts] + [p.pts for p in d] == want
        d.seek(target)
        batch = d.read_batch(2)
        tb = d.info.time_base  # (PyAV packets, in its ticks)
        assert [p.pts * tb.numerator * 1_000_000_000 // tb.denominator for p in batch] == want[:2]
        assert [p.pts for p in d] == want[2:]
        d.seek(0)
        early = iter(d)
        assert next(early).pts == pts[0]
        d.seek(target)
        assert [p.pts for p in early] == want


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open files through /proc")
def test_a_demuxer_dropped_without_close_frees_its_file_at_once(tmp_path):
    """No reference cycle through the batch iterator: the file closes when the last reference goes,
    not when the cycle collector next runs (many readers opened and dropped would hold descriptors)."""
    path = make_clip(tmp_path / "d.mkv", "h264", n=60, gop=15)
    fds = lambda: len(os.listdir("/proc/self/fd"))  # noqa: E731
    gc.collect()
    gc.disable()
    try:
        before = fds()
        for _ in range(20):
            d = Demuxer(path)
            d.read_batch(2)
            d.seek(1_000_000_000)
            d.read_batch(2)
            del d
        assert fds() == before
    finally:
        gc.enable()


def test_a_seek_through_an_mp4_index_reads_no_gop_ahead(tmp_path):
    """An MP4 with a sample table seeks onto the keyframe itself: the Demuxer takes it without
    reading on through the GOP for a later one (as it must after a TS seek)."""
    path = make_clip(tmp_path / "g.mp4", "h264", n=60, gop=60, bframes=0)
    with Demuxer(path) as d:
        real, read = d._container, []

        class Counting:  # the container, counting the packets demuxed
            def __getattr__(self, name):
                return getattr(real, name)

            def demux(self, *a, **k):
                for p in real.demux(*a, **k):
                    read.append(p)
                    yield p

        d._container = Counting()
        try:
            d.seek(d.info.start_time + 55 * 1_000_000_000 // 30)
            first = next(iter(d))
        finally:
            d._container = real
    assert first.key and first.pts == d.info.start_time
    assert len(read) <= 3, f"{len(read)} packets read for one seek"

def test_ts_seek_lands_on_a_keyframe_at_or_before_the_target(tmp_path):
    clip = make_clip(tmp_path / "c.ts", "h264", n=60, gop=10, bframes=0)
    d = Demuxer(clip)
    o, frame = d.info.start_time, 1_000_000_000 // 30
    keys = [p.pts for p in d if p.key]
    for target in (5, 15, 20, 21, 37, 59):
        d.seek(o + target * frame)
        first = next(iter(d))
        # FFmpeg's TS seek lands a GOP or more early: the Demuxer goes on to the last keyframe
        assert first.key and first.pts == max(k for k in keys if k <= o + target * frame), target
    d.close()


# An MPEG-TS/PS recording whose 33-bit, 90-kHz PTS wraps a few frames after its start (at 30 fps
# the wrap is frame 2863311.5 of the clock; the muxer adds its own delay).
_TS_WRAP_FIRST = 2_863_311 - 42 - 20 + 40


def ts_across_the_pts_wrap(path, n=60, codec="h264", **kw):
    import av

    path = make_clip(path, codec, n=n, gop=12, first_pts=_TS_WRAP_FIRST, **kw)
    with av.open(str(path)) as c:
        raw = [p.pts for p in c.demux(c.streams.video[0]) if p.size]
    assert min(raw) < 0 < max(raw), "FFmpeg puts the frames before the wrap below 0"
    return path


@pytest.mark.parametrize("ext,codec", [("ts", "h264"), ("mpg", "mpeg2video")])
def test_a_ts_recording_across_the_pts_wrap_keeps_increasing_timestamps(tmp_path, ext, codec):
    """FFmpeg gives the frames before the wrap negative times; they are kept on the TS's own clock
    (one wrap period later), so the whole file plays, seeks and loops in order."""
    path = ts_across_the_pts_wrap(tmp_path / f"w.{ext}", codec=codec, bframes=2)
    frame = Fraction(1_000_000_000, 30)
    with VideoReader(path, "cpu") as r:
        start = r.info.start_time
        pts = [f.pts for f in r]
    assert start > 0 and len(pts) == 60 and pts[0] == start
    assert all(abs(b - a - frame) <= 1 for a, b in zip(pts, pts[1:])), "one frame step across the wrap"
    with Demuxer(path) as d:
        keys = [p.pts for p in d if p.key]
        for k in keys[1:]:  # before and after the wrap
            d.seek(k)
            first = next(iter(d))
            assert (first.pts, first.key) == (k, True)
    with VideoReader(path, "cpu", loop=True) as r:
        looped = [f.pts for f in itertools.islice(r, 130)]
    assert looped[:60] == pts and all(abs(b - a - frame) <= 2 for a, b in zip(looped, looped[1:]))
    info = MediaInfo.discover(path).video
    assert info.frame_count == 60 and abs(info.duration - 2_000_000_000) < 50_000_000


@pytest.mark.parametrize("ext", ["mkv", "ts"])
def test_frame_count_without_a_container_index(tmp_path, ext):
    # mkv and ts carry no frame count: duration x frame rate stands in for it.
    clip = make_clip(tmp_path / f"c.{ext}", "h264", n=30)
    assert Demuxer(clip).info.frame_count == 30


def test_decoded_frame_exports_through_dlpack_without_a_copy(clips):
    f = _decode_all(clips["h264"])[0][2]
    a = np.from_dlpack(f.tensor)
    assert a.shape == (144, 128) and a.dtype == np.uint8
    assert np.shares_memory(a, f.numpy()), "DLPack hands out the frame's own memory"
    np.testing.assert_array_equal(a, f.numpy())


def test_resolution_change_mid_stream_through_the_reader(tmp_path):
    # Two raw H.264 streams of different sizes back to back: the second's SPS changes the size.
    a = annexb_file(make_clip(tmp_path / "a.mp4", "h264", n=10, width=128, height=96), tmp_path / "a.h264")
    b = annexb_file(make_clip(tmp_path / "b.mp4", "h264", n=10, width=160, height=120, seed=1), tmp_path / "b.h264")
    both = tmp_path / "ab.h264"
    both.write_bytes(a.read_bytes() + b.read_bytes())
    frames, _ = _decode_all(both)
    assert [(f.width, f.height) for f in frames] == [(128, 96)] * 10 + [(160, 120)] * 10
    ref = reference_planes(tmp_path / "b.mp4")
    np.testing.assert_array_equal(split_nv12(frames[15].numpy(), 160, 120)[0], ref[5][1])


def test_http_source_decodes_like_the_file(clips, tmp_path):
    import functools
    import http.server

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep the test output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Quiet, directory=str(clips["h264"].parent)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{clips['h264'].name}"
        got, reader = _decode_all(url)
        assert not reader.info.is_live
    finally:
        server.shutdown()
        server.server_close()
    want, _ = _decode_all(clips["h264"])
    assert [f.pts for f in got] == [f.pts for f in want]
    np.testing.assert_array_equal(got[7].numpy(), want[7].numpy())


def test_raw_stream_on_several_sessions_keeps_one_timeline(tmp_path):
    # The reader's own decoder is one of the sessions: frames are timed in order, once.
    raw = annexb_file(make_clip(tmp_path / "c.mp4", "h264", n=60, gop=10), tmp_path / "c.h264")
    with VideoReader(raw, "cpu") as r:
        serial = [f.pts for f in r]
    with VideoReader(raw, "cpu", sessions=2) as r:
        parallel = [f.pts for f in r]
    assert parallel == serial and len(serial) == 60 and serial[0] == 0
    assert all(abs((b - a) - 1_000_000_000 / 30) <= 1 for a, b in zip(serial, serial[1:]))  # the SPS's 30 fps


def test_a_file_starting_mid_gop_decodes_on_sessions(tmp_path):
    # Packets before the first key frame give no frame; with sessions they make a segment of
    # their own, which must not be taken for a stream that decodes to nothing.
    import av

    src = make_clip(tmp_path / "c.mkv", "h264", n=80, gop=40, bframes=0)  # 35 packets before the IDR
    cut = tmp_path / "cut.mkv"
    with av.open(str(src)) as i, av.open(str(cut), "w") as o:
        si = i.streams.video[0]
        so = o.add_stream_from_template(si)
        for n, p in enumerate(p for p in i.demux(si) if p.size):
            if n >= 5:
                p.stream = so
                o.mux(p)
    with VideoReader(cut, "cpu") as r:
        serial = len(list(r))
    with VideoReader(cut, "cpu", sessions=2) as r:
        assert len(list(r)) == serial == 40


def test_seeking_past_the_end_of_a_ts_gives_nothing_or_a_key_frame(tmp_path):
    clip = make_clip(tmp_path / "c.ts", "h264", n=60, gop=10, bframes=0)
    d = Demuxer(clip)
    for target in (60, 120, 10_000):
        d.seek(d.info.start_time + target * 1_000_000_000 // 30)
        pk = list(d)
        assert not pk or pk[0].key
        assert d.read_batch(8) == []
    d.close()
    with pytest.raises(errors.SourceError, match="closed"):
        d.seek(0)


def test_cpu_decoder_dropped_mid_stream_with_copied_packets_does_not_hang(tmp_path):
    """Packets the CPU decoder builds from buffers are FFmpeg's memory: PyAV frees a packet made from
    ``bytes`` under the GIL, and dropping a frame-threaded decoder mid-stream (which FFmpeg does
    holding the GIL) deadlocked with a worker thread freeing one."""
    import subprocess
    import sys
    import textwrap

    clip = make_clip(tmp_path / "b.mp4", "h264", n=12, width=160, height=96, bframes=2)
    code = textwrap.dedent(f"""
        import gc
        from pysm.codec import Decoder, Demuxer, Packet
        with Demuxer({str(clip)!r}) as d:
            info, packets = d.info, d.read_batch(4)
        import av
        for wrap in (lambda p: Packet(bytes(p), pts=-1, key=p.is_keyframe), lambda p: av.Packet(bytes(p))) * 2:
            dec = Decoder(info, "cpu")
            for p in packets:
                dec.decode(wrap(p))
            del dec
            gc.collect()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_warm_up_once_per_gpu_and_never_on_the_cpu():
    """Without a driver (or without that GPU) the warm-up ends on its own; a GPU is warmed once."""
    from pysm.codec.decoder import warm_up

    assert warm_up("cpu") is None
    t = warm_up("cuda:7")
    if not _core.nvdec_built():
        assert t is None
        return
    t.join(60)
    assert not t.is_alive()
    assert warm_up("cuda:7") is None


def test_cpu_decoder_takes_non_contiguous_buffers(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "h264", n=6, width=64, height=48, bframes=0)
    with Demuxer(clip) as d:
        info, packets = d.info, d.read_batch(6)
    strided = []
    for p in packets:
        raw = np.frombuffer(bytes(p), np.uint8)
        wide = np.zeros(2 * raw.size, np.uint8)
        wide[::2] = raw
        strided.append(wide[::2])  # the same bytes, every other one of a larger array
    assert not strided[0].flags.c_contiguous
    ref, dec = Decoder(info, "cpu"), Decoder(info, "cpu")
    a = ref.decode_many([bytes(p) for p in packets]) + ref.flush()
    b = dec.decode_many(strided) + dec.flush()
    assert len(a) == len(b) == 6
    for x, y in zip(a, b):
        assert np.array_equal(x.numpy(), y.numpy())


def test_warm_up_that_cannot_start_a_thread_is_skipped(monkeypatch):
    from pysm.codec import decoder as dec_mod

    if not _core.nvdec_built():
        pytest.skip("no NVDEC in this build: nothing to warm up")

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert dec_mod.warm_up("cuda:6") is None
    assert 6 not in dec_mod._warmed  # the next stream tries again


def test_a_source_that_fails_to_open_does_not_wait_for_the_warm_up(monkeypatch, tmp_path):
    import time

    import pysm.codec.decoder as decoder_mod

    release = threading.Event()
    slow = threading.Thread(target=release.wait, args=(30,))
    slow.start()
    monkeypatch.setattr(decoder_mod, "warm_up", lambda device: slow)
    t = time.perf_counter()
    try:
        with pytest.raises(errors.SourceError):
            VideoReader(tmp_path / "missing.mp4", "auto")
        assert time.perf_counter() - t < 10
    finally:
        release.set()
        slow.join()


def test_a_forked_child_warms_up_again():
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import os
        from pysm.codec import decoder
        decoder._warmed.add(5)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if 5 not in decoder._warmed else 1)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), 5 in decoder._warmed)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["0", "True"], out.stderr[-2000:]


@pytest.mark.parametrize("size", [(640, 360), (1280, 720)])
def test_rgb_coded_source_keeps_its_colours(tmp_path, size):
    # swscale made YUV from RGB with BT.601 while the frame was labelled with the stream's matrix
    # (BT.709 at 720 lines and more): the red block (200, 30, 30) came back as (215, 46, 28).
    import av

    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 3] = (200, 30, 30)
    img[:, w // 3: 2 * w // 3] = (30, 200, 30)
    img[:, 2 * w // 3:] = (30, 30, 200)
    path = tmp_path / "rgb.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "bgr0"
        encode_into(c, s, [img, img])
    with VideoReader(path, "cpu", output_format="RGB") as reader:
        frames = [f.numpy() for f in reader]
        assert reader.info.color_matrix == ("bt709" if h >= 720 else "bt601")
    assert len(frames) == 2
    err = np.abs(frames[0].astype(int) - img.astype(int))
    inside = np.ones(w, bool)  # away from the block edges, where 4:2:0 chroma blends two blocks
    for edge in (w // 3, 2 * w // 3):
        inside[edge - 4:edge + 4] = False
    assert err[:, inside].max() <= 3, err[:, inside].max()


@pytest.mark.parametrize("style", ["tuples of demuxed packets", "bytes with pts="])
def test_cpu_decoder_keeps_the_callers_timestamps_exactly(clips, style):
    # The CPU backend used a demuxed packet's own timestamp over the caller's, and rounded the
    # caller's nanoseconds to the container's ticks (1 ms in Matroska); NVDEC keeps them exact.
    path = clips["h264"].with_suffix(".mkv")
    make_clip(path, "h264", n=20, width=128, height=96)
    with Demuxer(path) as d:
        info = d.info
        packets = d.read_batch(100)
    assert info.time_base == Fraction(1, 1000)
    want = [1_000_000_000 + i * 33_366_701 for i in range(len(packets))]  # the caller's own clock
    with Decoder(info, "cpu") as dec:
        if style.startswith("tuples"):
            out = dec.decode_many(list(zip(packets, want)))
        else:
            out = [f for p, t in zip(packets, want) for f in dec.decode(bytes(p), pts=t)]
        out += dec.flush()  # frames drained here too
    assert sorted(f.pts for f in out) == want


def test_an_error_before_a_flush_does_not_flag_the_next_stream(clips):
    # A decode error in a stream's last packets left a pending flag that marked the first frame
    # decoded after the flush (the next segment of a parallel session, or the next loop pass).
    with Demuxer(clips["h264"]) as d:
        info = d.info
        packets = [bytes(p) for p in d.read_batch(100)]
    with Decoder(info, "cpu") as dec:
        dec.decode_many(packets[:5])
        dec.flush()
        # FFmpeg reports such errors only for some damage (it conceals most): stand in for one
        # that came with the stream's last packet, with no frame after it to carry the flag.
        dec._impl._pending_error = True
        assert dec.flush() == []
        frames = dec.decode_many(packets) + dec.flush()
    assert frames and not any(f.error for f in frames)


@pytest.mark.parametrize("mode", ["demuxed then explicit", "explicit, last untimed"])
def test_cpu_decoder_keeps_one_time_base_when_the_callers_style_changes(tmp_path, mode):
    # PyAV stamps the frames of a call with that call's packet time base: frames held back for
    # B-frame reordering came out in another unit when the caller switched between demuxed
    # packets and explicit times, or fed an untimed packet last.
    clip = make_clip(tmp_path / "bf.mp4", "h264", n=24, bframes=2, gop=12)
    with Demuxer(clip) as d:
        packets = list(d.packets())
        info = d.info
    truth = sorted(p.pts for p in packets)
    out = []
    with Decoder(info, "cpu") as dec:
        for i, p in enumerate(packets):
            if mode.startswith("demuxed"):
                out += dec.decode(p) if i < 12 else dec.decode(bytes(p.data), p.pts)
            else:
                out += dec.decode(bytes(p.data), p.pts if i < len(packets) - 1 else None)
        out += dec.flush()
    assert [f.pts for f in out] == truth


def test_cpu_decoder_chooses_its_time_base_again_after_a_flush(tmp_path):
    # The first stream's time base (Matroska: 1 ms) stayed for the decoder's life: the next
    # stream's explicit nanoseconds were rounded to milliseconds after flush().
    clip = make_clip(tmp_path / "c.mkv", "h264", n=12, bframes=2, gop=12)
    with Demuxer(clip) as d:
        packets = list(d.packets())
        info = d.info
    want = [1_000_000_123 + i * 33_366_667 for i in range(len(packets))]
    with Decoder(info, "cpu") as dec:
        first = [f for p in packets for f in dec.decode(p)] + dec.flush()
        again = [f for p, t in zip(packets, want) for f in dec.decode(bytes(p.data), t)] + dec.flush()
    assert len(first) == 12 and sorted(f.pts for f in again) == want
