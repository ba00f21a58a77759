"""NVDEC path against the CPU decode, resolution changes, concurrency, leaks, and the colour kernel.

Run on a GPU host with PYSM_REQUIRE_GPU=1 (then a missing GPU or NVDEC fails instead of skipping).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from codec_media import (annexb_file, decode_beside, decode_with_one_damaged_packet, encoder_for, joined_recordings, make_clip,
                         open_gop_options, psnr, random_nv12, split_nv12)

import pysm
import pysm.codec
from pysm import errors
from pysm._native import _core
from pysm.codec import AnnexBConverter, Decoder, Demuxer, VideoReader, nvdec_capabilities

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def nvdec():
    try:
        caps = nvdec_capabilities(0)
    except errors.DriverError as exc:
        if os.environ.get("PYSM_REQUIRE_GPU") == "1":
            pytest.fail(f"PYSM_REQUIRE_GPU=1 but NVDEC is unavailable: {exc}")
        pytest.skip(f"NVDEC unavailable: {exc}")
    return caps


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu")
    out = {"h264": make_clip(root / "h264.mp4", "h264", n=30, width=320, height=240)}
    if encoder_for("hevc"):
        out["hevc"] = make_clip(root / "hevc.mp4", "hevc", n=30, width=320, height=240)
        out["hevc10"] = make_clip(root / "hevc10.mp4", "hevc", n=16, width=320, height=240, pix_fmt="yuv420p10le")
    return out


def _supports(caps, codec):
    return any(r["codec"] == codec and r["bit_depth"] == 8 and r["chroma"] == "420" and r["supported"] for r in caps)


def _decode(path, device):
    with VideoReader(path, device) as r:
        frames = list(r)
        return frames, r.device


def test_capabilities_list_h264_and_hevc(nvdec):
    rows = {(r["codec"], r["bit_depth"], r["chroma"]): r for r in nvdec}
    for key in (("h264", 8, "420"), ("hevc", 8, "420"), ("hevc", 10, "420")):
        r = rows[key]
        assert r["supported"], key
        assert r["max_width"] >= 4096 and r["max_height"] >= 2160 and r["num_engines"] >= 1
        assert r["min_width"] > 0 and r["min_height"] > 0
    assert set(nvdec[0]) >= {"codec", "bit_depth", "chroma", "supported", "max_width", "max_height",
                             "min_width", "min_height", "num_engines"}


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_nvdec_matches_cpu_8bit(nvdec, clips, codec):
    if codec not in clips:
        pytest.skip("no HEVC encoder in this PyAV wheel")
    gpu, dev = _decode(clips[codec], "cuda")
    cpu, _ = _decode(clips[codec], "cpu")
    assert dev == "cuda:0"
    assert len(gpu) == len(cpu) == 30
    assert [f.pts for f in gpu] == [f.pts for f in cpu]
    for g, c in zip(gpu, cpu):
        assert g.format == "NV12" and g.device == "cuda:0" and not g.error
        ga, ca = g.numpy(), c.numpy()
        for gp, cp in zip(split_nv12(ga, 320, 240), split_nv12(ca, 320, 240)):
            assert psnr(gp, cp) >= 45.0


def test_nvdec_matches_cpu_10bit_hevc(nvdec, clips):
    if "hevc10" not in clips:
        pytest.skip("no HEVC encoder (libx265 yuv420p10le) in this PyAV wheel")
    gpu, _ = _decode(clips["hevc10"], "cuda")
    cpu, _ = _decode(clips["hevc10"], "cpu")
    assert len(gpu) == len(cpu) == 16
    for g, c in zip(gpu, cpu):
        assert g.format == "P016" == c.format
        for gp, cp in zip(split_nv12(g.numpy(), 320, 240), split_nv12(c.numpy(), 320, 240)):
            assert psnr(gp, cp, peak=65535.0) >= 45.0


# The other NVDEC codecs, each against the CPU decode of the same clip. MPEG-2/4 and JPEG do not
# define a bit-exact inverse transform, so hardware and FFmpeg may differ by rounding (lower bound).
OTHER_CODECS = [("mpeg4", "mp4", 38.0), ("mpeg2video", "mkv", 38.0), ("mjpeg", "mkv", 38.0),
                ("vp9", "mkv", 45.0), ("av1", "mkv", 45.0)]


@pytest.mark.parametrize("codec,ext,min_db", OTHER_CODECS, ids=[c[0] for c in OTHER_CODECS])
def test_nvdec_other_codecs_match_cpu_or_refuse_clearly(nvdec, tmp_path, codec, ext, min_db):
    if not encoder_for(codec):
        pytest.skip(f"no {codec} encoder in this PyAV wheel")
    path = make_clip(tmp_path / f"clip.{ext}", codec, n=20, width=320, height=240)
    if not _supports(nvdec, codec):
        # cuvidGetDecoderCaps says no: the error names the codec and the GPU, nothing crashes.
        with pytest.raises(errors.UnsupportedError, match=rf"\b{codec}\b"):
            _decode(path, "cuda")
        return
    gpu, dev = _decode(path, "cuda")
    cpu, _ = _decode(path, "cpu")
    assert dev == "cuda:0"
    assert len(gpu) == len(cpu) == 20
    assert [f.pts for f in gpu] == [f.pts for f in cpu]
    worst = float("inf")
    for g, c in zip(gpu, cpu):
        assert g.format == "NV12" == c.format and g.device == "cuda:0" and not g.error
        for gp, cp in zip(split_nv12(g.numpy(), 320, 240), split_nv12(c.numpy(), 320, 240)):
            worst = min(worst, psnr(gp, cp))
    print(f"{codec}: NVDEC vs CPU, worst plane PSNR {worst:.1f} dB")
    assert worst >= min_db


def _annexb_packets(path):
    with Demuxer(path) as d:
        conv = AnnexBConverter(d.info.codec, d.info.extradata)
        pkts = [conv.convert(p.data) for p in d]
    pkts[0] = conv.headers + pkts[0]
    return pkts


def test_resolution_change_mid_stream(nvdec, tmp_path):
    big = make_clip(tmp_path / "big.mp4", "h264", n=10, width=320, height=240, bframes=0, seed=1)
    small = make_clip(tmp_path / "small.mp4", "h264", n=10, width=160, height=128, bframes=0, seed=2)
    segments = [big, small, big]
    dec = _core.NvdecDecoder("h264", b"", device=0)
    sizes, frames = [], []
    for seg in segments:
        for i, pkt in enumerate(_annexb_packets(seg)):
            for f in dec.decode(pkt, i):
                frames.append(f)
    frames += dec.flush()
    sizes = [(f.width, f.height) for f in frames]
    assert sizes == [(320, 240)] * 10 + [(160, 128)] * 10 + [(320, 240)] * 10
    st = dec.stats
    assert st["reconfigures"] + st["recreates"] >= 2
    assert st["reconfigures"] >= 1, "shrinking within the reserved size reconfigures in place"
    # Pixels of each segment equal the CPU decode of that clip.
    for k, seg in enumerate(segments):
        cpu, _ = _decode(seg, "cpu")
        for g, c in zip(frames[10 * k:10 * k + 10], cpu):
            w, h = c.width, c.height
            assert psnr(split_nv12(g.numpy(), w, h)[0], split_nv12(c.numpy(), w, h)[0]) >= 45.0
    dec.close()


def test_32_concurrent_decoders(nvdec, clips):
    cpu, _ = _decode(clips["h264"], "cpu")
    ref = [c.numpy() for c in cpu]
    results, errs = {}, []

    def work(i):
        try:
            frames, dev = _decode(clips["h264"], "cuda")
            assert dev == "cuda:0"
            # Check a few frames of each stream against the CPU decode.
            results[i] = (len(frames), [psnr(frames[k].numpy(), ref[k]) for k in (0, 15, 29)])
        except Exception as exc:  # noqa: BLE001
            errs.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errs, errs[:3]
    assert len(results) == 32
    for n, ps in results.values():
        assert n == 30 and min(ps) >= 45.0


def _cycle_packets(path, n=6):
    with Demuxer(path) as d:
        return d.info, [bytes(p.data) for p in d][:n]


def _cycle(info, packets):
    dec = Decoder(info, "cuda")
    out = []
    for i, p in enumerate(packets):
        out += dec.decode(p, pts=i)
    out += dec.flush()
    assert len(out) >= 1
    dec.close()


@pytest.fixture
def decoder_cache():
    """The session cache with its defaults; restored (and emptied) after the test."""
    before = pysm.codec.decoder_cache_info()
    pysm.codec.configure_decoder_cache(enabled=True, max_per_key=4, max_total=16)
    yield pysm.codec
    pysm.codec.configure_decoder_cache(enabled=before["enabled"], max_per_key=before["max_per_key"],
                                       max_total=before["max_total"])


def test_create_destroy_500_times_flat_memory(nvdec, clips, decoder_cache):
    """Closing parks the NVDEC session; the next decoder of the same format takes it over."""
    info, packets = _cycle_packets(clips["h264"])
    for _ in range(10):  # warm up pools, the cache and the driver's own allocations
        _cycle(info, packets)
    pysm.empty_cache()
    free0 = pysm.cuda.device_info(0)["free_memory"]
    hits0 = decoder_cache.decoder_cache_info()["hits"]
    t0 = time.perf_counter()
    for _ in range(500):
        _cycle(info, packets)
    elapsed = time.perf_counter() - t0
    pysm.empty_cache()
    free1 = pysm.cuda.device_info(0)["free_memory"]
    cache = decoder_cache.decoder_cache_info()
    assert cache["hits"] - hits0 >= 500 and cache["parked"] >= 1
    assert free0 - free1 < 64 * 2**20, f"device memory fell by {(free0 - free1) / 2**20:.1f} MiB"
    assert elapsed < 60, f"500 create/decode/close cycles took {elapsed:.1f} s"


def test_create_destroy_without_cache_flat_memory(nvdec, clips, decoder_cache):
    """With the cache off every close destroys its session in the driver: 100 real create/destroy
    cycles. One decoder stays open meanwhile, as in a program with other streams running: the
    driver destroys a session in ~22 ms then, and the last one of the process in ~230 ms."""
    info, packets = _cycle_packets(clips["h264"])
    decoder_cache.configure_decoder_cache(enabled=False)
    assert decoder_cache.decoder_cache_info()["parked"] == 0
    alive = Decoder(info, "cuda")
    alive.decode(packets[0], pts=0)
    for _ in range(3):
        _cycle(info, packets)
    pysm.empty_cache()
    free0 = pysm.cuda.device_info(0)["free_memory"]
    t0 = time.perf_counter()
    for _ in range(100):
        _cycle(info, packets)
    elapsed = time.perf_counter() - t0
    pysm.empty_cache()
    free1 = pysm.cuda.device_info(0)["free_memory"]
    alive.close()
    assert decoder_cache.decoder_cache_info()["parked"] == 0
    assert free0 - free1 < 16 * 2**20, f"device memory fell by {(free0 - free1) / 2**20:.1f} MiB"
    assert elapsed < 60, f"100 uncached cycles took {elapsed:.1f} s"


def test_reused_session_decodes_identically_and_keeps_old_frames(nvdec, clips, tmp_path, decoder_cache):
    other = make_clip(tmp_path / "other.mp4", "h264", n=30, width=320, height=240, seed=7)
    decoder_cache.clear_decoder_cache()
    first, _ = _decode(clips["h264"], "cuda")
    kept = [f.numpy().copy() for f in first]
    assert decoder_cache.decoder_cache_info()["parked"] == 1
    # Another stream of this format (same encoder settings) most likely takes the session over.
    second, _ = _decode(other, "cuda")
    cpu, _ = _decode(other, "cpu")
    assert len(second) == len(cpu) == 30
    for g, c in zip(second, cpu):
        for gp, cp in zip(split_nv12(g.numpy(), 320, 240), split_nv12(c.numpy(), 320, 240)):
            assert psnr(gp, cp) >= 45.0
    # The first stream's frames are copies in pool memory: untouched by the session's next user.
    for f, k in zip(first, kept):
        np.testing.assert_array_equal(f.numpy(), k)
    # The same clip again certainly takes a parked session, and decodes the same pixels on it.
    hits = decoder_cache.decoder_cache_info()["hits"]
    with Demuxer(clips["h264"]) as d:
        dec = Decoder(d.info, "cuda")
        again = []
        for p in d:
            again += dec.decode(p)
        again += dec.flush()
        assert dec.stats["sessions_reused"] == 1
        dec.close()
    assert decoder_cache.decoder_cache_info()["hits"] == hits + 1
    assert len(again) == 30
    for f, k in zip(again, kept):
        np.testing.assert_array_equal(f.numpy(), k)


def test_a_parked_session_counts_for_the_fast_start_only_at_its_queue_depth(nvdec, clips, decoder_cache):
    """nvdec_cache_has (the fast start steps aside when it says yes) matches the queue depth a new
    decoder would ask for: a parked session of another depth cannot be taken over."""
    decoder_cache.clear_decoder_cache()
    info, packets = _cycle_packets(clips["h264"])
    _cycle(info, packets)  # its session, made at the default depth, is parked on close
    has = lambda **depth: _core.nvdec_cache_has(0, "h264", 8, info.width, info.height, **depth)  # noqa: E731
    assert has() and has(extra_decode_surfaces=4, output_surfaces=4)
    assert not has(extra_decode_surfaces=0) and not has(output_surfaces=2)


def test_decoder_cache_bounds_and_clear(nvdec, clips, tmp_path, decoder_cache):
    small = make_clip(tmp_path / "small.mp4", "h264", n=8, width=160, height=128)
    decoder_cache.clear_decoder_cache()
    decoder_cache.configure_decoder_cache(max_per_key=2, max_total=3)
    info, packets = _cycle_packets(clips["h264"])
    decs = []
    for _ in range(4):  # four live sessions of one format at once
        dec = Decoder(info, "cuda")
        for i, p in enumerate(packets):
            dec.decode(p, pts=i)
        decs.append(dec)
    for dec in decs:
        dec.close()
    c = decoder_cache.decoder_cache_info()
    assert c["parked"] == 2 and c["evictions"] >= 2
    _decode(small, "cuda")  # another key
    assert decoder_cache.decoder_cache_info()["parked"] == 3
    assert decoder_cache.clear_decoder_cache() == 3
    assert decoder_cache.decoder_cache_info()["parked"] == 0


EXIT_CHILD = textwrap.dedent("""
    import sys, pysm.codec
    from pysm.codec import Decoder, Demuxer, VideoReader
    with VideoReader(sys.argv[1], "cuda") as r:  # closed: its session is parked
        n = sum(1 for _ in r)
    parked = pysm.codec.decoder_cache_info()["parked"]  # before the next decoder takes the session over
    with VideoReader(sys.argv[1], "cuda") as r:  # parked again at close
        next(iter(r))
    d = Demuxer(sys.argv[1])
    dec = Decoder(d.info, "cuda")  # left open, with frames alive, at interpreter exit
    frames = [f for p in d.read_batch(8) for f in dec.decode(p)]
    print("RESULT", n, len(frames), parked, flush=True)
