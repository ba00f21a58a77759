"""Inference backends behind one interface (:class:`pysm.infer.backends.base.Backend`), and the
``auto`` choice: TensorRT when it is importable and a GPU is present, else torch on the GPU, else
ONNX Runtime on the CPU."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from pysm.errors import InferenceError
from pysm.infer.backends.base import Backend, TensorInfo

__all__ = ["Backend", "TensorInfo", "select_backend", "create_backend", "model_source"]


def _has(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def _gpu() -> bool:
    import pysm.cuda

    return pysm.cuda.is_available()


def _torch_cuda() -> bool:
    if not _has("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def model_source(cfg, backend: str) -> str | None:
    """The model file a backend loads: tensorrt the engine (or ONNX to build it), torch the torch
    model (else ONNX via onnx2torch), onnxruntime the ONNX file (model-engine-file if it is .onnx)."""
    eng = cfg.model_engine_file
    if backend == "tensorrt":
        return eng if eng and os.path.exists(eng) else cfg.onnx_file
    if backend == "torch":
        if cfg.torch_model:
            return cfg.torch_model
        if eng and not eng.endswith((".engine", ".plan", ".trt")):
            return eng
        return cfg.onnx_file
    if cfg.onnx_file:
        return cfg.onnx_file
    return eng if eng and eng.lower().endswith(".onnx") else None


def select_backend(cfg, model: Any = None) -> str:
    """Resolve ``backend=auto`` (an explicit choice is returned as is)."""
    if cfg.backend != "auto":
        return cfg.backend
    gpu = _gpu()
    from pysm.infer.backends.tensorrt import find_tensorrt

    onnx = model_source(cfg, "onnxruntime")
    engine = cfg.model_engine_file if cfg.model_engine_file and cfg.model_engine_file.endswith(
        (".engine", ".plan", ".trt")) else None
    if model is None and gpu and (onnx or engine) and not cfg.torch_model and find_tensorrt() is not None:
        return "tensorrt"
    torch_ok = model is not None or cfg.torch_model or (onnx and _has("onnx2torch"))
    if gpu and torch_ok and _torch_cuda():
        return "torch"
    if model is None and not cfg.torch_model and onnx and _has("onnxruntime"):
        return "onnxruntime"
    if (model is not None or cfg.torch_model) and _has("torch"):
        return "torch"  # on the CPU
    if engine and not onnx:
        raise InferenceError(f"model-engine-file '{engine}' is a TensorRT engine but TensorRT (or a GPU) is not "
                             "available here; give onnx-file or torch-model as well")
    raise InferenceError("no backend can run this model here: install onnxruntime (ONNX on the CPU), or torch with a "
                         "GPU (plus onnx2torch for ONNX models)")


def create_backend(cfg, model: Any = None, backend: str | None = None) -> Backend:
    """A loaded backend for `cfg` (``backend`` overrides the config's choice)."""
    name = backend or select_backend(cfg, model)
    src = model_source(cfg, name)
    if name == "tensorrt":
        from pysm.infer.backends.tensorrt import TensorRTBackend

        b: Backend = TensorRTBackend(cfg, src)
    elif name == "torch":
        if not _has("torch"):
            raise InferenceError("backend=torch needs PyTorch: pip install torch")
        from pysm.infer.backends.torch import TorchBackend

        b = TorchBackend(cfg, src, model)
    elif name == "onnxruntime":
        from pysm.infer.backends.onnxruntime import OnnxRuntimeBackend

        if model is not None:
            raise InferenceError("backend=onnxruntime cannot run a Python model object; use backend=torch")
        b = OnnxRuntimeBackend(cfg, src)
    else:
        raise InferenceError(f"unknown backend '{name}'")
    b.load()
    return b
