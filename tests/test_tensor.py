"""The Python Tensor API (pyservicemaker §3.3) on host memory: properties, factories, copies,
array interfaces, ColorFormat and wrap()."""

from __future__ import annotations

import numpy as np
import pytest

import pysm
from pysm import errors
from pysm.tensor import ColorFormat, Tensor, as_tensor


def test_color_format_matches_native_values():
    expected = {"GRAY8": 1, "I420": 2, "NV12": 6, "P016": 7, "RGBA": 19, "BGRA": 20, "RGB": 27, "BGR": 28}
    assert {k: int(v) for k, v in ColorFormat.__members__.items() if k != "P010"} == expected
    assert ColorFormat.P010 is ColorFormat.P016
    assert pysm.ColorFormat is ColorFormat and pysm.Tensor is Tensor and pysm.as_tensor is as_tensor


def test_properties_of_a_host_tensor():
    a = np.random.default_rng(0).random((3, 4, 3), dtype=np.float32)
    t = as_tensor(a, "HWC")
    assert t.shape == (3, 4, 3) and t.ndim == 3
    assert t.strides == (12, 3, 1)  # elements, not bytes
    assert t.dtype == np.float32
    assert t.device_type == "CPU" and t.device == "cpu"
    assert t.layout == "HWC" and t.format == "HWC"
    assert t.size() == a.nbytes
    assert bool(t) and t.is_contiguous and not t.read_only
    r = repr(t)
    assert "shape=(3, 4, 3)" in r and "float32" in r and "cpu" in r and "HWC" in r


def test_empty_tensor_is_falsy():
    t = Tensor()
    assert not t
    assert t.device_type == "NONE" and repr(t) == "Tensor()"
    with pytest.raises(ValueError):
        t.clone()


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
                                   "float16", "float32", "float64", "bool"])
def test_empty_factory_dtypes(dtype):
    t = Tensor.empty((2, 3), dtype)
    assert t.dtype == np.dtype(dtype) and t.shape == (2, 3) and t.device == "cpu"
    a = np.asarray(t)
    assert a.dtype == np.dtype(dtype) and a.ctypes.data == t.data_ptr
    vals = (np.random.default_rng(1).random((2, 3)) * 50).astype(dtype)
    a[...] = vals
    np.testing.assert_array_equal(np.from_dlpack(t.clone()), vals)


def test_empty_factory_bad_arguments():
    with pytest.raises(ValueError, match="unsupported dtype complex64"):
        Tensor.empty((2,), "complex64")
    with pytest.raises(ValueError, match="unknown dtype"):
        Tensor.empty((2,), "nonsense")
    with pytest.raises(ValueError, match="unknown device"):
        Tensor.empty((2,), "uint8", device="tpu")
    with pytest.raises(ValueError, match="negative"):
        Tensor.empty((-1, 2), "uint8")


def test_bfloat16():
    t = Tensor.empty((4,), "bfloat16")
    assert "bfloat16" in repr(t)
    assert str(t.dtype) == "bfloat16"
    with pytest.raises(ValueError, match="DLPack"):
        t.__array_interface__


def test_cpu_returns_self_and_clone_copies():
    t = Tensor.empty((8,), "int32")
    np.asarray(t)[...] = np.arange(8)
    assert t.cpu() is t
    c = t.clone()
    assert c.data_ptr != t.data_ptr
    np.asarray(t)[...] = 0
    np.testing.assert_array_equal(np.asarray(c), np.arange(8))


def test_to_gpu_without_gpu_raises_cuda_error():
    if pysm.cuda.is_available():
        pytest.skip("a GPU is present")
    t = Tensor.empty((4,), "uint8")
    with pytest.raises(errors.CudaError):
        t.to_gpu(0)
    with pytest.raises(errors.CudaError):
        Tensor.empty((4,), "uint8", device="cuda")


def test_array_interface_host_only():
    t = Tensor.empty((2, 5), "uint16")
    ai = t.__array_interface__
    assert ai["version"] == 3 and ai["shape"] == (2, 5) and ai["typestr"] == "<u2"
    assert ai["data"] == (t.data_ptr, False) and ai["strides"] is None
    assert not hasattr(t, "__cuda_array_interface__")
    a = np.asarray(t)
    assert a.base is t  # the view keeps the tensor alive


def test_array_protocol_on_host():
    t = Tensor.empty((3, 2), "int16")
    np.asarray(t)[...] = [[1, 2], [3, 4], [5, 6]]
    same = t.__array__()
    assert same.ctypes.data == t.data_ptr
    copied = np.array(t, copy=True)
    assert copied.ctypes.data != t.data_ptr
    as_float = t.__array__(dtype=np.float32)
    assert as_float.dtype == np.float32 and as_float[2, 1] == 6.0
    with pytest.raises(ValueError, match="copy=False"):
        t.__array__(dtype=np.float32, copy=False)


def test_array_interface_of_pitched_tensor_has_byte_strides():
    from pysm._native import _core

    t = _core.surface_tensor("P016", 6, 4, "cpu", 32)
    ai = t.__array_interface__
    assert ai["typestr"] == "<u2" and ai["strides"] == (32, 2) and ai["shape"] == (6, 6)


def test_wrap_to_buffer_and_extract():
    a = np.random.default_rng(2).integers(0, 255, (6, 8, 4), dtype=np.uint8)
    t = as_tensor(a, "HWC")
    buf = t.wrap(ColorFormat.RGBA)
    assert type(buf).__name__ == "Buffer" and buf.batch_size == 1
    f = buf.extract(0)
    assert f.shape == (6, 8, 4) and f.data_ptr == a.ctypes.data and f.layout == "HWC"
    gray = as_tensor(a[..., 0].copy(), "HW").wrap(ColorFormat.GRAY8).extract(0)
    assert gray.shape == (6, 8)
    nv12 = as_tensor(np.zeros((12, 8), np.uint8), "NV12").wrap(ColorFormat.NV12).extract(0)
    assert nv12.shape == (12, 8) and nv12.layout == "NV12"


def test_pyservicemaker_provider_idiom():
    # as_tensor(torch_tensor, "HWC").wrap(ColorFormat.RGB), as in the pyservicemaker docs.
    torch = pytest.importorskip("torch")
    x = torch.randint(0, 255, (240, 320, 3), dtype=torch.uint8)
    buf = as_tensor(x, "HWC").wrap(ColorFormat.RGB)
    frame = buf.extract(0)
    assert frame.data_ptr == x.data_ptr()
    assert torch.equal(torch.utils.dlpack.from_dlpack(frame.clone()), x)
