"""CPU decode (no GPU): pysm's software fallback vs the PyAV loop a user would write instead.

    python benchmarks/decode_cpu.py                  # both retail clips, 300 frames, 5 rounds
    python benchmarks/decode_cpu.py --frames 150 --rounds 3 --markdown

For each clip (the retail 1080p30 H.264 and HEVC clips from ../shared/data) four ways of getting
frames into host memory run one after another, in rounds, each round in a new order:

- ``pysm NV12``: ``VideoReader(uri, device="cpu")``, frames as host NV12 surfaces;
- ``PyAV yuv``: ``for f in container.decode(stream): f.to_ndarray()`` (planar YUV 4:2:0);
- ``pysm RGB``: ``VideoReader(uri, device="cpu", output_format="RGB")``;
- ``PyAV rgb24``: ``f.to_ndarray(format="rgb24")`` (swscale).

Both use FFmpeg's decoder with its automatic (frame + slice) threading. Each measurement decodes
``--frames`` frames from the start of the file in a fresh reader, opening included, and reports
frames per second and process CPU time per frame (all threads). The table gives medians over the
rounds and the range. ``--convert`` also times the colour conversion alone on decoded frames
(pysm ``Frame.to("RGB")`` vs PyAV ``to_ndarray(format="rgb24")``, median per frame) and compares each
with a float64 reference of the BT.601/709 definition (tests/codec_media.py) on the first picture:
PyAV as a user calls it, and with the stream's matrix passed to swscale.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("PYSM_DATA") or HERE.parents[1] / "shared" / "data")
CLIPS = {"h264": "retail_1080p30_h264.mp4", "hevc": "retail_1080p30_hevc.mp4"}


def pysm_frames(path: str, n: int, fmt: str) -> int:
    from pysm.codec import VideoReader

    k = 0
    with VideoReader(path, device="cpu", output_format=fmt) as reader:
        for _ in reader:
            k += 1
            if k >= n:
                break
    return k


def pyav_frames(path: str, n: int, fmt: str | None) -> int:
    import av

    k = 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            frame.to_ndarray() if fmt is None else frame.to_ndarray(format=fmt)
            k += 1
            if k >= n:
                break
    return k


WAYS = {
    "pysm NV12": lambda p, n: pysm_frames(p, n, "NV12"),
    "PyAV yuv": lambda p, n: pyav_frames(p, n, None),
    "pysm RGB": lambda p, n: pysm_frames(p, n, "RGB"),
    "PyAV rgb24": lambda p, n: pyav_frames(p, n, "rgb24"),
}


def measure(way: str, path: str, n: int) -> tuple[float, float]:
    """(frames per second, CPU ms per frame) of one fresh reader decoding n frames."""
    c0, t0 = time.process_time(), time.perf_counter()
    k = WAYS[way](path, n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return k / wall, cpu / k * 1e3


def convert_times(path: str, n: int = 30) -> list[tuple[str, float, str]]:
    """(way, median ms per frame, error against the float64 reference) of the colour conversion
    alone, on the same decoded pictures."""
    import av
    import numpy as np
    from av.video.reformatter import Colorspace

    sys.path.insert(0, str(HERE.parent / "tests"))
    from codec_media import yuv_to_rgb_reference

    from pysm.codec import VideoReader

    with VideoReader(path, device="cpu") as reader:
        ours = [f for _, f in zip(range(n), reader)]
    with av.open(path) as container:
        theirs = [f for _, f in zip(range(n), container.decode(video=0))]
    first = ours[0]
    ref = yuv_to_rgb_reference(first.numpy(), first.width, first.height, first.matrix, first.range == "full")
    space = {"bt709": Colorspace.ITU709, "bt601": Colorspace.ITU601}.get(first.matrix)
    ways = [("pysm Frame.to('RGB')", ours, lambda f: f.to("RGB").numpy()),
            ("PyAV to_ndarray('rgb24')", theirs, lambda f: f.to_ndarray(format="rgb24"))]
    if space is not None:
        ways.append((f"PyAV rgb24, {first.matrix} given", theirs,
                     lambda f: f.reformat(format="rgb24", src_colorspace=space, dst_colorspace=space).to_ndarray()))
    out = []
    for name, frames, fn in ways:
        times = []
        for f in frames * 3:
            t = time.perf_counter()
            fn(f)
            times.append(time.perf_counter() - t)
        diff = np.abs(fn(frames[0]).astype(int) - ref)
        err = f"max |error| {diff.max()}, {np.mean(diff > 0):.1%} of samples off"
        out.append((name, statistics.median(times) * 1e3, err))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", default="h264,hevc", help="subset of h264,hevc")
    ap.add_argument("--frames", type=int, default=300, help="frames per measurement")
    ap.add_argument("--rounds", type=int, default=5, help="measurements per way and clip")
    ap.add_argument("--ways", default=",".join(WAYS), help="subset of: " + ", ".join(WAYS))
    ap.add_argument("--convert", action="store_true", help="also time the colour conversion alone")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    ways = [w.strip() for w in args.ways.split(",")]
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        print(f"unknown ways {unknown}; expected some of {list(WAYS)}", file=sys.stderr)
        return 2
    rows = []
    for clip in args.clips.split(","):
        path = DATA / CLIPS[clip]
        if not path.exists():
            print(f"skipping {clip}: {path} is missing (set PYSM_DATA to the shared data folder)", file=sys.stderr)
            continue
        WAYS[ways[0]](str(path), 10)  # imports, page cache
        runs: dict[str, list[tuple[float, float]]] = {w: [] for w in ways}
        order = list(ways)
        for r in range(args.rounds):
            random.Random(r).shuffle(order)
            for w in order:
                runs[w].append(measure(w, str(path), args.frames))
        for w in ways:
            fps = [x[0] for x in runs[w]]
            cpu = [x[1] for x in runs[w]]
            rows.append((clip, w, statistics.median(fps), min(fps), max(fps), statistics.median(cpu)))
        if args.convert:
            for name, ms, err in convert_times(str(path)):
                print(f"{clip}: {name}: {ms:.2f} ms per frame (median); against float64 {err}")
    if not rows:
        return 1
    print(f"\n{os.cpu_count()} CPUs, {args.frames} frames per measurement, {args.rounds} rounds (median, range)")
    head = f"{'clip':6} {'way':12} {'fps':>8} {'range':>15} {'CPU ms/frame':>13}"
    print(head)
    print("-" * len(head))
    for clip, w, med, lo, hi, cpu in rows:
        print(f"{clip:6} {w:12} {med:8.1f} {lo:7.1f}-{hi:<7.1f} {cpu:13.2f}")
    if args.markdown:
        print("\n| clip | way | fps (median) | range | CPU ms/frame |\n|---|---|---|---|---|")
        for clip, w, med, lo, hi, cpu in rows:
            print(f"| {clip} | {w} | {med:.0f} | {lo:.0f}-{hi:.0f} | {cpu:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