""")


@pytest.mark.parametrize("cache", ["1", "0"])
def test_interpreter_exit_with_parked_and_open_decoders(nvdec, clips, cache):
    env = dict(os.environ, PYSM_NVDEC_CACHE=cache)
    proc = subprocess.run([sys.executable, "-c", EXIT_CHILD, str(clips["h264"])], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    n, live, parked = map(int, proc.stdout.split("RESULT")[-1].split())
    assert n == 30 and live >= 1
    assert parked == (1 if cache == "1" else 0)


@pytest.mark.parametrize("batch", [1, 3, 8])
def test_decode_many_matches_decode(nvdec, clips, batch):
    with Demuxer(clips["h264"]) as d:
        dec = Decoder(d.info, "cuda")
        packets = []
        while True:
            b = d.read_batch(batch)
            if not b:
                break
            packets.append(b)
        offset = 5_000_000_000
        frames = []
        for b in packets:
            frames += dec.decode_many(b, offset)
        frames += dec.flush()
        dec.close()
    ref, _ = _decode(clips["h264"], "cuda")
    assert len(frames) == len(ref) == 30
    assert [f.pts for f in frames] == [f.pts + offset for f in ref]
    for f, r in zip(frames, ref):
        np.testing.assert_array_equal(f.numpy(), r.numpy())


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_a_shallow_nvdec_queue_decodes_the_same_frames(nvdec, clips, codec):
    """configure_nvdec_queue: a display delay of 1 (PyNvVideoCodec's), no extra surfaces and one
    mapped frame at a time give the default queue's frames bit for bit, B-frames included."""
    if codec not in clips:
        pytest.skip(f"no {codec} encoder")
    def nvdec_only():  # every frame from NVDEC: no first frame from the fast start's CPU decode
        with VideoReader(clips[codec], "cuda", fast_start=False) as r:
            return list(r)

    ref = nvdec_only()
    try:
        pysm.codec.configure_nvdec_queue(display_delay=1, extra_decode_surfaces=0, output_surfaces=1)
        shallow = nvdec_only()
    finally:
        pysm.codec.configure_nvdec_queue(display_delay=-1, extra_decode_surfaces=-1, output_surfaces=-1)
    assert len(shallow) == len(ref) == 30
    assert [f.pts for f in shallow] == [f.pts for f in ref]
    for f, r in zip(shallow, ref):
        np.testing.assert_array_equal(f.numpy(), r.numpy())


def test_many_frames_held_at_once(nvdec, tmp_path):
    """More live frames than the decoder's event ring holds: each keeps its own pixels."""
    clip = make_clip(tmp_path / "long.mp4", "h264", n=100, width=320, height=240, seed=3)
    gpu, _ = _decode(clip, "cuda")
    cpu, _ = _decode(clip, "cpu")
    assert len(gpu) == len(cpu) == 100
    for g, c in zip(gpu, cpu):
        assert psnr(split_nv12(g.numpy(), 320, 240)[0], split_nv12(c.numpy(), 320, 240)[0]) >= 45.0


@pytest.mark.parametrize("kind", ["h264", "hevc"])
def test_nvdec_decoder_continues_at_clean_restart_points(nvdec, clips, kind):
    """Decoder.continues_at (the NVDEC decoder's own Annex-B view of its stream) agrees with a
    standalone AnnexBConverter on every packet: IDR pictures yes, the others no."""
    if kind not in clips:
        pytest.skip(f"no {kind} encoder in this PyAV wheel")
    with Demuxer(clips[kind]) as dm:
        info, pkts = dm.info, []
        while batch := dm.read_batch(16):
            pkts += batch
    conv = AnnexBConverter(info.codec, info.extradata or b"")
    want = [conv.starts_sequence(p, bool(p.is_keyframe)) for p in pkts]
    with Decoder(info, "cuda") as d:
        assert [d.continues_at(p) for p in pkts] == want
        assert want[0] and not all(want)
    assert not d.continues_at(pkts[0])  # closed


def _frames_of(path, n=None, **kw):
    out = []
    with VideoReader(path, "cuda", **kw) as r:
        for f in r:
            out.append(f)
            if n is not None and len(out) >= n:
                break
    return [(f.pts, f.error, f.numpy()) for f in out], r.sessions_used


_SESSION_CLIPS = {
    "h264": ("h264", None),
    "hevc": ("hevc", {"x265-params": "bframes=2:keyint=15:no-open-gop=1:log-level=none"}),
    # x265's default: CRA key frames with leading (RASL) pictures, cut at each CRA
    "hevc-open-gop": ("hevc", open_gop_options("hevc", gop=15)),
    # x264's open GOP: I pictures with a recovery point, cut there, leading B pictures told by
    # their picture order counts
    "h264-open-gop": ("h264", open_gop_options("h264", gop=15)),
}


@pytest.mark.parametrize("kind", list(_SESSION_CLIPS))
def test_nvdec_sessions_give_the_serial_frames(nvdec, tmp_path, kind):
    """A file decoded on 3 NVDEC sessions (explicit) or as many as pysm picks (automatic: one
    reader, a consumer faster than one session) gives the frames of one session, bit for bit,
    and those match the CPU's decode."""
    codec, opts = _SESSION_CLIPS[kind]
    if encoder_for(codec) is None:
        pytest.skip(f"no {codec} encoder in this PyAV wheel")
    clip = make_clip(tmp_path / f"{kind}.mp4", codec, n=240, width=640, height=360, gop=15, bframes=3,
                     options=opts, seed=3)
    serial, used = _frames_of(clip, sessions=1)
    assert len(serial) == 240 and used == 1
    with VideoReader(clip, "cpu") as r:
        cpu = [(f.pts, f.numpy()) for f in r]
    assert [p for p, _, _ in serial] == [p for p, _ in cpu]
    assert min(psnr(g, c) for (_, _, g), (_, c) in zip(serial, cpu)) >= 45.0
    for kw, want_used in (({"sessions": 3}, 3), ({}, None)):
        par, used = _frames_of(clip, **kw)
        assert len(par) == len(serial)
        for i, ((pa, ea, fa), (pb, eb, fb)) in enumerate(zip(serial, par)):
            assert (pa, ea) == (pb, eb), (kw, i)
            np.testing.assert_array_equal(fa, fb, err_msg=f"{kw} frame {i}")
        if want_used is not None:
            assert used == want_used
        else:
            assert used >= 2, "automatic mode used one session for a lone fast reader"


@pytest.mark.parametrize("open_gop", [False, True])
def test_nvdec_sessions_get_parameter_sets_that_change_part_way(nvdec, tmp_path, open_gop):
    """Two recordings joined, the second part's SPS/PPS in band only at its first key frame: a
    later segment's NVDEC session is given them ahead of its first packet, and gives NVDEC's
    serial frames bit for bit, which match the CPU's decode."""
    if encoder_for("h264") != "libx264":
        pytest.skip("no libx264 in this PyAV wheel")
    clip = joined_recordings(tmp_path, "mkv", open_gop)
    serial, used = _frames_of(clip, sessions=1)
    assert len(serial) == 224 and used == 1 and not any(e for _, e, _ in serial)
    with VideoReader(clip, "cpu") as r:
        cpu = [(f.pts, f.numpy()) for f in r]
    assert [p for p, _, _ in serial] == [p for p, _ in cpu]
    assert min(psnr(g, c) for (_, _, g), (_, c) in zip(serial, cpu)) >= 45.0
    par, used = _frames_of(clip, sessions=3)
    assert used == 3 and len(par) == len(serial)
    for i, ((pa, ea, fa), (pb, eb, fb)) in enumerate(zip(serial, par)):
        assert (pa, ea) == (pb, eb), i
        np.testing.assert_array_equal(fa, fb, err_msg=f"frame {i}")
    # Looped (a seamless loop on NVDEC): each pass starts with the container's parameter sets again.
    for sessions in (1, 3):
        looped, _ = _frames_of(clip, 2 * 224, loop=True, sessions=sessions)
        assert len(looped) == 448 and not any(e for _, e, _ in looped)
        for i in range(224):
            np.testing.assert_array_equal(looped[224 + i][2], serial[i][2], err_msg=f"{sessions} sessions, pass 2 frame {i}")


@pytest.mark.parametrize("name, frames", [("retail_1080p30_h264.mp4", 400), ("retail_1080p30_hevc.mp4", 700)])
def test_nvdec_sessions_on_the_real_clip(nvdec, shared_data, name, frames):
    """The retail CCTV clips on 4 sessions, looped: the same frames, in the same order, with the
    same timestamps as one session. H.264: an IDR every 60 frames; HEVC: an IDR, then CRA
    pictures with leading pictures at 246 and 498 of 603 (past the loop point)."""
    import hashlib

    clip = shared_data / name

    def digests(**kw):
        out = []  # held on the device while reading, so that the consumer outruns the decode
        with VideoReader(clip, "cuda", loop=True, **kw) as r:
            for f in r:
                out.append(f)
                if len(out) >= frames:
                    break
        return [(f.pts, f.error, hashlib.sha1(f.numpy().tobytes()).hexdigest()) for f in out], r.sessions_used

    serial, _ = digests(sessions=1)
    par, used = digests(sessions=4)
    assert used >= 3  # (the fourth may not be needed before the 400th frame)
    assert par == serial


def test_nvdec_sessions_that_cannot_start_leave_the_frames_to_the_others(nvdec, tmp_path):
    """Two of four NVDEC sessions fail as cuvidCreateDecoder does when the device has no room
    (at their first decode call): the reader goes on with the two that run, frames bit for bit."""
    import itertools

    clip = make_clip(tmp_path / "c.mp4", "h264", n=240, width=640, height=360, gop=15, bframes=2, seed=5)
    serial, _ = _frames_of(clip, sessions=1)

    class NoRoom:
        def __init__(self, decoder):
            self.decoder = decoder

        def decode_many(self, packets, offset):
            raise errors.OutOfMemoryError("cuvidCreateDecoder: CUDA_ERROR_OUT_OF_MEMORY (test)")

        def close(self):
            self.decoder.close()

    out = []
    with VideoReader(clip, "cuda", sessions=4) as r:
        made = itertools.count(1)
        real = r._new_session  # noqa: SLF001
        r._new_session = lambda: NoRoom(real()) if next(made) % 2 == 0 else real()  # noqa: SLF001
        out = [(f.pts, f.error, f.numpy()) for f in r]
        stats = r.parallel_stats["sessions"]
    assert [s["failed_to_start"] for s in stats].count(True) >= 1  # (if the fourth took a segment: 2)
    assert len(out) == len(serial) == 240
    for i, ((pa, ea, fa), (pb, eb, fb)) in enumerate(zip(serial, out)):
        assert (pa, ea) == (pb, eb), i
        np.testing.assert_array_equal(fa, fb, err_msg=f"frame {i}")


@pytest.mark.parametrize("sessions", [1, 3])
@pytest.mark.parametrize("kind", ["h264", "hevc", "mpeg4"])
def test_reader_loops_on_gpu_with_increasing_pts(nvdec, clips, tmp_path, kind, sessions):
    # H.264/HEVC clips start at an IDR: passes follow each other without a flush (seamless);
    # MPEG-4 takes the flushing path. Either way no frame is lost or repeated at the boundaries.
    if kind not in clips and kind != "mpeg4":
        pytest.skip(f"no {kind} encoder in this PyAV wheel")
    path = clips[kind] if kind in clips else make_clip(tmp_path / "m.mp4", "mpeg4", n=30, width=320, height=240)
    with VideoReader(path, "cuda", loop=True, sessions=sessions) as r:
        frames = []
        for f in r:
            frames.append(f)
            if len(frames) == 95:
                break
        assert r.seamless_loop is (kind != "mpeg4")
    pts = [f.pts for f in frames]
    step = pts[1] - pts[0]
    # (ns timestamps are floored from the container's ticks: steps may differ by a nanosecond)
    assert all(abs(b - a - step) <= 2 for a, b in zip(pts, pts[1:])), "one frame step everywhere, boundaries included"
    for k in range(30):  # later passes decode the same pictures
        a = frames[k].numpy()
        np.testing.assert_array_equal(a, frames[k + 30].numpy())
        np.testing.assert_array_equal(a, frames[k + 60].numpy())


@pytest.mark.parametrize("fmt", ["RGB", "BGR", "RGBA", "BGRA"])
@pytest.mark.parametrize("sixteen", [False, True])
def test_color_kernel_matches_cpu_twin(fmt, sixteen):
    if not pysm.cuda.is_available():
        pytest.skip("no GPU")
    w, h = 1920, 1080
    for seed, (matrix, rng) in enumerate([("bt601", "limited"), ("bt709", "limited"), ("bt709", "full"),
                                          ("bt2020", "limited")]):
        arr = random_nv12(w, h, seed=seed, sixteen=sixteen)
        y, uv = np.ascontiguousarray(arr[:h]), np.ascontiguousarray(arr[h:])
        bpp = 2 if sixteen else 1
        host = _core.frame_from_yuv420(y, uv, None, w * bpp, w * bpp, 0, w, h, 10 if sixteen else 8, 0, matrix, rng)
        dev = host.cuda(0)
        assert dev.device == "cuda:0"
        g = dev.to(fmt).numpy()
        c = host.to(fmt).numpy()
        diff = np.abs(g.astype(int) - c.astype(int))
        assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3, (matrix, rng)


def test_frames_outlive_their_decoder(nvdec, clips):
    with Demuxer(clips["h264"]) as d:
        dec = Decoder(d.info, "cuda")
        frames = []
        for p in d:
            frames += dec.decode(p)
        frames += dec.flush()
    before = [f.numpy().copy() for f in frames[:5]]
    dec.close()
    del dec
    for f, b in zip(frames[:5], before):
        np.testing.assert_array_equal(f.numpy(), b)


def test_low_latency_outputs_each_frame_at_once(nvdec, tmp_path):
    clip = make_clip(tmp_path / "ll.mp4", "h264", n=12, bframes=0)
    with Demuxer(clip) as d:
        dec = Decoder(d.info, "cuda", low_latency=True)
        per_packet = [len(dec.decode(p)) for p in d]
    assert per_packet == [1] * 12


def test_auto_picks_nvdec(nvdec, clips):
    with Demuxer(clips["h264"]) as d:
        dec = Decoder(d.info, "auto")
    assert dec.device == "cuda:0" and dec.fallback_reason is None


def test_rgb_output_on_device(nvdec, clips):
    gpu, _ = _decode(clips["h264"], "cuda")
    cpu, _ = _decode(clips["h264"], "cpu")
    g = gpu[4].to("RGB")
    assert g.device == "cuda:0" and g.format == "RGB"
    assert psnr(g.numpy(), cpu[4].to("RGB").numpy()) >= 40.0


NVDEC_CHILD = textwrap.dedent("""
    import sys, pysm
    from pysm.codec import VideoReader
    n = flagged = 0
    try:
        with VideoReader(sys.argv[1], "cuda") as r:
            for f in r:
                n += 1; flagged += f.error; f.numpy()
        print("RESULT ok", n, flagged)
    except pysm.Error as exc:
        print("RESULT", type(exc).__name__, exc)
""")


def test_nvdec_size_out_of_range_names_codec_profile_size_and_gpu(nvdec, tmp_path):
    row = next(r for r in nvdec if r["codec"] == "h264" and r["bit_depth"] == 8 and r["chroma"] == "420")
    if row["min_width"] <= 16:
        pytest.skip(f"this GPU decodes H.264 down to {row['min_width']} pixels wide")
    w = max(16, (row["min_width"] // 2) // 16 * 16)
    path = make_clip(tmp_path / "tiny.mp4", "h264", n=4, width=w, height=64)
    with pytest.raises(errors.UnsupportedError) as exc:
        _decode(path, "cuda")
    msg = str(exc.value)
    profile = Demuxer(path).info.profile
    assert "h264" in msg and f"{w}x64" in msg and profile and profile in msg
    assert pysm.cuda.device_info(0)["name"] in msg


def test_a_corrupt_nvdec_stream_beside_a_good_one(nvdec, clips, tmp_path):
    # Garbage on one NVDEC decoder and a good clip on another, in threads of one (child) process:
    # the good one gives all its frames, the bad one an error or flagged frames, nothing crashes.
    junk = tmp_path / "junk.h264"
    junk.write_bytes(b"\x00\x00\x00\x01\x67" + np.random.default_rng(9).integers(0, 256, 200_000, np.uint8).tobytes())
    good, bad = decode_beside(clips["h264"], junk, "cuda", loop_bad=True)
    assert good == "30"
    assert bad in ("SourceError", "DecodeError", "UnsupportedError") or int(bad) > 0


def test_nvdec_damage_is_flagged_until_the_next_key_frame(nvdec, tmp_path):
    # As on the CPU (test_decode_corrupt.py): frame 25's data is garbage; it and the frames
    # predicted from it (26..39) come out flagged, the key frame at 40 starts clean again.
    _, stats = decode_with_one_damaged_packet(tmp_path, "cuda")
    assert stats["damaged"] >= 10


@pytest.mark.parametrize("kind", ["flipped", "random"])
def test_nvdec_corrupt_input_never_crashes(nvdec, clips, tmp_path, kind):
    if kind == "flipped":
        data = bytearray(clips["h264"].read_bytes())
        rng = np.random.default_rng(11)
        for pos in rng.integers(len(data) // 4, len(data) * 3 // 4, 80):
            data[pos] ^= 1 << int(rng.integers(0, 8))
        path = tmp_path / "bad.mp4"
        path.write_bytes(bytes(data))
    else:
        path = tmp_path / "bad.h264"
        path.write_bytes(b"\x00\x00\x00\x01\x67" + np.random.default_rng(5).integers(0, 256, 100_000, np.uint8).tobytes())
    proc = subprocess.run([sys.executable, "-c", NVDEC_CHILD, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout.split("RESULT")[-1].split()
    assert out[0] in ("ok", "SourceError", "DecodeError", "UnsupportedError")
    if out[0] == "ok":
        assert int(out[1]) > 0  # never silently empty: no frame at all is a DecodeError


def test_warm_up_initialises_the_gpu_once_per_process(nvdec):
    """``warm_up`` binds the GPU's primary context in a thread of its own, once per GPU and process
    (VideoReader starts it before opening the source, so that the two overlap)."""
    code = textwrap.dedent("""
        import ctypes
        from pysm.codec.decoder import warm_up
        cu = ctypes.CDLL("libcuda.so.1")
        cu.cuInit(0)

        def active():
            d, flags, on = ctypes.c_int(), ctypes.c_uint(), ctypes.c_int()
            cu.cuDeviceGet(ctypes.byref(d), 0)
            cu.cuDevicePrimaryCtxGetState(d, ctypes.byref(flags), ctypes.byref(on))
            return on.value

        before = active()
        t = warm_up("cuda:0")
        t.join()
        print(before, active(), warm_up("cuda:0") is None, warm_up("cpu") is None)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["0", "1", "True", "True"], out.stderr[-2000:]


# Containers whose timing the decoder cannot take from the packets one by one: an MP4 cut by an
# edit list (pre-roll packets flagged is_discard, negative pts), raw elementary streams (no
# timestamps at all), MPEG-TS (one across its 33-bit PTS wrap) and a late-starting Matroska file. NVDEC must give exactly the CPU
# decoder's frames: the same count, the same pts, the same pictures.
_TIMING_CASES = {
    "mp4-bframes": ("h264", "mp4", dict(bframes=2)),
    "mp4-cut": ("h264", "mp4", dict(bframes=0, gop=10, first_pts=-15)),
    "mp4-cut-bframes": ("h264", "mp4", dict(bframes=2, gop=10, first_pts=-15)),
    "hevc-mp4-cut": ("hevc", "mp4", dict(bframes=2, gop=10, first_pts=-13)),
    "ts": ("h264", "ts", dict(bframes=2)),
    "ts-pts-wrap": ("h264", "ts", dict(bframes=2, first_pts=2_863_311 - 42 - 20 + 40)),  # wraps at frame ~22
    "mkv-late": ("h264", "mkv", dict(bframes=2, first_pts=7)),
    "vp9-webm": ("vp9", "webm", dict(gop=10)),  # VP9/AV1 take the parser's display timestamps
    "vp9-mp4-cut": ("vp9", "mp4", dict(gop=10, first_pts=-5)),
    # 25 fps times are exact in ns: a loop's next pre-roll lands on the last frames' own times
    "vp9-mp4-cut-25fps": ("vp9", "mp4", dict(gop=10, first_pts=-2, rate=25)),
    "av1-webm": ("av1", "webm", dict()),  # SVT-AV1: hidden frames shown later by 3-byte packets
    "av1-mp4-cut": ("av1", "mp4", dict(first_pts=-5)),
    "raw-h264": ("h264", "h264", dict(bframes=2)),
    "raw-hevc": ("hevc", "hevc", dict(bframes=2)),
}


def _timing_clip(tmp_path, case, caps):
    codec, ext, opts = _TIMING_CASES[case]
    if not encoder_for(codec):
        pytest.skip(f"no {codec} encoder in this PyAV wheel")
    if not _supports(caps, codec):
        pytest.skip(f"cuvidGetDecoderCaps: this GPU's NVDEC does not decode {codec}")
    if ext == "h264":
        return annexb_file(make_clip(tmp_path / "t.mp4", codec, n=40, width=320, height=240, **opts), tmp_path / "t.h264")
    return make_clip(tmp_path / f"t.{ext}", codec, n=40, width=320, height=240, **opts)


@pytest.mark.parametrize("case", sorted(_TIMING_CASES))
def test_nvdec_gives_the_cpu_decoders_frames_and_timestamps(nvdec, tmp_path, case):
    path = _timing_clip(tmp_path, case, nvdec)
    cpu, _ = _decode(path, "cpu")
    gpu, dev = _decode(path, "cuda")
    assert dev == "cuda:0" and len(cpu) >= 25
    assert [f.pts for f in gpu] == [f.pts for f in cpu]
    if "cut" in case:  # packet by packet too (decode, not decode_many), counting what it hid
        with Demuxer(path) as d:
            info, pkts = d.info, list(d)
        with Decoder(info, "cuda", fast_start=False) as dec:
            one = [f for p in pkts for f in dec.decode(p)] + dec.flush()
            assert dec.stats["discarded"] == sum(p.discard for p in pkts) > 0
        assert [f.pts for f in one] == [f.pts for f in cpu]
        with Decoder(info, "cuda", fast_start=False) as dec:  # (payload, pts) items of decode_many
            tuples = dec.decode_many([(p.data, p.pts) for p in pkts]) + dec.flush()
        assert [f.pts for f in tuples] == [f.pts for f in cpu]
        # A pre-roll without times is hidden all the same (VP9/AV1 match what they show by time).
        untimed = [(p.data, None if p.discard else p.pts) for p in pkts]
        with Decoder(info, "cpu") as dec:
            cpu_untimed = dec.decode_many(untimed) + dec.flush()
        with Decoder(info, "cuda", fast_start=False) as dec:
            gpu_untimed = dec.decode_many(untimed) + dec.flush()
        assert [f.pts for f in gpu_untimed] == [f.pts for f in cpu_untimed] == [f.pts for f in cpu]
    for i, (g, c) in enumerate(zip(gpu, cpu)):
        for gp, cp in zip(split_nv12(g.numpy(), 320, 240), split_nv12(c.numpy(), 320, 240)):
            assert psnr(gp, cp) >= 45.0, (case, i)


@pytest.mark.parametrize("case", ["mp4-cut", "mp4-cut-bframes", "raw-h264", "vp9-mp4-cut-25fps", "av1-mp4-cut"])
def test_nvdec_loops_a_cut_or_raw_stream_like_the_cpu(nvdec, tmp_path, case):
    path = _timing_clip(tmp_path, case, nvdec)
    out = {}
    for device in ("cpu", "cuda"):
        with VideoReader(path, device, loop=True) as r:
            out[device] = [(f.pts, f.numpy()) for f in itertools.islice(r, 100)]
    assert [p for p, _ in out["cuda"]] == [p for p, _ in out["cpu"]]
    pts = [p for p, _ in out["cuda"]]
    step = pts[1] - pts[0]
    assert all(abs(b - a - step) <= 2 for a, b in zip(pts, pts[1:])), "one frame step, pass boundaries included"
    for i, ((_, g), (_, c)) in enumerate(zip(out["cuda"], out["cpu"])):
        assert psnr(g[:240], c[:240]) >= 45.0, i
