"""Detector pipeline throughput: N streams of the 1080p retail clip (H.264 and HEVC) through
decode -> mux (batch N, 1920x1080) -> nvinfer (InferEngine: fused preprocessing, model, box
decode + NMS in the native core) -> fakesink, on one GPU; and, in the same run, the loop a
capable user writes: PyNvVideoCodec decode -> DLPack -> torch resize + stack -> model ->
torchvision NMS.

Models:
- ``resnet18``: a ResNet-18 DetectNet_v2-style detector (stride 16, coverage + bbox heads, 4 classes)
  at 960x544 in fp16 with random weights, built in plain torch (the class of DeepStream's
  reference model); the coverage bias is set low so that random weights give few boxes.
- ``yolox``: YOLOX-Nano at 640x640 (yolox_nano_dynamic.onnx via onnx2torch), fp16.

Throughput is measured in the steady state: between the moments 10 % and 90 % of the expected
frames (N x --frames; the clip loops) have left the pipeline, for pysm and the user loop alike.
Reported per point: aggregate fps, the slowest stream's fps, whether every stream holds >= 29.5
fps, GPU and NVDEC utilisation (NVML), host CPU (share of one core per stream); then per model and
codec the most streams that all hold >= 29.5 fps, and the ratio against the user loop.

    python benchmarks/detector.py --quick           # one ~6 minute GPU run
    python benchmarks/detector.py                   # the full sweep
    python benchmarks/detector.py --device cpu --backend onnxruntime --models yolox --streams 1 \\
        --frames 8 --no-baseline                    # a smoke run without a GPU
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
REALTIME_FPS = 29.5


def _data_dir() -> Path:
    if os.environ.get("PYSM_DATA"):
        return Path(os.environ["PYSM_DATA"])
    for parent in HERE.parents:
        if (parent / "shared" / "data").is_dir():
            return parent / "shared" / "data"
    return HERE.parents[1] / "shared" / "data"


DATA = _data_dir()
CLIPS = {"h264": "retail_1080p30_h264.mp4", "hevc": "retail_1080p30_hevc.mp4"}


# ---- the ResNet-18 DetectNet_v2-style model (plain torch, random weights) -------------------------

def resnet18_detectnet_v2(num_classes: int = 4):
    """ResNet-18 backbone with the last stage at stride 1 (output stride 16, as DetectNet_v2),
    a sigmoid coverage head [B, C, H/16, W/16] and a bbox head [B, 4C, H/16, W/16]."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.down = None
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = torch.relu(self.b1(self.c1(x)))
            y = self.b2(self.c2(y))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    class DetectNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                      nn.MaxPool2d(3, 2, 1))
            layers, cin = [], 64
            for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 1)):
                layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
                cin = cout
            self.body = nn.Sequential(*layers)
            self.cov = nn.Conv2d(512, num_classes, 1)
            self.bbox = nn.Conv2d(512, 4 * num_classes, 1)
            nn.init.constant_(self.cov.bias, -6.0)  # random weights: few cells above threshold

        def forward(self, x):
            f = self.body(self.stem(x))
            return torch.sigmoid(self.cov(f)), self.bbox(f)

    torch.manual_seed(0)
    return DetectNet()


MODELS = {
    "resnet18": {"size": (960, 544), "classes": 4},
    "yolox": {"size": (640, 640), "classes": 80},
}


def write_config(tmp: Path, model: str, batch: int, backend: str, gpu: bool, compile_mode: str = "0") -> str:
    w, h = MODELS[model]["size"]
    lines = [
        "[property]", f"batch-size={batch}", f"infer-dims=3;{h};{w}", f"backend={backend}",
        f"torch-compile={compile_mode}",
        f"network-mode={2 if gpu else 0}", "gie-unique-id=1", f"num-detected-classes={MODELS[model]['classes']}",
        "cluster-mode=2",
    ]
    if model == "resnet18":
        lines += ["torch-model=detector:resnet18_detectnet_v2", "net-scale-factor=0.00392156862745098",
                  "parse-bbox-func-name=detectnet_v2"]
    else:
        lines += [f"onnx-file={DATA / 'yolox_nano_dynamic.onnx'}", f"labelfile-path={DATA / 'coco_labels.txt'}",
                  "model-color-format=1", "maintain-aspect-ratio=1", "padding-value=114",
                  "parse-bbox-func-name=yolox", "nms-class-agnostic=1"]
    lines += ["[class-attrs-all]", "pre-cluster-threshold=0.3", "nms-iou-threshold=0.45", "topk=100"]
    p = tmp / f"{model}_b{batch}_c{compile_mode}.txt"
    p.write_text("\n".join(lines) + "\n")
    return str(p)


