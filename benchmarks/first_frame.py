"""First-frame latency beyond `decode.py --latency-only`: a process's very first open, and many
readers opened at once.

    python benchmarks/first_frame.py [--fresh 4] [--together 8,32] [--clips h264,hevc]

- ``--fresh R``: R fresh processes per clip and variant, the variants alternating: pysm, pysm with
  its warm-up patched out (``pysm.codec.decoder.warm_up``), PyNvVideoCodec. Each process imports
  the library, then times open -> first frame ready on the device (CUDA's own start included).
- ``--together N,...``: N readers opened at once from N threads behind a barrier, the decoder cache
  off, with and without the fast start; per reader open -> first frame, median and slowest.

Clips: the retail 1080p clips of ``$PYSM_DATA`` (default ``../shared/data``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import decode as bench  # noqa: E402  (the first-frame helpers; standard library only at import)

CLIPS = {"h264": "retail_1080p30_h264.mp4", "hevc": "retail_1080p30_hevc.mp4"}


def child(lib: str, clip: str) -> None:
    """One fresh process's first open (run as ``--child lib clip``): prints ms and whether the
    fast start gave the frame."""
    t0 = time.perf_counter()
    if lib.startswith("pysm"):
        import pysm.codec.decoder

        if lib == "pysm-nowarm":
            pysm.codec.decoder.warm_up = lambda device: None
        t1 = time.perf_counter()
        r = bench.pysm_first_frame(clip, "cuda")
        fast = r.decoder.stats.get("fast_start")
    else:
        import PyNvVideoCodec  # noqa: F401 - timed apart from the open

        t1 = time.perf_counter()
        bench.pynvc_first_frame(clip)
        fast = None
    t2 = time.perf_counter()
    print(f"{(t1 - t0) * 1e3:.2f} {(t2 - t1) * 1e3:.2f} {fast}", flush=True)


def fresh(clips: dict[str, str], repeats: int) -> None:
    variants = ["pysm", "pysm-nowarm", "pynvc"]
    try:
        import PyNvVideoCodec  # noqa: F401
    except ImportError:
        variants.remove("pynvc")
    print(f"\n## a fresh process's first open (ms, {repeats} processes each, variants alternating)")
    print(f"{'clip':6s} {'variant':12s} {'import':>8s} {'open->frame min':>16s} {'median':>8s} {'max':>8s}  fast start")
    for name, clip in clips.items():
        runs: dict[str, list] = {v: [] for v in variants}
        for _ in range(repeats):
            for v in variants:
                out = subprocess.run([sys.executable, __file__, "--child", v, clip], capture_output=True,
                                     text=True, timeout=120)
                if out.returncode != 0:
                    print(f"{name:6s} {v:12s} failed: {out.stderr.strip()[-300:]}")
                    continue
                imp, first, fast = out.stdout.split()[-3:]
                runs[v].append((float(imp), float(first), fast))
        for v, rs in runs.items():
            if rs:
                firsts = [r[1] for r in rs]
                print(f"{name:6s} {v:12s} {statistics.median(r[0] for r in rs):8.1f} {min(firsts):16.1f} "
                      f"{statistics.median(firsts):8.1f} {max(firsts):8.1f}  {sorted({r[2] for r in rs})}")


def together(clips: dict[str, str], counts: list[int]) -> None:
    import pysm.codec

    before = pysm.codec.decoder_cache_info()
    pysm.codec.configure_decoder_cache(enabled=False)
    try:
        for name, clip in clips.items():  # a first open, so that neither side pays the process's start
            bench.pysm_first_frame(clip, "cuda").close()
        print("\n## N readers opened at once, decoder cache off (ms, open -> first frame per reader)")
        print(f"{'clip':6s} {'N':>3s} {'fast start':>10s} {'median':>8s} {'slowest':>8s}  CPU frames  close all")
        for name, clip in clips.items():
            for n in counts:
                for fast in (True, False):
                    bar = threading.Barrier(n)
                    lat: list = [0.0] * n
                    used: list = [False] * n
                    readers: list = [None] * n

                    def work(i: int) -> None:
                        bar.wait()
                        t = time.perf_counter()
                        r = bench.pysm_first_frame(clip, "cuda", fast_start=fast)
                        lat[i] = time.perf_counter() - t
                        used[i] = bool(r.decoder.stats.get("fast_start"))
                        readers[i] = r

                    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join()
                    t = time.perf_counter()
                    for r in readers:
                        if r is not None:
                            r.close()
                    close = time.perf_counter() - t
                    print(f"{name:6s} {n:3d} {str(fast):>10s} {statistics.median(lat) * 1e3:8.1f} "
                          f"{max(lat) * 1e3:8.1f}  {sum(used):3d}/{n:<3d}     {close * 1e3:8.1f}", flush=True)
    finally:
        pysm.codec.configure_decoder_cache(enabled=before["enabled"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fresh", type=int, default=4, help="fresh processes per clip and variant (0: skip)")
    ap.add_argument("--together", default="8,32", help="reader counts opened at once ('' to skip)")
    ap.add_argument("--clips", default="h264,hevc")
    ap.add_argument("--child", nargs=2, metavar=("LIB", "CLIP"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0
    clips = {k: str(bench.DATA / CLIPS[k]) for k in args.clips.split(",") if (bench.DATA / CLIPS[k]).exists()}
    if not clips:
        print(f"no clips under {bench.DATA}")
        return 1
    if args.fresh:
        fresh(clips, args.fresh)
    if args.together:
        together(clips, [int(n) for n in args.together.split(",")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
