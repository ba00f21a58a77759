"""VideoReader settings side by side: N concurrent looping readers per variant, NVDEC busy and fps.

    python benchmarks/decode_variants.py --clip hevc --streams 7 --reps 3 \\
        --variant sessions=1 --variant sessions=1,batch_packets=16 --variant sessions=2

Each variant is a set of ``VideoReader`` keyword arguments (``sessions``, ``batch_packets``,
``lookahead_mib``; ``sessions=auto`` / ``lookahead_mib=auto`` for the defaults) and NVDEC queue
settings (``display_delay``, ``extra_decode_surfaces``, ``output_surfaces``: see
``pysm.codec.configure_nvdec_queue``; the defaults where a variant does not set them). Variants run one
after the other and the whole list is repeated ``--reps`` times, alternating, so that drift of the
GPU between runs falls on every variant alike: with exactly one stream per NVDEC engine the busy
share moves by several points from one run to the next (benchmarks/RESULTS.md), and one run per
variant decides nothing. Measurement as in decode.py (one thread per reader, frames dropped, 1 s
warm-up once every stream decodes, then the window); the medians per variant come last. Each run
also reports the device memory pool's real allocations and frees (``pysm.memory_stats()``): frees
while streams run are ``cudaFree`` calls, each of which waits for the whole GPU
(``--cache-limit-mib`` raises the pool's bound on cached blocks, see ``pysm.set_cache_limit``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import decode as bench  # noqa: E402  (the measurement helpers)

CLIPS = {"h264": "retail_1080p30_h264.mp4", "hevc": "retail_1080p30_hevc.mp4"}
QUEUE_KEYS = ("display_delay", "extra_decode_surfaces", "output_surfaces")


def parse_variant(text: str) -> dict:
    """``"sessions=2,batch_packets=16"`` -> VideoReader keyword arguments."""
    out: dict = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        key = key.strip()
        if key not in ("sessions", "batch_packets", "lookahead_mib", *QUEUE_KEYS):
            raise SystemExit(f"unknown VideoReader setting {key!r} in --variant {text!r}")
        if key in ("sessions", "lookahead_mib") and value == "auto":
            out[key] = None
        elif key in QUEUE_KEYS and value == "auto":
            out[key] = -1
        else:
            out[key] = float(value) if key == "lookahead_mib" else int(value)
    return out


def print_stats(stats: list) -> None:
    """Per session slot, the seconds summed over the readers that decoded in parallel."""
    stats = [s for s in stats if s]
    if not stats:
        print("    (every reader decoded on one session)")
        return
    slots = max(len(s["sessions"]) for s in stats)
    for k in range(slots):
        rows = [s["sessions"][k] for s in stats if k < len(s["sessions"])]
        tot = {key: sum(r[key] for r in rows) for key in rows[0]}
        print(f"    session {k}: decode {tot['decode_s']:6.2f} s  starved {tot['starved_s']:6.2f} s  "
              f"held {tot['held_s']:6.2f} s  idle {tot['idle_s']:6.2f} s  segments {tot['segments']}")
    print(f"    consumer: reading {sum(s['read_s'] for s in stats):6.2f} s  "
          f"waiting for frames {sum(s['consumer_wait_s'] for s in stats):6.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="h264", help="h264, hevc (the retail clips) or a file path")
    ap.add_argument("--streams", type=int, default=7)
    ap.add_argument("--variant", action="append", required=True, help="VideoReader settings, e.g. sessions=1")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--window", type=float, default=2.5)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--cache-limit-mib", type=float, help="bound on the device pool's cached blocks (default: pysm's)")
    ap.add_argument("--max-queued-packets", type=int,
                    help="packets read ahead of parallel sessions, alone on the GPU or not (default: "
                         "pysm.codec.parallel.MAX_QUEUED_PACKETS / MAX_QUEUED_PACKETS_ALONE)")
    ap.add_argument("--pynvc", action="store_true",
                    help="also run PyNvVideoCodec (decode.py's loop) after the variants in every repetition")
    ap.add_argument("--stats", action="store_true",
                    help="print where each parallel session's time went (VideoReader.parallel_stats), summed over readers")
    args = ap.parse_args()

    import pysm
    import pysm.codec
    import pysm.codec.parallel
    import pysm.errors
    import pysm.cuda
    import pysm.utils

    if not pysm.cuda.is_available():
        print(f"no GPU: {pysm.cuda.unavailable_reason()}")
        return 1
    path = str(bench.DATA / CLIPS[args.clip]) if args.clip in CLIPS else args.clip
    frames = max(pysm.utils.MediaInfo.discover(path).frame_count, 0)  # windows of whole passes
    variants = [(v, parse_variant(v)) for v in args.variant]
    for text, settings in variants:  # refuse a bad queue setting before anything runs
        try:
            pysm.codec.configure_nvdec_queue(**{k: settings.get(k, -1) for k in QUEUE_KEYS})
        except pysm.errors.InvalidArgument as exc:
            raise SystemExit(f"--variant {text!r}: {exc}") from None
    pysm.codec.configure_nvdec_queue(**{k: -1 for k in QUEUE_KEYS})
    if args.max_queued_packets is not None:
        pysm.codec.parallel.MAX_QUEUED_PACKETS = args.max_queued_packets
        pysm.codec.parallel.MAX_QUEUED_PACKETS_ALONE = args.max_queued_packets
    if args.cache_limit_mib is not None:
        pysm.set_cache_limit(int(args.cache_limit_mib * 2**20), "cuda:0")
    nvml = bench.Nvml(0)
    # Sessions of one run are reused by the next (destroying one costs ~230 ms in the driver).
    pysm.codec.configure_decoder_cache(enabled=True, max_per_key=4 * args.streams + 8,
                                       max_total=8 * args.streams + 32)
    print(f"# {pysm.cuda.device_info(0)['name']}, {path}, {args.streams} streams, "
          f"{args.warmup} s warm-up + {args.window} s per run", flush=True)
    results: dict[str, list] = {v: [] for v, _ in variants}
    pynvc_pool: dict = {}  # PyNvVideoCodec's decoders, kept from one repetition to the next
    for rep in range(args.reps):
        for name, settings in variants:
            queue = {k: settings.get(k, -1) for k in QUEUE_KEYS}
            kwargs = {k: v for k, v in settings.items() if k not in QUEUE_KEYS}
            pysm.codec.configure_nvdec_queue(**queue)
            used: list = []
            stats: list = []
            before = bench.pool_counts()
            m = bench.measure(bench.pysm_worker(path, used=used, stats=stats, **kwargs), args.streams, args.warmup,
                              args.window, nvml, None, frames)
            allocs, frees = (b - a for a, b in zip(before, bench.pool_counts()))
            results[name].append(m)
            print(f"rep {rep}  {name:36s} {m['fps']:8.0f} fps  NVDEC {bench.fmt(m['nvdec_util'], '.1f')} %"
                  f"  {bench.window_note(m)}"
                  f"  CPU/stream {m['cpu_per_stream_pct']:.1f} %  sessions {sorted(set(used))}"
                  f"  pool allocs/frees {allocs}/{frees}"
                  f"{'  errors ' + str(m['errors']) if m['errors'] else ''}", flush=True)
            if args.stats:
                print_stats(stats)
        if args.pynvc:
            m = bench.measure(bench.pynvc_worker(path, pynvc_pool), args.streams, args.warmup, args.window, nvml,
                              None, frames)
            results.setdefault("PyNvVideoCodec", []).append(m)
            print(f"rep {rep}  {'PyNvVideoCodec':36s} {m['fps']:8.0f} fps  NVDEC {bench.fmt(m['nvdec_util'], '.1f')} %"
                  f"  {bench.window_note(m)}{'  errors ' + str(m['errors']) if m['errors'] else ''}", flush=True)
    print("\n| variant | median fps | median NVDEC % | NVDEC % per run | median fps/busy |\n|---|---|---|---|---|")
    for name, runs in results.items():
        utils = [m["nvdec_util"] for m in runs if m["nvdec_util"] is not None]
        full = [m["fps_at_full_busy"] for m in runs if m.get("fps_at_full_busy")]
        print(f"| {name} | {statistics.median(m['fps'] for m in runs):,.0f} | "
              f"{bench.fmt(statistics.median(utils) if utils else None, '.1f')} | "
              f"{', '.join(f'{u:.1f}' for u in utils)} | "
              f"{bench.fmt(statistics.median(full) if full else None, ',.0f')} |")
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    # Skip teardown: PyNvVideoCodec's kept decoders would be destroyed one by one (~230 ms each).
    os._exit(rc)
