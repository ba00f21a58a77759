"""DLPack 1.0 exchange on the CPU: zero-copy both ways with NumPy and torch, versioned and legacy
capsules, consume-once, lifetimes, pitched strides, and bad input that must raise, not crash."""

from __future__ import annotations

import ctypes
import gc
import weakref

import numpy as np
import pytest

import pysm
from pysm import errors
from pysm._native import _core
from pysm.tensor import ColorFormat, Tensor, as_tensor

torch = pytest.importorskip("torch")

_name = ctypes.pythonapi.PyCapsule_GetName
_name.restype = ctypes.c_char_p
_name.argtypes = [ctypes.py_object]


def capsule_name(cap) -> str:
    return _name(cap).decode()


def rand_u8(*shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 255, size=shape, dtype=np.uint8)


# --- zero-copy round trips ---------------------------------------------------------------------

def test_numpy_to_pysm_is_zero_copy_and_writes_are_shared():
    a = rand_u8(6, 8, 3)
    t = as_tensor(a, "HWC")
    assert t.data_ptr == a.ctypes.data
    assert t.shape == (6, 8, 3) and t.strides == (24, 3, 1) and t.dtype == np.uint8
    assert t.layout == "HWC" and t.device == "cpu" and t.device_type == "CPU"
    back = np.from_dlpack(t)
    assert back.ctypes.data == a.ctypes.data
    a[1, 2, 0] = 0
    assert back[1, 2, 0] == 0
    back[5, 7, 2] = 200
    assert a[5, 7, 2] == 200


def test_pysm_to_numpy_is_zero_copy_and_writes_are_shared():
    t = Tensor.empty((5, 7), "float32")
    a = np.asarray(t)  # __array_interface__
    b = np.from_dlpack(t)  # DLPack
    assert a.ctypes.data == b.ctypes.data == t.data_ptr
    vals = np.random.default_rng(1).random((5, 7), dtype=np.float32)
    a[...] = vals
    np.testing.assert_array_equal(b, vals)
    b[0, 0] = -3.0
    assert a[0, 0] == -3.0


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32, torch.int64, torch.float16,
                                   torch.float32, torch.float64, torch.bfloat16, torch.bool])
def test_torch_round_trip_zero_copy(dtype):
    x = (torch.rand(4, 5) * 100).to(dtype)
    t = as_tensor(x)
    assert t.data_ptr == x.data_ptr()
    y = torch.from_dlpack(t)
    assert y.data_ptr() == x.data_ptr() and y.dtype == dtype
    assert torch.equal(x, y)
    y[0, 0] = 1
    assert x[0, 0] == 1
    x[3, 4] = 0
    assert y[3, 4] == 0


def test_torch_consumes_pysm_memory_and_pysm_consumes_torch_memory():
    t = Tensor.empty((3, 4), "int32")
    x = torch.from_dlpack(t)
    x.copy_(torch.arange(12, dtype=torch.int32).reshape(3, 4))
    np.testing.assert_array_equal(np.asarray(t), np.arange(12).reshape(3, 4))
    u = torch.randint(0, 1000, (2, 3), dtype=torch.int64)
    tu = as_tensor(u)
    np.testing.assert_array_equal(np.from_dlpack(tu), u.numpy())


def test_clone_is_independent():
    a = rand_u8(4, 4, 3, seed=2)
    t = as_tensor(a, "HWC")
    c = t.clone()
    assert c.data_ptr != t.data_ptr
    assert c.layout == "HWC" and c.shape == t.shape
    view = np.from_dlpack(c)
    np.testing.assert_array_equal(view, a)
    a[...] = 0
    assert view.min() > 0  # rand_u8 draws from [1, 255)
    torch.from_dlpack(c).fill_(9)
    assert a.max() == 0


# --- capsules ----------------------------------------------------------------------------------

def test_legacy_and_versioned_capsules():
    a = rand_u8(3, 3, seed=3)
    t = as_tensor(a)
    legacy = t.__dlpack__()
    versioned = t.__dlpack__(max_version=(1, 0))
    newer = t.__dlpack__(max_version=(1, 3))
    assert capsule_name(legacy) == "dltensor"
    assert capsule_name(versioned) == "dltensor_versioned"
    assert capsule_name(newer) == "dltensor_versioned"
    assert capsule_name(t.__dlpack__(max_version=(0, 8))) == "dltensor"
    for cap in (legacy, versioned):
        x = torch.utils.dlpack.from_dlpack(cap)
        assert x.data_ptr() == a.ctypes.data
        assert capsule_name(cap).startswith("used_")
    # pysm consumes both kinds too
    for cap in (t.__dlpack__(), t.__dlpack__(max_version=(1, 0))):
        u = as_tensor(cap)
        assert u.data_ptr == a.ctypes.data
        assert capsule_name(cap).startswith("used_")


