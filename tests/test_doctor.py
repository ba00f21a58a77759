"""`python -m pysm doctor` and the `pysm` console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pysm
import pysm.cuda


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pysm", *args], capture_output=True, text=True, timeout=120)


def test_doctor_exits_zero_and_reports_every_section():
    r = _run("doctor")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert f"pysm {pysm.__version__}" in out
    assert "CUDA on" in out or "CUDA off" in out
    for section in ("NVIDIA driver", "NVDEC", "NVENC", "PyAV", "FFmpeg", "Inference backends", "torch",
                    "onnxruntime", "tensorrt"):
        assert section in out, f"{section!r} missing from:\n{out}"


@pytest.mark.skipif(pysm.cuda.is_available(), reason="a GPU is present")
def test_doctor_without_gpu_says_so_with_dlerror():
    r = _run("doctor")
    assert r.returncode == 0, r.stderr
    assert "No GPU is available: " in r.stdout
    reason = pysm.cuda.unavailable_reason()
    assert reason and reason in r.stdout
    libs = pysm.cuda.driver_libraries()
    if not libs["libcuda"][0]:
        # the dlerror text of the failed libcuda load
        assert "libcuda.so.1" in r.stdout and libs["libcuda"][2] in r.stdout
        assert "NVIDIA driver: not loaded" in r.stdout


def test_doctor_json():
    r = _run("doctor", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert set(info) >= {"pysm", "driver", "gpus", "nvdec", "nvenc", "pyav", "backends"}
    assert info["pysm"]["version"] == pysm.__version__
    assert info["pysm"]["cuda"] == pysm.cuda.build_info()["cuda"]
    assert info["gpus"]["available"] == pysm.cuda.is_available()
    assert len(info["gpus"]["devices"]) == pysm.cuda.device_count()
    import av

    assert info["pyav"]["version"] == av.__version__
    assert info["backends"]["torch"]["imports"] == _imports("torch")
    assert info["backends"]["onnxruntime"]["imports"] == _imports("onnxruntime")
    assert set(info["backends"]) >= {"tensorrt", "tensorrt_rtx", "tensorrt_lean"}
    if not info["nvenc"]["loaded"]:
        assert "libnvidia-encode.so.1" in info["nvenc"]["report"]


def _imports(name: str) -> bool:
    import importlib

    try:
        importlib.import_module(name)
        return True
    except Exception:
        return False


def test_console_script_and_help():
    script = Path(sys.executable).with_name("pysm")
    if not script.exists():
        pytest.skip("the pysm console script is not installed in this environment")
    r = subprocess.run([str(script), "doctor"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Inference backends" in r.stdout
    r = _run()
    assert r.returncode == 2 and "doctor" in r.stdout


def test_doctor_report_in_process():
    from pysm import doctor

    info = doctor.collect()
    text = doctor.format_report(info)
    assert text.splitlines()[0].startswith("pysm ")
    json.dumps(info)  # serialisable
