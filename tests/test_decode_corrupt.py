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

from codec_media import decode_beside, decode_with_one_damaged_packet, make_clip

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


def run_child(path: Path, device: str = "cpu") -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), device], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    assert proc.returncode == 0, f"decoder process died (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert line, proc.stdout + proc.stderr
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
