"""GPU inference ops against their CPU twins on random inputs (not zeros): the preprocessing
kernel (whole frames and the secondary-mode crop batch, frames in host and device memory), the box
decoders and NMS; then the engine on the GPU with the torch backend (tiny module, CUDA graph) and
YOLOX-Nano via onnx2torch in fp32 and fp16."""

from __future__ import annotations

import numpy as np
import pytest

import pysm
from pysm._native import _core
import infer_models
import infer_reference as ref

pytestmark = pytest.mark.gpu
torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)


def cuda_ok():
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA here")


def stream():
    return torch.cuda.current_stream().cuda_stream


def rand_frame(fmt, w, h):
    if fmt == "NV12":
        return RNG.integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)
    if fmt == "P016":
        return RNG.integers(0, 65536, (h * 3 // 2, w), dtype=np.uint16)
    ch = {"RGB": 3, "BGR": 3, "RGBA": 4, "BGRA": 4}[fmt]
    return RNG.integers(0, 256, (h, w, ch), dtype=np.uint8)


def cpu_and_gpu(frames, regions, params, dtype=np.float32, frames_on_device=False):
    C = 1 if params.get("color", 0) == 2 else 3
    shape = (len(regions), C, params["height"], params["width"]) if params.get("order", 0) == 0 else \
        (len(regions), params["height"], params["width"], C)
    cpu = np.zeros(shape, dtype)
    tr_cpu = _core.infer_preprocess_arrays(frames, regions, params, cpu)
    gpu = torch.full(shape, -5.0, dtype=torch.float16 if dtype == np.float16 else torch.float32, device="cuda")
    gframes = [(torch.from_numpy(f[0]).cuda(), *f[1:]) for f in frames] if frames_on_device else frames
    tr_gpu = _core.infer_preprocess_arrays(gframes, regions, params, gpu, stream())
    torch.cuda.current_stream().synchronize()
    assert tr_cpu == tr_gpu
    return cpu.astype(np.float64), gpu.float().cpu().numpy().astype(np.float64)


@pytest.mark.parametrize("fmt", ["NV12", "P016", "RGB", "BGR", "RGBA", "BGRA"])
@pytest.mark.parametrize("on_device", [False, True])
def test_preprocess_kernel_matches_cpu(fmt, on_device):
    cuda_ok()
    frames = [(rand_frame(fmt, 64, 48), fmt), (rand_frame(fmt, 38, 70), fmt), (rand_frame(fmt, 130, 40), fmt)]
    for params in (
        dict(width=40, height=32, color=0, scale=1 / 255, offsets=(0.5, 0.4, 0.3)),
        dict(width=33, height=21, color=1, maintain_aspect_ratio=True, pad_value=114.0, filter=2),
        dict(width=16, height=24, color=2, maintain_aspect_ratio=True, symmetric_padding=True, order=1, filter=0),
    ):
        regions = [(i, 0, 0, 0, 0) for i in range(3)]
        cpu, gpu = cpu_and_gpu(frames, regions, params, frames_on_device=on_device)
        tol = 1e-3 if params.get("filter", 1) != 0 else 1e-4
        np.testing.assert_allclose(gpu, cpu, atol=tol * max(1, params.get("scale", 1) * 255), err_msg=str(params))
        cpu16, gpu16 = cpu_and_gpu(frames, regions, params, dtype=np.float16, frames_on_device=on_device)
        np.testing.assert_allclose(gpu16, cpu16, atol=0.13, rtol=2e-3)


def test_secondary_crop_kernel_matches_cpu():
    cuda_ok()
    frames = [(rand_frame("NV12", 320, 240), "NV12", 1, 0), (rand_frame("RGBA", 200, 100), "RGBA")]
    regions = []
    for _ in range(150):  # many objects across both frames in one launch
        f = int(RNG.integers(0, 2))
        fw, fh = (320, 240) if f == 0 else (200, 100)
        x, y = int(RNG.integers(-10, fw)), int(RNG.integers(-10, fh))
        regions.append((f, x, y, int(RNG.integers(1, 90)), int(RNG.integers(1, 90))))
    params = dict(width=24, height=24, maintain_aspect_ratio=True, symmetric_padding=True, pad_value=(0, 50, 100),
                  scale=1 / 255, filter=1)
    for on_device in (False, True):
        cpu, gpu = cpu_and_gpu(frames, regions, params, frames_on_device=on_device)
        # fp32 bilinear weights of fractional crop coordinates: FMA contraction on the GPU moves
        # results by a few ulps of 255-scaled values (seen: 3e-5), far below one grey level (4e-3).
        np.testing.assert_allclose(gpu, cpu, atol=2e-4)
    # and against the float64 reference
    want = np.stack([ref.preprocess(frames[r[0]][0], frames[r[0]][1], r[1:], params,
                                    *(frames[r[0]][2:] if len(frames[r[0]]) > 2 else ())) for r in regions])
    np.testing.assert_allclose(gpu, want, atol=2e-4)


def yolox_out(B, W, H, C):
    n = sum((W // s) * (H // s) for s in (8, 16, 32))
    o = RNG.normal(0, 1, (B, n, 5 + C)).astype(np.float32)
    o[..., 4:] = 1 / (1 + np.exp(-2 * o[..., 4:]))
    return o


def compare_candidates(cpu_list, gpu_list, thr):
    assert len(cpu_list) == len(gpu_list)
    for c, g in zip(cpu_list, gpu_list):
        # exp/fp differences may move a score across the threshold by an ulp: ignore those rows
        c = c[np.abs(c[:, 1] - thr) > 1e-5]
        g = g[np.abs(g[:, 1] - thr) > 1e-5]
        assert c.shape == g.shape
        np.testing.assert_array_equal(c[:, 0], g[:, 0])
        np.testing.assert_allclose(g[:, 1:], c[:, 1:], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("half", [False, True])
def test_box_decoders_match_cpu(half):
    cuda_ok()
    o = yolox_out(3, 128, 96, 10)
    if half:
        o = o.astype(np.float16)
    p = dict(kind="yolox", net_width=128, net_height=96, thresholds=[0.3], max_candidates=300)
    compare_candidates(_core.infer_decode_boxes([o], p), _core.infer_decode_boxes([torch.from_numpy(o).cuda()], p, stream()), 0.3)
    W, H, C = 96, 64, 3
    cov = RNG.uniform(0, 1, (2, C, H // 16, W // 16)).astype(np.float32)
    bbox = RNG.normal(0, 0.5, (2, 4 * C, H // 16, W // 16)).astype(np.float32)
    p = dict(kind="detectnet_v2", net_width=W, net_height=H, thresholds=[0.4, 0.5, 0.6])
    compare_candidates(_core.infer_decode_boxes([cov, bbox], p),
                       _core.infer_decode_boxes([torch.from_numpy(cov).cuda(), torch.from_numpy(bbox).cuda()], p, stream()),
                       0.5)
    y = RNG.uniform(0, 60, (2, 300, 9)).astype(np.float32)
    y[..., 4:] = RNG.uniform(0, 1, (2, 300, 5))
    p = dict(kind="yolo", net_width=64, net_height=64, num_classes=4, thresholds=[0.25])
    compare_candidates(_core.infer_decode_boxes([y], p), _core.infer_decode_boxes([torch.from_numpy(y).cuda()], p, stream()), 0.25)


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4])
def test_detect_with_each_cluster_mode_matches_cpu(mode):
    """Device outputs: decode (+ NMS) on the GPU, DBSCAN / hybrid / top-k on the host after the
    copy; the result equals the all-CPU path on the same random outputs."""
    cuda_ok()
    o = yolox_out(3, 128, 96, 6)
    decode = dict(kind="yolox", net_width=128, net_height=96, thresholds=[0.3], max_candidates=300)
    cl = dict(mode=mode, nms=dict(iou_threshold=0.45, topk=8), default_eps=0.8, default_min_boxes=2)
    cpu = _core.infer_detect_submit([o], decode, cl).rows()
    gpu = _core.infer_detect_submit([torch.from_numpy(o).cuda()], decode, cl, stream()).rows()
    assert all(len(c) > 0 for c in cpu)
    compare_candidates(cpu, gpu, 0.3)


@pytest.mark.parametrize("agnostic", [False, True])
def test_nms_matches_cpu(agnostic):
    cuda_ok()
    for n in (1, 63, 64, 65, 500, 1024):
        xy = RNG.uniform(0, 200, (n, 2))
        wh = RNG.uniform(5, 60, (n, 2))
        rows = np.concatenate([RNG.integers(0, 5, (n, 1)), RNG.uniform(0, 1, (n, 1)), xy, xy + wh], 1)
        rows = rows.astype(np.float32).astype(np.float64)
        rows = rows[np.argsort(-rows[:, 1], kind="stable")]
        for params in (dict(iou_threshold=0.5, class_agnostic=agnostic),
                       dict(iou_threshold=[0.3, 0.5, 0.7, 0.4, 0.6], topk=[2, -1, 5, 1, 3], class_agnostic=agnostic),
                       dict(iou_threshold=0.45, topk_total=17, class_agnostic=agnostic)):
            cpu = _core.infer_nms(rows, params)
            gpu = _core.infer_nms(rows, params, device="cuda")
            assert cpu == gpu, (n, params)
            assert cpu == ref.nms(rows, params["iou_threshold"], topk=params.get("topk", -1),
                                  topk_total=params.get("topk_total", -1), agnostic=agnostic)


def test_engine_torch_backend_on_gpu_with_cuda_graph():
    cuda_ok()
    f = np.zeros((48, 64, 3), np.uint8)
    f[:] = (200, 40, 100)
    for graph in (False, True):
        e = pysm.InferEngine(None, model=infer_models.torch_detector(), infer_dims="3;32;32", net_scale_factor=1 / 255,
                             parse_bbox_func_name="yolo", num_detected_classes=2, backend="torch", batch_size=2,
                             cuda_graph=graph, output_tensor_meta=1)
        e.start()
        assert e.backend.device.startswith("cuda")
        for _ in range(3):
            buf = _core.infer_buffer_from_arrays([(f, "RGB")] * 3, device="cuda")
            e.process(buf)
            meta = _core.infer_buffer_metadata(buf)
            for fr in meta:
                (o,) = fr["objects"]
                r = o["rect"]
                assert o["class_id"] == 0 and o["confidence"] == pytest.approx(200 / 255, abs=1e-4)
                assert [r["left"], r["top"], r["width"], r["height"]] == pytest.approx([22, 12, 20, 12], abs=1e-3)
                (um,) = fr["user_meta"]
                assert um["layers"]["output"][0, 4] == pytest.approx(200 / 255, abs=1e-4)


@pytest.mark.parametrize("mode", [0, 2])
def test_yolox_torch_backend_via_onnx2torch(shared_data, tmp_path, mode):
    cuda_ok()
    pytest.importorskip("onnx2torch")
    import av
    import test_infer_yolox as ty

    cfg = ty.yolox_config(tmp_path, shared_data, backend="torch", **{"network-mode": mode})
    e = pysm.InferEngine(cfg)
    e.start()
    assert e.backend_name == "torch"
    with av.open(str(shared_data / "dog.jpg")) as c:
        img = next(c.decode(video=0)).to_ndarray(format="rgb24")
    for device in ("cpu", "cuda"):  # frames in host memory (uploaded) and in device memory
        buf = _core.infer_buffer_from_arrays([(img, "RGB")], device=device)
        e.process(buf)
        dets = ty.detections(buf)
        assert len(dets) == 3, dets
        ty.check_reference(dets, ty.REF_416)
    # The rewrites reached the onnx2torch graph, and it runs as a CUDA graph: the Slice/Resize
    # constants are on the host, so the forward pass never synchronises.
    b = e.backend
    assert b.optimizations["silu_fused"] > 100 and b.optimizations["host_constants"] >= 8, b.optimizations
    assert b.channels_last and b._use_graph is not False and b._graphs
    # golden output: fp32 within 1e-3, fp16 looser
    g_in = np.load(shared_data / "dog_yolox416_input_u8.npy")
    g_out = np.load(shared_data / "dog_yolox416_output_f32.npy")
    e2 = pysm.InferEngine(ty.yolox_config(tmp_path, shared_data, backend="torch", **{
        "network-mode": mode, "output-tensor-meta": 1, "scaling-filter": 1}))
    e2.start()
    buf = _core.infer_buffer_from_arrays([(np.ascontiguousarray(g_in[0].transpose(1, 2, 0)), "BGR")], device="cuda")
    e2.process(buf)
    out = _core.infer_buffer_metadata(buf)[0]["user_meta"][0]["layers"]["output"].astype(np.float32)
    scores = out[:, 4:]
    np.testing.assert_allclose(scores, g_out[0][:, 4:], atol=1e-3 if mode == 0 else 6e-2)
    # fp16: a handful of low-score anchors move by up to ~0.04 (seen on an H200); the detections
    # themselves are held to the reference within 0.03 above.


def _outputs(buf):
    return [fr["user_meta"][0]["layers"]["output"].astype(np.float32) for fr in _core.infer_buffer_metadata(buf)]


def test_torch_optimized_path_matches_the_plain_model_on_gpu():
    """Folded BN + fused SiLU + channels-last input written by the preprocessing kernel + CUDA
    graphs (with partial batches rounded up to a power of two) give the plain eager model's
    outputs, on random frames."""
    cuda_ok()
    frames = [(rand_frame("RGB", 90, 60), "RGB") for _ in range(8)]
    runs = {}
    for name, kw in (("plain", dict(torch_optimize=0, cuda_graph=0)), ("fast", dict()),
                     ("fast16", dict(network_mode=2))):
        e = pysm.InferEngine(None, model=infer_models.conv_bn_net(), infer_dims="3;48;64", net_scale_factor=1 / 255,
                             offsets="10;20;30", network_type=100, output_tensor_meta=1, backend="torch", batch_size=8,
                             **kw)
        e.start()
        outs = []
        for n in (5, 3, 8, 3):  # 5 and 3 run as batches of 8 and 4 under a graph
            buf = _core.infer_buffer_from_arrays(frames[:n], device="cuda")
            e.process(buf)
            outs.append(_outputs(buf))
        runs[name] = (outs, e.backend, sorted(k[0][0] for k in e.backend._graphs))
        e.stop()
    plain, fast, fast16 = runs["plain"][0], runs["fast"][0], runs["fast16"][0]
    b = runs["fast"][1]
    assert b.channels_last and b.optimizations["silu_fused"] == 2
    assert runs["fast"][2] == [4, 8]  # the full batch (captured at start) and the power of two above 3
    assert not runs["plain"][1].channels_last and runs["plain"][2] == []
    for p_outs, f_outs, h_outs in zip(plain, fast, fast16):
        assert len(p_outs) == len(f_outs) == len(h_outs)
        for p, f, h in zip(p_outs, f_outs, h_outs):
            assert np.linalg.norm(f - p) / np.linalg.norm(p) < 1e-4
            assert np.linalg.norm(h - p) / np.linalg.norm(p) < 2e-2


def test_uncapturable_model_falls_back_to_eager_unless_graphs_are_required():
    cuda_ok()
    from torch import nn

    class Syncs(nn.Module):  # .item() reads the device: not capturable in a CUDA graph
        def forward(self, x):
            s = float(x.mean().item())
            return (x.flatten(2).transpose(1, 2)[:, :4, :] * 0 + s).float()

    frames = [(rand_frame("RGB", 32, 24), "RGB") for _ in range(2)]
    e = pysm.InferEngine(None, model=Syncs(), infer_dims="3;8;8", network_type=100, output_tensor_meta=1,
                         backend="torch", batch_size=2)
    e.start()
    buf = _core.infer_buffer_from_arrays(frames, device="cuda")
    e.process(buf)
    assert e.backend._use_graph is False and not e.backend._graphs
    assert all(np.isfinite(o).all() and o.shape == (4, 3) for o in _outputs(buf))
    e2 = pysm.InferEngine(None, model=Syncs(), infer_dims="3;8;8", network_type=100, backend="torch", batch_size=2,
                          cuda_graph=1)
    with pytest.raises(pysm.InferenceError, match="cuda-graph=1"):
        e2.start()  # the capture happens in the warm-up at start


@pytest.mark.parametrize("mode", [0, 2])
def test_segmentation_on_the_torch_backend_matches_numpy(tmp_path, mode):
    """network-type=2 on the GPU: device frames -> fused preprocessing -> torch (onnx2torch) in
    fp32/fp16 -> output copied to the host -> class map and probabilities, against NumPy on
    random frames (the model is the identity, so the probabilities are the scaled pixels)."""
    cuda_ok()
    pytest.importorskip("onnx2torch")
    model = infer_models.segmenter(tmp_path / "seg.onnx", width=64, height=32)
    rng = np.random.default_rng(11 + mode)
    frames = [rng.integers(0, 256, (32, 64, 3), dtype=np.uint8) for _ in range(3)]
    e = pysm.InferEngine(None, onnx_file=model, infer_dims="3;32;64", net_scale_factor=1 / 255, network_type=2,
                         network_mode=mode, segmentation_threshold=0.5, backend="torch", unique_id=3, batch_size=4)
    e.start()
    assert e.backend.device.startswith("cuda")
    for _ in range(2):  # the second batch replays the captured graph
        buf = _core.infer_buffer_from_arrays([(f, "RGB") for f in frames], device="cuda")
        e.process(buf)
        for f, fm in zip(frames, buf.batch_meta.frame_items):
            (sm,) = list(fm.segmentation_items)
            p = f.astype(np.float32) / 255
            want = p.argmax(-1).astype(np.int32)
            want[p.max(-1) < 0.5] = -1
            assert (sm.width, sm.height, sm.classes, sm.unique_id) == (64, 32, 3, 3)
            np.testing.assert_array_equal(sm.class_map, want)
            np.testing.assert_allclose(sm.class_probabilities_map, p, atol=1e-6 if mode == 0 else 1e-3)
    e.stop()


def test_secondary_classifier_history_on_the_gpu_matches_cpu(tmp_path):
    """A secondary classifier on device frames (torch backend, onnx2torch) with tracked and
    untracked objects, boxes that sometimes grow, and secondary-reinfer-interval=2: the same
    objects are inferred (model runs) and get the same labels as the CPU engine (onnxruntime)."""
    cuda_ok()
    pytest.importorskip("onnx2torch")
    clf = infer_models.classifier(tmp_path / "clf.onnx")
    labels = tmp_path / "colours.txt"
    labels.write_text("red;green;blue\n")

    def engine(backend):
        e = pysm.InferEngine(None, onnx_file=clf, infer_dims="3;16;16", net_scale_factor=1 / 255, network_type=1,
                             process_mode=2, unique_id=2, labelfile_path=str(labels), classifier_threshold=0.0,
                             secondary_reinfer_interval=2, backend=backend, batch_size=8)
        e.start()
        return e, infer_models.count_runs(e)

    cpu, cpu_runs = engine("onnxruntime")
    gpu, gpu_runs = engine("torch")
    assert gpu.backend.device.startswith("cuda")
    boxes = {oid: [int(v) for v in RNG.integers(0, 60, 2)] + [20, 16] for oid in (1, 2, 3, None)}
    for k in range(8):
        img = RNG.integers(0, 256, (120, 160, 3), dtype=np.uint8)
        for oid, b in boxes.items():
            if RNG.uniform() < 0.3:  # grows by 30 %: classified again
                b[2], b[3] = int(b[2] * 1.3) + 1, int(b[3] * 1.3) + 1
        results = []
        for device in ("cpu", "cuda"):
            buf = infer_models.buffer_with_objects(img, k, list(boxes.items()), device=device)
            (cpu if device == "cpu" else gpu).process(buf)
            results.append([[(lab[0], lab[2]) for c in o["classifiers"] for lab in c["labels"]]
                            for o in _core.infer_buffer_metadata(buf)[0]["objects"]])
        got_cpu, got_gpu = results
        assert [[name for name, _ in o] for o in got_cpu] == [[name for name, _ in o] for o in got_gpu]
        for a, b in zip(got_cpu, got_gpu):
            assert [p for _, p in a] == pytest.approx([p for _, p in b], abs=1e-4)
        assert all(len(o) == 1 for o in got_cpu)
    assert cpu_runs == gpu_runs and sum(cpu_runs) < 4 * 8
