"""Pipeline runtime overhead: N streams of one clip through source -> mux (batch = N) -> fakesink,
against the raw decode of the same N streams in the same process, both in steady state.

    python benchmarks/pipeline.py                  # N = 1 8 16 32 64 128 (about 2 minutes on a GPU host)
    python benchmarks/pipeline.py --quick          # N = 1 8 32 64, shorter windows
    python benchmarks/pipeline.py --device cpu --clip small.mp4 --streams 1 2 --warmup 0.5 --window 1

For each N, first the raw decode, then the pipeline:

- raw: decode.py's pysm worker, N threads each looping ``VideoReader(clip, device, loop=True)``,
  frames left where the decoder put them (the device, with NVDEC) and dropped;
- pipeline: ``Pipeline`` with N ``nvurisrcbin`` (``file-loop``) -> ``nvstreammux`` (batch-size N,
  output size = the clip's size, so nothing is scaled) -> ``fakesink``, frames counted by a probe on
  the mux output (one Python call per batch).

Both are counted the same way: once every stream has produced a frame, after a warm-up, over a fixed
window (decode.py's ``sample_window``); start-up and the end of stream stay outside. The pipeline
then stops (``stop()``, bounded; its duration is reported). Decoders are kept from one measurement
to the next through pysm's NVDEC session cache (opened wide here), so few are created inside a run.

Reported per N: aggregate fps of both, the pipeline's share of the raw fps (issue #4's target:
>= 95 %), NVDEC utilisation of both (NVML, when ``pynvml`` imports), host CPU per stream of both
(process CPU time / window / N, % of one core), the pipeline's start-up and stop times.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from decode import Nvml, measure, pysm_worker, sample_window  # noqa: E402  (benchmarks/decode.py)

CLIP_NAME = "retail_1080p30_h264.mp4"
FULL_STREAMS = [1, 8, 16, 32, 64, 128]
QUICK_STREAMS = [1, 8, 32, 64]


def default_clip() -> Path:
    """The retail clip in $PYSM_DATA, else in the nearest ``shared/data`` above this file."""
    if os.environ.get("PYSM_DATA"):
        return Path(os.environ["PYSM_DATA"]) / CLIP_NAME
    for parent in HERE.parents:
        if (parent / "shared" / "data" / CLIP_NAME).exists():
            return parent / "shared" / "data" / CLIP_NAME
    return HERE.parents[1] / "shared" / "data" / CLIP_NAME


def pipeline_point(clip: str, n: int, device: str, size: tuple[int, int], push_timeout_us: int,
                   warmup: float, window: float, nvml: Nvml, stop_timeout: float) -> dict:
    """N looping sources -> mux -> fakesink, measured like the raw decode; then stopped."""
    import pysm
    from pysm.pipeline.messages import ErrorMessage

    total = [0]

    class Count(pysm.BufferObserver):
        def handle_buffer(self, buffer) -> None:
            total[0] += buffer.batch_size

    p = pysm.Pipeline(f"bench{n}")
    p.add("nvstreammux", "mux", {"batch-size": n, "width": size[0], "height": size[1],
                                 "batched-push-timeout": push_timeout_us})
    names = [f"s{i}" for i in range(n)]
    for name in names:
        p.add("nvurisrcbin", name, {"uri": clip, "device": device, "file-loop": True})
        p.link((name, "mux"), ("vsrc_%u", "sink_%u"))
    p.add("fakesink", "sink").link("mux", "sink")
    p.attach("mux", pysm.Probe("count", Count()))
    sources = [p.element(name) for name in names]
    errors: list[str] = []

    def on_message(m) -> None:
        if isinstance(m, ErrorMessage):
            errors.append(f"{m.origin}: {m.message}")

    t_start = time.perf_counter()
    p.start(on_message)
    # Warm-up starts once every source has produced a frame (as the raw decode does).
    while time.perf_counter() - t_start < 60 and not errors and not all(s.frames_out for s in sources):
        time.sleep(0.01)
    startup = time.perf_counter() - t_start
    w = sample_window(lambda: total[0], warmup, window, nvml) if not errors else None
    t_stop = time.perf_counter()
    p.stop(stop_timeout)
    stop_s = time.perf_counter() - t_stop
    if w is None:
        return {"streams": n, "fps": 0.0, "nvdec_util": None, "cpu_per_stream_pct": None,
                "startup_s": startup, "stop_s": stop_s, "errors": errors[:3]}
    dt = w["seconds"]
    return {"streams": n, "fps": w["frames"] / dt, "nvdec_util": w["nvdec_util"],
            "cpu_per_stream_pct": 100.0 * w["cpu_s"] / dt / n, "startup_s": startup, "stop_s": stop_s,
            "errors": errors[:3]}


def fmt(v, spec: str = ",.0f") -> str:
    return "n/a" if v is None else format(v, spec)


HEAD = ["N", "raw fps", "pipeline fps", "share", "raw NVDEC %", "pipeline NVDEC %",
        "raw CPU %/stream", "pipeline CPU %/stream", "pipeline start s", "pipeline stop s"]


def row_cells(r: dict) -> list[str]:
    a, b = r["raw"], r["pipeline"]
    return [str(r["streams"]), fmt(a["fps"]), fmt(b["fps"]), fmt(r["share"] and 100 * r["share"], ".1f") + " %",
            fmt(a["nvdec_util"]), fmt(b["nvdec_util"]), fmt(a["cpu_per_stream_pct"], ".1f"),
            fmt(b["cpu_per_stream_pct"], ".1f"), fmt(b["startup_s"], ".1f"), fmt(b["stop_s"], ".2f")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=None, help=f"video file (default: {CLIP_NAME} from the shared data)")
    ap.add_argument("--streams", type=int, nargs="+", help="stream counts (default 1 8 16 32 64 128)")
    ap.add_argument("--quick", action="store_true", help="N = 1 8 32 64, shorter windows")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"),
                    help="decoder device of both (auto: cuda when a GPU is usable)")
    ap.add_argument("--warmup", type=float, help="seconds after every stream produced a frame (default 1.5, quick 1.0)")
    ap.add_argument("--window", type=float, help="counting window in seconds (default 4.0, quick 2.5)")
    ap.add_argument("--size", type=int, nargs=2, metavar=("W", "H"),
                    help="mux output size (default: the clip's, i.e. no scaling)")
    ap.add_argument("--push-timeout", type=int, default=40000,
                    help="mux batched-push-timeout in µs (default 40000)")
    ap.add_argument("--stop-timeout", type=float, default=10.0, help="bound of Pipeline.stop() in seconds")
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args(argv)

    import pysm
    import pysm.codec
    import pysm.cuda

    clip = Path(args.clip) if args.clip else default_clip()
    if not clip.exists():
        print(f"clip {clip} not found (set PYSM_DATA or pass --clip)", file=sys.stderr)
        return 2
    gpu = pysm.cuda.is_available()
    device = args.device if args.device != "auto" else ("cuda" if gpu else "cpu")
    if device == "cuda" and not gpu:
        print(f"--device cuda but no GPU: {pysm.cuda.unavailable_reason()}", file=sys.stderr)
        return 1
    streams = args.streams or (QUICK_STREAMS if args.quick else FULL_STREAMS)
    warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 1.5)
    window = args.window if args.window is not None else (2.5 if args.quick else 4.0)
    with pysm.codec.Demuxer(str(clip)) as d:
        info = d.info
    size = tuple(args.size) if args.size else (info.width, info.height)
    nvml = Nvml(0)  # every reading is None where NVML is unavailable
    gpu_name = pysm.cuda.device_info(0)["name"] if gpu else "none"
    print(f"# pipeline overhead: {clip.name} ({info.codec} {info.width}x{info.height}), decode on {device}, "
          f"GPU {gpu_name} (NVML: {nvml.name}), host {os.cpu_count()} CPUs, pysm {pysm.__version__}")
    print(f"# per N: raw then pipeline; {warmup} s warm-up after every stream produced a frame, {window} s window; "
          f"mux {size[0]}x{size[1]}, batched-push-timeout {args.push_timeout} µs", flush=True)

    if device == "cuda":
        # Keep every session: the next measurement reuses them instead of creating decoders.
        top = max(streams)
        pysm.codec.configure_decoder_cache(enabled=True, max_per_key=top + 8, max_total=2 * top + 16)
    t_begin = time.perf_counter()
    rows: list[dict] = []
    for n in streams:
        raw = measure(pysm_worker(str(clip), device), n, warmup, window, nvml, None)
        print(f"  N={n:3d}  raw      {raw['fps']:9,.0f} fps  NVDEC {fmt(raw['nvdec_util'])} %  "
              f"CPU/stream {raw['cpu_per_stream_pct']:5.1f} %  (start {raw['startup_s']:.1f} s)"
              + (f"  {raw['failed_streams']} failed: {raw['errors'][0]}" if raw["failed_streams"] else ""), flush=True)
        pipe = pipeline_point(str(clip), n, device, size, args.push_timeout, warmup, window, nvml, args.stop_timeout)
        print(f"  N={n:3d}  pipeline {pipe['fps']:9,.0f} fps  NVDEC {fmt(pipe['nvdec_util'])} %  "
              f"CPU/stream {fmt(pipe['cpu_per_stream_pct'], '5.1f')} %  (start {pipe['startup_s']:.1f} s, "
              f"stop {pipe['stop_s']:.2f} s)" + (f"  errors: {pipe['errors']}" if pipe["errors"] else ""), flush=True)
        rows.append({"streams": n, "raw": raw, "pipeline": pipe,
                     "share": pipe["fps"] / raw["fps"] if raw["fps"] else None})
    total_s = time.perf_counter() - t_begin

    print(f"\n# total {total_s:.0f} s; share = pipeline fps / raw fps (target >= 95 %)\n")
    print("| " + " | ".join(HEAD) + " |")
    print("|" + "---|" * len(HEAD))
    for r in rows:
        print("| " + " | ".join(row_cells(r)) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"clip": str(clip), "device": device, "gpu": gpu_name, "warmup_s": warmup, "window_s": window,
             "mux_size": size, "push_timeout_us": args.push_timeout, "total_s": total_s, "rows": rows},
            indent=1, default=str))
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: destroying every parked NVDEC session costs ~230 ms each in the
    # driver; the driver reclaims everything with the process.
    os._exit(rc)
