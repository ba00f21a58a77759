"""Small test clips generated with PyAV for the codec tests (no binary files in the repository)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def available(codec: str) -> bool:
    import av

    return codec in av.codecs_available


def encoder_for(codec: str) -> str | None:
    """The PyAV encoder name for a codec family, or None when this wheel has none."""
    candidates = {"h264": ["libx264", "h264"], "hevc": ["libx265", "hevc"], "mpeg4": ["mpeg4"],
                  "mjpeg": ["mjpeg"], "av1": ["libsvtav1", "libaom-av1"], "vp9": ["libvpx-vp9"],
                  "mpeg2video": ["mpeg2video"]}[codec]
    import av

    for name in candidates:
        try:
            c = av.codec.Codec(name, "w")
        except Exception:  # noqa: BLE001
            continue
        if c.is_encoder:
            return name
    return None


def frames_rgb(n: int, width: int, height: int, seed: int = 0) -> list[np.ndarray]:
    """Moving gradients plus noise: real motion (so B-frames are used) and texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    out = []
    for i in range(n):
        r = (xx * 3 + i * 7) % 256
        g = (yy * 2 + i * 5) % 256
        b = ((xx + yy) + i * 11) % 256
        img = np.stack([r, g, b], axis=-1).astype(np.int16)
        img += rng.integers(-20, 21, size=img.shape, dtype=np.int16)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def make_clip(path: Path | str, codec: str = "h264", *, n: int = 24, width: int = 128, height: int = 96,
              rate: Fraction | int = 30, pix_fmt: str | None = None, bframes: int = 2, gop: int = 12,
              options: dict[str, str] | None = None, audio: bool = False, seed: int = 0,
              first_pts: int = 0) -> Path:
    """Encode ``n`` frames with ``codec``, the first at ``first_pts`` frame durations (the audio, if
    any, starts at 0); the container follows the file extension."""
    import av

    enc = encoder_for(codec)
    if enc is None:
        raise RuntimeError(f"no encoder for {codec}")
    path = Path(path)
    opts: dict[str, str] = {}
    if enc == "libx264":
        opts = {"bf": str(bframes), "g": str(gop), "preset": "ultrafast" if bframes == 0 else "veryfast"}
    elif enc == "libx265":
        opts = {"x265-params": f"bframes={bframes}:keyint={gop}:log-level=none", "preset": "ultrafast"}
    elif enc == "libsvtav1":
        opts = {"preset": "12"}
    opts.update(options or {})
    with av.open(str(path), "w") as c:
        s = c.add_stream(enc, rate=rate)
        s.width, s.height = width, height
        s.pix_fmt = pix_fmt or ("yuvj420p" if codec == "mjpeg" else "yuv420p")
        s.options = opts
        if codec in ("mpeg4", "mpeg2video"):
            s.codec_context.gop_size = gop
            s.codec_context.max_b_frames = bframes
            s.bit_rate = 2_000_000
        a = None
        if audio:
            a = c.add_stream("aac", rate=48000)
            a.layout = "stereo"
        for i, img in enumerate(frames_rgb(n, width, height, seed)):
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=s.pix_fmt)
            f.pts = first_pts + i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
        if a is not None:
            samples = int(48000 * n / float(rate))
            t = np.arange(samples) / 48000.0
            pcm = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            af = av.AudioFrame.from_ndarray(np.stack([pcm, pcm]), format="fltp", layout="stereo")
            af.sample_rate = 48000
            af.pts = 0
            for p in a.encode(af):
                c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def encode_into(container, stream, images: list, pts: list[int] | None = None) -> None:
    """Encode RGB images into ``stream`` (in its pixel format) and mux them, then flush it."""
    import av

    for i, img in enumerate(images):
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=stream.pix_fmt)
        f.pts = i if pts is None else pts[i]
        for pkt in stream.encode(f):
            container.mux(pkt)
    for pkt in stream.encode():
        container.mux(pkt)