# ---- measurement -----------------------------------------------------------------------------------

class Nvml:
    """GPU and NVDEC utilisation sampled in a thread; None when NVML is unavailable."""

    def __init__(self, index: int = 0):
        self.ok = False
        try:
            import pynvml

            pynvml.nvmlInit()
            self._n, self._h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(self._h)
            self.name = name.decode() if isinstance(name, bytes) else name
            self.ok = True
        except Exception as exc:  # noqa: BLE001
            self.name = f"(NVML unavailable: {exc})"
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    def start(self):
        self._samples, self._stop = [], threading.Event()
        if self.ok:
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()

    def _run(self):
        while not self._stop.wait(0.25):
            try:
                gpu = self._n.nvmlDeviceGetUtilizationRates(self._h).gpu
                dec, _ = self._n.nvmlDeviceGetDecoderUtilization(self._h)
                self._samples.append((time.perf_counter(), float(gpu), float(dec)))
            except Exception:  # noqa: BLE001
                return

    def stop(self, window: tuple[float, float] | None = None) -> tuple[float | None, float | None]:
        """Mean GPU and NVDEC utilisation, over ``window`` (perf_counter seconds) when given."""
        self._stop.set()
        if self._t:
            self._t.join(timeout=2)
        samples = [s for s in self._samples if window is None or window[0] <= s[0] <= window[1]] or self._samples
        if not samples:
            return None, None
        return statistics.mean(s[1] for s in samples), statistics.mean(s[2] for s in samples)


class SteadyMeter:
    """Counts frames per stream as they leave the pipeline and keeps two snapshots: when 10 % and
    when 90 % of the expected frames are out. Throughput is taken between them, so model loading,
    decoder start-up, the last stragglers and teardown are not in the figure (a deployment runs
    for hours); without an expected total the whole run from the first frame out is used."""

    def __init__(self, n: int, expected: int):
        self.counts = [0] * n
        self.total = 0
        self.expected = expected
        self.first: float | None = None
        self.snaps: list[tuple[float, list[int]]] = []
        self.lock = threading.Lock()

    def add(self, stream: int, k: int = 1) -> None:
        with self.lock:
            if self.first is None:
                self.first = time.perf_counter()
            self.counts[stream] += k
            self.total += k
            if self.expected > 0 and len(self.snaps) < 2 and self.total >= (0.1, 0.9)[len(self.snaps)] * self.expected:
                self.snaps.append((time.perf_counter(), list(self.counts)))

    def window(self, end: float) -> tuple[float, float, list[int]]:
        """(start, end, frames per stream) of the measured window."""
        if len(self.snaps) == 2:
            (t0, c0), (t1, c1) = self.snaps
            return t0, t1, [b - a for a, b in zip(c0, c1)]
        return (self.first or end), end, list(self.counts)


def _cpu(proc) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def result(meter: SteadyMeter, end: float, cpu: tuple[float, float], nvml: Nvml, n: int, errors: list[str]) -> dict:
    """Figures of one run over the meter's steady window (CPU is sampled at the window's ends)."""
    t0, t1, per_stream = meter.window(end)
    dt = t1 - t0
    util = nvml.stop((t0, t1))
    fps = [c / dt for c in per_stream] if dt > 0 else [0.0] * n
    return {"streams": n, "fps": sum(per_stream) / dt if dt > 0 else 0.0, "min_stream_fps": min(fps) if fps else 0.0,
            "realtime": bool(fps) and min(fps) >= REALTIME_FPS, "gpu_util": util[0], "nvdec_util": util[1],
            "window_s": dt, "cpu_per_stream_pct": 100.0 * cpu[1] / cpu[0] / n if cpu[0] > 0 else None,
            "errors": errors[:3]}


