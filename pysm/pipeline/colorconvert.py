"""Pixel-format conversion and scaling of frames for nvvideoconvert/capsfilter.

YUV -> RGB uses the decoder's native converter (``Frame.to``: CUDA kernel or CPU twin, with the
frame's matrix and range). The other directions (RGB -> NV12, RGB <-> BGR, GRAY8) are rare in
pipelines and use NumPy on a host copy (BT.709 limited range), then go back to the frame's device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pysm._native import _core

# Limited-range YCbCr -> RGB (BT.709, as NVDEC's HD output) coefficients.
_KR, _KB = 0.2126, 0.0722
_KG = 1.0 - _KR - _KB


def _nv12_to_rgb(a: np.ndarray) -> np.ndarray:
    h = a.shape[0] * 2 // 3
    w = a.shape[1]
    y = a[:h].astype(np.float32)
    uv = a[h:].reshape(h // 2 if h % 2 == 0 else (h + 1) // 2, -1)
    u = uv[:, 0::2].astype(np.float32)
    v = uv[:, 1::2].astype(np.float32)
    u = np.repeat(np.repeat(u, 2, axis=0), 2, axis=1)[:h, :w] - 128.0
    v = np.repeat(np.repeat(v, 2, axis=0), 2, axis=1)[:h, :w] - 128.0
    yy = (y - 16.0) * (255.0 / 219.0)
    cb = u * (255.0 / 224.0)
    cr = v * (255.0 / 224.0)
    r = yy + 2.0 * (1.0 - _KR) * cr
    b = yy + 2.0 * (1.0 - _KB) * cb
    g = yy - (2.0 * _KR * (1.0 - _KR) / _KG) * cr - (2.0 * _KB * (1.0 - _KB) / _KG) * cb
    return np.clip(np.stack([r, g, b], axis=-1) + 0.5, 0, 255).astype(np.uint8)


def _rgb_to_nv12(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = _KR * r + _KG * g + _KB * b
    cb = (b - y) / (2.0 * (1.0 - _KB))
    cr = (r - y) / (2.0 * (1.0 - _KR))
    Y = np.clip(y * (219.0 / 255.0) + 16.0 + 0.5, 0, 255).astype(np.uint8)
    hp, wp = h + (h & 1), w + (w & 1)
    cbp = np.pad(cb, ((0, hp - h), (0, wp - w)), mode="edge")
    crp = np.pad(cr, ((0, hp - h), (0, wp - w)), mode="edge")
    cbs = cbp.reshape(hp // 2, 2, wp // 2, 2).mean(axis=(1, 3))
    crs = crp.reshape(hp // 2, 2, wp // 2, 2).mean(axis=(1, 3))
    uv = np.empty((hp // 2, wp), np.uint8)
    uv[:, 0::2] = np.clip(cbs * (224.0 / 255.0) + 128.0 + 0.5, 0, 255).astype(np.uint8)
    uv[:, 1::2] = np.clip(crs * (224.0 / 255.0) + 128.0 + 0.5, 0, 255).astype(np.uint8)
    return np.concatenate([Y, uv[:, :w]], axis=0)


def _to_rgb(a: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "RGB":
        return a
    if fmt == "BGR":
        return a[..., ::-1]
    if fmt == "RGBA":
        return a[..., :3]
    if fmt == "BGRA":
        return a[..., 2::-1]
    if fmt == "GRAY8":
        return np.repeat(a[..., None], 3, axis=-1)
    if fmt == "NV12":
        return _nv12_to_rgb(a)
    raise _errors().UnsupportedError(f"nvvideoconvert: cannot convert from {fmt}")


def _from_rgb(rgb: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "RGB":
        return np.ascontiguousarray(rgb)
    if fmt == "BGR":
        return np.ascontiguousarray(rgb[..., ::-1])
    if fmt in ("RGBA", "BGRA"):
        out = np.empty(rgb.shape[:2] + (4,), np.uint8)
        out[..., :3] = rgb if fmt == "RGBA" else rgb[..., ::-1]
        out[..., 3] = 255
        return out
    if fmt == "GRAY8":
        f = rgb.astype(np.float32)
        return np.clip(_KR * f[..., 0] + _KG * f[..., 1] + _KB * f[..., 2] + 0.5, 0, 255).astype(np.uint8)
    if fmt == "NV12":
        return _rgb_to_nv12(rgb)
    raise _errors().UnsupportedError(f"nvvideoconvert: cannot convert to {fmt}")


def _errors():
    from pysm import errors

    return errors


def convert_payload(payload: Any, index: int, fmt: str) -> Any:
    """Frame ``index`` of ``payload`` (Frame or Buffer) converted to ``fmt``, as a new Frame on
    the same device (or the payload's own frame when it already has that format)."""
    fmt = fmt.upper()
    if isinstance(payload, _core.Buffer):
        w, h, src_fmt, is_cuda = _core.buffer_frame_format(payload, index)
    else:
        w, h, src_fmt, is_cuda, dev, _pts = _core.payload_info(payload)
    if src_fmt in ("NV12", "P016") and fmt in ("RGB", "BGR", "RGBA", "BGRA"):
        # The decoder's converter: a CUDA kernel for device frames, its CPU twin for host frames,
        # with the frame's own colour matrix and range.
        frame = _core.buffer_frame(payload, index) if isinstance(payload, _core.Buffer) else payload
        if not isinstance(frame, _core.Frame):
            frame = _core.buffer_frame(payload, 0)
        return frame.to(fmt)
    arr = _core.frame_to_array(payload, index)
    out = _from_rgb(_to_rgb(arr, src_fmt), fmt)
    device = -1
    if is_cuda:
        device = _core.payload_info(payload)[4] if not isinstance(payload, _core.Buffer) else 0
    pts = -1 if isinstance(payload, _core.Buffer) else _core.payload_info(payload)[5]
    return _core.frame_from_array(out, fmt, device, pts)