def add_silence(container, stream, frames: int, size: int = 1024) -> None:
    """Encode ``frames`` frames of stereo silence into the audio ``stream`` and mux them."""
    import av

    for i in range(frames):
        fr = av.AudioFrame.from_ndarray(np.zeros((2, size), np.float32), format="fltp", layout="stereo")
        fr.sample_rate, fr.pts = stream.rate, i * size
        for pkt in stream.encode(fr):
            container.mux(pkt)
    for pkt in stream.encode():
        container.mux(pkt)


def annexb_file(src: Path | str, dst: Path | str) -> Path:
    """The H.264 stream of ``src`` as a raw Annex-B elementary stream (no timestamps, no index)."""
    import av

    with av.open(str(src)) as c, open(dst, "wb") as out:
        bsf = av.BitStreamFilterContext("h264_mp4toannexb", c.streams.video[0])
        for p in c.demux(c.streams.video[0]):
            for q in bsf.filter(p):
                out.write(bytes(q))
    return Path(dst)


def damage_packet(src: Path | str, dst: Path | str, index: int, seed: int = 0) -> Path:
    """``src`` with the middle half of video packet ``index``'s payload overwritten by random
    bytes (the container and the other packets intact)."""
    import av

    with av.open(str(src)) as c:
        pkt = [p for p in c.demux(c.streams.video[0]) if p.size][index]
        pos, size = int(pkt.pos), int(pkt.size)
    data = bytearray(Path(src).read_bytes())
    lo, hi = pos + size // 4, pos + 3 * size // 4
    data[lo:hi] = np.random.default_rng(seed).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return Path(dst)


def decode_with_one_damaged_packet(tmp_path: Path, device: str) -> tuple[list[int], dict]:
    """Frame 25 of a 60-frame H.264 clip (key frames every 20, no B-frames) made garbage and the
    clip decoded on ``device``: checks that the frames predicted from it (26..39) come out flagged,
    no frame outside 25..39 does, and every unflagged frame equals the clean decode. Returns the
    index of each frame that came out and the decoder's stats."""
    from pysm.codec import VideoReader

    clip = make_clip(tmp_path / "c.mp4", "h264", n=60, width=320, height=240, gop=20, bframes=0)
    bad = damage_packet(clip, tmp_path / "bad.mp4", 25)
    with VideoReader(clip, device) as r:
        clean = {f.pts: f.numpy().copy() for f in r}
    with VideoReader(bad, device) as r:
        frames = [(f.pts, f.error, f.numpy().copy()) for f in r]
        stats = r.decoder.stats
    order = sorted(clean)
    index = [order.index(pts) for pts, _, _ in frames]
    flagged = [i for i, (_, e, _) in zip(index, frames) if e]
    assert set(range(26, 40)) <= set(flagged) <= set(range(25, 40)), flagged
    for pts, err, px in frames:
        if not err:
            np.testing.assert_array_equal(px, clean[pts])
    return index, stats


