"""Colour conversion of decoded frames: NV12/P016 -> RGB, BGR, RGBA, BGRA.

``convert(frame, "RGB")`` (or ``frame.to("RGB")``) runs on the frame's device: a CUDA kernel for
device frames, its CPU twin for host frames. The matrix (BT.601/BT.709/BT.2020) and range
(limited/full) come from the stream's colour description unless given. A Tensor holding an NV12
``(H*3/2, W)`` uint8 (or P016 uint16) plane pair converts to a Tensor ``(H, W, C)``.
"""

from __future__ import annotations

from typing import Any

from pysm import errors
from pysm._native import _core

__all__ = ["convert"]


def convert(source: Any, format: str = "RGB", *, matrix: str | None = None, range: str | None = None) -> Any:
    """Convert a Frame (returns a Frame) or an NV12/P016 Tensor (returns a Tensor).

    Args:
        format: ``"RGB"``, ``"BGR"``, ``"RGBA"`` or ``"BGRA"``.
        matrix: ``"bt601"``, ``"bt709"`` or ``"bt2020"``; default: the frame's own (Tensor: bt709).
        range: ``"limited"`` or ``"full"``; default: the frame's own (Tensor: limited).
    """
    if isinstance(source, _core.Frame):
        return source.to(format, matrix, range)
    if isinstance(source, _core.Tensor):
        src_fmt = "P016" if source.layout in ("P016", "P010") else "NV12"
        frame = _core.frame_from_tensor(source, src_fmt, matrix or "bt709", range or "limited")
        return frame.to(format).tensor
    raise errors.InvalidArgument(f"convert() takes a pysm Frame or Tensor, not {type(source).__name__}")
