"""Device tensors (run on a GPU host with PYSM_REQUIRE_GPU=1): zero-copy DLPack with torch and CuPy,
the stream handshake after a large asynchronous write, device pool reuse, and the doctor's NVDEC
report. Every device result is checked against host data (random, never zeros)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

import numpy as np
import pytest

import pysm
from pysm._native import _core
from pysm.tensor import ColorFormat, Tensor, as_tensor

pytestmark = pytest.mark.gpu

BIG = 256 << 20  # bytes: long enough that an async copy is still running when the consumer starts


@pytest.fixture
def torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA on this machine")
    return torch


@pytest.fixture
def cupy():
    return pytest.importorskip("cupy")


def rand_u8(*shape, seed=0):
    return np.random.default_rng(seed).integers(1, 255, size=shape, dtype=np.uint8)


def pinned_random(n: int, seed: int) -> tuple[Tensor, int]:
    """A pinned host tensor of n random bytes and their sum."""
    host = Tensor.empty((n,), "uint8")  # pinned when CUDA is present: the H2D copy is truly async
    a = np.asarray(host)
    a[:] = rand_u8(n, seed=seed)
    return host, int(a.sum(dtype=np.uint64))


def test_device_tensor_properties():
    g = Tensor.empty((4, 6, 3), "uint8", device="cuda:0", layout="HWC")
    assert g.device == "cuda:0" and g.device_type == "GPU"
    assert g.__dlpack_device__() == (2, 0)
    assert not hasattr(g, "__array_interface__")
    cai = g.__cuda_array_interface__
    assert cai["version"] == 3 and cai["shape"] == (4, 6, 3) and cai["typestr"] == "|u1"
    assert cai["data"] == (g.data_ptr, False)
    assert g.to_gpu(0) is g


def test_host_device_round_trip_matches_cpu_twin():
    vals = rand_u8(37, 53, 3, seed=1)
    g = as_tensor(vals, "HWC").to_gpu(0)
    assert g.device == "cuda:0" and g.layout == "HWC"
    np.testing.assert_array_equal(np.asarray(g.cpu()), vals)
    np.testing.assert_array_equal(np.asarray(g), vals)  # __array__: an explicit host copy
    with pytest.raises(ValueError, match="without a copy"):
        np.asarray(g, copy=False)
    c = g.clone()
    assert c.data_ptr != g.data_ptr and c.device == "cuda:0"
    np.testing.assert_array_equal(np.asarray(c.cpu()), vals)


def test_torch_device_zero_copy_both_ways(torch):
    t = Tensor.empty((64, 48, 3), "uint8", device="cuda:0")
    x = torch.from_dlpack(t)
    assert x.is_cuda and x.device.index == 0 and x.data_ptr() == t.data_ptr
    ref = torch.randint(1, 255, (64, 48, 3), dtype=torch.uint8, device="cuda")
    x.copy_(ref)
    torch.cuda.current_stream().synchronize()
    np.testing.assert_array_equal(np.asarray(t.cpu()), ref.cpu().numpy())
    y = torch.rand(10, 7, device="cuda")
    ty = as_tensor(y)
    assert ty.data_ptr == y.data_ptr() and ty.device == "cuda:0" and ty.__dlpack_device__() == (2, 0)
    np.testing.assert_array_equal(np.asarray(ty.cpu()), y.cpu().numpy())
    y.mul_(2)  # writes through torch are visible through pysm's view
    torch.cuda.current_stream().synchronize()
    np.testing.assert_array_equal(np.asarray(ty.cpu()), y.cpu().numpy())


def test_cupy_device_zero_copy_both_ways(cupy):
    t = Tensor.empty((32, 40), "float32", device="cuda:0")
    y = cupy.from_dlpack(t)
    assert y.data.ptr == t.data_ptr
    z = cupy.asarray(t)  # __cuda_array_interface__
    assert z.data.ptr == t.data_ptr
    ref = np.random.default_rng(2).random((32, 40), dtype=np.float32)
    y[...] = cupy.asarray(ref)
    cupy.cuda.get_current_stream().synchronize()
    np.testing.assert_array_equal(np.asarray(t.cpu()), ref)
    np.testing.assert_array_equal(cupy.asnumpy(z), ref)
    c = cupy.random.random((5, 9), dtype=cupy.float32)
    tc = as_tensor(c)
    assert tc.data_ptr == c.data.ptr and tc.device == "cuda:0"
    np.testing.assert_array_equal(np.asarray(tc.cpu()), cupy.asnumpy(c))


def test_stream_handshake_torch(torch):
    host, expected = pinned_random(BIG, seed=3)
    g = host.to_gpu(0)  # async H2D on pysm's stream; the tensor carries a ready event
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        x = torch.from_dlpack(g)  # torch passes `side`: it must wait for the copy, on the device
        total = x.sum(dtype=torch.int64)
    side.synchronize()
    assert int(total) == expected
    # Explicit stream argument and a capsule consumer.
    host2, expected2 = pinned_random(BIG, seed=4)
    g2 = host2.to_gpu(0)
    side2 = torch.cuda.Stream()
    with torch.cuda.stream(side2):
        x2 = torch.utils.dlpack.from_dlpack(g2.__dlpack__(stream=side2.cuda_stream, max_version=(1, 0)))
        total2 = x2.sum(dtype=torch.int64)
    side2.synchronize()
    assert int(total2) == expected2


def test_stream_handshake_legacy_default_stream(torch):
    host, expected = pinned_random(BIG, seed=5)
    g = host.to_gpu(0)
    x = torch.utils.dlpack.from_dlpack(g.__dlpack__(stream=None))  # None = legacy default stream
    total = x.sum(dtype=torch.int64)  # torch's default stream is the legacy one
    assert int(total) == expected


def test_stream_handshake_cupy(cupy):
    host, expected = pinned_random(BIG, seed=6)
    g = host.to_gpu(0)
    with cupy.cuda.Stream(non_blocking=True) as s:
        y = cupy.from_dlpack(g)
        total = y.sum(dtype=cupy.uint64)
    s.synchronize()
    assert int(total) == expected
    host2, expected2 = pinned_random(BIG, seed=7)
    g2 = host2.to_gpu(0)
    with cupy.cuda.Stream(non_blocking=True) as s2:
        z = cupy.asarray(g2)  # __cuda_array_interface__ names pysm's stream while the copy is pending
        total2 = z.sum(dtype=cupy.uint64)
    s2.synchronize()
    assert int(total2) == expected2


def test_import_orders_producer_work_before_pysm(torch):
    side = torch.cuda.Stream()
    n = BIG // 4
    with torch.cuda.stream(side):
        y = torch.empty(n, dtype=torch.int32, device="cuda")
        y.fill_(7)
        y.add_(torch.arange(n, dtype=torch.int32, device="cuda") % 13)
        t = as_tensor(y)  # torch makes pysm's stream wait for `side`
    host = np.asarray(t.cpu())  # copied on pysm's stream
    np.testing.assert_array_equal(host[:1000], 7 + np.arange(1000) % 13)
    assert int(host.sum(dtype=np.int64)) == int((7 + np.arange(n, dtype=np.int64) % 13).sum())


def test_pitched_device_surface_exports_with_strides(torch, cupy):
    w, h = 37, 21
    t = _core.surface_tensor(ColorFormat.RGB, w, h, "cuda:0", 256)
    assert t.strides == (256, 3, 1) and t.device == "cuda:0"
    x = torch.from_dlpack(t)
    assert x.stride() == (256, 3, 1) and x.data_ptr() == t.data_ptr
    ref = torch.randint(1, 255, (h, w, 3), dtype=torch.uint8, device="cuda")
    x.copy_(ref)
    torch.cuda.current_stream().synchronize()
    np.testing.assert_array_equal(np.asarray(t.cpu()), ref.cpu().numpy())  # 2-D pitched D2H copy
    c = t.clone()
    assert c.is_contiguous and c.strides == (w * 3, 3, 1)
    np.testing.assert_array_equal(np.asarray(c.cpu()), ref.cpu().numpy())
    y = cupy.from_dlpack(t)
    assert y.strides == (256, 3, 1)
    np.testing.assert_array_equal(cupy.asnumpy(y), ref.cpu().numpy())
    nv = _core.surface_tensor("NV12", 64, 32, "cuda:0", 256)
    assert torch.from_dlpack(nv).stride() == (256, 1)


def test_wrap_device_tensor(torch):
    x = torch.randint(0, 255, (24, 32, 4), dtype=torch.uint8, device="cuda")
    buf = as_tensor(x, "HWC").wrap(ColorFormat.RGBA)
    f = buf.extract(0)
    assert f.device == "cuda:0" and f.data_ptr == x.data_ptr()
    with pytest.raises(IndexError):
        buf.extract(1)


def test_dl_device_and_copy_on_device():
    vals = rand_u8(16, 9, seed=8)
    g = as_tensor(vals).to_gpu(0)
    h = np.from_dlpack(g, device="cpu")  # NumPy asks for dl_device=(kDLCPU, 0): a host copy
    np.testing.assert_array_equal(h, vals)
    with pytest.raises(BufferError):
        g.__dlpack__(max_version=(1, 0), dl_device=(1, 0), copy=False)
    cap = g.__dlpack__(max_version=(1, 0), copy=True)
    c = as_tensor(cap)
    assert c.data_ptr != g.data_ptr and c.device == "cuda:0"
    np.testing.assert_array_equal(np.asarray(c.cpu()), vals)
    with pytest.raises(ValueError, match="ambiguous"):
        g.__dlpack__(stream=0)


def test_device_pool_reuse_without_growth():
    n = 8 << 20
    host, _ = pinned_random(n, seed=9)
    warm = host.to_gpu(0)
    warm.cpu()
    del warm
    before = pysm.memory_stats()["cuda:0"]
    for _ in range(100):
        g = Tensor.empty((n,), "uint8", device="cuda:0")
        del g
    for _ in range(20):
        g = host.to_gpu(0)
        g.cpu()  # waits for the copy, so the block is idle when returned
        del g
    after = pysm.memory_stats()["cuda:0"]
    assert after["system_allocs"] == before["system_allocs"]
    assert after["reuses"] - before["reuses"] >= 120
    assert after["peak_bytes"] == before["peak_bytes"]


def test_device_pool_cache_limit_frees_what_does_not_fit():
    # Same logic as the host pool's (tests/test_memory.py), on device memory: blocks returned to a
    # full cache are freed (cudaFree) and counted.
    n = 4 << 20
    limit = pysm.memory_stats()["cuda:0"]["cache_limit_bytes"]
    total = pysm.cuda.device_info(0)["total_memory"]
    assert limit == max(8 << 30, total // 4)
    try:
        gc.collect()  # blocks of earlier tests must not come back to the cache meanwhile
        pysm.empty_cache()
        pysm.set_cache_limit(3 * n, "cuda:0")
        blocks = [Tensor.empty((n,), "uint8", device="cuda:0") for _ in range(5)]
        before = pysm.memory_stats()["cuda:0"]
        del blocks
        after = pysm.memory_stats()["cuda:0"]
        assert after["cached_bytes"] == 3 * n
        assert after["system_frees"] - before["system_frees"] == 2
    finally:
        pysm.set_cache_limit(limit, "cuda")


def test_doctor_lists_gpus_and_nvdec_caps():
    r = subprocess.run([sys.executable, "-m", "pysm", "doctor", "--json"], capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["gpus"]["available"] and len(info["gpus"]["devices"]) == pysm.cuda.device_count()
    assert info["gpus"]["devices"][0]["name"]
    assert info["driver"]["loaded"] and info["driver"]["cuda_version"]
    text = subprocess.run([sys.executable, "-m", "pysm", "doctor"], capture_output=True, text=True,
                          timeout=180).stdout
    assert "No GPU is available" not in text and "compute capability" in text
    if not hasattr(_core, "nvdec_capabilities"):
        pytest.skip("this build has no _core.nvdec_capabilities (NVDEC bindings not built)")
    assert info["nvdec"]["status"] == "ok", info["nvdec"]
    caps = info["nvdec"]["devices"]["0"]
    assert isinstance(caps, list) and caps
    assert {"codec", "bit_depth", "chroma", "supported", "max_width", "max_height", "num_engines"} <= set(caps[0])
    h264 = [c for c in caps if "264" in str(c["codec"]) and c["supported"]]
    assert h264 and h264[0]["max_width"] >= 1920 and h264[0]["num_engines"] >= 1
    assert "NVDEC decode capabilities" in text
