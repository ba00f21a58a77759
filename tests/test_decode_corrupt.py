"""Bad input: each case gives SourceError/DecodeError or per-frame error flags, never a crash.

The decoding runs in a subprocess, so a segfault or abort fails the test instead of killing pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest

from codec_media import add_silence, decode_beside, decode_with_one_damaged_packet, encoder_for, make_clip

CHILD = textwrap.dedent("""
    import json, sys
    import pysm
    from pysm.codec import VideoReader
    path, device = sys.argv[1], sys.argv[2]
    result = {"frames": 0, "flagged": 0, "error": None, "message": ""}
    try:
        with VideoReader(path, device) as reader:
            for frame in reader:
                result["frames"] += 1
                result["flagged"] += int(frame.error)
                frame.numpy()  # touch the pixels
    except pysm.Error as exc:
        result["error"] = type(exc).__name__
        result["message"] = str(exc)
    print("RESULT " + json.dumps(result))
""")


def run_script(code: str, *args: str) -> str:
    """``code`` run in a child Python with ``args``: its stdout; a crash fails the test."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert proc.returncode == 0, f"decoder process died (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc.stdout


def run_child(path: Path, device: str = "cpu") -> dict:
    out = run_script(CHILD, str(path), device)
    line = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert line, out
    return json.loads(line[-1][len("RESULT "):])


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    root = tmp_path_factory.mktemp("corrupt")
    return {"mp4": make_clip(root / "good.mp4", "h264", n=30, gop=10),
            "mkv": make_clip(root / "good.mkv", "h264", n=30, gop=10),
            "ts": make_clip(root / "good.ts", "h264", n=30, gop=10)}


def test_good_clip_baseline(good):
    r = run_child(good["mp4"])
    assert r == {"frames": 30, "flagged": 0, "error": None, "message": ""}


@pytest.mark.parametrize("codec,ext", [("mpeg2video", "mpg"), ("h264", "mpg"), ("h264", "flv")])
def test_a_file_whose_streams_appear_while_probing_opens_in_a_process_that_lives(tmp_path, codec, ext):
    """MPEG-PS (.mpg/.vob) and FLV streams appear only while FFmpeg probes: PyAV 17 wrote the fast
    open's decoder options past the end of an array sized before the probe, and the process died."""
    path = make_clip(tmp_path / f"p.{ext}", codec, n=30, gop=10)
    r = run_child(path)
    assert r == {"frames": 30, "flagged": 0, "error": None, "message": ""}
    out = run_script("import sys; from pysm.utils import MediaInfo; print('RESULT', MediaInfo.discover(sys.argv[1]).video.frame_count)",
                     str(path))
    count = int(out.split("RESULT")[-1])
    assert count == 30 or (ext == "flv" and abs(count - 30) <= 2)  # FLV: estimated from its duration


def test_pyav17_keeps_decoder_open_options_only_where_streams_are_in_the_header(tmp_path, monkeypatch):
    """On PyAV 17 the fast open's decoder settings go to the streams only for MP4/MOV, Matroska and
    MPEG-TS (known by their first bytes), where FFmpeg makes every stream from the header; other
    files (MPEG-PS, FLV: streams appear while probing) get them on the container alone."""
    import av

    import pysm.codec.demux as demux_module

    seen = []
    real_open = av.open

    def spying_open(target, *a, **kw):
        seen.append(kw)
        return real_open(target, *a, **kw)

    monkeypatch.setattr(demux_module, "_per_stream_options_crash", lambda: True)
    monkeypatch.setattr(av, "open", spying_open)
    clips = {ext: make_clip(tmp_path / f"c.{ext}", "h264" if ext != "mpg" else "mpeg2video", n=10, gop=5)
             for ext in ("mp4", "mkv", "ts", "mpg", "flv")}
    for ext, path in clips.items():
        seen.clear()
        from pysm.codec import Demuxer

        with Demuxer(path) as d:
            assert d.info.codec in ("h264", "mpeg2video")
        first = seen[0]
        if ext in ("mp4", "mkv", "ts"):
            assert first["options"]["skip_frame"] == "all", ext
        else:
            assert "options" not in first and "skip_frame" not in first["container_options"], ext


@pytest.mark.parametrize("container", ["mp4", "mkv", "ts"])
def test_truncated_file(good, tmp_path, container):
    data = good[container].read_bytes()
    cut = tmp_path / f"cut.{container}"
    cut.write_bytes(data[: len(data) * 6 // 10])
    r = run_child(cut)
    if r["error"]:
        assert r["error"] in ("SourceError", "DecodeError")
        assert str(cut) in r["message"] or "decode" in r["message"].lower()
    else:
        assert 0 < r["frames"] < 30  # the part that is there decodes


def test_random_bytes(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    r = run_child(junk)
    assert r["error"] == "SourceError" and str(junk) in r["message"]


@pytest.mark.parametrize("container", ["mp4", "ts"])
def test_bit_flipped_stream(good, tmp_path, container):
    data = bytearray(good[container].read_bytes())
    rng = np.random.default_rng(7)
    # Flip bits in the middle half (the coded pictures; headers/index left intact).
    lo, hi = len(data) // 4, len(data) * 3 // 4
    for pos in rng.integers(lo, hi, 60):
        data[pos] ^= 1 << int(rng.integers(0, 8))
    bad = tmp_path / f"flipped.{container}"
    bad.write_bytes(bytes(data))
    r = run_child(bad)
    if r["error"]:
        assert r["error"] in ("SourceError", "DecodeError")
    else:
        assert r["frames"] > 0
        # Damage shows up as flagged frames or as frames the decoder had to drop.
        assert r["flagged"] > 0 or r["frames"] < 30


def test_damage_is_flagged_until_the_next_key_frame(tmp_path):
    # Frame 25's data is garbage: it and every frame predicted from it (26..39) are flagged; the
    # key frame at 40 starts clean again, and no unflagged frame differs from the clean decode.
    index, stats = decode_with_one_damaged_packet(tmp_path, "cpu")
    assert set(index) >= set(range(60)) - {25}  # the damaged frame may be dropped instead
    assert stats["damaged"] >= 10 and stats["errors"] >= 1


def test_not_a_video_file(tmp_path):
    wav = tmp_path / "tone.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 10) * 8000).astype("<i2").tobytes())
    r = run_child(wav)
    assert r["error"] == "SourceError" and "no video stream" in r["message"]
    text = tmp_path / "config.yaml"
    text.write_text("a: 1\n" * 200)
    r = run_child(text)
    assert r["error"] == "SourceError"
    notes = tmp_path / "notes.txt"  # FFmpeg opens .txt as an 'ansi' video of its characters
    notes.write_text("lorem ipsum dolor sit amet " * 10 + "\n" * 200)
    r = run_child(notes)
    assert r["error"] == "SourceError" and "text file" in r["message"]


def test_unknown_codec(good, tmp_path):
    data = good["mp4"].read_bytes()
    assert data.count(b"avc1") >= 1
    patched = tmp_path / "unknown.mp4"
    patched.write_bytes(data.replace(b"avc1", b"zq9x").replace(b"avcC", b"zq9C"))
    r = run_child(patched)
    assert r["error"] in ("SourceError", "UnsupportedError", "DecodeError")
    assert "codec" in r["message"].lower()


def test_a_stream_that_gives_no_frame_is_an_error(good, tmp_path):
    # H.264 in a container that says HEVC: every packet fails. Not one frame and no error would
    # read as an empty file; a DecodeError names the source and the codec instead.
    data = good["mp4"].read_bytes()
    lying = tmp_path / "lying.mp4"
    lying.write_bytes(data.replace(b"avc1", b"hev1"))
    r = run_child(lying)
    assert r["error"] == "DecodeError" and r["frames"] == 0
    assert str(lying) in r["message"] and "hevc" in r["message"]


def test_other_decoders_keep_running_after_a_bad_one(good, tmp_path):
    # One thread decodes garbage, another a good clip, in the same (child) process.
    junk = tmp_path / "junk.h264"
    junk.write_bytes(b"\x00\x00\x00\x01\x65" + np.random.default_rng(3).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    good_frames, bad = decode_beside(good["mp4"], junk, "cpu")
    assert good_frames == "30"
    assert bad in ("SourceError", "DecodeError") or int(bad) > 0  # never silently empty


CLOSE_CHILD = textwrap.dedent("""
    import sys, threading, time
    from pysm import errors
    from pysm.codec import Demuxer
    path = sys.argv[1]
    # 1. A packets() generator suspended while the demuxer closes: the next read raises.
    d = Demuxer(path)
    g = iter(d)
    next(g)
    d.close()
    try:
        next(g)
        print("NO ERROR")
    except errors.SourceError as exc:
        print("SUSPENDED", "closed" in str(exc) and path in str(exc))
    # 2. Closed from another thread while a thread reads as fast as it can.
    for _ in range(20):
        d = Demuxer(path)
        seen = []
        def read():
            try:
                while d.read_batch(2):
                    pass
                seen.append("end")
            except errors.SourceError:
                seen.append("error")
        t = threading.Thread(target=read)
        t.start()
        time.sleep(0.001)
        d.close()
        t.join(30)
        assert not t.is_alive() and seen, seen
    print("THREADS ok")
""")


def test_reading_a_closed_demuxer_raises_instead_of_crashing(good):
    # PyAV's demux generator read a freed container: the process died with SIGSEGV.
    out = run_script(CLOSE_CHILD, str(good["mp4"]))
    assert "SUSPENDED True" in out and "THREADS ok" in out, out


def test_latin1_metadata_does_not_fail_the_open(good, tmp_path):
    from pysm.codec import Demuxer
    from pysm.utils import MediaInfo

    import av

    src = tmp_path / "latin1.mkv"
    with av.open(str(good["mkv"])) as inp, av.open(str(src), "w") as out:
        out.metadata["title"] = "Caf\u00e9 cam"
        ost = out.add_stream_from_template(inp.streams.video[0])
        for pkt in inp.demux(inp.streams.video[0]):
            if pkt.size:
                pkt.stream = ost
                out.mux(pkt)
    data = src.read_bytes()
    assert data.count(b"Caf\xc3\xa9") == 1
    src.write_bytes(data.replace(b"Caf\xc3\xa9", b"Caf\xe9_"))  # what older muxers write: not UTF-8
    with Demuxer(src) as d:
        assert d.info.codec == "h264"
    assert MediaInfo.discover(str(src)).video is not None
    assert run_child(src)["frames"] == 30


def test_an_audio_file_with_cover_art_has_no_video(tmp_path):
    import av

    from pysm import errors
    from pysm.codec import Demuxer
    from pysm.utils import MediaInfo

    path = tmp_path / "song.mp4"
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        cover = c.add_stream("mjpeg", rate=1)
        cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic.value  # PyAV 17 takes an int only
        f = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24").reformat(format="yuvj420p")
        f.pts = 0
        for pkt in list(cover.encode(f)) + list(cover.encode()):
            c.mux(pkt)
        add_silence(c, a, 50)
    assert MediaInfo.discover(str(path)).video is None  # was a 90,000 fps mjpeg "video"
    with pytest.raises(errors.SourceError, match="cover picture"):
        Demuxer(path)


def test_percent_encoded_file_uri(good, tmp_path):
    from pysm.codec import Demuxer

    path = tmp_path / "my clip #1.mp4"
    path.write_bytes(Path(good["mp4"]).read_bytes())
    with Demuxer(path.as_uri()) as d:  # file:///.../my%20clip%20%231.mp4
        assert d.info.codec == "h264" and d.uri == path.as_uri()


@pytest.mark.parametrize("scheme", ["http", "rtsp"])
def test_a_silent_server_is_reported_as_a_timeout(scheme):
    # A server that accepts the connection and sends nothing: the open must end at open_timeout
    # and say so (RTSP reported "not a media file FFmpeg understands").
    import socket
    import threading
    import time

    from pysm import errors
    from pysm.codec import Demuxer

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    held = []
    threading.Thread(target=lambda: held.append(srv.accept()), daemon=True).start()
    t = time.monotonic()
    try:
        with pytest.raises(errors.SourceError, match="timed out after 1 s"):
            Demuxer(f"{scheme}://127.0.0.1:{srv.getsockname()[1]}/cam", open_timeout=1, read_timeout=1)
        assert time.monotonic() - t < 10
    finally:
        srv.close()
        for conn, _ in held:
            conn.close()


STALL_CHILD = textwrap.dedent("""
    import socket, sys, threading, time
    from pysm import errors
    from pysm.codec import Demuxer
    data = open(sys.argv[1], "rb").read()
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(2)
    held = []
    def serve():  # headers and the first part of a TS file, then silence
        c, _ = srv.accept(); c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: video/mp2t\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(data)
                  + data[:len(data) // 2])
        held.append(c)
    threading.Thread(target=serve, daemon=True).start()
    # A short probe, so that the open ends on the data sent and the stall comes in a read.
    d = Demuxer(f"http://127.0.0.1:{srv.getsockname()[1]}/cam.ts", open_timeout=5, read_timeout=4,
                options={"probesize": "32768", "analyzeduration": "100000"})
    t_open = time.monotonic()
    outcome = []
    def read():
        try:
            while d.read_batch(4):
                pass
            outcome.append("end")
        except errors.SourceError as exc:
            outcome.append(str(exc))
    t = threading.Thread(target=read); t.start()
    time.sleep(1.0)  # the reader is blocked on the silent socket now
    t0 = time.monotonic(); d.close(); took = time.monotonic() - t0
    t.join(20)
    print("CLOSE", round(took, 2), "READER", not t.is_alive(), "AFTER", round(time.monotonic() - t_open, 2), outcome)
""")


def test_close_does_not_wait_for_a_blocked_network_read(good):
    # close() from another thread must neither free the container under a read (a crash) nor wait
    # for a silent source's read timeout (stopping many dead cameras would add up).
    out = run_script(STALL_CHILD, str(good["ts"]))
    line = [ln for ln in out.splitlines() if ln.startswith("CLOSE ")]
    assert line, out
    took = float(line[0].split()[1])
    assert took < 0.5 and "READER True" in line[0], line[0]


def test_a_truncated_mp4_raises_after_its_frames(tmp_path):
    # An MP4 whose index is at the start and whose data is cut in half (a recording that stopped)
    # ended early without a word: the frames it has come out, then SourceError says why.
    from pysm import errors
    from pysm.codec import VideoReader
    from pysm.utils import MediaChunk, MediaExtractor

    import av

    made = make_clip(tmp_path / "made.mp4", "h264", n=60, gop=10)
    src = tmp_path / "full.mp4"
    with av.open(str(made)) as inp, av.open(str(src), "w", options={"movflags": "+faststart"}) as out:
        ost = out.add_stream_from_template(inp.streams.video[0])  # index first, as cameras write
        for pkt in inp.demux(inp.streams.video[0]):
            if pkt.size:
                pkt.stream = ost
                out.mux(pkt)
    path = tmp_path / "cut.mp4"
    data = Path(src).read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    got = []
    with pytest.raises(errors.SourceError, match="truncated"):
        with VideoReader(path, "cpu") as reader:
            for f in reader:
                got.append(f.pts)
    assert 20 <= len(got) < 60 and got == sorted(got)
    with MediaExtractor([MediaChunk(str(path))], q_size=64, blocking=True, device="cpu") as ex:
        q = ex()[0]
        n = 0
        while q.get(timeout=30) is not None:
            n += 1
        assert n == len(got) and "truncated" in ex.errors[0]
    assert run_child(Path(src))["frames"] == 60  # the whole file: no false alarm


@pytest.mark.parametrize("movflags", ["empty_moov+frag_every_frame", "frag_keyframe+empty_moov", "frag_keyframe"])
def test_a_complete_fragmented_mp4_is_not_taken_for_truncated(tmp_path, movflags):
    # A fragmented MP4 lists no samples in its index: its frame count is a guess from the duration
    # and FFmpeg's average rate (768 for 48 frames with audio beside), never a packet count.
    import av

    from pysm.codec import VideoReader

    path = _fragmented_mp4(tmp_path / "frag.mp4", movflags)
    with av.open(str(path)) as c:
        shown = sum(1 for _ in c.decode(video=0))  # 47 with frag_every_frame: PyAV's count rules
    with VideoReader(path, "cpu") as reader:
        assert sum(1 for _ in reader) == shown and not reader.demuxer.truncated


def _fragmented_mp4(path: Path, movflags: str) -> Path:
    """48 frames of 128x96 H.264 with AAC beside, in a fragmented MP4."""
    import av

    from codec_media import encode_into, frames_rgb

    with av.open(str(path), "w", options={"movflags": movflags}) as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        s.options = {"bf": "2", "g": "12", "preset": "veryfast"}
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        encode_into(c, s, frames_rgb(48, 128, 96))
        add_silence(c, a, 470)
    return path


@pytest.mark.parametrize("share", [0.4, 0.55, 0.7])
@pytest.mark.parametrize("movflags", ["frag_keyframe+empty_moov", "frag_keyframe"])
def test_a_truncated_fragmented_mp4_raises_after_its_frames(tmp_path, movflags, share):
    # No sample table to count against: the sign is the last sample cut short, which FFmpeg flags
    # corrupt. It used to end early without a word.
    from pysm import errors
    from pysm.codec import VideoReader

    data = _fragmented_mp4(tmp_path / "frag.mp4", movflags).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * share)])
    got = []
    with pytest.raises(errors.SourceError, match="middle of a video packet: the file is truncated"):
        with VideoReader(cut, "cpu") as reader:
            for f in reader:
                got.append(f.pts)
    assert 0 < len(got) < 48 and got == sorted(got)


MUTATE_CHILD = textwrap.dedent("""
    import random, sys
    from pysm import errors
    from pysm.codec import AnnexBConverter, Demuxer
    rng = random.Random(int(sys.argv[2]))
    with Demuxer(sys.argv[1]) as d:
        codec, extradata = d.info.codec, bytes(d.info.extradata or b"")
        packets = [bytes(p.data) for p in d][:4]

    def mutate(b):
        b = bytearray(b)
        for _ in range(rng.randint(1, 6)):
            if not b:
                break
            i, op = rng.randrange(len(b)), rng.randrange(3)
            if op == 0:
                b[i] = rng.randrange(256)
            elif op == 1:
                del b[i:]
            else:
                b.insert(i, rng.randrange(256))
        return bytes(b)

    refused = 0
    for _ in range(400):
        try:
            conv = AnnexBConverter(codec, mutate(extradata))
            conv.headers
            for p in packets:
                q = mutate(p)
                conv.starts_sequence(q, rng.random() < 0.5, rng.random() < 0.5)
                try:
                    conv.convert(q)
                except errors.DecodeError:
                    refused += 1
        except errors.Error:
            refused += 1
    print("OK", refused)
""")


@pytest.mark.parametrize("codec", ["h264", "hevc"])
def test_a_mutated_codec_configuration_or_packet_never_crashes(tmp_path, codec):
    """avcC/hvcC records and length-prefixed packets with bytes changed, cut or inserted go
    through the native bitstream parser: refused with an error or converted, never a crash."""
    if not encoder_for(codec):
        pytest.skip(f"no {codec} encoder")
    clip = make_clip(tmp_path / "c.mp4", codec, n=4, width=64, height=48)
    out = run_script(MUTATE_CHILD, str(clip), "7")
    assert out.startswith("OK "), out
