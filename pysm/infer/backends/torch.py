"""PyTorch backend: an ``nn.Module`` (given directly or by a ``module:factory`` callable), a
TorchScript file, an ExportedProgram (``.pt2``) or an ONNX model converted with ``onnx2torch``.

On a GPU the model runs on the element's own CUDA stream; pysm's preprocessing writes the input
tensor on that stream and the box decoder reads the outputs on it, so nothing synchronises until
the detections are copied back. ``network-mode=2`` runs it in fp16.

What an inference engine would do to the model, this backend does once at load
(``torch-optimize=1``, the default; see :mod:`pysm.infer.backends.torch_graph`): SiLU fused,
onnx2torch's shape constants kept on the host, and on the GPU
channels-last memory for convolutional networks (cuDNN's fast fp16 kernels are NHWC; pysm's
preprocessing then writes the input in that layout directly). The forward pass is captured in a
CUDA graph and replayed (``cuda-graph``: unset = when the model allows it, 1 = always, 0 =
never): one launch instead of hundreds, and the element's thread barely needs the GIL. With a
graph, partial batches run at the next power-of-two batch size so that few graphs are kept.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pysm.errors import InferenceError, ModelNotFoundError
from pysm.infer.backends.base import Backend, TensorInfo

log = logging.getLogger("pysm.infer")


def _graph_key(inp: Any) -> tuple:
    """A captured graph reads its input at a fixed address: one graph per input tensor."""
    return (tuple(inp.shape), inp.data_ptr())


def _onnx_io(path: str) -> tuple[list[TensorInfo], list[TensorInfo]]:
    import onnx

    m = onnx.load(path, load_external_data=False)
    init = {i.name for i in m.graph.initializer}
    types = {1: "float32", 10: "float16", 11: "float64"}

    def info(v) -> TensorInfo:
        t = v.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
        return TensorInfo(v.name, dims, types.get(t.elem_type, str(t.elem_type)))

    return [info(i) for i in m.graph.input if i.name not in init], [info(o) for o in m.graph.output]


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, cfg, model_path: str | None = None, model: Any = None, device: str | None = None):
        super().__init__(cfg, model_path, model)
        import torch

        if device is None:
            device = f"cuda:{cfg.gpu_id}" if torch.cuda.is_available() else "cpu"
        self._device = torch.device(device)
        self._half = cfg.network_mode in (2, 3) and self._device.type == "cuda"
        self._stream = torch.cuda.Stream(device=self._device) if self._device.type == "cuda" else None
        self._inputs: dict[tuple, Any] = {}
        self._graphs: dict[tuple, tuple[Any, Any]] = {}
        self.module = None
        self.channels_last = False
        self.compiled = False
        # None: capture when possible (turned off at the first capture that fails)
        self._use_graph: bool | None = cfg.cuda_graph if self._stream is not None else False
        self.optimizations: dict[str, int] = {}
        self._pool = None  # the CUDA graphs' shared memory pool

    # -- loading ------------------------------------------------------------------------------
    def _load_module(self):
        import torch

        src = self.model if self.model is not None else self.model_path
        if src is None:
            raise InferenceError("the torch backend needs torch-model, onnx-file or a model object")
        if isinstance(src, torch.nn.Module):
            return src
        if callable(src) and not isinstance(src, (str, os.PathLike)):
            return src
        spec = str(src)
        from pysm.infer.config import _is_factory

        if _is_factory(spec):
            from pysm.infer.postprocess import load_callable

            factory = load_callable(spec, "torch-model", self.cfg.path or "element property")
            try:
                mod = factory()
            except Exception as e:  # noqa: BLE001 - the user's factory
                raise InferenceError(f"torch-model factory '{spec}' raised {e!r}") from e
            if not callable(mod):
                raise InferenceError(f"torch-model factory '{spec}' returned {type(mod).__name__}, not an nn.Module")
            return mod
        if not os.path.exists(spec):
            raise ModelNotFoundError(f"torch model file '{spec}' does not exist")
        low = spec.lower()
        if low.endswith(".onnx"):
            try:
                import onnx2torch
            except ImportError as e:
                raise InferenceError(
                    f"running the ONNX model '{spec}' with torch needs onnx2torch (pip install onnx2torch), "
                    "or choose backend=onnxruntime") from e
            import onnx

            self.inputs, self.outputs = _onnx_io(spec)
            return onnx2torch.convert(onnx.load(spec))
        if low.endswith(".pt2"):
            return torch.export.load(spec).module()
        try:
            return torch.jit.load(spec, map_location=self._device)
        except Exception as e:  # noqa: BLE001
            raise InferenceError(
                f"'{spec}' is not a TorchScript file ({e}); for a plain nn.Module use torch-model=package.module:factory"
            ) from e

    def load(self) -> None:
        import torch

        mod = self._load_module()
        if isinstance(mod, torch.nn.Module):
            mod = mod.eval()
            if self.cfg.torch_optimize:
                from pysm.infer.backends.torch_graph import is_conv_net, keep_shape_constants_on_host, optimize_graph

                mod, self.optimizations = optimize_graph(mod)
            mod = mod.to(self._device)
            if self._half:
                mod = mod.half()
            if self.cfg.torch_optimize:
                self.optimizations["host_constants"] = keep_shape_constants_on_host(mod)
                if (self._device.type == "cuda" and self.cfg.network_input_order == 0 and is_conv_net(mod)):
                    mod = mod.to(memory_format=torch.channels_last)
                    self.channels_last = True
            if self.cfg.torch_compile:
                # Compiled lazily by torch at the first call: warmup() makes that happen at start.
                mod = torch.compile(mod, mode=self.cfg.torch_compile, dynamic=False)
                self.compiled = True
        self.module = mod
        if not self.inputs:
            dims = self.cfg.infer_dims
            # An nn.Module does not say its input shape: infer-dims does (batch is dynamic).
            if dims is not None:
                c, h, w = dims
                shape = (None, c, h, w) if self.cfg.network_input_order == 0 else (None, h, w, c)
            else:
                shape = (None, None, None, None)
            self.inputs = [TensorInfo("input", shape, "float16" if self._half else "float32")]
        elif self._half:
            self.inputs = [TensorInfo(i.name, i.shape, "float16") for i in self.inputs]

    def close(self) -> None:
        self.module = None
        self._inputs.clear()
        self._graphs.clear()
        self._pool = None

    # -- description --------------------------------------------------------------------------
    @property
    def device(self) -> str:
        return str(self._device) if self._device.type == "cuda" else "cpu"

    @property
    def stream_handle(self) -> int:
        return self._stream.cuda_stream if self._stream is not None else 0

    def input_order(self, order: int) -> int:
        # Channels-last: the input tensor is NHWC in memory and handed to the model as an NCHW view.
        return 1 if self.channels_last else order

    def run_batch(self, items: int, batch: int) -> int:
        if self.compiled:
            return batch  # one shape: a new one would recompile
        if self._use_graph is False:
            return items
        return min(batch, 1 << max(0, items - 1).bit_length())  # the next power of two

    def warmup(self, batch: int, shape: tuple[int, ...], dtype: str) -> None:
        """Compile / capture for the full batch now, before frames flow (and before decoder
        threads share the GPU)."""
        if self._stream is None and not self.compiled:
            return
        import torch

        inp = self.input_tensor(batch, shape, dtype)
        if self._stream is not None:
            with torch.cuda.stream(self._stream):
                inp.zero_()
        else:
            inp.zero_()
        self.run(inp, batch)
        if self._stream is not None:
            self._stream.synchronize()

    # -- running ------------------------------------------------------------------------------
    def input_tensor(self, batch: int, shape: tuple[int, ...], dtype: str) -> Any:
        import torch

        if self._half:
            dtype = "float16"
        key = (batch, tuple(shape), dtype)
        t = self._inputs.get(key)
        if t is None:
            if self._stream is not None:
                with torch.cuda.stream(self._stream):
                    t = torch.empty((batch, *shape), dtype=getattr(torch, dtype), device=self._device)
            else:
                t = torch.empty((batch, *shape), dtype=getattr(torch, dtype))
            self._inputs[key] = t
        return t

    def _forward(self, inp):
        if self._half or self._device.type != "cuda":
            return self.module(inp)
        import torch

        # network-mode=0 means fp32: keep cuDNN from silently using TF32 (which moves YOLOX scores by
        # ~1e-3), without touching the caller's global torch settings.
        cudnn = torch.backends.cudnn
        with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                         allow_tf32=False):
            return self.module(inp)

    def _named(self, out: Any) -> dict[str, Any]:
        import torch

        if isinstance(out, dict):
            return dict(out)
        if isinstance(out, torch.Tensor):
            out = [out]
        # Models may end in a permute/slice: hand the native post-processing dense tensors.
        out = [o.contiguous() if hasattr(o, "contiguous") else o for o in out]
        names = [o.name for o in self.outputs] if len(self.outputs) == len(out) else [
            "output" if len(out) == 1 else f"output_{i}" for i in range(len(out))]
        if not self.outputs or len(self.outputs) != len(out):
            self.outputs = [TensorInfo(n, tuple(t.shape), str(t.dtype).replace("torch.", "")) for n, t in zip(names, out)]
        return dict(zip(names, out))

    def run(self, inp: Any, batch: int) -> dict[str, Any]:
        import torch

        if self.module is None:
            raise InferenceError("torch backend is not loaded")
        if self._stream is not None and self._use_graph is not False:
            g = self._graphs.get(_graph_key(inp))
            if g is not None:  # the steady state: one launch, as little Python as possible
                with torch.cuda.stream(self._stream):
                    g[0].replay()
                return g[1]
        x = inp.permute(0, 3, 1, 2) if self.channels_last else inp
        try:
            if self._stream is None:
                with torch.inference_mode():
                    return self._named(self._forward(x))
            with torch.cuda.stream(self._stream), torch.inference_mode():
                if self._use_graph is not False:
                    out = self._graph_run(inp, x)
                    if out is not None:
                        return out
                return self._named(self._forward(x))
        except InferenceError:
            raise
        except Exception as e:  # noqa: BLE001 - any model failure
            raise InferenceError(f"torch model failed on input {tuple(x.shape)} {x.dtype}: {e}") from e

    def _not_capturable(self, why: str):
        if self._use_graph:
            raise InferenceError(f"cuda-graph=1: the torch model cannot be captured in a CUDA graph: {why}; "
                                 "set cuda-graph=0")
        log.warning("torch backend: the model cannot be captured in a CUDA graph (%s); running it eagerly", why)
        self._use_graph = False
        self._graphs.clear()
        self._pool = None
        return None

    def _graph_run(self, inp, x):
        """Capture the graph for this input tensor and run it once. None when the model cannot be
        captured and cuda-graph is not forced: eager from then on."""
        import torch

        # Warm up on a side stream (as torch requires). The second pass runs with torch's sync
        # debug mode set to error: a model that reads device values on the host (.item(), .cpu(),
        # .tolist()) cannot be captured, and finding out by a failed capture leaves torch's CUDA
        # RNG state in capture mode for the rest of the process.
        side = torch.cuda.Stream(device=self._device)
        side.wait_stream(self._stream)
        with torch.cuda.stream(side):
            self._forward(x)
            mode = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("error")
            try:
                self._forward(x)
            except RuntimeError as exc:
                return self._not_capturable(f"it synchronises with the device: {str(exc).splitlines()[0]}")
            finally:
                torch.cuda.set_sync_debug_mode(mode)
        self._stream.wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        try:
            # One memory pool for all graphs: they replay one at a time on one stream.
            # thread_local: CUDA calls of other threads (decoders) cannot invalidate the capture.
            with torch.cuda.graph(graph, pool=self._pool, stream=self._stream, capture_error_mode="thread_local"):
                static_out = self._named(self._forward(x))
        except Exception as exc:  # noqa: BLE001 - other capture failures
            return self._not_capturable(str(exc).splitlines()[0] if str(exc) else repr(exc))
        if self._pool is None:
            self._pool = graph.pool()
        self._graphs[_graph_key(inp)] = (graph, static_out)
        graph.replay()
        return static_out
