"""Batch preprocessing (CPU twin) against the NumPy float64 reference on random frames."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from pysm._native import _core
import infer_reference as ref

RNG = np.random.default_rng(1234)


def make_frame(fmt: str, w: int, h: int, pitch_pad: int = 0) -> np.ndarray:
    """A random frame; NV12/P016 as (H*3/2, W); rows padded to exercise the pitch."""
    if fmt in ("NV12", "P016"):
        dtype = np.uint16 if fmt == "P016" else np.uint8
        hi = 65535 if fmt == "P016" else 255
        full = RNG.integers(0, hi + 1, (h * 3 // 2, w + pitch_pad), dtype=dtype)
        return full[:, :w]
    ch = {"RGB": 3, "BGR": 3, "RGBA": 4, "BGRA": 4, "GRAY8": 0}[fmt]
    shape = (h, w + pitch_pad, ch) if ch else (h, w + pitch_pad)
    full = RNG.integers(0, 256, shape, dtype=np.uint8)
    return full[:, :w]


def run(frames, regions, params, dtype=np.float32, order=0):
    p = dict(params, order=order)
    C = 1 if p.get("color", 0) == 2 else 3
    shape = (len(regions), C, p["height"], p["width"]) if order == 0 else (len(regions), p["height"], p["width"], C)
    out = np.full(shape, -7.0, dtype=dtype)
    tr = _core.infer_preprocess_arrays(frames, regions, p, out)
    if order == 1:
        out = out.transpose(0, 3, 1, 2)
    return out.astype(np.float64), tr


def reference(frames, regions, params):
    res = []
    for r in regions:
        f = frames[r[0]]
        res.append(ref.preprocess(f[0], f[1], r[1:], params, *(f[2:] if len(f) > 2 else ())))
    return np.stack(res)


@pytest.mark.parametrize("fmt", ["NV12", "P016", "RGB", "BGR", "RGBA", "BGRA", "GRAY8"])
@pytest.mark.parametrize("color", [0, 1, 2])
def test_formats_and_colour_orders(fmt, color):
    frames = [(make_frame(fmt, 64, 48, pitch_pad=8), fmt), (make_frame(fmt, 38, 52), fmt)]
    params = dict(width=32, height=24, color=color, scale=1 / 255, offsets=(10.0, 20.0, 30.0))
    regions = [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0)]
    got, _ = run(frames, regions, params)
    want = reference(frames, regions, params)
    np.testing.assert_allclose(got, want, atol=2e-4 * 255 / 255, rtol=1e-4)


@pytest.mark.parametrize("aspect,symmetric", [(False, False), (True, False), (True, True)])
@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_letterbox_layout_precision(aspect, symmetric, order, dtype):
    frames = [(make_frame("NV12", 96, 40), "NV12"), (make_frame("RGB", 30, 70), "RGB"), (make_frame("RGBA", 50, 50), "RGBA")]
    params = dict(width=40, height=32, color=1, scale=0.5, offsets=(1.0, 2.0, 3.0), maintain_aspect_ratio=aspect,
                  symmetric_padding=symmetric, pad_value=114.0)
    regions = [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (2, 0, 0, 0, 0)]
    got, tr = run(frames, regions, params, dtype=dtype, order=order)
    want = reference(frames, regions, params)
    tol = 2e-3 if dtype == np.float32 else 0.07  # fp16 of values up to ~128
    np.testing.assert_allclose(got, want, atol=tol, rtol=1e-3 if dtype == np.float16 else 1e-5)
    for t, r in zip(tr, regions):
        arr, fmt = frames[r[0]]
        fh = arr.shape[0] * 2 // 3 if fmt == "NV12" else arr.shape[0]
        w = ref.plan(arr.shape[1], fh, r[1:], params)
        assert t["pad"] == w["pad"] and t["scaled"] == w["scaled"]
    if aspect:
        # The first frame is wide: rows below the scaled image hold the normalised pad value.
        sh = tr[0]["scaled"][1]
        py = tr[0]["pad"][1]
        assert sh < 32
        np.testing.assert_allclose(got[0, 0, py + sh:], 0.5 * (114 - 1), atol=tol)


@pytest.mark.parametrize("filt", [0, 1, 2])
def test_scaling_filters(filt):
    # Downscale (antialias active), upscale, and a crop, with NV12 and RGBA sources.
    frames = [(make_frame("NV12", 120, 90), "NV12"), (make_frame("RGBA", 20, 14), "RGBA")]
    regions = [(0, 0, 0, 0, 0), (1, 0, 0, 0, 0), (0, 30, 20, 50, 40)]
    params = dict(width=26, height=19, filter=filt, maintain_aspect_ratio=True, symmetric_padding=True,
                  pad_value=114.0)
    got, _ = run(frames, regions, params)
    want = reference(frames, regions, params)
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_fp16_matches_numpy_rounding():
    frames = [(make_frame("RGB", 37, 29), "RGB")]
    params = dict(width=23, height=17, scale=0.0123, offsets=(0.3, 0.7, 1.1))
    got32, _ = run(frames, [(0, 0, 0, 0, 0)], params, dtype=np.float32)
    got16, _ = run(frames, [(0, 0, 0, 0, 0)], params, dtype=np.float16)
    np.testing.assert_array_equal(got32.astype(np.float32).astype(np.float16).astype(np.float64), got16)


def test_secondary_crops_batched_across_frames():
    frames = [(make_frame("NV12", 80, 60), "NV12", 0, 1), (make_frame("BGR", 64, 64), "BGR")]
    regions = [(0, 10, 5, 20, 30), (1, 40, 40, 50, 50), (0, -5, -5, 12, 9), (1, 3, 60, 10, 10), (0, 70, 10, 0, 0)]
    params = dict(width=16, height=16, maintain_aspect_ratio=True, symmetric_padding=True, pad_value=(1, 2, 3))
    got, tr = run(frames, regions, params)
    want = reference(frames, regions, params)
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert tr[1]["crop"] == (40, 40, 24, 24)  # clipped to the frame
    assert tr[2]["crop"] == (0, 0, 7, 4)


def test_empty_region_is_all_padding():
    frames = [(make_frame("RGB", 20, 20), "RGB")]
    params = dict(width=8, height=8, pad_value=50.0, scale=2.0)
    got, tr = run(frames, [(0, 25, 25, 5, 5)], params)
    assert not tr[0]["valid"]
    np.testing.assert_array_equal(got, 100.0)


def test_option_combinations_on_random_sizes():
    for i, (fmt, color, aspect, sym) in enumerate(
            itertools.product(["NV12", "RGBA", "GRAY8"], [0, 2], [False, True], [False, True])):
        if sym and not aspect:
            continue
        w, h = (int(x) for x in RNG.integers(9, 90, 2))
        if fmt == "NV12":
            h += h % 2
            w += w % 2
        frames = [(make_frame(fmt, w, h, pitch_pad=int(RNG.integers(0, 9))), fmt)]
        params = dict(width=int(RNG.integers(5, 40)), height=int(RNG.integers(5, 40)), color=color,
                      maintain_aspect_ratio=aspect, symmetric_padding=sym, pad_value=float(RNG.integers(0, 255)),
                      scale=float(RNG.uniform(0.001, 2)), offsets=tuple(RNG.uniform(0, 128, 3)))
        got, _ = run(frames, [(0, 0, 0, 0, 0)], params)
        want = reference(frames, [(0, 0, 0, 0, 0)], params)
        np.testing.assert_allclose(got, want, atol=1e-3 * max(1.0, params["scale"]) * 2, err_msg=str(params))


def test_bad_arguments_raise():
    import pysm.errors as E

    frames = [(make_frame("RGB", 20, 20), "RGB")]
    with pytest.raises(E.InvalidArgument, match="expected"):
        _core.infer_preprocess_arrays(frames, [(0, 0, 0, 0, 0)], dict(width=8, height=8), np.zeros((1, 3, 9, 8), np.float32))
    with pytest.raises(E.InvalidArgument, match="float32 or float16"):
        _core.infer_preprocess_arrays(frames, [(0, 0, 0, 0, 0)], dict(width=8, height=8), np.zeros((1, 3, 8, 8), np.float64))
    with pytest.raises(E.InvalidArgument, match="odd width"):
        odd = np.zeros((30, 21), np.uint8)
        _core.infer_preprocess_arrays([(odd, "NV12")], [(0, 0, 0, 0, 0)], dict(width=8, height=8), np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(E.OutOfRangeError, match="frame 3"):
        _core.infer_preprocess_arrays(frames, [(3, 0, 0, 0, 0)], dict(width=8, height=8), np.zeros((1, 3, 8, 8), np.float32))


def _float32_twin(arr: np.ndarray, fmt: str, t: dict, params: dict, matrix: int = 1, rng: int = 0) -> np.ndarray:
    """Bilinear preprocessing as csrc/infer/preprocess_math.hpp computes it, operation by operation in
    float32 (each rounded, no fused multiply-add), for NV12 and packed RGB/BGR sources, NCHW."""
    f32 = np.float32
    W, H = params["width"], params["height"]
    scale, off = f32(params["scale"]), np.asarray(params["offsets"], f32)
    pad = np.asarray(params["pad_value"], f32)
    cx, cy, cw, ch = t["crop"]
    (px, py), (sw, sh), (sx, sy) = t["pad"], t["scaled"], (f32(t["scale"][0]), f32(t["scale"][1]))

    def taps(lo: int, s: np.float32, hi: int, n: int):
        f = (f32(lo) + (np.arange(n, dtype=f32) + f32(0.5)) * s) - f32(0.5)
        f = np.minimum(np.maximum(f, f32(lo)), f32(hi))
        i0 = f.astype(np.int64)
        return i0, np.minimum(i0 + 1, hi), (f - i0.astype(f32)).astype(f32)

    def rgb_at(ys, xs):
        if fmt == "NV12":
            h = arr.shape[0] * 2 // 3
            Y = arr[ys, xs].astype(f32)
            U = arr[h + ys // 2, (xs // 2) * 2].astype(f32)
            V = arr[h + ys // 2, (xs // 2) * 2 + 1].astype(f32)
            if rng == 1:
                yy, cb, cr = Y, U - f32(128), V - f32(128)
            else:
                yy = (Y - f32(16)) * (f32(255) / f32(219))
                cb = (U - f32(128)) * (f32(255) / f32(224))
                cr = (V - f32(128)) * (f32(255) / f32(224))
            kr_v, kg_u, kg_v, kb_u = {0: (1.402, 0.344136, 0.714136, 1.772), 2: (1.4746, 0.164553, 0.571353, 1.8814),
                                      1: (1.5748, 0.187324, 0.468124, 1.8556)}[matrix]
            r = np.clip(yy + f32(kr_v) * cr, 0, 255)
            g = np.clip((yy - f32(kg_u) * cb) - f32(kg_v) * cr, 0, 255)
            b = np.clip(yy + f32(kb_u) * cb, 0, 255)
            return np.stack([r, g, b]).astype(f32)
        p = arr[ys, xs].astype(f32)
        return np.stack([p[..., 2], p[..., 1], p[..., 0]] if fmt in ("BGR", "BGRA") else
                        [p[..., 0], p[..., 1], p[..., 2]])

    x0, x1, ax = taps(cx, sx, cx + cw - 1, sw)
    y0, y1, ay = taps(cy, sy, cy + ch - 1, sh)
    X0, Y0 = np.meshgrid(x0, y0)
    X1, Y1 = np.meshgrid(x1, y1)
    AX, AY = np.meshgrid(ax, ay)
    p00, p01, p10, p11 = rgb_at(Y0, X0), rgb_at(Y0, X1), rgb_at(Y1, X0), rgb_at(Y1, X1)
    top = p00 * (f32(1) - AX) + p01 * AX
    bot = p10 * (f32(1) - AX) + p11 * AX
    v = top * (f32(1) - AY) + bot * AY
    if params.get("color", 0) == 1:
        v = v[::-1]
    out = np.empty((3, H, W), f32)
    out[:] = (scale * (pad - off))[:, None, None]
    out[:, py:py + sh, px:px + sw] = scale * (v - off[:, None, None])
    return out


@pytest.mark.parametrize("fmt", ["NV12", "RGB", "BGRA"])
@pytest.mark.parametrize("net,aspect", [((61, 45), True), ((96, 80), False), ((40, 40), True)])
@pytest.mark.parametrize("color", [0, 1])
def test_bilinear_is_exact(fmt, net, aspect, color):
    """The CPU twin's bilinear loops (taps hoisted per column and row, format fixed per item)
    compute exactly the float32 operations of the shared per-pixel math, letterbox included."""
    frames = [(make_frame(fmt, 130, 74, pitch_pad=6), fmt, 1, 0), (make_frame(fmt, 36, 20), fmt, 0, 1)]
    params = dict(width=net[0], height=net[1], color=color, scale=0.0173, offsets=(10.5, 3.25, 7.0),
                  maintain_aspect_ratio=aspect, symmetric_padding=True, pad_value=(114.0, 7.0, 200.0), filter=1)
    regions = [(0, 0, 0, 0, 0), (0, 5, 3, 71, 33), (1, 0, 0, 0, 0)]
    out = np.full((3, 3, net[1], net[0]), -7.0, np.float32)
    tr = _core.infer_preprocess_arrays(frames, regions, params, out)
    for i, (r, t) in enumerate(zip(regions, tr)):
        arr, _, matrix, rng = frames[r[0]]
        np.testing.assert_array_equal(out[i], _float32_twin(arr, fmt, t, params, matrix, rng))