def decode_beside(good: Path | str, bad: Path | str, device: str, loop_bad: bool = False) -> tuple[str, str]:
    """Decode ``good`` and ``bad`` with VideoReaders in two threads of one child process (so that a
    crash fails the caller instead of killing pytest), at most 300 frames each; returns what each
    gave: its frame count, or the name of the pysm error it raised."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import threading, pysm
        from pysm.codec import VideoReader
        out = {{}}
        def run(key, path, loop):
            try:
                with VideoReader(path, {device!r}, loop=loop) as r:
                    out[key] = sum(1 for f, _ in zip(r, range(300)))
            except pysm.Error as exc:
                out[key] = type(exc).__name__
        ts = [threading.Thread(target=run, args=("bad", {str(bad)!r}, {loop_bad!r})),
              threading.Thread(target=run, args=("good", {str(good)!r}, False))]
        [t.start() for t in ts]; [t.join() for t in ts]
        print("RESULT", out["good"], out["bad"])
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    good_result, bad_result = proc.stdout.split("RESULT")[-1].split()
    return good_result, bad_result


def reference_planes(path: Path | str) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """PyAV's own decode: (pts_ns, Y, U, V) per frame, planes cropped to the picture, in display order."""
    import av

    out = []
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        tb = st.time_base
        for f in c.decode(st):
            fmt = f.format.name
            dt = np.uint16 if ("p10" in fmt or "p12" in fmt or "p16" in fmt) else np.uint8
            planes = []
            for i, (w, h) in enumerate([(f.width, f.height), ((f.width + 1) // 2, (f.height + 1) // 2),
                                        ((f.width + 1) // 2, (f.height + 1) // 2)]):
                p = f.planes[i]
                arr = np.frombuffer(p, dtype=dt).reshape(p.height, p.line_size // np.dtype(dt).itemsize)
                planes.append(arr[:h, :w].copy())
            pts = -1 if f.pts is None else f.pts * tb.numerator * 1_000_000_000 // tb.denominator
            out.append((pts, *planes))
    return out


def split_nv12(arr: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Y, U, V) from an NV12/P016 array of shape (H*3/2, W)."""
    y = arr[:height, :width]
    uv = arr[height:height + (height + 1) // 2, : ((width + 1) // 2) * 2]
    return y, uv[:, 0::2], uv[:, 1::2]


def random_nv12(width: int, height: int, seed: int = 0, sixteen: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = height + (height + 1) // 2
    if sixteen:
        # 10-bit samples in the MSBs, as P016 holds them.
        return (rng.integers(0, 1024, size=(rows, width), dtype=np.uint16) << 6).astype(np.uint16)
    return rng.integers(0, 256, size=(rows, width), dtype=np.uint8)


def yuv_to_rgb_reference(nv12: np.ndarray, width: int, height: int, matrix: str, full: bool,
                         sixteen: bool = False) -> np.ndarray:
    """Float64 NumPy reference of the documented conversion (nearest-neighbour chroma)."""
    kr, kb = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}[matrix]
    kg = 1.0 - kr - kb
    s = 256.0 if sixteen else 1.0
    y = nv12[:height].astype(np.float64)
    uv = nv12[height:].astype(np.float64)
    u = np.repeat(np.repeat(uv[:, 0::2], 2, axis=0), 2, axis=1)[:height, :width]
    v = np.repeat(np.repeat(uv[:, 1::2], 2, axis=0), 2, axis=1)[:height, :width]
    if full:
        yn, un, vn = y / (255 * s), (u - 128 * s) / (255 * s), (v - 128 * s) / (255 * s)
    else:
        yn, un, vn = (y - 16 * s) / (219 * s), (u - 128 * s) / (224 * s), (v - 128 * s) / (224 * s)
    r = yn + 2 * (1 - kr) * vn
    g = yn - (2 * kb * (1 - kb) * un + 2 * kr * (1 - kr) * vn) / kg
    b = yn + 2 * (1 - kb) * un
    rgb = np.stack([r, g, b], axis=-1) * 255.0
    return np.clip(np.floor(rgb + 0.5), 0, 255).astype(np.uint8)


def yuv_to_rgb_float32_twin(nv12: np.ndarray, width: int, height: int, matrix: str, full: bool,
                            sixteen: bool = False) -> np.ndarray:
    """The conversion as csrc/imgproc computes it, step by step: float64 coefficients rounded to
    float32, then ((c0*Y + c1*Cb) + c2*Cr) + c3 per channel in float32 with every operation rounded
    (no fused multiply-add), floor(x + 0.5) and clamp. The CPU twin must match this bit for bit."""
    kr, kb = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}[matrix]
    kg = 1.0 - kr - kb
    s = 256.0 if sixteen else 1.0
    yoff, ys, cs = (0.0, 1.0 / (255.0 * s), 1.0 / (255.0 * s)) if full else \
        (16.0 * s, 1.0 / (219.0 * s), 1.0 / (224.0 * s))
    coff = 128.0 * s
    w = [(1.0, 0.0, 2.0 * (1.0 - kr)), (1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg),
         (1.0, 2.0 * (1.0 - kb), 0.0)]
    f32 = np.float32
    y = nv12[:height, :width].astype(f32)
    uv = nv12[height:]
    u = np.repeat(np.repeat(uv[:, 0::2], 2, axis=0), 2, axis=1)[:height, :width].astype(f32)
    v = np.repeat(np.repeat(uv[:, 1::2], 2, axis=0), 2, axis=1)[:height, :width].astype(f32)
    out = []
    for wy, wu, wv in w:
        a, b, d = 255.0 * wy * ys, 255.0 * wu * cs, 255.0 * wv * cs
        c0, c1, c2, c3 = f32(a), f32(b), f32(d), f32(-a * yoff - b * coff - d * coff)
        x = ((c0 * y + c1 * u) + c2 * v) + c3
        out.append(np.clip(np.floor(x + f32(0.5)), 0, 255).astype(np.uint8))
    return np.stack(out, axis=-1)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak * peak / mse)


def open_gop_options(codec: str, gop: int = 12, bframes: int = 3, **params) -> dict:
    """Encoder options for an open-GOP clip with a key frame every ``gop`` frames: for HEVC x265's
    CRA pictures with leading (RASL) pictures; for H.264 x264's I pictures with a recovery point
    SEI, followed in decoding order by B pictures shown before them (told only by their picture
    order counts). ``params`` adds or overrides encoder parameters."""
    base = {"keyint": gop, "min-keyint": gop, "open-gop": 1, "scenecut": 0, "bframes": bframes}
    if codec == "hevc":
        base["log-level"] = "none"
    else:
        base["b-pyramid"] = "normal"
    base.update(params)
    key = {"hevc": "x265-params", "h264": "x264-params"}[codec]
    return {key: ":".join(f"{k}={v}" for k, v in base.items())}


def joined_recordings(tmp_path: Path, ext: str, open_gop: bool, *, first: str | None = None,
                      second: str | None = None, sps_at_keys: bool = False) -> Path:
    """Two H.264 recordings of one size joined into one file, as a stream copy of a camera
    reconfigured part-way writes it: the container keeps the first part's SPS/PPS, and the second
    part's come in band, only with its first key frame (24 + 200 frames, 160x120). ``first`` and
    ``second``: the parts' x264 parameters instead of the defaults; ``sps_at_keys``: the second
    part repeats its SPS alone at every later key frame, as some cameras do."""
    import av

    extra = "open-gop=1:" if open_gop else ""
    # The first part is shorter than an automatic reader's watch (48 frames): the second part's
    # sets come while the reader's own decoder still decodes alone.
    a = make_clip(tmp_path / "a.mp4", "h264", n=24, width=160, height=120, gop=12, bframes=1,
                  options={"x264-params": first or f"{extra}keyint=12:min-keyint=12:scenecut=0:bframes=1:ref=1"})
    b = make_clip(tmp_path / "b.mp4", "h264", n=200, width=160, height=120, gop=40, bframes=6, seed=3,
                  options={"x264-params": second or f"{extra}keyint=40:min-keyint=40:scenecut=0:bframes=6:ref=4"})
    dst = tmp_path / f"joined.{ext}"
    with av.open(str(a)) as ia, av.open(str(b)) as ib, av.open(str(dst), "w") as o:
        sa, sb = ia.streams.video[0], ib.streams.video[0]
        assert bytes(sa.codec_context.extradata) != bytes(sb.codec_context.extradata)
        out = o.add_stream_from_template(sa)
        end = 0
        for p in ia.demux(sa):
            if p.size:
                end = max(end, p.pts + p.duration)
                p.stream = out
                o.mux(p)
        ed = bytes(sb.codec_context.extradata)  # avcC: SPS and PPS records, 4-byte NAL lengths
        sets, pos = [], 6
        for count in (ed[5] & 0x1F, None):
            if count is None:
                count, pos = ed[pos], pos + 1
            for _ in range(count):
                size = int.from_bytes(ed[pos:pos + 2], "big")
                sets.append(ed[pos + 2:pos + 2 + size])
                pos += 2 + size
        in_band = b"".join(len(n).to_bytes(4, "big") + n for n in sets)
        sps = len(sets[0]).to_bytes(4, "big") + sets[0]
        packets = [x for x in ib.demux(sb) if x.size]
        shift = end - min(0, packets[0].dts)  # decoding times keep rising across the join
        for k, p in enumerate(packets):
            head = in_band if k == 0 else sps if sps_at_keys and p.is_keyframe else b""
            q = av.Packet(head + bytes(p))
            q.pts, q.dts, q.time_base, q.is_keyframe = p.pts + shift, p.dts + shift, p.time_base, p.is_keyframe
            q.stream = out
            o.mux(q)
    return dst