class CpuSampler:
    """Process CPU seconds at the meter's two snapshots (sampled by a thread every 0.1 s)."""

    def __init__(self, proc, meter: SteadyMeter):
        self.proc, self.meter = proc, meter
        self.marks: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self):
        while not self._stop.wait(0.1) and len(self.marks) < 2:
            if len(self.meter.snaps) > len(self.marks):
                self.marks.append((time.perf_counter(), _cpu(self.proc)))

    def stop(self, t0: float, c0: float) -> tuple[float, float]:
        """(wall seconds, CPU seconds) between the snapshots, or of the whole run."""
        self._stop.set()
        self._t.join(timeout=1)
        if len(self.marks) == 2:
            (a, ca), (b, cb) = self.marks
            return b - a, cb - ca
        return time.perf_counter() - t0, _cpu(self.proc) - c0


def pysm_run(clip: str, n: int, frames: int, config: str, device: str, nvml: Nvml, infer_batch: int = 0) -> dict:
    import pysm
    from pysm import Pipeline

    meter = SteadyMeter(n, n * frames if frames > 0 else 0)

    class Count(pysm.BufferObserver):
        def handle_buffer(self, buffer):
            for f in buffer.batch_meta.frame_items:
                meter.add(f.source_id % n)

    p = Pipeline(f"detector{n}")
    p.add("nvstreammux", "mux", {"batch-size": n, "width": 1920, "height": 1080, "batched-push-timeout": 33000})
    for i in range(n):
        # file-loop: the clip repeats until num-buffers, so a long steady window fits a short clip
        p.add("nvurisrcbin", f"s{i}", {"uri": clip, "device": device, "num-buffers": frames, "file-loop": frames > 0})
        p.link((f"s{i}", "mux"), ("vsrc_%u", "sink_%u"))
    p.add("nvinfer", "infer", {"config-file-path": config, "batch-size": min(n, infer_batch) if infer_batch else n})
    p.add("fakesink", "sink")
    p.link("mux", "infer", "sink")
    p.attach("infer", pysm.Probe("count", Count()))  # the infer output (every batch past the model)
    errors: list[str] = []
    proc = psutil.Process()
    nvml.start()
    c0, t0 = _cpu(proc), time.perf_counter()
    cpu = CpuSampler(proc, meter)
    p.start(lambda m: errors.append(str(getattr(m, "message", m)))
            if type(m).__name__ == "ErrorMessage" else None).wait()
    end = time.perf_counter()
    return result(meter, end, cpu.stop(t0, c0), nvml, n, errors)


# ---- the user loop: PyNvVideoCodec -> DLPack -> torch -> model -> torchvision NMS -------------------

