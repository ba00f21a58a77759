"""Inference (nvinfer-compatible): config files, backends (TensorRT, PyTorch, ONNX Runtime),
native pre/post-processing, and :class:`InferEngine`, which the ``nvinfer`` element and
``Flow.infer`` run."""

from __future__ import annotations

from pysm.infer.config import ClassAttributes, ConfigWarning, InferConfig, load_config
from pysm.infer.engine import InferEngine
from pysm.infer.postprocess import ParserInfo

__all__ = ["InferEngine", "InferConfig", "ClassAttributes", "ConfigWarning", "load_config", "ParserInfo"]