def test_consumed_capsule_reused_raises():
    t = as_tensor(rand_u8(2, 2))
    for cap in (t.__dlpack__(), t.__dlpack__(max_version=(1, 0))):
        as_tensor(cap)
        with pytest.raises(errors.InvalidArgument, match="already consumed"):
            as_tensor(cap)
        with pytest.raises(Exception):
            torch.utils.dlpack.from_dlpack(cap)
    cap = t.__dlpack__(max_version=(1, 0))
    torch.utils.dlpack.from_dlpack(cap)
    with pytest.raises(ValueError, match="only once"):
        as_tensor(cap)


def test_unconsumed_capsule_frees_its_tensor():
    a = rand_u8(16)
    wr = weakref.ref(a)
    t = as_tensor(a)
    del a
    gc.collect()
    assert wr() is not None  # t keeps the array alive
    caps = [t.__dlpack__(), t.__dlpack__(max_version=(1, 0))]
    del t
    gc.collect()
    assert wr() is not None  # the unconsumed capsules do
    del caps
    gc.collect()
    assert wr() is None  # their destructors called the deleters


def test_dlpack_device_reports_host_memory():
    t = Tensor.empty((2,), "uint8")
    assert t.__dlpack_device__() == (1, 0)
    assert as_tensor(torch.zeros(2)).__dlpack_device__() == (1, 0)


def test_copy_and_dl_device_arguments():
    a = rand_u8(4, 5, seed=4)
    t = as_tensor(a)
    same = np.from_dlpack(t, copy=False)
    assert same.ctypes.data == a.ctypes.data
    copied = np.from_dlpack(t, copy=True)
    assert copied.ctypes.data != a.ctypes.data
    np.testing.assert_array_equal(copied, a)
    cap = t.__dlpack__(max_version=(1, 0), dl_device=(1, 0), copy=False)
    assert as_tensor(cap).data_ptr == a.ctypes.data
    with pytest.raises(BufferError, match="copy=False"):
        t.__dlpack__(max_version=(1, 0), dl_device=(2, 0), copy=False)
    with pytest.raises(BufferError):
        t.__dlpack__(max_version=(1, 0), dl_device=(10, 0))


def test_read_only_producer():
    a = rand_u8(3, 4, seed=5)
    a.flags.writeable = False
    t = as_tensor(a)
    assert t.read_only and t.data_ptr == a.ctypes.data
    back = np.from_dlpack(t)
    assert not back.flags.writeable and back.ctypes.data == a.ctypes.data
    assert not np.asarray(t).flags.writeable
    with pytest.raises(BufferError, match="read-only"):
        t.__dlpack__()  # a legacy capsule cannot carry the flag
    # Wrapping into a Buffer copies, since pipeline stages may draw on frames.
    rgb = np.ascontiguousarray(np.broadcast_to(a[..., None], (3, 4, 3)))
    rgb.flags.writeable = False
    frame = as_tensor(rgb, "HWC").wrap(ColorFormat.RGB).extract(0)
    assert frame.data_ptr != rgb.ctypes.data
    np.testing.assert_array_equal(np.from_dlpack(frame), rgb)


# --- lifetimes ---------------------------------------------------------------------------------

def test_pysm_view_outlives_numpy_owner():
    a = rand_u8(64, 64, 3, seed=6)
    expect = a.copy()
    t = as_tensor(a, "HWC")
    del a
    gc.collect()
    np.testing.assert_array_equal(np.from_dlpack(t), expect)
    np.testing.assert_array_equal(np.asarray(t), expect)


def test_numpy_view_outlives_pysm_owner():
    t = Tensor.empty((256, 256), "uint8")
    vals = rand_u8(256, 256, seed=7)
    np.asarray(t)[...] = vals
    view_dl = np.from_dlpack(t)
    view_ai = np.asarray(t)
    del t
    gc.collect()
    # The block must not have gone back to the pool: a new tensor of that size gets other memory.
    other = Tensor.empty((256, 256), "uint8")
    np.asarray(other)[...] = 0
    assert other.data_ptr != view_dl.ctypes.data
    np.testing.assert_array_equal(view_dl, vals)
    np.testing.assert_array_equal(view_ai, vals)


