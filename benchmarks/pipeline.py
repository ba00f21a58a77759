"""Pipeline runtime overhead: N streams of one clip through source -> mux (batch = N) -> fakesink,
against a raw decode of the same N streams (N threads, same decoder, no pipeline) in the same run.

Reports per N: aggregate fps of both, the pipeline's share of the raw decode (target >= 95 %), and
host CPU per stream (share of one core). The decoder is pysm.codec (NVDEC on a GPU) when present,
else PyAV on the CPU.

    python benchmarks/pipeline.py                 # N = 1 2 4 8 16 32 64 128, full clip
    python benchmarks/pipeline.py --quick         # N = 1 8 32, 150 frames per stream
    python benchmarks/pipeline.py --streams 1 4 --frames 100 --clip my.mp4 --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import psutil

def _default_clip() -> Path:
    """retail_1080p30_h264.mp4 from $PYSM_DATA or the nearest ../shared/data above this file."""
    name = "retail_1080p30_h264.mp4"
    if os.environ.get("PYSM_DATA"):
        return Path(os.environ["PYSM_DATA"]) / name
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "data" / name).exists():
            return parent / "shared" / "data" / name
    return Path(__file__).resolve().parents[2] / "shared" / "data" / name


DEFAULT_CLIP = _default_clip()


def _cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def raw_decode(clip: str, n: int, frames: int, device: str) -> tuple[float, int, float]:
    """N threads each decoding the clip (up to ``frames`` frames); (seconds, total frames, cpu s)."""
    from pysm.pipeline.media import VideoInput

    counts = [0] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            inp = VideoInput(clip, device=device, element=f"raw{i}")
            try:
                for _ in inp.frames():
                    counts[i] += 1
                    if 0 <= frames <= counts[i]:
                        break
            finally:
                inp.close()
        except BaseException as exc:  # reported after the run
            errors.append(exc)

    proc = psutil.Process()
    c0, t0 = _cpu_seconds(proc), time.perf_counter()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt, cpu = time.perf_counter() - t0, _cpu_seconds(proc) - c0
    if errors:
        raise errors[0]
    return dt, sum(counts), cpu


def pipeline_run(clip: str, n: int, frames: int, device: str, width: int, height: int) -> tuple[float, int, float]:
    import pysm
    from pysm import Pipeline
    from pysm._native import _core

    total = [0]

    class Count(pysm.BufferObserver):
        def handle_buffer(self, buffer):
            total[0] += buffer.batch_size

    p = Pipeline(f"bench{n}")
    p.add("nvstreammux", "mux", {"batch-size": n, "width": width, "height": height,
                                 "batched-push-timeout": 33000, "buffer-pool-size": 4})
    for i in range(n):
        p.add("nvurisrcbin", f"s{i}", {"uri": clip, "device": device, "num-buffers": frames})
        p.link((f"s{i}", "mux"), ("vsrc_%u", "sink_%u"))
    p.add("fakesink", "sink").link("mux", "sink")
    p.attach("mux", pysm.Probe("count", Count()))
    errors = []
    done = {}

    def on_message(m):
        if isinstance(m, pysm.pipeline.ErrorMessage):
            errors.append(m)
        elif isinstance(m, pysm.pipeline.EOSMessage):
            done["t"], done["cpu"] = time.perf_counter(), _cpu_seconds(proc)

    proc = psutil.Process()
    c0, t0 = _cpu_seconds(proc), time.perf_counter()
    p.start(on_message).wait()
    # Start to end of stream (as the raw decode: until its last frame); teardown is not counted.
    dt = done.get("t", time.perf_counter()) - t0
    cpu = done.get("cpu", _cpu_seconds(proc)) - c0
    if errors:
        raise RuntimeError(f"pipeline errors: {[e.message for e in errors]}")
    return dt, total[0], cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=str(DEFAULT_CLIP))
    ap.add_argument("--streams", type=int, nargs="+", default=None)
    ap.add_argument("--frames", type=int, default=None, help="frames per stream (-1: whole clip)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--width", type=int, default=1920, help="mux output width (1920x1080: no scaling)")
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--quick", action="store_true", help="N = 1 8 32, 150 frames per stream")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    if not os.path.exists(args.clip):
        print(f"clip {args.clip} not found", file=sys.stderr)
        return 2
    streams = args.streams or ([1, 8, 32] if args.quick else [1, 2, 4, 8, 16, 32, 64, 128])
    frames = args.frames if args.frames is not None else (150 if args.quick else -1)
    import pysm.cuda
    from pysm.pipeline.media import _codec_module

    decoder = "pysm.codec" if _codec_module() is not None else "PyAV (CPU)"
    gpu = pysm.cuda.is_available()
    print(f"# pipeline overhead: {Path(args.clip).name}, decoder {decoder}, device {args.device}, "
          f"GPU {'yes' if gpu else 'no'}, frames/stream {frames if frames >= 0 else 'all'}, "
          f"mux {args.width}x{args.height}, host {psutil.cpu_count()} CPUs")
    print(f"| N | raw decode fps | pipeline fps | share | CPU/stream raw | CPU/stream pipeline |")
    print(f"|---|---|---|---|---|---|")
    rows = []
    for n in streams:
        rt, rf, rc = raw_decode(args.clip, n, frames, args.device)
        pt, pf, pc = pipeline_run(args.clip, n, frames, args.device, args.width, args.height)
        if pf != rf:
            print(f"warning: N={n}: the pipeline saw {pf} frames, the raw decode {rf}", file=sys.stderr)
        raw_fps, pipe_fps = rf / rt, pf / pt
        row = {"streams": n, "raw_fps": raw_fps, "pipeline_fps": pipe_fps, "share": pipe_fps / raw_fps,
               "cpu_per_stream_raw": rc / rt / n, "cpu_per_stream_pipeline": pc / pt / n, "frames": pf}
        rows.append(row)
        print(f"| {n} | {raw_fps:,.0f} | {pipe_fps:,.0f} | {100 * row['share']:.1f} % | "
              f"{100 * row['cpu_per_stream_raw']:.1f} % | {100 * row['cpu_per_stream_pipeline']:.1f} % |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"clip": args.clip, "decoder": decoder, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