def user_loop_run(clip: str, n: int, frames: int, model_name: str, nvml: Nvml) -> dict:
    import PyNvVideoCodec as nvc
    import torch
    import torch.nn.functional as F
    import torchvision

    dev = torch.device("cuda:0")
    w, h = MODELS[model_name]["size"]
    if model_name == "yolox":
        import onnx
        import onnx2torch

        model = onnx2torch.convert(onnx.load(str(DATA / "yolox_nano_dynamic.onnx")))
    else:
        model = resnet18_detectnet_v2()
    model = model.eval().to(dev).half()
    q: queue.Queue = queue.Queue(maxsize=4 * n)
    meter = SteadyMeter(n, n * frames if frames > 0 else 0)
    errors: list[str] = []
    stop = threading.Event()
    m709 = torch.tensor([[1.164, 0.0, 1.793], [1.164, -0.213, -0.533], [1.164, 2.112, 0.0]], device=dev)

    def decode(i: int):
        try:
            dmx = nvc.CreateDemuxer(filename=clip)
            dec = nvc.CreateDecoder(gpuid=0, codec=dmx.GetNvCodecId(), cudacontext=0, cudastream=0,
                                    usedevicememory=True)
            got = 0
            while True:  # the clip repeats until `frames` (as pysm's file-loop)
                for packet in dmx:
                    for frame in dec.Decode(packet):
                        nv12 = torch.from_dlpack(frame)  # (H*3/2, W) uint8 on the GPU
                        q.put((i, nv12.clone()))
                        got += 1
                        if 0 <= frames <= got or stop.is_set():
                            return
                if frames < 0:
                    return
                dmx = nvc.CreateDemuxer(filename=clip)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"decode {i}: {exc!r}")

    def nv12_to_rgb(x: "torch.Tensor") -> "torch.Tensor":
        hh = x.shape[0] * 2 // 3
        y = x[:hh].float() - 16.0
        uv = x[hh:].view(hh // 2, -1, 2).float() - 128.0
        uv = uv.permute(2, 0, 1).unsqueeze(0)
        uv = F.interpolate(uv, size=(hh, x.shape[1]), mode="nearest")[0]
        yuv = torch.stack([y, uv[0], uv[1]])
        return (m709 @ yuv.view(3, -1)).view(3, hh, -1).clamp_(0, 255)

    def postprocess(outs) -> int:
        kept = 0
        if model_name == "yolox":
            o = outs.float()
            s = 8400
            grids, strides = [], []
            for st in (8, 16, 32):
                gy, gx = torch.meshgrid(torch.arange(h // st, device=dev), torch.arange(w // st, device=dev),
                                        indexing="ij")
                grids.append(torch.stack([gx, gy], -1).view(-1, 2))
                strides.append(torch.full(((h // st) * (w // st), 1), st, device=dev))
            g, st = torch.cat(grids).float(), torch.cat(strides).float()
            xy = (o[..., :2] + g) * st
            wh = torch.exp(o[..., 2:4]) * st
            boxes = torch.cat([xy - wh / 2, xy + wh / 2], -1)
            scores, cls = (o[..., 5:] * o[..., 4:5]).max(-1)
            del s
        else:
            cov, bb = outs[0].float(), outs[1].float()
            B, C, gh, gw = cov.shape
            scores, cls = cov.flatten(2).max(1)
            gy, gx = torch.meshgrid(torch.arange(gh, device=dev), torch.arange(gw, device=dev), indexing="ij")
            cx = (gx.flatten() * (w / gw) + 0.5) / 35.0
            cy = (gy.flatten() * (h / gh) + 0.5) / 35.0
            b = bb.view(B, C, 4, -1)[torch.arange(B)[:, None], cls]
            boxes = torch.stack([(b[:, :, 0] - cx) * -35, (b[:, :, 1] - cy) * -35,
                                 (b[:, :, 2] + cx) * 35, (b[:, :, 3] + cy) * 35], -1)
        for i in range(scores.shape[0]):
            m = scores[i] > 0.3
            keep = torchvision.ops.batched_nms(boxes[i][m], scores[i][m], cls[i][m], 0.45)
            kept += int(keep.numel())
        return kept

    threads = [threading.Thread(target=decode, args=(i,), daemon=True) for i in range(n)]
    proc = psutil.Process()
    nvml.start()
    c0, t0 = _cpu(proc), time.perf_counter()
    cpu = CpuSampler(proc, meter)
    for t in threads:
        t.start()
    done = 0
    with torch.inference_mode():
        while any(t.is_alive() for t in threads) or not q.empty():
            batch = []
            try:
                batch.append(q.get(timeout=0.5))
                while len(batch) < n:
                    batch.append(q.get_nowait())
            except queue.Empty:
                pass
            if not batch:
                continue
            imgs = torch.stack([F.interpolate(nv12_to_rgb(x).unsqueeze(0), size=(h, w), mode="bilinear",
                                              align_corners=False)[0] for _, x in batch]).half()
            if model_name == "yolox":
                imgs = imgs.flip(1)  # BGR, 0..255
            else:
                imgs = imgs / 255.0
            postprocess(model(imgs))  # NMS reads the scores on the host: the batch is done
            for i, _ in batch:
                meter.add(i)
            done += len(batch)
    torch.cuda.synchronize()
    end = time.perf_counter()
    stop.set()
    return result(meter, end, cpu.stop(t0, c0), nvml, n, errors)


# ---- main ------------------------------------------------------------------------------------------

def fmt(v, spec=".0f"):
    return "n/a" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few points, 300 frames per stream (~6 min on a GPU)")
    ap.add_argument("--models", default="resnet18,yolox")
    ap.add_argument("--codecs", default="h264,hevc")
    ap.add_argument("--streams", type=int, nargs="+", help="stream counts (default: per model and mode)")
    ap.add_argument("--frames", type=int, help="frames per stream (-1: the whole clip, 603)")
    ap.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="decode device")
    ap.add_argument("--backend", default="torch", help="nvinfer backend (torch, onnxruntime, tensorrt, auto)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the PyNvVideoCodec + torch user loop")
    ap.add_argument("--baseline-frames", type=int, help="frames per stream of the user loop (default: --frames)")
    ap.add_argument("--json", help="write all results here")
    ap.add_argument("--infer-batch", type=int, default=64,
                    help="nvinfer batch-size cap: the mux batches all N streams, the model runs <= this many "
                         "frames at a time (0: N)")
    ap.add_argument("--torch-compile", default="max-autotune",
                    help="torch-compile key of the config: 0, 1 or max-autotune (compiled once per shape at "
                         "start, cached by torch; start-up is not in the timed part)")
    args = ap.parse_args(argv)

    import pysm.cuda

    gpu = pysm.cuda.is_available() and args.device == "cuda"
    frames = args.frames if args.frames is not None else (300 if args.quick else -1)
    bframes = args.baseline_frames if args.baseline_frames is not None else frames
    sweeps = {  # (model, codec) -> stream counts
        ("resnet18", "h264"): [64, 128] if args.quick else [16, 32, 64, 96, 128, 144, 160],
        ("resnet18", "hevc"): [128, 240] if args.quick else [64, 128, 192, 224, 240, 256],
        ("yolox", "h264"): [16, 64] if args.quick else [16, 32, 64, 96, 128],
        ("yolox", "hevc"): [] if args.quick else [64, 128],
    }
    nvml = Nvml(0)
    info = pysm.cuda.device_info(0)["name"] if gpu else "none"
    print(f"# detector benchmark: GPU {info} (NVML {nvml.name}), decode on {args.device}, backend {args.backend}, "
          f"frames/stream {frames if frames >= 0 else 'all (603)'}, host {psutil.cpu_count()} CPUs")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for codec in args.codecs.split(","):
                counts = args.streams or sweeps.get((model, codec), [])
                if not counts:
                    continue
                clip = str(DATA / CLIPS[codec])
                print(f"\n## {model} ({MODELS[model]['size'][0]}x{MODELS[model]['size'][1]}"
                      f"{' fp16' if gpu else ''}), {codec}")
                print("| N | system | fps | slowest stream fps | >= 29.5 fps each | GPU util % | NVDEC util % | "
                      "CPU/stream % |")
                print("|---|---|---|---|---|---|---|---|")
                best = 0
                for n in counts:
                    ib = min(n, args.infer_batch) if args.infer_batch else n
                    cfg = write_config(Path(tmp), model, ib, args.backend, gpu, args.torch_compile if gpu else "0")
                    res = {"model": model, "codec": codec, "system": "pysm",
                           **pysm_run(clip, n, frames, cfg, args.device, nvml, ib)}
                    rows.append(res)
                    if res["realtime"] and not res["errors"]:
                        best = max(best, n)
                    runs = [res]
                    if not args.no_baseline and gpu:
                        try:
                            base = {"model": model, "codec": codec, "system": "user loop",
                                    **user_loop_run(clip, n, bframes, model, nvml)}
                        except Exception as exc:  # noqa: BLE001 - e.g. PyNvVideoCodec missing
                            base = {"model": model, "codec": codec, "system": "user loop", "streams": n,
                                    "errors": [f"{type(exc).__name__}: {exc}"]}
                        rows.append(base)
                        runs.append(base)
                    for r in runs:
                        if r.get("fps") is None:
                            print(f"| {n} | {r['system']} | failed: {r['errors']} | | | | | |")
                            continue
                        print(f"| {n} | {r['system']} | {r['fps']:,.0f} | {r['min_stream_fps']:.1f} | "
                              f"{'yes' if r['realtime'] else 'no'} | {fmt(r['gpu_util'])} | {fmt(r['nvdec_util'])} | "
                              f"{fmt(r['cpu_per_stream_pct'], '.1f')} |"
                              + (f" errors: {r['errors']}" if r["errors"] else ""), flush=True)
                    if len(runs) == 2 and runs[1].get("fps"):
                        print(f"|   | ratio pysm / user loop | {runs[0]['fps'] / runs[1]['fps']:.2f}x | | | | | |")
                print(f"\nmost real-time streams ({model}, {codec}): {best if best else 'none of ' + str(counts)}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
