"""TensorRT backend, through the ``tensorrt`` Python package (or ``tensorrt_rtx`` /
``tensorrt_lean`` when that is what is installed).

* ``model-engine-file`` that exists: deserialised and run.
* otherwise the engine is built from ``onnx-file`` (fp16 for network-mode 2/3, int8 with
  ``int8-calib-file`` for network-mode 1), with an optimisation profile over the batch
  (1 .. batch-size) when the model's batch is dynamic, and cached beside the model as nvinfer does:
  ``<model>_b<batch>_gpu<id>_<fp32|int8|fp16>.engine`` (or at ``model-engine-file`` when given).
* it executes on the engine's CUDA stream with tensor addresses (``execute_async_v3``): the input
  is the tensor pysm preprocessed into and outputs are preallocated device tensors, so nothing is
  copied.

UNVERIFIED HERE: TensorRT cannot be installed on this project's machines. The pure parts (build
flags, engine cache naming, the I/O binding plan) are unit-tested without TensorRT; the tests
marked ``tensorrt`` run the rest where TensorRT is installed.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from pysm.errors import ConfigError, InferenceError, ModelNotFoundError
from pysm.infer.backends.base import Backend, TensorInfo

_PACKAGES = ("tensorrt", "tensorrt_rtx", "tensorrt_lean")


def find_tensorrt() -> Any | None:
    """The first importable TensorRT Python package, or None."""
    for name in _PACKAGES:
        if importlib.util.find_spec(name) is None:
            continue
        try:
            return importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a broken install counts as absent
            continue
    return None


def engine_cache_path(model_path: str, batch_size: int, gpu_id: int, precision: str) -> str:
    """nvinfer's engine file name for a model: ``<model>_b<bs>_gpu<id>_<precision>.engine``
    beside the model (the model's full file name, extension included, is the prefix)."""
    if precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"precision must be fp32, fp16 or int8, not {precision!r}")
    return f"{model_path}_b{batch_size}_gpu{gpu_id}_{precision}.engine"


@dataclass
class BuildFlags:
    """What the builder is asked for, derived from the config alone."""

    fp16: bool = False
    int8: bool = False
    calibration_cache: str | None = None
    workspace_bytes: int | None = None
    min_batch: int = 1
    opt_batch: int = 1
    max_batch: int = 1
    input_chw: tuple[int, int, int] | None = None
    nhwc: bool = False
    precision: str = "fp32"


def build_flags(cfg) -> BuildFlags:
    """Config -> builder flags. network-mode 0 fp32, 1 int8 (needs int8-calib-file), 2 fp16,
    3 'best' (fp16 and int8 when a calibration file exists)."""
    f = BuildFlags()
    mode = cfg.network_mode
    f.fp16 = mode in (2, 3)
    if mode == 1 or (mode == 3 and cfg.int8_calib_file):
        if not cfg.int8_calib_file:
            raise ConfigError(f"{cfg.path or 'element property'}: [property] network-mode=1 (int8) needs int8-calib-file")
        f.int8 = True
        f.calibration_cache = cfg.int8_calib_file
    f.precision = "int8" if f.int8 else ("fp16" if f.fp16 else "fp32")
    f.max_batch = f.opt_batch = max(1, cfg.batch_size)
    f.min_batch = 1
    if cfg.infer_dims:
        f.input_chw = tuple(cfg.infer_dims)  # type: ignore[assignment]
    f.nhwc = cfg.network_input_order == 1
    return f


@dataclass
class BindingPlan:
    """Inputs and outputs of an engine for a given batch: shapes with the batch filled in."""

    input_name: str
    input_shape: tuple[int, ...]
    outputs: list[tuple[str, tuple[int, ...], str]] = field(default_factory=list)


