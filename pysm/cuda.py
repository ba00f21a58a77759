"""CUDA device queries that work on any machine: with no GPU or driver they report zero devices
instead of failing."""

from __future__ import annotations

from typing import Any

from pysm._native import _core


def is_available() -> bool:
    """True when pysm was built with CUDA and at least one GPU is usable."""
    return bool(_core.cuda_is_available())


def device_count() -> int:
    """Number of usable CUDA devices (0 without a driver, GPU or CUDA build)."""
    return int(_core.cuda_device_count())


def unavailable_reason() -> str:
    """Why :func:`is_available` is False, or "" when it is True."""
    return _core.cuda_unavailable_reason()


def device_info(device: int = 0) -> dict[str, Any]:
    """Name, memory, compute capability and PCI bus id of one device."""
    return _core.cuda_device_info(device)


def build_info() -> dict[str, Any]:
    """Whether this build has CUDA, for which architectures, and its runtime version."""
    return _core.cuda_build_info()


def driver_version() -> int:
    """The driver's CUDA version (e.g. 13000), or 0 without a driver."""
    return int(_core.cuda_driver_version())


def driver_libraries() -> dict[str, tuple[bool, str, str]]:
    """Load status of libcuda, libnvcuvid and libnvidia-encode: (loaded, name, dlerror report)."""
    return _core.driver_libraries()
