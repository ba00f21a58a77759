"""The NVDEC session cache's controls (no GPU needed: they work without a driver).

Reuse itself (a closed decoder's session taken over by the next stream, bounds, eviction, flat
memory over 500 create/close cycles) is tested on a GPU host in test_decode_gpu.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import pysm.codec
from pysm import errors
from pysm._native import _core

needs_nvdec_build = pytest.mark.skipif(not _core.nvdec_built(), reason="this build has no NVDEC support")


@pytest.fixture
def restore_cache():
    before = pysm.codec.decoder_cache_info()
    yield
    pysm.codec.configure_decoder_cache(enabled=before["enabled"], max_per_key=before["max_per_key"],
                                       max_total=before["max_total"])


def test_info_fields():
    info = pysm.codec.decoder_cache_info()
    assert set(info) == {"enabled", "max_per_key", "max_total", "parked", "hits", "misses", "parks", "evictions"}
    assert info["parked"] >= 0 and info["hits"] >= 0


@needs_nvdec_build
def test_defaults_configure_and_clear(restore_cache):
    info = pysm.codec.configure_decoder_cache(enabled=True, max_per_key=4, max_total=16)
    assert info["enabled"] and (info["max_per_key"], info["max_total"]) == (4, 16)
    info = pysm.codec.configure_decoder_cache(max_total=2)
    assert info["enabled"] and (info["max_per_key"], info["max_total"]) == (4, 2), "None keeps a setting"
    info = pysm.codec.configure_decoder_cache(enabled=False)
    assert not info["enabled"] and info["parked"] == 0
    assert pysm.codec.clear_decoder_cache() == 0
    with pytest.raises(errors.InvalidArgument):
        pysm.codec.configure_decoder_cache(max_per_key=-1)


CHILD = "import pysm.codec; print('ENABLED', pysm.codec.decoder_cache_info()['enabled'])"


@needs_nvdec_build
@pytest.mark.parametrize("value, enabled", [(None, True), ("0", False), ("off", False), ("1", True)])
def test_environment_switch(value, enabled):
    env = dict(os.environ)
    env.pop("PYSM_NVDEC_CACHE", None)
    if value is not None:
        env["PYSM_NVDEC_CACHE"] = value
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"ENABLED {enabled}" in proc.stdout
