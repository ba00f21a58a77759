"""NVDEC decode throughput: pysm vs PyNvVideoCodec, N concurrent streams, frames left on the device.

    python benchmarks/decode.py                 # full run: 1,4,7,16,32,56,64 streams (about 7 minutes)
    python benchmarks/decode.py --quick         # 1, 7, 32, 56 streams, shorter windows (about 2 minutes)
    python benchmarks/decode.py --markdown      # also print the tables as Markdown (for RESULTS.md)

For each clip (the retail 1080p30 H.264 and HEVC clips from ../shared/data, looped, plus a generated
noisy 1080p H.264 clip; ``--clips opengop`` adds the H.264 clip re-encoded with x264's open GOPs) and each stream count N, both libraries run one decoder per thread, each
thread demuxing the file itself and looping it, frames left on the GPU and dropped. Once every
stream has produced a frame and a warm-up has passed, frames are counted over a window that ends
after whole passes of the clip per stream filling at least ``--window`` seconds at the warm-up's
rate (at most 15 s; ``--fixed-window`` counts over exactly ``--window`` seconds, as the C++
benchmark does): scenes decode at different costs and streams started together sit at the same
place in the clip, so part of a pass would weigh some scenes over others.
Reported per configuration:

- aggregate decode fps, and pysm/PyNvVideoCodec ratio;
- NVDEC utilisation averaged over the window (NVML nvmlDeviceGetDecoderUtilization);
- device memory per stream (NVML used memory during the run minus before the library's first
  point on this clip, / N: all of a stream's decoder sessions and frames);
- pysm's decoder sessions per stream (``VideoReader(sessions=None)`` decodes a file on several at
  once when few streams share the GPU; ``--sessions N`` fixes it, ``--serial`` adds a run with
  one session per stream, the decode before parallel sessions, at every point).
- host CPU per stream (process CPU time over the window / window / N, in % of one core);
- fps/busy: fps x 100 / NVDEC busy %, the rate of fully busy engines (median of the runs' own):
  at saturation two libraries at the same busy share differ in it only by the engine time a frame takes.

pysm's readers lower Python's thread switch interval to 0.5 ms once two of them iterate at once
(pysm.gil); PyNvVideoCodec runs under Python's default (5 ms) unless ``--pynvc-tuned``.

With ``--repeat R`` every point runs R times, the libraries alternating (pysm's points, then
PyNvVideoCodec's, R times over); the table gives medians and the range of NVDEC busy over the runs
(memory per stream from the first run, while only that library's decoders exist; pysm's pool frees
summed). PyNvVideoCodec keeps its decoders from run to run as from point to point, so from the
second run on pysm decodes beside them idle (idle sessions did not move the figures: RESULTS.md,
fifth session). Use it when a threshold matters: at one stream per NVDEC engine the busy share
moves by several points from one run to the next.

Stream counts run in increasing order, one library at a time per clip, and both keep their
decoders from one point to the next (pysm through its decoder cache, opened wide here; PyNvVideoCodec
through a pool of decoder objects): destroying a decoder costs ~230 ms in the driver, which would
otherwise dominate the run's wall time. pysm's sessions and pooled frames are released before each
clip (clear_decoder_cache destroys on several threads); PyNvVideoCodec's decoders live to the exit.

First: first-frame latency of opening a local file, from the open to the first decoded frame ready
on the device, with the close timed separately (cold = first decoder of the process, warm = median
of later opens, uncached = pysm with its decoder cache off). Last, when built, the C++ benchmark
(csrc/bench, no Python) on the same streams.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("PYSM_DATA") or HERE.parents[1] / "shared" / "data")
FULL_STREAMS = [1, 4, 7, 16, 32, 56, 64]
QUICK_STREAMS = [1, 7, 32, 56]


# ---- measurement helpers ------------------------------------------------------------------------

class Nvml:
    """NVML decoder utilisation and memory; every method degrades to None when NVML is unreadable."""

    def __init__(self, index: int = 0) -> None:
        self.ok = False
        try:
            import pynvml

            pynvml.nvmlInit()
            self._n = pynvml
            self._h = pynvml.nvmlDeviceGetHandleByIndex(index)
            self.name = pynvml.nvmlDeviceGetName(self._h)
            if isinstance(self.name, bytes):
                self.name = self.name.decode()
            self.ok = True
        except Exception as exc:  # noqa: BLE001
            self.name = f"(NVML unavailable: {exc})"

    def decoder_util(self) -> float | None:
        if not self.ok:
            return None
        try:
            util, _period = self._n.nvmlDeviceGetDecoderUtilization(self._h)
            return float(util)
        except Exception:  # noqa: BLE001
            return None

    def used_memory(self) -> int | None:
        if not self.ok:
            return None
        try:
            return int(self._n.nvmlDeviceGetMemoryInfo(self._h).used)
        except Exception:  # noqa: BLE001
            return None

    def video_clock(self) -> int | None:
        if not self.ok:
            return None
        try:
            return int(self._n.nvmlDeviceGetClockInfo(self._h, self._n.NVML_CLOCK_VIDEO))
        except Exception:  # noqa: BLE001
            return None


def cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def passes_for(window: float, pass_seconds: float | None, cap: float = 15.0) -> int:
    """The whole passes of the clip per stream that fill at least ``window`` s, no more than fit in
    ``cap`` s; 0 when not even one fits (the window then stays a fixed time).

    Content decodes at different costs from scene to scene, and streams started together sit at
    the same place in the clip: a window covering part of a pass weighs that part, and two runs that
    reach it at different times disagree by a few percent. Whole passes weigh every frame once."""
    if not pass_seconds or pass_seconds <= 0:
        return 0
    k = max(1, math.ceil(window / pass_seconds - 1e-9))
    return max(0, min(k, int(cap // pass_seconds)))


def sample_window(count, warmup: float, window: float, nvml: Nvml, pass_frames: int = 0,
                  streams=lambda: 1, cap: float = 15.0) -> dict:
    """Sleep ``warmup`` s, then count frames (``count()`` returns the running total) over a window.

    Without ``pass_frames`` the window is ``window`` s. With it (the clip's frame count) the window
    ends once the streams (``streams()`` of them decoding at the warm-up's end) have decoded whole
    passes of the clip filling at least ``window`` s (``passes_for``, at the warm-up's rate, more
    passes when the decode speeds up, fewer when it slows down), or at ``cap`` s (at least
    ``window``).
    Returns frames, seconds and process CPU seconds of the window, passes per stream, the mean NVDEC
    utilisation and the peak used device memory sampled during it (None when NVML is unreadable)."""
    cap = max(cap, window)
    cw, tw = count(), time.perf_counter()
    time.sleep(warmup)
    c0, t0, cpu0 = count(), time.perf_counter(), cpu_seconds()
    n = max(streams(), 1)
    rate = (c0 - cw) / max(t0 - tw, 1e-9)  # all streams together
    k = passes_for(window, pass_frames * n / rate, cap) if (pass_frames > 0 and rate > 0) else 0
    target = c0 + k * pass_frames * n if k else None
    deadline = t0 + (cap if k else window)
    utils: list[float] = []
    mem_peak = nvml.used_memory()
    sampled = t0
    while True:
        now, c = time.perf_counter(), count()
        if target is not None and c >= target and now - t0 < window and c > c0:
            # The decode sped up after the warm-up (sessions handed over): more passes, at the
            # rate seen so far, until the window is filled.
            more = passes_for(window - (now - t0), pass_frames * n * (now - t0) / (c - c0), t0 + cap - now)
            target += more * pass_frames * n
        elif target is not None and now - t0 >= window and c > c0:
            # Slower than the warm-up promised: end at the next whole pass instead of the cap.
            target = min(target, c0 + math.ceil((c - c0) / (pass_frames * n)) * pass_frames * n)
        if now >= deadline or (target is not None and c >= target):
            break
        wait = min(0.25, deadline - now)
        if target is not None and c > c0:  # close in on the frame count: overshoot of a few ms at most
            wait = min(wait, max(0.002, 0.5 * (target - c) * (now - t0) / (c - c0)))
        time.sleep(wait)
        if time.perf_counter() - sampled >= 0.2:
            sampled = time.perf_counter()
            u = nvml.decoder_util()
            if u is not None:
                utils.append(u)
            m = nvml.used_memory()
            if m is not None and (mem_peak is None or m > mem_peak):
                mem_peak = m
    c1, t1, cpu1 = count(), time.perf_counter(), cpu_seconds()
    passes = (c1 - c0) / (pass_frames * n) if pass_frames > 0 else None
    return {"frames": c1 - c0, "seconds": t1 - t0, "cpu_s": cpu1 - cpu0,
            "nvdec_util": statistics.mean(utils) if utils else None, "mem_peak": mem_peak, "passes": passes}


def measure(workers, n: int, warmup: float, window: float, nvml: Nvml, mem_base: int | None,
            pass_frames: int = 0) -> dict:
    """Run n worker threads (each `workers(i, stop, counts)`), return fps/util/mem/cpu over the window."""
    stop = threading.Event()
    counts = [0] * n
    errors: list[str] = []

    def run(i: int) -> None:
        try:
            workers(i, stop, counts)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    t_start = time.perf_counter()
    for t in threads:
        t.start()
    # Warm-up starts once every stream decodes (creating tens of decoders takes a while).
    while time.perf_counter() - t_start < 60 and sum(1 for c in counts if c) + len(errors) < n:
        time.sleep(0.01)
    startup = time.perf_counter() - t_start
    w = sample_window(lambda: sum(counts), warmup, window, nvml, pass_frames, lambda: n - len(errors))
    stop.set()
    for t in threads:
        t.join(timeout=30)
    dt, mem_peak = w["seconds"], w["mem_peak"]
    return {
        "streams": n,
        "fps": w["frames"] / dt,
        "nvdec_util": w["nvdec_util"],
        # Frames per second of the engines fully busy: at saturation, how much engine time a frame takes.
        "fps_at_full_busy": (w["frames"] / dt * 100.0 / w["nvdec_util"]) if w["nvdec_util"] else None,
        "mem_per_decoder_mib": ((mem_peak - mem_base) / n / 2**20) if (mem_base is not None and mem_peak is not None) else None,
        "cpu_per_stream_pct": 100.0 * w["cpu_s"] / dt / n,
        "startup_s": startup,
        "window_s": dt,
        "passes_per_stream": w["passes"],
        "errors": errors[:3],
        "failed_streams": len(errors),
    }


# ---- the two libraries ---------------------------------------------------------------------------

def pysm_worker(path: str, device: str = "cuda", sessions: int | None = None, used: list | None = None,
                stats: list | None = None, **reader_kwargs):
    """pysm, one looping VideoReader per thread on ``device``; frames dropped as they come.

    ``sessions``: the reader's decoder sessions (None: automatic); ``used`` collects each reader's
    ``sessions_used`` and ``stats`` its ``parallel_stats``; ``reader_kwargs`` go to VideoReader as
    they are."""
    from pysm.codec import VideoReader

    def work(i, stop, counts):
        with VideoReader(path, device, loop=True, sessions=sessions, **reader_kwargs) as reader:
            try:
                for _frame in reader:  # frames stay on the device and are dropped
                    counts[i] += 1
                    if stop.is_set():
                        return
            finally:
                if used is not None:
                    used.append(reader.sessions_used)
                if stats is not None:
                    stats.append(reader.parallel_stats)

    return work


def pool_counts() -> tuple[int, int]:
    """(system allocations, system frees) of pysm's device pool on GPU 0 so far."""
    import pysm

    st = pysm.memory_stats().get("cuda:0", {})
    return st.get("system_allocs", 0), st.get("system_frees", 0)


def pynvc_worker(path: str, pool: dict):
    """PyNvVideoCodec, one decoder per thread; decoder i is kept in `pool` for the next point."""
    import PyNvVideoCodec as nvc

    def work(i, stop, counts):
        dec = pool.get(i)
        while not stop.is_set():
            dmx = nvc.CreateDemuxer(filename=path)
            if dec is None:
                dec = pool[i] = nvc.CreateDecoder(gpuid=0, codec=dmx.GetNvCodecId(), cudacontext=0, cudastream=0,
                                                  usedevicememory=True)
            for packet in dmx:
                for _frame in dec.Decode(packet):
                    counts[i] += 1
                if stop.is_set():
                    return

    return work


def have_pynvc() -> str | None:
    try:
        import PyNvVideoCodec as nvc  # noqa: F401

        return None
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"


# ---- first-frame latency -------------------------------------------------------------------------

def pysm_first_frame(path: str, device: str = "cuda", **kwargs):
    """pysm: open ``path`` and wait until its first frame is ready on the device; returns the open
    VideoReader (``kwargs`` go to it)."""
    from pysm.codec import VideoReader

    r = VideoReader(path, device, **kwargs)
    next(iter(r)).synchronize()
    return r


def pynvc_first_frame(path: str):
    """PyNvVideoCodec, one decoder, frames on the device: open ``path`` and decode until the first
    frame is out; returns (decoder, demuxer), still open."""
    import PyNvVideoCodec as nvc

    dmx = nvc.CreateDemuxer(filename=path)
    dec = nvc.CreateDecoder(gpuid=0, codec=dmx.GetNvCodecId(), cudacontext=0, cudastream=0,
                            usedevicememory=True)
    for packet in dmx:
        if dec.Decode(packet):
            break
    return dec, dmx


def first_frame_latency(path: str, repeats: int = 7) -> dict:
    """{lib: {"cold": (open->frame, close), "warm": (median, median), ...}} in seconds.

    pysm on the GPU: "cold" is the process's first NVDEC session (CUDA context included), "warm" a
    parked session taken over, "uncached" a session created for the open (the decoder cache off)
    with the fast start (the first frame decoded on the CPU while the driver creates the session)
    and "no fast start" the same without it, the two alternating run by run.
    """
    import pysm.codec

    def pysm_once(device, fast=True):
        t0 = time.perf_counter()
        r = pysm_first_frame(path, device, fast_start=fast)
        t1 = time.perf_counter()
        r.close()
        return t1 - t0, time.perf_counter() - t1

    def medians(runs):
        return statistics.median(a for a, _ in runs), statistics.median(b for _, b in runs)

    def summary(fn, n):
        return medians([fn() for _ in range(n)])

    out: dict = {}
    for device in ("cuda", "cpu"):
        try:
            res = {"cold": pysm_once(device), "warm": summary(lambda: pysm_once(device), repeats)}
            if device == "cuda":
                before = pysm.codec.decoder_cache_info()
                pysm.codec.configure_decoder_cache(enabled=False)
                try:
                    runs: dict = {True: [], False: []}
                    for _ in range(5):
                        for fast in (True, False):
                            runs[fast].append(pysm_once(device, fast))
                    res["uncached"] = medians(runs[True])
                    res["uncached, no fast start"] = medians(runs[False])
                    out["pysm-cuda uncached runs (ms)"] = {
                        "fast start": [round(a * 1e3, 1) for a, _ in runs[True]],
                        "no fast start": [round(a * 1e3, 1) for a, _ in runs[False]]}
                finally:
                    pysm.codec.configure_decoder_cache(enabled=before["enabled"])
            out[f"pysm-{device}"] = res
        except Exception as exc:  # noqa: BLE001
            out[f"pysm-{device}"] = {"error": f"{type(exc).__name__}: {exc}"}
    if have_pynvc() is None:
        def pynvc_once():
            t0 = time.perf_counter()
            dec, dmx = pynvc_first_frame(path)
            t1 = time.perf_counter()
            del dec, dmx
            return t1 - t0, time.perf_counter() - t1

        try:
            out["PyNvVideoCodec"] = {"cold": pynvc_once(), "warm": summary(pynvc_once, 3)}
        except Exception as exc:  # noqa: BLE001
            out["PyNvVideoCodec"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def print_latency(lat: dict, clip: str = "retail H.264") -> None:
    print(f"\n## first-frame latency, {clip} (open local file -> first frame ready on the device; close apart)")
    for lib, res in lat.items():
        if "error" in res:
            print(f"  {lib:16s} failed: {res['error']}")
            continue
        if lib.endswith("(ms)"):
            print(f"  {lib}: " + "; ".join(f"{k} {v}" for k, v in res.items()))
            continue
        parts = [f"{k} {a * 1e3:6.1f} ms (close {b * 1e3:6.1f} ms)" for k, (a, b) in res.items()]
        print(f"  {lib:16s} " + "   ".join(parts))


# ---- clips ----------------------------------------------------------------------------------------

def noisy_clip(path: Path, frames: int = 90) -> Path:
    """1080p30 H.264 of textured motion plus strong noise: a hard, high-bitrate stream."""
    import av
    import numpy as np

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    h, w = 1080, 1920
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "bf": "2", "g": "60"}
        for i in range(frames):
            base = ((xx + 3 * i) ^ (yy - 2 * i)) & 0xFF
            img = np.stack([base, (base + 85) & 0xFF, (base + 170) & 0xFF], -1).astype(np.int16)
            img += rng.integers(-16, 17, size=img.shape, dtype=np.int16)
            frame = av.VideoFrame.from_ndarray(np.clip(img, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts = i
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def open_gop_clip(src: str, path: Path, gop: int = 60) -> Path:
    """``src`` re-encoded with x264's open GOPs (an IDR, then I pictures with a recovery point
    whose leading B pictures predict from the GOP before), as broadcast encoders write them."""
    import av

    if path.exists():
        return path
    with av.open(src) as i, av.open(str(path), "w") as o:
        s = o.add_stream("libx264", rate=30)
        v = i.streams.video[0]
        s.width, s.height, s.pix_fmt = v.width, v.height, "yuv420p"
        s.options = {"preset": "veryfast", "crf": "23", "x264-params":
                     f"open-gop=1:keyint={gop}:min-keyint={gop}:scenecut=0:bframes=3:b-pyramid=normal"}
        for n, frame in enumerate(i.decode(v)):
            out = frame.reformat(format="yuv420p")
            out.pts, out.time_base = n, Fraction(1, 30)
            for p in s.encode(out):
                o.mux(p)
        for p in s.encode():
            o.mux(p)
    return path


def annexb_file(src: str, dst: Path) -> Path:
    """The clip's video stream as an Annex-B elementary stream (for the C++ benchmark)."""
    from pysm.codec import AnnexBConverter, Demuxer

    with Demuxer(src) as d, open(dst, "wb") as out:
        conv = AnnexBConverter(d.info.codec, d.info.extradata)
        out.write(conv.headers)
        for p in d:
            out.write(conv.convert(p.data))
    return dst


# ---- report ---------------------------------------------------------------------------------------

def fmt(v, spec=".0f", none="n/a"):
    return none if v is None else format(v, spec)


def combine_runs(runs: list[dict]) -> dict:
    """One point's repeated measurements as one: medians of the rates, the first run's memory per
    stream (later runs share the GPU with the other library's kept decoders), every run's NVDEC
    busy share in ``nvdec_runs``."""
    if len(runs) == 1:
        return dict(runs[0], nvdec_runs=[runs[0]["nvdec_util"]])
    out = dict(runs[0])

    def median(key):
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    for key in ("fps", "nvdec_util", "fps_at_full_busy", "cpu_per_stream_pct", "startup_s", "window_s",
                "passes_per_stream"):
        out[key] = median(key)
    out["nvdec_runs"] = [r["nvdec_util"] for r in runs]
    out["failed_streams"] = max(r["failed_streams"] for r in runs)
    out["errors"] = next((r["errors"] for r in runs if r["errors"]), [])
    if "sessions_used" in runs[0]:
        out["sessions_used"] = [u for r in runs for u in r["sessions_used"]]
    if "pool_frees" in runs[0]:
        out["pool_frees"] = sum(r["pool_frees"] for r in runs)
    return out


def window_note(res: dict) -> str:
    """'window 4.1 s = 1.02 passes' for a point's progress line."""
    passes = res.get("passes_per_stream")
    return f"window {res['window_s']:.1f} s" + (f" = {passes:.2f} passes" if passes else "")


def busy_range(res: dict | None) -> str:
    runs = [u for u in (res or {}).get("nvdec_runs", []) if u is not None]
    return f"{min(runs):.0f}-{max(runs):.0f}" if runs else "n/a"


def print_table(name: str, rows: list[dict], markdown: bool) -> None:
    serial = any("pysm_serial" in r for r in rows)
    head = ["streams", "pysm fps", "PyNvVC fps", "ratio", "pysm NVDEC%", "PyNvVC NVDEC%",
            "pysm MiB/stream", "PyNvVC MiB/stream", "pysm CPU%/str", "PyNvVC CPU%/str", "sessions/str",
            "pysm fps/busy", "PyNvVC fps/busy"]
    if serial:
        head += ["pysm 1-session fps", "1-session NVDEC%"]
    repeated = any(len(r["pysm"].get("nvdec_runs", [])) > 1 for r in rows)
    if repeated:
        head += ["pysm NVDEC% range", "PyNvVC NVDEC% range"]
    lines = []
    for r in rows:
        a, b = r["pysm"], r.get("pynvc")
        ratio = (a["fps"] / b["fps"]) if (b and b["fps"]) else None
        used = a.get("sessions_used") or []
        lines.append([str(r["streams"]), fmt(a["fps"]), fmt(b and b["fps"]), fmt(ratio, ".2f"),
                      fmt(a["nvdec_util"]), fmt(b and b["nvdec_util"]),
                      fmt(a["mem_per_decoder_mib"], ".1f"), fmt(b and b["mem_per_decoder_mib"], ".1f"),
                      fmt(a["cpu_per_stream_pct"], ".1f"), fmt(b and b["cpu_per_stream_pct"], ".1f"),
                      f"{min(used)}-{max(used)}" if used and min(used) != max(used) else (str(used[0]) if used else "-"),
                      fmt(a.get("fps_at_full_busy")), fmt(b and b.get("fps_at_full_busy"))])
        if serial:
            c = r.get("pysm_serial")
            lines[-1] += [fmt(c and c["fps"]), fmt(c and c["nvdec_util"])]
        if repeated:
            lines[-1] += [busy_range(a), busy_range(b)]
        for lib, res in (("pysm", a), ("PyNvVideoCodec", b)):
            if res and res["failed_streams"]:
                lines[-1].append(f"[{lib}: {res['failed_streams']} failed: {res['errors'][0]}]")
    print(f"\n## {name}")
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(head)]
    print("  ".join(h.rjust(w) for h, w in zip(head, widths)))
    for l in lines:
        print("  ".join(c.rjust(w) for c, w in zip(l, widths)) + ("  " + " ".join(l[len(head):]) if len(l) > len(head) else ""))
    if markdown:
        print("\n| " + " | ".join(head) + " |")
        print("|" + "---|" * len(head))
        for l in lines:
            print("| " + " | ".join(l[:len(head)]) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer stream counts, shorter windows")
    ap.add_argument("--streams", help="comma-separated stream counts (default 1,4,7,16,32,56,64)")
    ap.add_argument("--window", type=float, help="measurement window per point in seconds")
    ap.add_argument("--warmup", type=float, help="warm-up per point in seconds")
    ap.add_argument("--clips", default="h264,hevc,noise",
                    help="subset of h264,hevc,noise,opengop (the H.264 clip re-encoded with open GOPs)")
    ap.add_argument("--no-pynvc", action="store_true", help="skip PyNvVideoCodec")
    ap.add_argument("--fresh-sessions", action="store_true",
                    help="destroy pysm's parked NVDEC sessions before each point (as an application opening N "
                         "streams at once gets them) instead of reusing the previous point's")
    ap.add_argument("--pynvc-tuned", action="store_true",
                    help="run PyNvVideoCodec under the thread switch interval pysm's readers set (0.5 ms) "
                         "instead of Python's own")
    ap.add_argument("--sessions", default="auto",
                    help="decoder sessions per pysm reader: 'auto' (VideoReader's default) or a number")
    ap.add_argument("--serial", action="store_true",
                    help="also run pysm with one session per stream (the decode before parallel sessions)")
    ap.add_argument("--fixed-window", action="store_true",
                    help="count over exactly --window seconds instead of whole passes of the clip per stream "
                         "filling at least that (the default, at most 15 s)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run every point this many times, the libraries alternating; medians in the table")
    ap.add_argument("--cpp-bench", help="path of the built pysm_decode_bench (default: look in build/bench)")
    ap.add_argument("--latency-only", action="store_true", help="measure the first-frame latency and stop")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--json", help="write all results to this JSON file")
    args = ap.parse_args()

    import pysm
    import pysm.codec
    import pysm.cuda
    import pysm.utils

    if not pysm.cuda.is_available():
        print(f"no GPU: {pysm.cuda.unavailable_reason()}")
        return 1
    sessions = None if args.sessions == "auto" else int(args.sessions)
    streams = [int(s) for s in args.streams.split(",")] if args.streams else (QUICK_STREAMS if args.quick else FULL_STREAMS)
    window = args.window or (2.0 if args.quick else 2.5)
    warmup = args.warmup or (0.75 if args.quick else 1.0)
    nvml = Nvml(0)
    pynvc_missing = None if not args.no_pynvc else "disabled"
    if pynvc_missing is None:
        pynvc_missing = have_pynvc()
    info = pysm.cuda.device_info(0)
    print(f"# GPU: {info['name']} (NVML: {nvml.name}), video clock {fmt(nvml.video_clock())} MHz, "
          f"driver {pysm.cuda.driver_version()}, pysm {pysm.__version__}")
    print(f"# window {window} s{'' if args.fixed_window else ' or more, whole passes of the clip per stream'}"
          f" after {warmup} s warm-up per point; PyNvVideoCodec: "
          f"{'yes' if pynvc_missing is None else 'skipped (' + pynvc_missing + ')'}", flush=True)
    t_begin = time.perf_counter()
    python_interval = sys.getswitchinterval()

    tmp = Path(tempfile.gettempdir()) / "pysm_bench"
    tmp.mkdir(exist_ok=True)
    clips: dict[str, str] = {}
    wanted = args.clips.split(",")
    for key, fname in (("h264", "retail_1080p30_h264.mp4"), ("hevc", "retail_1080p30_hevc.mp4")):
        if key in wanted:
            if (DATA / fname).exists():
                clips[f"retail {key} 1080p30"] = str(DATA / fname)
            else:
                print(f"# {DATA / fname} is missing: skipped")

    results: dict = {"gpu": info["name"], "streams": streams, "window": window,
                     "whole_passes": not args.fixed_window, "clips": {}}
    # Latency first, while no decoder exists yet ("cold" is the process's first NVDEC session).
    if "retail h264 1080p30" in clips:
        lat = first_frame_latency(clips["retail h264 1080p30"])
        results["first_frame_latency_s"] = lat
        print_latency(lat)
        sys.stdout.flush()
    if args.latency_only and "retail hevc 1080p30" in clips:
        lat = first_frame_latency(clips["retail hevc 1080p30"])
        results["first_frame_latency_hevc_s"] = lat
        print_latency(lat, "retail HEVC")
    if args.latency_only:
        return 0

    if "noise" in wanted:
        t = time.perf_counter()
        clips["noisy h264 1080p30 (generated)"] = str(noisy_clip(tmp / "noisy_1080p_h264.mp4"))
        print(f"# generated the noisy clip in {time.perf_counter() - t:.1f} s")
    if "opengop" in wanted and (DATA / "retail_1080p30_h264.mp4").exists():
        t = time.perf_counter()
        clips["retail h264 open GOP (x264 re-encode)"] = str(
            open_gop_clip(str(DATA / "retail_1080p30_h264.mp4"), tmp / "retail_1080p_h264_open_gop.mp4"))
        print(f"# generated the open-GOP clip in {time.perf_counter() - t:.1f} s")

    # Keep every session for reuse by the next point (see the module doc).
    pysm.codec.configure_decoder_cache(enabled=True, max_per_key=max(streams) + 8, max_total=4 * max(streams) + 32)
    for name, path in clips.items():
        rows = [{"streams": n} for n in streams]
        frames = 0 if args.fixed_window else max(pysm.utils.MediaInfo.discover(path).frame_count, 0)
        # Fresh sessions and an empty pool for each clip: its memory per decoder counts everything it uses.
        pysm.codec.clear_decoder_cache()
        pysm.empty_cache()
        base = nvml.used_memory()
        pynvc_base = None
        pool: dict = {}
        for rep in range(max(1, args.repeat)):
            tag = f" (run {rep + 1})" if args.repeat > 1 else ""
            sys.setswitchinterval(python_interval)  # pysm's readers lower it again as they start
            for row, n in zip(rows, streams):
                if args.fresh_sessions:
                    pysm.codec.clear_decoder_cache()
                used: list = []
                frees0 = pool_counts()[1]
                a = measure(pysm_worker(path, sessions=sessions, used=used), n, warmup, window, nvml, base, frames)
                a["sessions_used"] = used
                a["pool_frees"] = pool_counts()[1] - frees0  # cudaFree calls: each waits for the whole GPU
                row.setdefault("pysm_runs", []).append(a)
                print(f"  {name}: {n:3d} streams  pysm {a['fps']:8.0f} fps"
                      f"  (NVDEC {fmt(a['nvdec_util'])} %, {window_note(a)}, start {a['startup_s']:.1f} s,"
                      f" sessions {sorted(set(used))},"
                      f" pool frees {a['pool_frees']}){tag}",
                      flush=True)
                if args.serial:
                    c = measure(pysm_worker(path, sessions=1), n, warmup, window, nvml, base, frames)
                    row.setdefault("pysm_serial_runs", []).append(c)
                    print(f"  {name}: {n:3d} streams  pysm 1 session {c['fps']:8.0f} fps"
                          f"  (NVDEC {fmt(c['nvdec_util'])} %, {window_note(c)}){tag}", flush=True)
            if pynvc_missing is None:
                # Concurrent pysm readers lower the switch interval (pysm.gil); PyNvVideoCodec runs under
                # Python's own unless asked, as its users get it.
                if not args.pynvc_tuned:
                    sys.setswitchinterval(python_interval)
                if pynvc_base is None:
                    pynvc_base = nvml.used_memory()
                for row, n in zip(rows, streams):
                    b = measure(pynvc_worker(path, pool), n, warmup, window, nvml, pynvc_base, frames)
                    row.setdefault("pynvc_runs", []).append(b)
                    print(f"  {name}: {n:3d} streams  PyNvVideoCodec {b['fps']:8.0f} fps"
                          f"  (NVDEC {fmt(b['nvdec_util'])} %, {window_note(b)}, start {b['startup_s']:.1f} s){tag}",
                          flush=True)
        if pool:
            results.setdefault("pynvc_pools", []).append(pool)  # kept alive until exit
        for row in rows:
            for key in ("pysm", "pysm_serial", "pynvc"):
                if key + "_runs" in row:
                    row[key] = combine_runs(row[key + "_runs"])
        results["clips"][name] = rows
        print_table(name, rows, args.markdown)
        sys.stdout.flush()

    cpp = args.cpp_bench or next((str(p) for p in [HERE.parent / "build" / "bench" / "csrc" / "bench" / "pysm_decode_bench",
                                                   HERE.parent / "build" / "bench" / "pysm_decode_bench"] if p.exists()), None)
    if cpp and Path(cpp).exists():
        print("\n## C++ benchmark (csrc/bench, no Python)")
        for name, path in clips.items():
            codec = "hevc" if "hevc" in name else "h264"
            es = annexb_file(path, tmp / (Path(path).stem + "." + codec))
            proc = subprocess.run([cpp, str(es), "--codec", codec, "--streams", ",".join(map(str, streams)),
                                   "--seconds", str(window), "--warmup", str(warmup)],
                                  capture_output=True, text=True, timeout=600)
            print(f"# {name}\n{proc.stdout}{proc.stderr}", flush=True)
            results.setdefault("cpp", {})[name] = proc.stdout
    else:
        print("\n# C++ benchmark not built (cmake -S . -B build/bench -DPYSM_BUILD_BENCH=ON "
              "-DPYSM_BUILD_PYTHON=OFF && cmake --build build/bench --target pysm_decode_bench)")

    print(f"\n# total {time.perf_counter() - t_begin:.0f} s")
    if args.json:
        results.pop("pynvc_pools", None)
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: it would destroy every pooled PyNvVideoCodec decoder one by one
    # (~230 ms each in the driver); the driver reclaims everything with the process.
    os._exit(rc)
