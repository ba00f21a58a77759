"""The native batching mux: metadata, pass-through, scaling (CPU twin vs an independent NumPy
bilinear reference; CUDA kernel vs the CPU twin on the GPU host) and padding."""

from __future__ import annotations

import numpy as np
import pytest

from pysm._native import _core


def _ref_resize(src: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """Independent bilinear reference (pixel centres aligned, edge clamped) for (H, W[, C])."""
    h, w = src.shape[:2]
    s = src.astype(np.float64)
    if s.ndim == 2:
        s = s[..., None]

    def pos(n_out: int, n_in: int):
        f = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        f = np.clip(f, 0, n_in - 1)
        i0 = np.floor(f).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, f - i0

    y0, y1, wy = pos(out_h, h)
    x0, x1, wx = pos(out_w, w)
    wx = wx[None, :, None]
    top = s[y0][:, x0] * (1 - wx) + s[y0][:, x1] * wx
    bot = s[y1][:, x0] * (1 - wx) + s[y1][:, x1] * wx
    out = top * (1 - wy[:, None, None]) + bot * wy[:, None, None]
    out = np.floor(out + 0.5).clip(0, 255).astype(np.uint8)
    return out[..., 0] if src.ndim == 2 else out


def _float32_twin_resize(src: np.ndarray, roi_w: int, roi_h: int) -> np.ndarray:
    """The scaler as csrc/mux computes it, step by step in float32 (every operation rounded, no
    fused multiply-add): the CPU twin and the CUDA kernel must both match this bit for bit."""
    f32 = np.float32
    s = src.astype(f32)
    if s.ndim == 2:
        s = s[..., None]

    def taps(n_out: int, n_in: int):
        scale = f32(n_in) / f32(n_out)
        f = (np.arange(n_out, dtype=f32) + f32(0.5)) * scale - f32(0.5)
        f = np.minimum(np.maximum(f, f32(0)), f32(n_in - 1))
        t = f.astype(np.int64)  # f >= 0: truncation is the floor
        return t, np.minimum(t + 1, n_in - 1), (f - t.astype(f32)).astype(f32)

    y0, y1, wy = taps(roi_h, s.shape[0])
    x0, x1, wx = taps(roi_w, s.shape[1])
    wx, wy = wx[None, :, None], wy[:, None, None]
    top = s[y0][:, x0] * (f32(1) - wx) + s[y0][:, x1] * wx
    bot = s[y1][:, x0] * (f32(1) - wx) + s[y1][:, x1] * wx
    out = np.clip(top * (f32(1) - wy) + bot * wy + f32(0.5), 0, 255).astype(np.uint8)
    return out[..., 0] if src.ndim == 2 else out


def _rand_nv12(rng, w: int, h: int) -> np.ndarray:
    return rng.integers(0, 256, (h * 3 // 2, w), dtype=np.uint8)


def test_odd_width_nv12_array_is_refused():
    # A (H*3/2, W) array of odd W has no room for the last chroma pair: accepting it would let
    # readers sample uninitialised pitch padding at the right edge.
    with pytest.raises(ValueError, match="odd width 97"):
        _core.frame_from_array(_rand_nv12(np.random.default_rng(3), 97, 62), "NV12", -1)


def test_metadata_and_passthrough_is_zero_copy():
    rng = np.random.default_rng(1)
    a = _rand_nv12(rng, 64, 48)
    b = _rand_nv12(rng, 32, 16)
    fa = _core.frame_from_array(a, "NV12", -1, 1000)
    fb = _core.frame_from_array(b, "NV12", -1, 2000)
    mux = _core.NativeMux(0, 0, False, 0, 4)
    buf = mux.batch([(fa, 7, 0, 11, 1000, 123), (fb, 9, 1, 12, 2000, 456)])
    assert buf.batch_size == 2
    info = _core.batch_frame_info(buf)
    assert info[0][:6] == (7, 0, 0, 11, 1000, 123)
    assert info[1][:6] == (9, 1, 1, 12, 2000, 456)
    # native sizes kept; pipeline size == source size
    assert info[0][6:10] == (64, 48, 64, 48) and info[1][6:10] == (32, 16, 32, 16)
    np.testing.assert_array_equal(_core.frame_to_array(buf, 0), a)
    np.testing.assert_array_equal(_core.frame_to_array(buf, 1), b)


@pytest.mark.parametrize("fmt", ["RGB", "GRAY8", "RGBA"])
def test_cpu_scaling_matches_reference(fmt):
    rng = np.random.default_rng(2)
    shapes = {"RGB": (37, 53, 3), "GRAY8": (37, 53), "RGBA": (37, 53, 4)}
    srcs = [rng.integers(0, 256, shapes[fmt], dtype=np.uint8) for _ in range(3)]
    mux = _core.NativeMux(80, 24, False, 0, 3)
    buf = mux.batch([(_core.frame_from_array(s, fmt), i, i, 0, -1, 0) for i, s in enumerate(srcs)])
    for i, s in enumerate(srcs):
        got = _core.frame_to_array(buf, i)
        ref = _ref_resize(s, 80, 24)
        assert got.shape == ref.shape
        assert np.abs(got.astype(int) - ref.astype(int)).max() <= 1


def test_nv12_scaling_planes_match_reference():
    rng = np.random.default_rng(3)
    src = _rand_nv12(rng, 60, 40)
    mux = _core.NativeMux(32, 20, False, 0, 1)
    out = _core.frame_to_array(mux.batch([(_core.frame_from_array(src, "NV12"), 0, 0, 0, -1, 0)]), 0)
    assert out.shape == (30, 32)
    y_ref = _ref_resize(src[:40], 32, 20)
    uv = src[40:].reshape(20, 30, 2)
    uv_ref = _ref_resize(uv, 16, 10).reshape(10, 32)
    assert np.abs(out[:20].astype(int) - y_ref).max() <= 1
    assert np.abs(out[20:].astype(int) - uv_ref).max() <= 1


@pytest.mark.parametrize("fmt", ["GRAY8", "RGB", "RGBA", "NV12"])
@pytest.mark.parametrize("src_size,out_size,pad", [((193, 71), (64, 48), False), ((50, 30), (177, 91), False),
                                                   ((190, 60), (96, 96), True), ((64, 128), (100, 50), True)])
def test_cpu_scaling_is_exact(fmt, src_size, out_size, pad):
    """Every sample, letterbox bands included, equals the float32 twin: the CPU scaler's loops
    (taps hoisted per column and row, SIMD clones) compute what the per-pixel kernel does."""
    rng = np.random.default_rng(hash((fmt, src_size, out_size, pad)) % 2**32)
    (sw, sh), (ow, oh) = src_size, out_size
    if fmt == "NV12":  # even sizes throughout
        sw, sh, ow, oh = sw & ~1, sh & ~1, ow & ~1, oh & ~1
        src = _rand_nv12(rng, sw, sh)
    else:
        src = rng.integers(0, 256, (sh, sw) + {"GRAY8": (), "RGB": (3,), "RGBA": (4,)}[fmt], dtype=np.uint8)
    mux = _core.NativeMux(ow, oh, pad, 0, 1)
    out = _core.frame_to_array(mux.batch([(_core.frame_from_array(src, fmt), 0, 0, 0, -1, 0)]), 0)
    # The ROI as fit_rect places it: the largest centred rectangle of the source's aspect.
    rw, rh = ow, oh
    if pad:
        rw, rh = (ow, sh * ow // sw) if sw * oh > sh * ow else (sw * oh // sh, oh)
    if fmt == "NV12":
        rw, rh = max(rw & ~1, 2), max(rh & ~1, 2)
    rx, ry = (ow - rw) // 2, (oh - rh) // 2
    if fmt == "NV12":
        rx, ry = rx & ~1, ry & ~1
        want = np.full((oh * 3 // 2, ow), 128, np.uint8)
        want[:oh] = 16
        want[ry:ry + rh, rx:rx + rw] = _float32_twin_resize(src[:sh], rw, rh)
        uv = src[sh:].reshape(sh // 2, sw // 2, 2)
        want[oh + ry // 2:oh + (ry + rh) // 2, rx:rx + rw] = _float32_twin_resize(uv, rw // 2, rh // 2).reshape(
            rh // 2, rw)
    else:
        fill = {"GRAY8": 16, "RGB": (0, 0, 0), "RGBA": (0, 0, 0, 255)}[fmt]  # GRAY8: limited-range black
        want = np.empty((oh, ow) + src.shape[2:], np.uint8)
        want[...] = fill
        want[ry:ry + rh, rx:rx + rw] = _float32_twin_resize(src, rw, rh)
    np.testing.assert_array_equal(out, want)


def test_padding_keeps_aspect_with_black_bands():
    rng = np.random.default_rng(4)
    src = rng.integers(1, 256, (20, 80, 3), dtype=np.uint8)  # 4:1 into 40x40 -> 40x10 band
    mux = _core.NativeMux(40, 40, True, 0, 1)
    out = _core.frame_to_array(mux.batch([(_core.frame_from_array(src, "RGB"), 0, 0, 0, -1, 0)]), 0)
    assert out.shape == (40, 40, 3)
    assert (out[:15] == 0).all() and (out[25:] == 0).all()
    ref = _ref_resize(src, 40, 10)
    assert np.abs(out[15:25].astype(int) - ref).max() <= 1
    # NV12: black is Y=16, UV=128
    nv = _rand_nv12(rng, 80, 20)
    out = _core.frame_to_array(mux.batch([(_core.frame_from_array(nv, "NV12"), 0, 0, 0, -1, 0)]), 0)
    assert (out[:14] == 16).all() and (out[26:40] == 16).all()
    assert (out[40:47] == 128).all()


def test_same_size_frames_forwarded_without_copy():
    rng = np.random.default_rng(5)
    src = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    mux = _core.NativeMux(32, 24, False, 0, 1)
    out = _core.frame_to_array(mux.batch([(_core.frame_from_array(src, "RGB"), 0, 0, 0, -1, 0)]), 0)
    np.testing.assert_array_equal(out, src)


def test_select_and_errors():
    rng = np.random.default_rng(6)
    frames = [_core.frame_from_array(_rand_nv12(rng, 16, 8), "NV12") for _ in range(3)]
    buf = _core.NativeMux(0, 0, False, 0, 3).batch([(f, i, i, i, i, 0) for i, f in enumerate(frames)])
    sub = _core.batch_select(buf, [2, 0])
    assert [i[0] for i in _core.batch_frame_info(sub)] == [2, 0]
    assert [i[2] for i in _core.batch_frame_info(sub)] == [0, 1]
    with pytest.raises(IndexError):
        _core.batch_select(buf, [5])
    with pytest.raises(ValueError):
        _core.NativeMux(32, 0, False, 0, 1)
    with pytest.raises(ValueError):
        _core.frame_from_array(np.zeros((5, 4), np.uint8), "NV12")


@pytest.mark.gpu
@pytest.mark.parametrize("fmt,padding", [("NV12", False), ("NV12", True), ("RGB", False), ("RGB", True), ("RGBA", True)])
def test_gpu_mux_kernel_matches_cpu_twin(fmt, padding):
    rng = np.random.default_rng(7)
    sizes = [(1920, 1080), (1280, 720), (642, 360), (97, 61) if fmt != "NV12" else (98, 62)]
    arrays = []
    for w, h in sizes:
        if fmt == "NV12":
            arrays.append(_rand_nv12(rng, w, h))
        else:
            arrays.append(rng.integers(0, 256, (h, w, 3 if fmt == "RGB" else 4), dtype=np.uint8))
    cpu_mux = _core.NativeMux(640, 384, padding, 0, len(arrays))
    gpu_mux = _core.NativeMux(640, 384, padding, 0, len(arrays))
    cpu = cpu_mux.batch([(_core.frame_from_array(a, fmt, -1), i, i, 0, -1, 0) for i, a in enumerate(arrays)])
    gpu = gpu_mux.batch([(_core.frame_from_array(a, fmt, 0), i, i, 0, -1, 0) for i, a in enumerate(arrays)])
    for i in range(len(arrays)):
        assert _core.buffer_frame_format(gpu, i)[3] is True  # stays on the device
        c = _core.frame_to_array(cpu, i).astype(int)
        g = _core.frame_to_array(gpu, i).astype(int)
        assert c.shape == g.shape
        assert np.abs(c - g).max() <= 1
        assert (c != g).mean() < 0.001
