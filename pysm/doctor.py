"""``pysm doctor``: what this machine and this build of pysm can do.

Collects, into one plain dict: the pysm version and build (CUDA on/off, architectures, CUDA
runtime), the NVIDIA driver (or why it did not load, with the dlerror text), each GPU, NVDEC decode
capabilities per codec, NVENC presence, PyAV/FFmpeg versions and the inference backends that
import. Every probe is guarded, so the report is complete on machines without a GPU or driver and
the command always exits 0.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any, Callable, TextIO

import pysm
import pysm.cuda
from pysm._native import _core

__all__ = ["collect", "format_report", "main"]


def _cuda_version(v: int) -> str:
    """13000 -> "13.0"; 0 -> ""."""
    return f"{v // 1000}.{(v % 1000) // 10}" if v else ""


def _guard(fn: Callable[[], Any]) -> Any:
    """Run one probe; a failure becomes {"error": "Type: message"} instead of ending the report."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - the doctor reports every failure, it never raises
        return {"error": f"{type(e).__name__}: {e}"}


def _build() -> dict[str, Any]:
    b = pysm.cuda.build_info()
    return {
        "version": pysm.__version__,
        "cuda": bool(b["cuda"]),
        "architectures": b["architectures"],
        "cuda_runtime": _cuda_version(int(b["runtime_version"])),
        "nvdec_bindings": hasattr(_core, "nvdec_capabilities"),
    }


def _driver() -> dict[str, Any]:
    libs = pysm.cuda.driver_libraries()
    loaded, name, report = libs["libcuda"]
    out: dict[str, Any] = {"loaded": loaded, "library": name, "dlerror": "" if loaded else report}
    if loaded:
        out["cuda_version"] = _cuda_version(pysm.cuda.driver_version())
    return out


def _gpus() -> dict[str, Any]:
    if not pysm.cuda.is_available():
        return {"available": False, "reason": pysm.cuda.unavailable_reason(), "devices": []}
    devices = []
    for i in range(pysm.cuda.device_count()):
        devices.append(_guard(lambda i=i: _device(i)))
    return {"available": True, "reason": "", "devices": devices}


def _device(i: int) -> dict[str, Any]:
    d = pysm.cuda.device_info(i)
    d["compute_capability"] = "%d.%d" % tuple(d["compute_capability"])
    return d


def _nvdec() -> dict[str, Any]:
    if not hasattr(_core, "nvdec_capabilities"):
        return {"status": "not in this build", "devices": {}}
    if not pysm.cuda.is_available():
        return {"status": "no GPU", "devices": {}}
    out: dict[str, Any] = {"status": "ok", "devices": {}}
    for i in range(pysm.cuda.device_count()):
        try:
            out["devices"][str(i)] = [dict(c) for c in _core.nvdec_capabilities(i)]
        except pysm.errors.DriverError as e:
            out["status"] = f"libnvcuvid not loadable: {e}"
            break
        except Exception as e:  # noqa: BLE001
            out["devices"][str(i)] = {"error": f"{type(e).__name__}: {e}"}
    return out


def _nvenc() -> dict[str, Any]:
    info = _core.nvenc_info()
    v = info["max_api_version"]
    info["max_api_version"] = "%d.%d" % v if v else ""
    return info


def _pyav() -> dict[str, Any]:
    try:
        import av
    except ImportError as e:
        return {"installed": False, "error": str(e)}
    return {
        "installed": True,
        "version": av.__version__,
        "ffmpeg": getattr(av, "ffmpeg_version_info", ""),
        "libraries": {k: ".".join(str(n) for n in v) for k, v in av.library_versions.items()},
    }


def _import(module: str) -> tuple[Any, str]:
    try:
        return importlib.import_module(module), ""
    except Exception as e:  # noqa: BLE001 - stub wheels raise all sorts of errors on import
        return None, f"{type(e).__name__}: {e}"


def _backends() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("tensorrt", "tensorrt_rtx", "tensorrt_lean"):
        mod, err = _import(name)
        out[name] = {"imports": mod is not None, "version": getattr(mod, "__version__", ""), "error": err}
    torch, err = _import("torch")
    entry: dict[str, Any] = {"imports": torch is not None, "version": getattr(torch, "__version__", ""), "error": err}
    if torch is not None:
        try:
            entry["cuda_available"] = bool(torch.cuda.is_available())
            entry["cuda_version"] = torch.version.cuda or ""
        except Exception as e:  # noqa: BLE001
            entry["cuda_available"] = False
            entry["error"] = f"torch.cuda: {type(e).__name__}: {e}"
    out["torch"] = entry
    ort, err = _import("onnxruntime")
    entry = {"imports": ort is not None, "version": getattr(ort, "__version__", ""), "error": err}
    if ort is not None:
        entry["providers"] = list(_guard(ort.get_available_providers) or [])
    out["onnxruntime"] = entry
    return out