def test_torch_view_outlives_pysm_owner():
    t = Tensor.empty((32, 3), "float32")
    ref = np.random.default_rng(8).random((32, 3), dtype=np.float32)
    np.asarray(t)[...] = ref
    x = torch.from_dlpack(t)
    del t
    gc.collect()
    np.testing.assert_array_equal(x.numpy(), ref)


def test_buffer_extract_outlives_buffer():
    a = rand_u8(6, 10, 3, seed=9)
    buf = as_tensor(a, "HWC").wrap(ColorFormat.RGB)
    frame = buf.extract(0)
    del buf, a
    gc.collect()
    assert frame.shape == (6, 10, 3)
    np.testing.assert_array_equal(np.from_dlpack(frame), rand_u8(6, 10, 3, seed=9))


# --- pitched strides ---------------------------------------------------------------------------

def test_pitched_surface_exports_with_strides():
    h, w = 6, 10
    t = _core.surface_tensor(ColorFormat.RGB, w, h, "cpu", 64)
    assert t.shape == (h, w, 3) and t.strides == (64, 3, 1) and t.layout == "HWC"
    assert not t.is_contiguous and t.size() == h * w * 3
    vals = rand_u8(h, w, 3, seed=10)
    np.asarray(t)[...] = vals
    n = np.from_dlpack(t)
    assert n.strides == (64, 3, 1) and n.ctypes.data == t.data_ptr
    np.testing.assert_array_equal(n, vals)
    x = torch.from_dlpack(t)
    assert x.stride() == (64, 3, 1) and x.data_ptr() == t.data_ptr
    assert torch.equal(x, torch.from_numpy(vals))
    c = t.clone()
    assert c.strides == (30, 3, 1) and c.is_contiguous
    np.testing.assert_array_equal(np.from_dlpack(c), vals)


def test_pitched_nv12_and_gray_surfaces():
    nv = _core.surface_tensor("NV12", 20, 8, "cpu", 32)
    assert nv.shape == (12, 20) and nv.strides == (32, 1) and nv.layout == "NV12"
    assert np.from_dlpack(nv).strides == (32, 1)
    p16 = _core.surface_tensor("P016", 20, 8, "cpu", 64)
    assert p16.dtype == np.uint16 and p16.strides == (32, 1)
    assert torch.from_dlpack(p16).stride() == (32, 1)
    g = _core.surface_tensor(ColorFormat.GRAY8, 5, 3, "cpu", 16)
    assert np.from_dlpack(g).strides == (16, 1)


def test_pitched_numpy_view_wraps_into_buffer():
    h, w, pitch = 5, 7, 32
    backing = rand_u8(h, pitch, seed=11)
    view = backing[:, : w * 3].reshape(h, w, 3)  # rows padded to 32 bytes
    assert view.strides == (pitch, 3, 1)
    buf = as_tensor(view, "HWC").wrap(ColorFormat.RGB)
    assert buf.batch_size == 1
    frame = buf.extract(0)
    assert frame.strides == (pitch, 3, 1) and frame.data_ptr == backing.ctypes.data
    np.testing.assert_array_equal(np.from_dlpack(frame), view)
    assert torch.equal(torch.from_dlpack(frame), torch.from_numpy(np.ascontiguousarray(view)))


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("obj,layout,expected", [
    (np.zeros((4, 4), np.uint8), "HWC", r"3-D tensor \(H, W, C\)"),
    (np.zeros((4, 4, 5), np.uint8), "HWC", r"C in \{1, 3, 4\}"),
    (np.zeros((5, 4, 4), np.uint8), "CHW", r"\(C, H, W\) with C in"),
    (np.zeros((1, 6, 4, 3), np.uint8), "NCHW", r"\(N, C, H, W\)"),
    (np.zeros((1, 3, 4, 5), np.uint8), "NHWC", r"\(N, H, W, C\)"),
    (np.zeros((4, 4, 3), np.uint8), "HW", r"2-D tensor \(H, W\)"),
    (np.zeros((6, 4), np.float32), "NV12", r"uint8 tensor \(H\*3/2, W\)"),
    (np.zeros((5, 4), np.uint8), "NV12", r"H\*3/2"),
    (np.zeros((6, 4), np.uint8), "P016", "uint16"),
    (np.zeros((4, 4, 3), bool), "HWC", "integer or floating-point"),
    (np.zeros((4, 4, 3), np.uint8), "XYZ", "unknown layout 'XYZ'; expected one of"),
    (np.zeros((4,), np.complex64), "", r"unsupported dtype complex64 .*expected int8"),
    (np.zeros((4, 4), np.uint8)[::-1], "", "negative stride"),
    (np.broadcast_to(np.zeros(3, np.float32), (4, 3)), "", "zero stride"),
    ([1, 2, 3], "", "expects a DLPack producer"),
    (b"abc", "", "expects a DLPack producer"),
    (None, "", "expects a DLPack producer"),
])
def test_as_tensor_bad_input_raises_value_error(obj, layout, expected):
    with pytest.raises(ValueError, match=expected) as ei:
        as_tensor(obj, layout)
    assert isinstance(ei.value, errors.InvalidArgument)


