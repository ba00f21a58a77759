"""utils.MediaInfo.discover: codec, size, frame rate, duration, frame count, bit depth, colour."""

from __future__ import annotations

from fractions import Fraction

import pytest

from codec_media import encoder_for, make_clip

from pysm.utils import AudioStreamInfo, MediaInfo, VideoStreamInfo


def test_h264_fields(tmp_path):
    path = make_clip(tmp_path / "a.mp4", "h264", n=30, width=160, height=90, rate=Fraction(30000, 1001))
    info = MediaInfo.discover(path)
    assert info and not info.error and not info.live
    v = info.video
    assert isinstance(v, VideoStreamInfo)
    assert (v.codec, v.width, v.height) == ("h264", 160, 90)
    assert v.framerate == (30000, 1001) and info.framerate == (30000, 1001)
    assert v.frame_count == 30 and info.frame_count == 30
    assert v.bit_depth == 8 and v.pix_fmt == "yuv420p"
    expected_ns = 30 * 1001 * 1_000_000_000 // 30000
    assert abs(info.duration - expected_ns) < 50_000_000
    assert info.color_matrix == "bt601" and info.color_range == "limited"
    assert info.codec == "h264" and (info.width, info.height) == (160, 90)
    assert len(info.streams) == 1


def test_file_uri_and_audio_stream(tmp_path):
    path = make_clip(tmp_path / "av.mp4", "h264", n=15, audio=True)
    info = MediaInfo.discover(f"file://{path}")
    assert info
    kinds = sorted(type(s).__name__ for s in info.streams)
    assert kinds == ["AudioStreamInfo", "VideoStreamInfo"]
    a = info.audio
    assert isinstance(a, AudioStreamInfo)
    assert a.codec == "aac" and a.channels == 2 and a.sampling_rate == 48000


@pytest.mark.skipif(not encoder_for("hevc"), reason="this PyAV wheel has no HEVC encoder")
def test_hevc_10bit_depth(tmp_path):
    path = make_clip(tmp_path / "h10.mp4", "hevc", n=5, pix_fmt="yuv420p10le")
    info = MediaInfo.discover(path)
    assert info.codec == "hevc" and info.bit_depth == 10


@pytest.mark.skipif(not encoder_for("av1"), reason="this PyAV wheel has no AV1 encoder")
def test_av1_is_named_by_its_codec_not_by_ffmpegs_decoder(tmp_path):
    # FFmpeg decodes AV1 with libdav1d; the stream is still "av1" (what NVDEC and users key on).
    info = MediaInfo.discover(make_clip(tmp_path / "a.webm", "av1", n=5))
    assert info.codec == "av1" and info.video.codec == "av1" and info.bit_depth == 8


def test_colour_description_is_reported(tmp_path):
    path = make_clip(tmp_path / "c.mp4", "h264", n=5,
                     options={"colorspace": "bt709", "color_range": "pc", "color_primaries": "bt709",
                              "color_trc": "bt709"})
    v = MediaInfo.discover(path).video
    assert v.color_matrix == "bt709"
    assert v.color_range == "full"
    assert v.color_primaries == "bt709" and v.color_transfer == "bt709"


def test_mjpeg_is_full_range(tmp_path):
    path = make_clip(tmp_path / "m.mkv", "mjpeg", n=4)
    info = MediaInfo.discover(path)
    assert info.codec == "mjpeg" and info.color_range == "full"


def test_bad_sources_are_falsy(tmp_path):
    missing = MediaInfo.discover(tmp_path / "missing.mp4")
    assert not missing and "not found" in missing.error
    junk = tmp_path / "junk.dat"
    junk.write_bytes(bytes(range(256)) * 32)
    assert not MediaInfo.discover(junk)


def _video_with_longer_audio(path, video_frames: int = 90, audio_s: int = 6) -> None:
    import av

    from codec_media import add_silence, encode_into, frames_rgb

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=48000)
        a.layout = "stereo"
        encode_into(c, s, frames_rgb(video_frames, 64, 48))
        add_silence(c, a, audio_s * 48000 // 1024)


@pytest.mark.parametrize("ext", ["mkv", "ts", "mp4"])
def test_video_duration_is_the_video_tracks_not_the_files(tmp_path, ext):
    # Matroska stores a track's length only in a DURATION tag: the file's (the audio's, 6 s) was
    # taken, and the frame count derived from it (180 instead of 90).
    from pysm.codec import Demuxer

    if encoder_for("h264") is None:
        pytest.skip("no H.264 encoder")
    path = tmp_path / f"a.{ext}"
    _video_with_longer_audio(path)
    info = MediaInfo.discover(path)
    assert info.video.frame_count == 90 and abs(info.video.duration - 3_000_000_000) < 50_000_000
    for fast in (True, False):
        with Demuxer(path, fast_open=fast) as d:
            assert d.info.frame_count == 90 and abs(d.info.duration - 3_000_000_000) < 50_000_000, fast


def test_frame_count_follows_the_edit_list(tmp_path):
    # An MP4 whose edit list hides its first 5 samples (timestamps starting below 0): the index
    # holds 20 samples, 15 pictures are shown, and PyAV decodes 15.
    import av

    from codec_media import encode_into, frames_rgb

    if encoder_for("h264") is None:
        pytest.skip("no H.264 encoder")
    path = tmp_path / "cut.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 128, 96, "yuv420p"
        s.options = {"bf": "0", "g": "10"}
        encode_into(c, s, frames_rgb(20, 128, 96), pts=[i - 5 for i in range(20)])
    with av.open(str(path)) as c:
        shown = sum(1 for _ in c.decode(video=0))
    assert MediaInfo.discover(path).frame_count == shown == 15
