"""ONNX Runtime backend: the CPU execution provider (CI, machines without a GPU) and the CUDA
execution provider when installed, then with I/O binding on device pointers (inputs and outputs
are torch CUDA tensors, so no host round trip)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pysm.errors import InferenceError, ModelNotFoundError
from pysm.infer.backends.base import Backend, TensorInfo

_ORT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(uint8)": "uint8", "tensor(int32)": "int32", "tensor(int64)": "int64"}


def _dim(d: Any) -> int | None:
    return d if isinstance(d, int) and d > 0 else None


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, cfg, model_path: str | None = None, model: Any = None, use_cuda: bool | None = None):
        super().__init__(cfg, model_path, model)
        self._use_cuda = use_cuda
        self.session = None
        self._cuda = False
        self._inputs_cache: dict[tuple, Any] = {}
        self._torch_stream = None

    def load(self) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise InferenceError("the onnxruntime backend needs the 'onnxruntime' package: pip install onnxruntime") from e
        path = self.model_path
        if not path:
            raise InferenceError("the onnxruntime backend needs an ONNX model (onnx-file)")
        import os

        if not os.path.exists(path):
            raise ModelNotFoundError(f"onnx-file: file '{path}' does not exist")
        available = ort.get_available_providers()
        want_cuda = self._use_cuda if self._use_cuda is not None else "CUDAExecutionProvider" in available
        providers: list[Any] = ["CPUExecutionProvider"]
        if want_cuda and "CUDAExecutionProvider" in available:
            import pysm.cuda

            if pysm.cuda.is_available():
                providers.insert(0, ("CUDAExecutionProvider", {"device_id": self.gpu_id}))
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, opts, providers=providers)
        except Exception as e:  # noqa: BLE001 - ORT raises its own exception types
            raise InferenceError(f"onnxruntime could not load '{path}': {e}") from e
        self._cuda = "CUDAExecutionProvider" in self.session.get_providers()
        ins = self.session.get_inputs()
        if len(ins) != 1:
            names = ", ".join(i.name for i in ins)
            raise InferenceError(f"model '{path}' has {len(ins)} inputs ({names}); pysm feeds models with one image input")
        self.inputs = [TensorInfo(i.name, tuple(_dim(d) for d in i.shape), _ORT_TYPES.get(i.type, i.type)) for i in ins]
        self.outputs = [TensorInfo(o.name, tuple(_dim(d) for d in o.shape), _ORT_TYPES.get(o.type, o.type))
                        for o in self.session.get_outputs()]
        if self._cuda:
            import torch

            self._torch_stream = torch.cuda.Stream(device=f"cuda:{self.gpu_id}")

    def close(self) -> None:
        self.session = None
        self._inputs_cache.clear()

    @property
    def device(self) -> str:
        return f"cuda:{self.gpu_id}" if self._cuda else "cpu"

    @property
    def stream_handle(self) -> int:
        return self._torch_stream.cuda_stream if self._torch_stream is not None else 0

    def input_tensor(self, batch: int, shape: tuple[int, ...], dtype: str) -> Any:
        key = (batch, tuple(shape), dtype)
        t = self._inputs_cache.get(key)
        if t is None:
            if self._cuda:
                import torch

                t = torch.empty((batch, *shape), dtype=getattr(torch, dtype), device=self.device)
            else:
                t = np.empty((batch, *shape), dtype=dtype)
            self._inputs_cache = {key: t}  # one size at a time; a new batch size replaces it
        return t

    def run(self, inp: Any, batch: int) -> dict[str, Any]:
        sess = self.session
        if sess is None:
            raise InferenceError("onnxruntime backend is not loaded")
        name = self.inputs[0].name
        try:
            if not self._cuda:
                outs = sess.run(None, {name: inp})
                return {o.name: v for o, v in zip(self.outputs, outs)}
            return self._run_cuda(inp)
        except InferenceError:
            raise
        except Exception as e:  # noqa: BLE001
            raise InferenceError(f"onnxruntime failed on input {tuple(inp.shape)}: {e}") from e

    def _run_cuda(self, inp: Any) -> dict[str, Any]:
        import torch

        # ORT runs on its own stream: make the preprocessing visible to it first.
        self._torch_stream.synchronize()
        io = self.session.io_binding()
        np_dtype = np.float16 if inp.dtype == torch.float16 else np.float32
        io.bind_input(self.inputs[0].name, "cuda", self.gpu_id, np_dtype, list(inp.shape), inp.data_ptr())
        for o in self.outputs:
            io.bind_output(o.name, "cuda", self.gpu_id)
        self.session.run_with_iobinding(io)
        result = {}
        for o, v in zip(self.outputs, io.get_outputs()):
            # Copy out of ORT's arena into a torch tensor on our stream (ORT may reuse its memory).
            t = torch.empty(v.shape(), dtype=torch.float16 if v.data_type() == "tensor(float16)" else torch.float32,
                            device=self.device)
            src = torch.from_dlpack(v.to_dlpack()) if hasattr(v, "to_dlpack") else None
            if src is None:
                raise InferenceError("this onnxruntime build cannot export device outputs (OrtValue.to_dlpack)")
            with torch.cuda.stream(self._torch_stream):
                t.copy_(src)
            result[o.name] = t
        return result