def collect() -> dict[str, Any]:
    """Everything the doctor knows, as a JSON-serialisable dict."""
    return {
        "pysm": _guard(_build),
        "driver": _guard(_driver),
        "gpus": _guard(_gpus),
        "nvdec": _guard(_nvdec),
        "nvenc": _guard(_nvenc),
        "pyav": _guard(_pyav),
        "backends": _guard(_backends),
        "memory": _guard(pysm.memory_stats),
    }


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def format_report(info: dict[str, Any]) -> str:
    """A readable, plain-text report of :func:`collect`'s dict."""
    lines: list[str] = []
    add = lines.append

    b = info["pysm"]
    if "error" in b:
        add(f"pysm: {b['error']}")
    else:
        cuda = (f"CUDA on (runtime {b['cuda_runtime']}, architectures {b['architectures'] or '-'})"
                if b["cuda"] else "CUDA off (CPU-only build)")
        add(f"pysm {b['version']}: {cuda}")

    d = info["driver"]
    if "error" in d:
        add(f"driver: {d['error']}")
    elif d["loaded"]:
        add(f"NVIDIA driver: {d['library']} (CUDA {d.get('cuda_version') or 'unknown'})")
    else:
        add(f"NVIDIA driver: not loaded ({d['dlerror']})")

    g = info["gpus"]
    if "error" in g:
        add(f"GPUs: {g['error']}")
    elif not g["available"]:
        add(f"No GPU is available: {g['reason']}")
    else:
        add(f"GPUs: {len(g['devices'])}")
        for dev in g["devices"]:
            if "error" in dev:
                add(f"  ?: {dev['error']}")
                continue
            add(f"  [{dev['index']}] {dev['name']}: {_gib(dev['total_memory'])} "
                f"({_gib(dev['free_memory'])} free), compute capability {dev['compute_capability']}, "
                f"{dev['multiprocessors']} SMs, PCI {dev['pci_bus_id']}")

    n = info["nvdec"]
    if "error" in n:
        add(f"NVDEC: {n['error']}")
    elif n["status"] != "ok":
        add(f"NVDEC: {n['status']}")
    else:
        add("NVDEC decode capabilities:")
        for dev, caps in n["devices"].items():
            if isinstance(caps, dict):
                add(f"  [{dev}] {caps['error']}")
                continue
            for c in caps:
                state = (f"max {c['max_width']}x{c['max_height']}, {c['num_engines']} NVDEC(s)"
                         if c["supported"] else "not supported")
                add(f"  [{dev}] {c['codec']:<6} {c['bit_depth']:>2}-bit {c['chroma']:<5} {state}")

    e = info["nvenc"]
    if "error" in e and "loaded" not in e:
        add(f"NVENC: {e['error']}")
    elif e["loaded"]:
        add(f"NVENC: {e['library']}, API up to {e['max_api_version'] or 'unknown'}"
            + (f" ({e['error']})" if e["error"] else ""))
    else:
        add(f"NVENC: not available ({e['report'] or e['error']})")

    a = info["pyav"]
    if not a.get("installed"):
        add(f"PyAV: not installed ({a.get('error', '')})")
    else:
        libs = ", ".join(f"{k} {v}" for k, v in a["libraries"].items())
        add(f"PyAV {a['version']}, FFmpeg {a['ffmpeg'] or '?'} ({libs})")

    add("Inference backends:")
    be = info["backends"]
    if "error" in be and len(be) == 1:
        add(f"  {be['error']}")
    else:
        for name, x in be.items():
            if not x["imports"]:
                add(f"  {name}: does not import ({x['error']})")
                continue
            extra = ""
            if name == "torch":
                extra = f", CUDA available: {x.get('cuda_available')}"
            elif name == "onnxruntime":
                extra = f", providers: {', '.join(x.get('providers', []))}"
            add(f"  {name} {x['version']}{extra}")
    return "\n".join(lines)


def main(as_json: bool = False, out: TextIO | None = None) -> int:
    """Print the report (or its JSON); returns the exit status, always 0."""
    out = out or sys.stdout
    info = collect()
    if as_json:
        json.dump(info, out, indent=2, default=str)
        out.write("\n")
    else:
        out.write(format_report(info) + "\n")
    return 0