def binding_plan(io: list[tuple[str, bool, tuple[int, ...], str]], batch: int,
                 input_hw: tuple[int, int, int] | None = None) -> BindingPlan:
    """Plan the I/O of one run from the engine's tensors ``(name, is_input, shape, dtype)``
    (dynamic dims are -1): the batch goes in dim 0, ``input_hw`` (the config's C, H, W in the
    input's own order) fills other dynamic input dims. Output dims other than the batch must be
    static (or follow the batch)."""
    ins = [t for t in io if t[1]]
    if len(ins) != 1:
        raise InferenceError(f"the engine has {len(ins)} inputs ({', '.join(t[0] for t in ins)}); pysm feeds one image input")
    name, _, shape, _ = ins[0]
    filled = list(shape)
    if filled and filled[0] == -1:
        filled[0] = batch
    elif filled and filled[0] != batch:
        raise InferenceError(f"engine input '{name}' has a static batch of {filled[0]}, asked to run {batch}")
    for i in range(1, len(filled)):
        if filled[i] == -1:
            if input_hw is None:
                raise InferenceError(f"engine input '{name}' has dynamic dims {shape}: set infer-dims")
            filled[i] = input_hw[i - 1]
    plan = BindingPlan(name, tuple(filled))
    for oname, is_in, oshape, dtype in io:
        if is_in:
            continue
        dims = list(oshape)
        if dims and dims[0] == -1:
            dims[0] = batch
        if any(d == -1 for d in dims[1:]):
            raise InferenceError(f"engine output '{oname}' has dynamic dims {oshape}; pysm needs them static")
        plan.outputs.append((oname, tuple(dims), dtype))
    return plan


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, cfg, model_path: str | None = None, model: Any = None):
        super().__init__(cfg, model_path, model)
        self.trt = None
        self.engine = None
        self.context = None
        self._stream = None
        self._buffers: dict[tuple, dict[str, Any]] = {}
        self._inputs_cache: dict[tuple, Any] = {}
        self.engine_path: str | None = None

    # -- engine file --------------------------------------------------------------------------
    def _engine_path(self) -> str:
        cfg = self.cfg
        flags = build_flags(cfg)
        if cfg.model_engine_file:
            return cfg.model_engine_file
        if not cfg.onnx_file:
            raise ConfigError(f"{cfg.path or 'element property'}: [property] the tensorrt backend needs "
                              "model-engine-file or onnx-file")
        return engine_cache_path(cfg.onnx_file, flags.max_batch, cfg.gpu_id, flags.precision)

    def _build(self, path: str) -> bytes:
        trt, cfg = self.trt, self.cfg
        flags = build_flags(cfg)
        onnx = cfg.onnx_file
        if not onnx or not os.path.exists(onnx):
            raise ModelNotFoundError(f"engine '{path}' does not exist and onnx-file '{onnx}' cannot be found to build it")
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        explicit = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH) if hasattr(
            trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") else 0
        network = builder.create_network(explicit)
        parser = trt.OnnxParser(network, logger)
        with open(onnx, "rb") as f:
            if not parser.parse(f.read()):
                errs = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise InferenceError(f"TensorRT could not parse '{onnx}': {errs}")
        bconf = builder.create_builder_config()
        if flags.fp16 and hasattr(trt.BuilderFlag, "FP16"):
            bconf.set_flag(trt.BuilderFlag.FP16)
        if flags.int8:
            bconf.set_flag(trt.BuilderFlag.INT8)
            bconf.int8_calibrator = _CacheCalibrator(trt, flags.calibration_cache)
        inp = network.get_input(0)
        shape = list(inp.shape)
        if any(d == -1 for d in shape):
            profile = builder.create_optimization_profile()
            rest = list(flags.input_chw) if flags.input_chw else [d for d in shape[1:]]
            if flags.nhwc and flags.input_chw:
                c, h, w = flags.input_chw
                rest = [h, w, c]
            if any(d == -1 for d in rest):
                raise InferenceError(f"'{onnx}' has dynamic input dims {shape}: set infer-dims")
            profile.set_shape(inp.name, [flags.min_batch, *rest], [flags.opt_batch, *rest], [flags.max_batch, *rest])
            bconf.add_optimization_profile(profile)
        blob = builder.build_serialized_network(network, bconf)
        if blob is None:
            raise InferenceError(f"TensorRT failed to build an engine from '{onnx}'")
        data = bytes(blob)
        try:
            with open(path, "wb") as f:
                f.write(data)
        except OSError:
            pass  # a read-only model folder: run without caching
        return data

    def load(self) -> None:
        self.trt = find_tensorrt()
        if self.trt is None:
            raise InferenceError("the tensorrt backend needs the 'tensorrt' Python package (or tensorrt_rtx / "
                                 "tensorrt_lean); choose backend=torch or onnxruntime otherwise")
        import torch

        trt = self.trt
        path = self._engine_path()
        self.engine_path = path
        data = open(path, "rb").read() if os.path.exists(path) else self._build(path)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise InferenceError(f"TensorRT could not deserialise '{path}' (built by another TensorRT version or GPU?)")
        self.context = self.engine.create_execution_context()
        self._stream = torch.cuda.Stream(device=f"cuda:{self.gpu_id}")
        io = self._io()
        self.inputs = [TensorInfo(n, tuple(None if d == -1 else d for d in s), dt) for n, is_in, s, dt in io if is_in]
        self.outputs = [TensorInfo(n, tuple(None if d == -1 else d for d in s), dt) for n, is_in, s, dt in io if not is_in]

    def _io(self) -> list[tuple[str, bool, tuple[int, ...], str]]:
        trt, eng = self.trt, self.engine
        out = []
        for i in range(eng.num_io_tensors):
            name = eng.get_tensor_name(i)
            is_in = eng.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            dt = {trt.float32: "float32", trt.float16: "float16"}.get(eng.get_tensor_dtype(name), "float32")
            out.append((name, is_in, tuple(eng.get_tensor_shape(name)), dt))
        return out

    def close(self) -> None:
        self.context = None
        self.engine = None
        self._buffers.clear()
        self._inputs_cache.clear()

    @property
    def device(self) -> str:
        return f"cuda:{self.gpu_id}"

    @property
    def stream_handle(self) -> int:
        return self._stream.cuda_stream if self._stream is not None else 0

    @property
    def max_batch(self) -> int | None:
        if self.inputs and self.inputs[0].shape and self.inputs[0].shape[0] is None:
            return max(1, self.cfg.batch_size)  # the optimisation profile's maximum
        return super().max_batch

    def input_tensor(self, batch: int, shape: tuple[int, ...], dtype: str) -> Any:
        import torch

        key = (batch, tuple(shape), self.inputs[0].dtype)
        t = self._inputs_cache.get(key)
        if t is None:
            with torch.cuda.stream(self._stream):
                t = torch.empty((batch, *shape), dtype=getattr(torch, self.inputs[0].dtype), device=self.device)
            self._inputs_cache = {key: t}
        return t

    def run(self, inp: Any, batch: int) -> dict[str, Any]:
        import torch

        rows = inp.shape[0]
        plan = binding_plan(self._io(), rows, tuple(inp.shape[1:]))
        ctx = self.context
        ctx.set_input_shape(plan.input_name, plan.input_shape)
        ctx.set_tensor_address(plan.input_name, inp.data_ptr())
        key = (plan.input_shape,)
        bufs = self._buffers.get(key)
        if bufs is None:
            with torch.cuda.stream(self._stream):
                bufs = {n: torch.empty(s, dtype=getattr(torch, dt), device=self.device) for n, s, dt in plan.outputs}
            self._buffers = {key: bufs}
        for n, t in bufs.items():
            ctx.set_tensor_address(n, t.data_ptr())
        if not ctx.execute_async_v3(self._stream.cuda_stream):
            raise InferenceError(f"TensorRT execution failed for input {plan.input_shape}")
        return dict(bufs)


class _CacheCalibrator:
    """An int8 calibrator that only replays a calibration cache file (as nvinfer's int8-calib-file)."""

    def __new__(cls, trt, cache_path):
        base = trt.IInt8EntropyCalibrator2

        class Calibrator(base):  # type: ignore[misc, valid-type]
            def __init__(self):
                base.__init__(self)

            def get_batch_size(self):
                return 1

            def get_batch(self, names):
                return None  # no data: the cache must cover every tensor

            def read_calibration_cache(self):
                with open(cache_path, "rb") as f:
                    return f.read()

            def write_calibration_cache(self, cache):
                return None

        return Calibrator()
