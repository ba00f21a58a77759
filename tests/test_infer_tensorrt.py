"""The TensorRT backend: what runs without TensorRT (build flags, engine cache naming, the I/O
binding plan, backend choice), and tests marked `tensorrt` for machines that have it."""

from __future__ import annotations

import os

import numpy as np
import pytest

from pysm.errors import ConfigError, InferenceError
from pysm.infer import load_config
from pysm.infer.backends import model_source, select_backend
from pysm.infer.backends.tensorrt import binding_plan, build_flags, engine_cache_path, find_tensorrt


def cfg(tmp_path, **props):
    (tmp_path / "m.onnx").write_bytes(b"x")
    props.setdefault("onnx-file", str(tmp_path / "m.onnx"))
    return load_config(None, props)


def test_engine_cache_naming_as_nvinfer():
    assert engine_cache_path("/models/resnet18.onnx", 4, 0, "fp16") == "/models/resnet18.onnx_b4_gpu0_fp16.engine"
    assert engine_cache_path("m.onnx", 1, 2, "int8") == "m.onnx_b1_gpu2_int8.engine"
    with pytest.raises(ValueError):
        engine_cache_path("m.onnx", 1, 0, "fp8")


def test_build_flags_from_config(tmp_path):
    f = build_flags(cfg(tmp_path, **{"network-mode": 2, "batch-size": 8, "infer-dims": "3;544;960"}))
    assert (f.fp16, f.int8, f.precision) == (True, False, "fp16")
    assert (f.min_batch, f.opt_batch, f.max_batch) == (1, 8, 8) and f.input_chw == (3, 544, 960)
    f = build_flags(cfg(tmp_path))
    assert (f.fp16, f.int8, f.precision, f.max_batch) == (False, False, "fp32", 1)
    calib = tmp_path / "cal.bin"
    calib.write_bytes(b"c")
    f = build_flags(cfg(tmp_path, **{"network-mode": 1, "int8-calib-file": str(calib)}))
    assert f.int8 and f.precision == "int8" and f.calibration_cache == str(calib)
    f = build_flags(cfg(tmp_path, **{"network-mode": 3, "int8-calib-file": str(calib)}))
    assert f.int8 and f.fp16
    with pytest.raises(ConfigError, match="int8-calib-file"):
        build_flags(cfg(tmp_path, **{"network-mode": 1}))
    assert build_flags(cfg(tmp_path, **{"network-input-order": 1})).nhwc


def test_binding_plan():
    io = [("images", True, (-1, 3, -1, -1), "float32"), ("output", False, (-1, 8400, 85), "float32"),
          ("aux", False, (2, 7), "float16")]
    p = binding_plan(io, 4, (3, 640, 640))
    assert p.input_name == "images" and p.input_shape == (4, 3, 640, 640)
    assert p.outputs == [("output", (4, 8400, 85), "float32"), ("aux", (2, 7), "float16")]
    with pytest.raises(InferenceError, match="infer-dims"):
        binding_plan(io, 4)
    with pytest.raises(InferenceError, match="static batch of 1"):
        binding_plan([("x", True, (1, 3, 8, 8), "float32")], 2)
    with pytest.raises(InferenceError, match="2 inputs"):
        binding_plan([("a", True, (1, 3), "float32"), ("b", True, (1, 3), "float32")], 1)
    with pytest.raises(InferenceError, match="dynamic dims"):
        binding_plan([("x", True, (-1, 3, 8, 8), "float32"), ("o", False, (-1, -1), "float32")], 1)


def test_backend_sources_and_auto_choice(tmp_path):
    c = cfg(tmp_path, **{"model-engine-file": str(tmp_path / "m.onnx_b1_gpu0_fp32.engine")})
    assert model_source(c, "tensorrt") == str(tmp_path / "m.onnx")  # engine absent: build from ONNX
    (tmp_path / "m.onnx_b1_gpu0_fp32.engine").write_bytes(b"e")
    assert model_source(c, "tensorrt").endswith(".engine")
    assert model_source(c, "onnxruntime") == str(tmp_path / "m.onnx")
    import pysm.cuda

    if not pysm.cuda.is_available():
        # no GPU: auto is ONNX Runtime for an ONNX model, torch (CPU) for a torch model
        assert select_backend(c) == "onnxruntime"
        assert select_backend(cfg(tmp_path, **{"torch-model": "pkg.mod:factory"})) == "torch"
        only_engine = load_config(None, {"model-engine-file": str(tmp_path / "m.onnx_b1_gpu0_fp32.engine")})
        with pytest.raises(InferenceError, match="TensorRT"):
            select_backend(only_engine)
    assert select_backend(cfg(tmp_path, backend="onnxruntime")) == "onnxruntime"


def test_missing_tensorrt_is_a_clear_error(tmp_path):
    if find_tensorrt() is not None:
        pytest.skip("TensorRT is installed here")
    from pysm.infer import InferEngine

    e = InferEngine(None, **{"onnx-file": str(tmp_path / "m.onnx"), "backend": "tensorrt"})
    (tmp_path / "m.onnx").write_bytes(b"x")
    with pytest.raises(InferenceError, match="tensorrt"):
        e.start()


# ---- with TensorRT ----------------------------------------------------------------------------------

@pytest.mark.tensorrt
@pytest.mark.gpu
def test_tensorrt_builds_caches_and_runs(tmp_path):
    if find_tensorrt() is None:
        pytest.skip("TensorRT is not installed")
    torch = pytest.importorskip("torch")
    import infer_models
    from pysm._native import _core
    from pysm.infer import InferEngine

    model = infer_models.detector(tmp_path / "tiny.onnx")
    props = dict(onnx_file=model, infer_dims="3;32;32", net_scale_factor=1 / 255, parse_bbox_func_name="yolo",
                 num_detected_classes=2, backend="tensorrt", batch_size=4, network_mode=2)
    e = InferEngine(None, **props)
    e.start()
    engine = engine_cache_path(model, 4, 0, "fp16")
    assert os.path.exists(engine) and e.backend.engine_path == engine
    f = np.zeros((48, 64, 3), np.uint8)
    f[:] = (200, 40, 100)
    buf = _core.infer_buffer_from_arrays([(f, "RGB")] * 3, device="cuda")
    e.process(buf)
    for fr in _core.infer_buffer_metadata(buf):
        (o,) = fr["objects"]
        assert o["class_id"] == 0 and abs(o["confidence"] - 200 / 255) < 5e-3
    # a second engine loads the cached file instead of building
    e2 = InferEngine(None, **dict(props, model_engine_file=engine))
    e2.start()
    del torch