def test_as_tensor_accepts_matching_layouts():
    ok = [
        (np.zeros((4, 6, 3), np.uint8), "HWC"), (np.zeros((4, 6, 1), np.float32), "hwc"),
        (np.zeros((3, 4, 6), np.float16), "CHW"), (np.zeros((2, 3, 4, 6), np.float32), "NCHW"),
        (np.zeros((2, 4, 6, 4), np.uint8), "NHWC"), (np.zeros((4, 6), np.int16), "HW"),
        (np.zeros((6, 8), np.uint8), "NV12"), (np.zeros((6, 8), np.uint8), "I420"),
        (np.zeros((6, 8), np.uint16), "P016"), (np.zeros((2, 2), bool), ""),
        (np.zeros((), np.float64), ""), (np.zeros((0, 3), np.float32), ""),
    ]
    for arr, layout in ok:
        t = as_tensor(arr, layout)
        assert t.shape == arr.shape and t.layout == layout.upper()
        assert np.from_dlpack(t).shape == arr.shape


def test_as_tensor_unsupported_strides_from_producer():
    # Strides that are not a multiple of the item size: NumPy refuses the export; pysm says why.
    odd = np.ndarray(shape=(3,), dtype=np.int16, buffer=bytearray(12), strides=(3,))
    with pytest.raises(ValueError, match="multiple of itemsize"):
        as_tensor(odd)


def test_as_tensor_producer_refusal_becomes_value_error():
    x = torch.ones(3, requires_grad=True)
    with pytest.raises(ValueError, match="refused DLPack export"):
        as_tensor(x)
    assert as_tensor(x.detach()).data_ptr == x.data_ptr()


class _FakeProducer:
    def __init__(self, device):
        self._device = device

    def __dlpack_device__(self):
        return self._device

    def __dlpack__(self, **kwargs):
        return np.zeros(3).__dlpack__(**kwargs)


def test_as_tensor_wrong_device_names_expected():
    with pytest.raises(ValueError, match=r"host memory \(kDLCPU=1\) or CUDA memory"):
        as_tensor(_FakeProducer((10, 0)))  # ROCm
    with pytest.raises(ValueError, match=r"\(device_type, device_id\)"):
        as_tensor(_FakeProducer("cpu"))


def test_as_tensor_of_tensor_retags_without_copy():
    t = Tensor.empty((3, 4, 3), "uint8", layout="HWC")
    u = as_tensor(t, "CHW")
    assert u.data_ptr == t.data_ptr and u.layout == "CHW" and t.layout == "HWC"


def test_out_of_range_extract_raises_index_error():
    buf = as_tensor(rand_u8(4, 4, 3), "HWC").wrap(ColorFormat.RGB)
    for i in (1, -1, 100):
        with pytest.raises(IndexError):
            buf.extract(i)


def test_wrap_mismatched_format_raises():
    t = as_tensor(rand_u8(4, 4, 3), "HWC")
    with pytest.raises(ValueError, match="RGBA"):
        t.wrap(ColorFormat.RGBA)
    with pytest.raises(ValueError, match="unknown colour format"):
        t.wrap("XYZ")
    with pytest.raises(ValueError, match="unknown colour format"):
        t.wrap(99)
    assert t.wrap("rgb").batch_size == 1
    assert t.wrap(ColorFormat.BGR).extract(0).data_ptr == t.data_ptr


def test_empty_tensor_export_raises():
    with pytest.raises(ValueError, match="empty"):
        Tensor().__dlpack__()
    with pytest.raises(TypeError):
        Tensor.empty((2,)).__dlpack__(stream="x")
