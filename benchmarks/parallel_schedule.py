"""How close ParallelDecode's scheduling gets to K sessions' sum, with no GPU: fake sessions.

    python benchmarks/parallel_schedule.py --decode-ms 0.714 --gop 246 \\
        --config 3:615 --config 4:861 --config 4:1033 --packet-cap 512 --packet-cap 1024 --reps 3

Each fake session sleeps ``--decode-ms`` per packet with the GIL released (as an NVDEC call does:
0.714 ms is one 1080p HEVC session of an H100, 1,400 fps) and holds one frame back as reordering
does; the consumer only counts frames. A ``--config SESSIONS:LOOKAHEAD_FRAMES`` runs asked-for
sessions over ``--gops`` GOPs of ``--gop`` packets with that frame lookahead, once per
``--packet-cap`` (``pysm.codec.parallel.MAX_QUEUED_PACKETS``, the bound on packets read ahead of
the sessions). Printed: median fps, the ideal (sessions x 1000 / decode-ms), their ratio, and the
process CPU per frame. What it shows is the scheduling (how long sessions wait for packets or for
the lookahead), not NVDEC: the GPU adds limits of its own (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pysm.codec.parallel as parallel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from parallel_fakes import TimedDecoder, batches  # noqa: E402  (the tests' fake sessions)


def run_once(per: float, sessions: int, gop: int, lookahead: int, frames: int, batch: int,
             free_first: bool = False) -> tuple[float, float, int]:
    """(fps, CPU seconds per frame, most sessions at once) of one run."""
    spans: list = []

    def session() -> TimedDecoder:
        return TimedDecoder(spans, per, most_s=0.0)

    par = parallel.ParallelDecode(session(), session, lambda: sessions, lambda p: p.key,
                                  batch=batch, max_lookahead_frames=lookahead, eager=True, parallel_now=True,
                                  free_first=free_first)
    t, c = time.perf_counter(), time.process_time()
    count = sum(len(out) for out in par.run(batches(frames, gop, batch, cut_between_passes=True)))
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return count / wall, cpu / max(1, count), par.sessions_used


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--decode-ms", type=float, default=0.714, help="one session's time per packet")
    ap.add_argument("--gop", type=int, default=246)
    ap.add_argument("--gops", type=int, default=40, help="GOPs per run")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--config", action="append", required=True, help="SESSIONS:LOOKAHEAD_FRAMES")
    ap.add_argument("--packet-cap", type=int, action="append", help="MAX_QUEUED_PACKETS values (default: pysm's)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--free-first", action="store_true",
                    help="sessions take segments as they come free (ParallelDecode(free_first=True), what a "
                         "VideoReader alone on its GPU uses) instead of segments tied to a session when they open")
    args = ap.parse_args()
    per = args.decode_ms / 1e3
    caps = args.packet_cap or [parallel.MAX_QUEUED_PACKETS]
    configs = []
    for text in args.config:
        s, _, look = text.partition(":")
        configs.append((int(s), int(look)))
    rows: dict = {}
    default_cap = parallel.MAX_QUEUED_PACKETS
    try:
        for _ in range(args.reps):  # alternating, so that drift of the machine falls on all alike
            for cap in caps:
                parallel.MAX_QUEUED_PACKETS = cap
                for sessions, look in configs:
                    rows.setdefault((sessions, look, cap), []).append(
                        run_once(per, sessions, args.gop, look, args.gop * args.gops, args.batch, args.free_first))
    finally:
        parallel.MAX_QUEUED_PACKETS = default_cap
    print(f"# fake sessions of {args.decode_ms} ms per packet, GOP {args.gop}, {args.gops} GOPs per run, "
          f"medians of {args.reps}")
    print("| sessions | lookahead frames | packet cap | fps | ideal | ratio | CPU us/frame | sessions at once |")
    print("|---|---|---|---|---|---|---|---|")
    for (sessions, look, cap), runs in rows.items():
        fps = statistics.median(r[0] for r in runs)
        ideal = sessions / per
        print(f"| {sessions} | {look} | {cap} | {fps:,.0f} | {ideal:,.0f} | {fps / ideal:.2f} | "
              f"{statistics.median(r[1] for r in runs) * 1e6:.1f} | {max(r[2] for r in runs)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
