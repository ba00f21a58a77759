"""Where a detector pipeline's time goes, stage by stage (a diagnosis tool beside detector.py).

Three views of the same model on one GPU:

1. ``model``: the network alone on a batch of random input, per layout (NCHW / channels-last) and
   with or without CUDA-graph replay: ms per batch (median of CUDA-event timings) and fps. This
   is the ceiling the model puts on the pipeline.
2. ``engine``: ``InferEngine.process`` on one batch of B real 1080p NV12 frames (decoded once,
   batched by the native mux): wall time per batch, and a synchronised breakdown into plan,
   preprocessing, model and post-processing (decode + NMS + metadata).
3. ``pipeline``: the detector pipeline of detector.py (N sources -> mux -> nvinfer -> fakesink)
   with each element's busy time (inside ``process``), the infer element's wait for input, and
   CPU seconds per thread group (sources, mux, infer, sink), over the steady part.

    python benchmarks/infer_profile.py --model resnet18 --batch 64 --streams 64 128
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import detector as det  # noqa: E402  (the models, configs and data paths of the detector benchmark)


def _median_ms(fn, iters: int = 20, warmup: int = 3) -> float:
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def _load_model(model: str):
    if model == "yolox":
        import onnx
        import onnx2torch

        return onnx2torch.convert(onnx.load(str(det.DATA / "yolox_nano_dynamic.onnx")))
    return det.resnet18_detectnet_v2()


def _graph(fn):
    import torch

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        fn()
    return g.replay


def model_view(model: str, batch: int, compile_: bool = False) -> list[tuple[str, float]]:
    import torch

    from pysm.infer.backends.torch_graph import keep_shape_constants_on_host, optimize_graph

    w, h = det.MODELS[model]["size"]
    variants = [("nchw eager", False, False, False, False), ("channels_last eager", True, False, False, False),
                ("channels_last graph", True, False, True, False),
                ("optimized channels_last eager", True, True, False, False),
                ("optimized channels_last graph (pysm)", True, True, True, False)]
    if compile_:
        variants.append(("optimized channels_last torch.compile graph", True, True, True, True))
    rows = []
    for name, cl, opt, graph, comp in variants:
        m = _load_model(model).eval()
        if opt:
            m, _ = optimize_graph(m)
        m = m.cuda().half()
        keep_shape_constants_on_host(m)
        x = (torch.rand(batch, 3, h, w, device="cuda") * 255).half()
        if cl:
            m = m.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        try:
            with torch.inference_mode():
                if comp:
                    t0 = time.perf_counter()
                    m = torch.compile(m, mode="max-autotune-no-cudagraphs")
                    m(x)
                    name += f" (compile {time.perf_counter() - t0:.0f} s)"
                fn = (lambda: m(x))
                rows.append((name, _median_ms(_graph(fn) if graph else fn)))
        except Exception as exc:  # noqa: BLE001
            rows.append((f"{name}: failed {type(exc).__name__}: {str(exc)[:120]}", float("nan")))
        del m, x
    print(f"\n## model alone: {model} {w}x{h} fp16, batch {batch}")
    print("| variant | ms/batch | fps |\n|---|---|---|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {batch * 1000 / ms:,.0f} |", flush=True)
    return rows


def _real_batch(clip: str, batch: int):
    from pysm._native import _core
    from pysm.codec.reader import VideoReader

    frames = []
    with VideoReader(clip, "cuda") as r:
        for f in r:
            frames.append(f)
            if len(frames) >= batch:
                break
    mux = _core.NativeMux(1920, 1080, False, 0, batch)
    items = [(frames[i % len(frames)], i, i, 0, 0, 0) for i in range(batch)]
    return mux, items, frames


def engine_view(model: str, batch: int, clip: str, tmp: Path) -> None:
    import torch

    import pysm
    from pysm._native import _core

    cfg = det.write_config(tmp, model, batch, "torch", True)
    eng = pysm.InferEngine(cfg)
    eng.start()
    mux, items, keep = _real_batch(clip, batch)
    for _ in range(3):
        eng.process(mux.batch(items))
    torch.cuda.synchronize()
    walls = []
    for _ in range(20):
        buf = mux.batch(items)
        t = time.perf_counter()
        eng.process(buf)
        walls.append((time.perf_counter() - t) * 1000)
    # synchronised breakdown, replaying process() step by step
    s = eng._settings
    backend = s["backend"]
    parts: dict[str, list[float]] = {"plan": [], "preprocess": [], "model": [], "postprocess": []}
    for _ in range(10):
        buf = mux.batch(items)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        plan = _core.infer_plan(buf, s["select"])
        t1 = time.perf_counter()
        inp = backend.input_tensor(backend.run_batch(len(plan), s["run_batch"]), s["alloc_shape"], s["in_dtype"])
        _core.infer_preprocess(buf, plan, s["pre"], inp, backend.stream_handle)
        torch.cuda.synchronize()
        t2 = time.perf_counter()
        outs = backend.run(inp, len(plan))
        torch.cuda.synchronize()
        t3 = time.perf_counter()
        eng._postprocess(buf, plan, outs, len(plan), s)
        t4 = time.perf_counter()
        for k, a, b in (("plan", t0, t1), ("preprocess", t1, t2), ("model", t2, t3), ("postprocess", t3, t4)):
            parts[k].append((b - a) * 1000)
    b = eng.backend
    graphs = getattr(b, "_graphs", {})
    print(f"\nbackend: optimizations {getattr(b, 'optimizations', {})}, channels_last {getattr(b, 'channels_last', False)}, "
          f"CUDA graphs {len(graphs)}")
    eng.stop()
    wall = statistics.median(walls)
    print(f"\n## engine alone: {model}, batch {batch} of 1080p NV12 (process() wall, then synchronised parts)")
    print(f"process(): {wall:.2f} ms/batch = {batch * 1000 / wall:,.0f} fps")
    print("| part | ms |\n|---|---|")
    for k, v in parts.items():
        print(f"| {k} | {statistics.median(v):.2f} |", flush=True)
    del keep


def pipeline_view(model: str, n: int, clip: str, frames: int, tmp: Path, infer_batch: int = 64,
                  compile_mode: str = "0") -> None:
    import psutil

    import pysm
    from pysm import Pipeline
    from pysm.pipeline.elements.infer import InferElement
    from pysm.pipeline.elements.mux import StreamMux

    from pysm.infer.engine import InferEngine

    busy = {"infer.submit": 0.0, "infer.finish": 0.0, "infer.emit": 0.0, "mux_push": 0.0}
    patched = []

    def timed(cls, attr, key):
        orig = getattr(cls, attr)

        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                busy[key] += time.perf_counter() - t

        patched.append((cls, attr, orig))
        setattr(cls, attr, wrapper)

    from pysm._native import _core
    from pysm.infer.backends.torch import TorchBackend

    busy.update({"submit.plan": 0.0, "submit.preprocess": 0.0, "submit.run": 0.0, "submit.detect": 0.0})
    timed(_core, "infer_plan", "submit.plan")
    timed(_core, "infer_preprocess", "submit.preprocess")
    timed(TorchBackend, "run", "submit.run")
    timed(_core, "infer_detect_submit", "submit.detect")
    timed(InferEngine, "submit", "infer.submit")
    timed(InferEngine, "finish", "infer.finish")
    timed(StreamMux, "_push", "mux_push")
    orig_emit = InferElement.emit

    def emit(self, item, pad=None):
        t = time.perf_counter()
        try:
            return orig_emit(self, item, pad)
        finally:
            busy["infer.emit"] += time.perf_counter() - t

    patched.append((InferElement, "emit", orig_emit))
    InferElement.emit = emit
    ib = min(n, infer_batch) if infer_batch else n
    cfg = det.write_config(tmp, model, ib, "torch", True, compile_mode)
    counts = [0] * n
    first: list[float] = []

    class Count(pysm.BufferObserver):
        def handle_buffer(self, buffer):
            if not first:
                first.append(time.perf_counter())
                snap.update(busy=dict(busy), cpu=_thread_cpu())
            for f in buffer.batch_meta.frame_items:
                counts[f.source_id % n] += 1

    def _thread_cpu() -> dict[str, float]:
        names = {t.native_id: t.name for t in threading.enumerate()}
        out: dict[str, float] = {}
        for th in psutil.Process().threads():
            name = names.get(th.id, "other")
            group = ("source" if name.startswith("pysm:s") else name.replace("pysm:", "")) if name.startswith(
                "pysm:") else "other"
            out[group] = out.get(group, 0.0) + th.user_time + th.system_time
        return out

    snap: dict = {}
    p = Pipeline(f"profile{n}")
    p.add("nvstreammux", "mux", {"batch-size": n, "width": 1920, "height": 1080, "batched-push-timeout": 33000})
    for i in range(n):
        p.add("nvurisrcbin", f"s{i}", {"uri": clip, "device": "cuda", "num-buffers": frames, "file-loop": True})
        p.link((f"s{i}", "mux"), ("vsrc_%u", "sink_%u"))
    p.add("nvinfer", "infer", {"config-file-path": cfg, "batch-size": ib})
    p.add("fakesink", "sink")
    p.link("mux", "infer", "sink")
    p.attach("infer", pysm.Probe("count", Count()))
    stopper = threading.Event()
    cpu_end: dict = {}

    def watch():  # CPU per thread just before the sources end (threads vanish at EOS)
        while not stopper.wait(0.2):
            if first and sum(counts) >= 0.9 * n * frames:
                cpu_end.update(cpu=_thread_cpu(), busy=dict(busy), t=time.perf_counter(), frames=sum(counts))
                return

    w = threading.Thread(target=watch, daemon=True)
    w.start()
    t0 = time.perf_counter()
    p.start().wait()
    t1 = time.perf_counter()
    stopper.set()
    for cls, attr, orig in reversed(patched):
        setattr(cls, attr, orig)
    if not first or not cpu_end:
        print(f"pipeline {n}: no steady window (first={bool(first)})")
        return
    dt = cpu_end["t"] - first[0]
    fps = (cpu_end["frames"]) / dt
    print(f"\n## pipeline: {model}, {n} streams x {frames} frames, CUDA waits "
          f"{os.environ.get('PYSM_CUDA_WAIT', 'block')} (steady window {dt:.2f} s of {t1 - t0:.2f} s, first batch "
          f"after {first[0] - t0:.2f} s)")
    print(f"fps {fps:,.0f}; busy share of the window: " + ", ".join(
        f"{k} {100 * (cpu_end['busy'][k] - snap['busy'][k]) / dt:.0f} %" for k in busy))
    print("CPU seconds per second of window, by thread group: " + ", ".join(
        f"{k} {(cpu_end['cpu'].get(k, 0) - snap['cpu'].get(k, 0)) / dt:.2f}" for k in sorted(cpu_end["cpu"])), flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="resnet18", choices=sorted(det.MODELS))
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--streams", type=int, nargs="*", default=[64])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--codec", default="h264", choices=sorted(det.CLIPS))
    ap.add_argument("--views", default="model,engine,pipeline")
    ap.add_argument("--compile", action="store_true", help="add a torch.compile variant to the model view")
    ap.add_argument("--infer-batch", type=int, default=64, help="nvinfer batch-size cap in the pipeline view")
    ap.add_argument("--torch-compile", default="0", help="torch-compile key in the pipeline view")
    ap.add_argument("--switch-interval", type=float, help="sys.setswitchinterval (s), an experiment")
    args = ap.parse_args(argv)
    clip = str(det.DATA / det.CLIPS[args.codec])
    views = args.views.split(",")
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    with tempfile.TemporaryDirectory() as tmp:
        if "model" in views:
            model_view(args.model, args.batch, args.compile)
        if "engine" in views:
            engine_view(args.model, args.batch, clip, Path(tmp))
        if "pipeline" in views:
            for n in args.streams:
                pipeline_view(args.model, n, clip, args.frames, Path(tmp), args.infer_batch, args.torch_compile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
