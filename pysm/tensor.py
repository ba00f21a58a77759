"""Tensor: pysm's zero-copy exchange type, and ``as_tensor`` to import any DLPack producer.

    import numpy as np, torch
    from pysm import as_tensor, ColorFormat

    t = as_tensor(np.zeros((480, 640, 3), np.uint8), "HWC")   # no copy; keeps the array alive
    x = torch.from_dlpack(t)                                  # no copy either
    buf = t.wrap(ColorFormat.RGB)                             # a one-frame Buffer for a provider

``Tensor`` implements DLPack 1.0 (versioned and legacy capsules, the CUDA stream handshake),
``__array_interface__`` for host memory and ``__cuda_array_interface__`` for device memory.
"""

from __future__ import annotations

from typing import Any

from pysm import errors
from pysm._native import _core

Tensor = _core.Tensor
ColorFormat = _core.ColorFormat

__all__ = ["Tensor", "ColorFormat", "as_tensor"]

# DLPack device types pysm can import from.
_HOST_DEVICES = (1, 3)      # kDLCPU, kDLCUDAHost
_CUDA_DEVICES = (2, 13)     # kDLCUDA, kDLCUDAManaged

_CHANNELS = (1, 3, 4)
# What each layout tag requires of a tensor; "" accepts anything.
_LAYOUTS: dict[str, str] = {
    "HWC": "a 3-D tensor (H, W, C) with C in {1, 3, 4}",
    "CHW": "a 3-D tensor (C, H, W) with C in {1, 3, 4}",
    "NHWC": "a 4-D tensor (N, H, W, C) with C in {1, 3, 4}",
    "NCHW": "a 4-D tensor (N, C, H, W) with C in {1, 3, 4}",
    "HW": "a 2-D tensor (H, W)",
    "NV12": "a 2-D uint8 tensor (H*3/2, W) with H even (luma rows, then interleaved UV rows)",
    "I420": "a 2-D uint8 tensor (H*3/2, W) with H even (Y, then U and V planes)",
    "P016": "a 2-D uint16 tensor (H*3/2, W) with H even (16-bit NV12)",
}


def _normalise_layout(layout: Any) -> str:
    if layout is None:
        return ""
    if not isinstance(layout, str):
        raise errors.InvalidArgument(f"layout must be a string such as 'HWC', got {type(layout).__name__}")
    name = layout.strip().upper()
    if name and name not in _LAYOUTS:
        raise errors.InvalidArgument(
            f"unknown layout {layout!r}; expected one of {', '.join(repr(k) for k in _LAYOUTS)} or '' (any)")
    return name


def _check_layout(t: Tensor, layout: str) -> None:
    """Raise InvalidArgument when ``t`` contradicts ``layout``, naming what was expected."""
    if not layout:
        return
    shape = t.shape
    dtype = str(t.dtype)
    expected = _LAYOUTS[layout]

    def fail(why: str) -> None:
        raise errors.InvalidArgument(
            f"as_tensor(layout={layout!r}) expects {expected}; got shape {shape}, dtype {dtype}: {why}")

    if dtype == "bool":
        fail("a bool tensor is not image data; expected an integer or floating-point dtype")
    if layout in ("HWC", "CHW", "NHWC", "NCHW", "HW"):
        ndim = len(layout)
        if len(shape) != ndim:
            fail(f"{len(shape)} dimension(s) instead of {ndim}")
        if layout != "HW":
            c = shape[layout.index("C")]
            if c not in _CHANNELS:
                fail(f"{c} channels")
        return
    want = "uint16" if layout == "P016" else "uint8"
    if dtype != want:
        fail(f"dtype {dtype} instead of {want}")
    if len(shape) != 2:
        fail(f"{len(shape)} dimension(s) instead of 2")
    if shape[0] % 3 != 0 or shape[0] == 0:
        fail(f"{shape[0]} rows is not H*3/2 for an even H")


def _export_capsule(obj: Any, stream: int | None) -> Any:
    """obj.__dlpack__ asking for a DLPack 1.0 capsule, falling back for pre-1.0 producers."""
    try:
        return obj.__dlpack__(stream=stream, max_version=(1, 0))
    except TypeError:
        # Producers from before DLPack 1.0 take no max_version (and some no keywords at all).
        if stream is None:
            try:
                return obj.__dlpack__()
            except TypeError:
                pass
        return obj.__dlpack__(stream=stream)


def as_tensor(obj: Any, layout: str = "") -> Tensor:
    """View ``obj`` as a pysm :class:`Tensor` without copying, keeping ``obj``'s memory alive.

    ``obj`` is any DLPack producer: a NumPy array, torch tensor, CuPy array, JAX array, any object
    with ``__dlpack__``/``__dlpack_device__``, an unconsumed DLPack capsule, or a pysm Tensor.
    For a CUDA producer, pysm passes its own stream for that device, so the producer's pending work
    is ordered before pysm's use of the memory (no host synchronisation).

    ``layout`` tags the tensor ("HWC", "CHW", "NHWC", "NCHW", "HW", "NV12", "I420", "P016", or ""
    for anything) and is checked against its shape and dtype.

    Raises :class:`pysm.errors.InvalidArgument` (a ``ValueError``) for an unknown layout, a tensor
    that contradicts it, an unsupported dtype (complex, ...), device or strides, or an object that
    is not a DLPack producer.
    """
    name = _normalise_layout(layout)
    if isinstance(obj, Tensor):
        t = obj._with_layout(name)
    elif _core.is_dlpack_capsule(obj):
        t = _core.tensor_from_dlpack_capsule(obj, name)
    elif hasattr(obj, "__dlpack__"):
        stream = None
        on_pysm_stream = False
        if hasattr(obj, "__dlpack_device__"):
            try:
                dev_type, dev_id = (int(v) for v in obj.__dlpack_device__())
            except (TypeError, ValueError) as e:
                raise errors.InvalidArgument(
                    f"{type(obj).__name__}.__dlpack_device__() must return (device_type, device_id)") from e
            if dev_type in _CUDA_DEVICES:
                stream = _core.pysm_stream_handle(dev_id)
                on_pysm_stream = True
            elif dev_type not in _HOST_DEVICES:
                raise errors.InvalidArgument(
                    f"{type(obj).__name__} lives on DLPack device type {dev_type}; as_tensor expects host "
                    "memory (kDLCPU=1) or CUDA memory (kDLCUDA=2)")
        try:
            capsule = _export_capsule(obj, stream)
        except (BufferError, RuntimeError) as e:
            # e.g. torch tensors that require grad, NumPy strides that are not whole elements
            raise errors.InvalidArgument(f"{type(obj).__name__} refused DLPack export: {e}") from e
        t = _core.tensor_from_dlpack_capsule(capsule, name, on_pysm_stream)
    else:
        raise errors.InvalidArgument(
            f"as_tensor expects a DLPack producer (an object with __dlpack__ and __dlpack_device__, such as "
            f"a NumPy array, torch tensor or CuPy array), a DLPack capsule or a pysm Tensor; got "
            f"{type(obj).__name__}")
    _check_layout(t, name)
    return t
