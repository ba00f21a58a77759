"""Memory pools seen from Python: pysm.memory_stats() and pysm.empty_cache()."""

from __future__ import annotations

import gc

import numpy as np

import pysm
from pysm.tensor import Tensor


def _host_stats() -> dict:
    stats = pysm.memory_stats()
    key = "host_pinned" if "host_pinned" in stats else "host"
    return stats[key]


def test_host_pool_reuses_blocks_without_growth():
    n = 3 << 20  # a frame-sized block (3 MiB)
    warm = Tensor.empty((n,), "uint8")
    del warm
    before = _host_stats()
    for i in range(100):
        t = Tensor.empty((n,), "uint8")
        np.asarray(t)[:8] = i  # touch it
        del t
    after = _host_stats()
    assert after["system_allocs"] == before["system_allocs"]
    assert after["reuses"] - before["reuses"] == 100
    assert after["allocations"] - before["allocations"] == 100
    assert after["peak_bytes"] == before["peak_bytes"]
    assert after["in_use_bytes"] == before["in_use_bytes"]


def test_memory_stats_shape_and_empty_cache():
    t = Tensor.empty((1 << 20,), "uint8")
    stats = _host_stats()
    assert set(stats) == {"in_use_bytes", "cached_bytes", "peak_bytes", "allocations", "reuses", "system_allocs",
                          "system_frees", "cache_limit_bytes"}
    assert stats["in_use_bytes"] >= 1 << 20
    del t
    assert _host_stats()["cached_bytes"] >= 1 << 20
    frees = _host_stats()["system_frees"]
    pysm.empty_cache()
    assert _host_stats()["cached_bytes"] == 0
    assert _host_stats()["system_frees"] >= frees + 1
    # After trimming, the next allocation goes to the system again.
    before = _host_stats()["system_allocs"]
    t = Tensor.empty((1 << 20,), "uint8")
    assert _host_stats()["system_allocs"] == before + 1
    del t


def test_views_hold_blocks_in_use():
    n = 5 << 20
    base = _host_stats()["in_use_bytes"]
    t = Tensor.empty((n,), "uint8")
    view = np.asarray(t)
    del t
    assert _host_stats()["in_use_bytes"] >= base + n  # the NumPy view keeps the block
    del view
    assert _host_stats()["in_use_bytes"] == base


def test_cache_limit_frees_what_does_not_fit():
    key = "host_pinned" if "host_pinned" in pysm.memory_stats() else "host"
    limit = _host_stats()["cache_limit_bytes"]
    assert limit == 2 << 30  # the host pool's default
    n = 4 << 20
    try:
        gc.collect()  # blocks of earlier tests must not come back to the cache meanwhile
        pysm.empty_cache()
        pysm.set_cache_limit(3 * n, "host")
        assert pysm.memory_stats()[key]["cache_limit_bytes"] == 3 * n
        blocks = [Tensor.empty((n,), "uint8") for _ in range(5)]
        before = _host_stats()
        del blocks  # 5 blocks come back, 3 fit in the cache
        after = _host_stats()
        assert after["cached_bytes"] == 3 * n
        assert after["system_frees"] - before["system_frees"] == 2
    finally:
        pysm.set_cache_limit(limit, "host")


def test_cache_limit_arguments_are_checked():
    import pytest

    with pytest.raises(pysm.errors.InvalidArgument, match="limit_bytes"):
        pysm.set_cache_limit(-1, "host")
    with pytest.raises(pysm.errors.InvalidArgument, match="limit_bytes"):
        pysm.set_cache_limit(2**64, "host")
    with pytest.raises(pysm.errors.InvalidArgument, match="device"):
        pysm.set_cache_limit(1 << 20, "gpu0")
