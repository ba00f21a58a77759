"""The native core builds and runs as a plain C++ library, without Python and without CUDA:
configure a fresh CMake tree, build the examples, run them with CTest."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    try:  # the cmake / ninja PyPI packages, when only they are installed
        mod = __import__(name)
        d = getattr(mod, "CMAKE_BIN_DIR", None) or getattr(mod, "BIN_DIR", None)
        cand = Path(d) / name if d else None
        return str(cand) if cand and cand.exists() else None
    except ImportError:
        return None


def test_core_builds_and_runs_without_python(tmp_path):
    cmake = _tool("cmake")
    if cmake is None or not (ROOT / "csrc" / "examples" / "CMakeLists.txt").exists():
        pytest.skip("cmake is not installed (or the source tree is not available)")
    ctest = str(Path(cmake).with_name("ctest")) if Path(cmake).with_name("ctest").exists() else shutil.which("ctest")
    if ctest is None:
        pytest.skip("ctest is not installed")
    build = tmp_path / "build"
    args = [cmake, "-S", str(ROOT), "-B", str(build), "-DPYSM_BUILD_PYTHON=OFF", "-DPYSM_BUILD_EXAMPLES=ON",
            "-DPYSM_DISABLE_CUDA=ON", "-DCMAKE_BUILD_TYPE=", "-DCMAKE_CXX_FLAGS=-O0"]  # -O0: fastest build
    ninja = _tool("ninja")
    if ninja:
        args += ["-G", "Ninja", f"-DCMAKE_MAKE_PROGRAM={ninja}"]
    env = {k: v for k, v in os.environ.items() if k not in ("CMAKE_GENERATOR", "CMAKE_ARGS")}
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "CUDA=OFF" in r.stdout
    r = subprocess.run([cmake, "--build", str(build), "-j", "2"], capture_output=True, text=True, env=env,
                       timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    r = subprocess.run([ctest, "--output-on-failure"], cwd=build, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "tensor_example" in r.stdout and "100% tests passed" in r.stdout
