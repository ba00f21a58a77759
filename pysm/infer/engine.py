"""InferEngine: nvinfer's behaviour on pysm Buffers.

One engine is one nvinfer element: a config (file + element properties), a backend running the
model, native preprocessing straight into the model's input tensor, and native post-processing
writing ObjectMetadata / ClassifierMetadata / TensorOutputUserMetadata into the Buffer's
metadata. The pipeline's ``nvinfer`` element and ``Flow.infer`` drive it; it can also be used on
its own::

    engine = InferEngine("pgie.txt", batch_size=4)
    engine.start()
    engine.process(buffer)   # in place
    engine.stop()
"""

from __future__ import annotations

import copy
import os
import threading
import traceback
from typing import Any, Callable

from pysm.errors import ConfigError, InferenceError, StateError
from pysm.infer.backends import Backend, create_backend, select_backend
from pysm.infer.config import InferConfig, load_config
from pysm.infer.postprocess import DetectorSettings, ParserInfo

__all__ = ["InferEngine"]

_ENGINE_EXTS = (".engine", ".plan", ".trt")
_CONFIG_EXTS = (".txt", ".yml", ".yaml", ".ini", ".cfg", ".config")


def _shape_str(shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _rows(t: Any, k: int) -> Any:
    return t[:k] if t.shape and t.shape[0] > k else t


def _on_device(t: Any) -> bool:
    return type(t).__module__.startswith("torch") and t.is_cuda


def _sync_stream(handle: int, device: str) -> None:
    """Wait for the backend's stream before Python code reads its outputs on another stream."""
    if handle:
        import torch

        torch.cuda.ExternalStream(handle, device=device).synchronize()


def _host_f32(t: Any):
    import numpy as np

    if type(t).__module__.startswith("torch"):
        return t.detach().float().cpu().numpy()
    return np.ascontiguousarray(np.asarray(t), dtype=np.float32)


class _Submitted:
    """A batch between InferEngine.submit and InferEngine.finish."""

    __slots__ = ("buffer", "pending")

    def __init__(self, buffer, pending: list) -> None:
        self.buffer = buffer
        self.pending = pending


class InferEngine:
    """nvinfer on pysm Buffers.

    Args:
        config_file_path: an nvinfer config file (INI or YAML); optional when the properties name
            the model.
        name: the element name, used in error messages.
        **properties: nvinfer element properties with ``-`` or ``_`` (``unique_id``,
            ``batch_size``, ``interval``, ``process_mode``, ``model_engine_file``, ``gpu_id``,
            ``output_tensor_meta``, ``infer_on_gie_id``, ``infer_on_class_ids``,
            ``filter_out_class_ids``, ``config_file_path``) or any config key; they override
            the file. ``model=`` may pass an ``nn.Module`` (torch backend).
    """

    def __init__(self, config_file_path: str | None = None, *, name: str = "infer", **properties: Any):
        self.name = name
        self._model_obj = properties.pop("model", None)
        self._properties = {k.replace("_", "-"): v for k, v in properties.items()}
        self._config_path = config_file_path or self._properties.pop("config-file-path", None)
        self.config: InferConfig = self._load()
        self._backend: Backend | None = None
        self._backend_name: str | None = None
        self._lock = threading.Lock()  # guards the backend/settings swap (hot reload)
        self._run_lock = threading.Lock()  # one batch at a time per engine
        self._batch_index = 0
        self._callbacks: list[Callable[[str | None], None]] = []
        self._settings: dict[str, Any] | None = None

    # -- configuration ----------------------------------------------------------------------------
    def _load(self) -> InferConfig:
        return load_config(self._config_path, self._properties)

    def set_property(self, key: str, value: Any) -> None:
        """Set an nvinfer property (re-reads the config). After start(), a new model file reloads
        the backend; other changes apply from the next batch."""
        key = key.replace("_", "-")
        if key == "config-file-path":
            self._config_path = value
        else:
            self._properties[key] = value
        old = self.config
        cfg = self._load()
        self.config = cfg
        if self._backend is None:
            return
        model_keys = ("onnx_file", "model_engine_file", "torch_model", "network_mode", "infer_dims", "batch_size",
                      "backend", "gpu_id")
        if any(getattr(old, k) != getattr(cfg, k) for k in model_keys):
            self.reload()
        else:
            with self._lock:
                self._settings = self._derive(self._backend, cfg)

    def get_property(self, key: str) -> Any:
        key = key.replace("_", "-")
        if key in self._properties:
            return self._properties[key]
        if key == "config-file-path":
            return self._config_path
        from pysm.infer.config import PROPERTY_ALIASES

        attr = PROPERTY_ALIASES.get(key, key).replace("-", "_")
        if hasattr(self.config, attr):
            return getattr(self.config, attr)
        raise ConfigError(f"{self.name}: unknown property '{key}'")

    # -- lifecycle --------------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._backend is not None

    @property
    def backend(self) -> Backend | None:
        return self._backend

    @property
    def backend_name(self) -> str | None:
        return self._backend_name

    def start(self) -> None:
        """Load the model and check its input against the config (InferenceError naming both
        shapes on a mismatch)."""
        if self._backend is not None:
            return
        cfg = self.config
        if self._model_obj is None:
            cfg.check_files()
        name = select_backend(cfg, self._model_obj)
        backend = self._create(cfg, name)
        try:
            settings = self._derive(backend, cfg)
            self._warmup(backend, settings)
        except Exception:
            backend.close()
            raise
        with self._lock:
            self._backend, self._backend_name, self._settings = backend, name, settings

    def _create(self, cfg: InferConfig, name: str) -> Backend:
        try:
            return create_backend(cfg, self._model_obj, backend=name)
        except (InferenceError, ConfigError):
            raise
        except Exception as e:  # noqa: BLE001 - a backend library failure
            raise InferenceError(f"{self.name}: the {name} backend could not load the model: {e!r}") from e

    def stop(self) -> None:
        """Release the backend; start() loads it again."""
        with self._lock:
            b, self._backend, self._settings = self._backend, None, None
        if b is not None:
            with self._run_lock:
                b.close()

    def on_model_updated(self, callback: Callable[[str | None], None]) -> None:
        """Call ``callback(model_path)`` after every successful reload (nvinfer's 'model-updated')."""
        self._callbacks.append(callback)

    def reload(self, model_path: str | None = None) -> None:
        """Load the model again (from ``model_path`` when given: an engine, ONNX, TorchScript or
        ``module:factory``; or a new config file) and swap it in. Batches in flight finish on the old model; a model
        whose input differs from the running one is refused with InferenceError."""
        if self._backend is None:
            raise StateError(f"{self.name}: reload() before start()")
        if model_path is not None and os.fspath(model_path).lower().endswith(_CONFIG_EXTS):
            # A new config file (nvinfer's config-file-path set while running): re-read it all.
            self._config_path = os.fspath(model_path)
            self.config = self._load()
            model_path = None
        cfg = copy.deepcopy(self.config)
        if model_path is not None:
            path = os.fspath(model_path)
            low = path.lower()
            if low.endswith(".onnx"):
                cfg.onnx_file = path
                if cfg.model_engine_file and not cfg.model_engine_file.lower().endswith(_ENGINE_EXTS):
                    cfg.model_engine_file = None
                cfg.torch_model = None if not self._model_obj else cfg.torch_model
            elif low.endswith(_ENGINE_EXTS):
                cfg.model_engine_file = path
            else:
                cfg.torch_model = path
            if not (":" in path and not os.path.exists(path)) and not os.path.exists(path):
                from pysm.errors import ModelNotFoundError

                raise ModelNotFoundError(f"{self.name}: reload: model file '{path}' does not exist")
        model_obj = self._model_obj if model_path is None else None
        if model_obj is None and self._model_obj is not None and model_path is None:
            model_obj = self._model_obj
        keep_obj, self._model_obj = self._model_obj, model_obj
        try:
            backend = self._create(cfg, self._backend_name or select_backend(cfg, model_obj))
            settings = self._derive(backend, cfg)
            self._warmup(backend, settings)
        except Exception:
            self._model_obj = keep_obj
            raise
        old = self._settings
        if old is not None and (old["in_shape"] != settings["in_shape"]):
            backend.close()
            self._model_obj = keep_obj
            raise InferenceError(
                f"{self.name}: the new model's input {_shape_str(settings['model_shape'])} differs from the running "
                f"model's {_shape_str(old['model_shape'])}; refusing to swap")
        with self._lock:
            self._backend, self._settings, self.config = backend, settings, cfg
        # The old backend is dropped, not closed: a batch in flight may still be using it.
        for cb in list(self._callbacks):
            cb(model_path)

    def _warmup(self, backend: Backend, s: dict[str, Any]) -> None:
        try:
            backend.warmup(s["run_batch"], s["alloc_shape"], s["in_dtype"])
        except (InferenceError, ConfigError):
            raise
        except Exception as e:  # noqa: BLE001 - the model failed on its first batch
            raise InferenceError(f"{self.name}: the {backend.name} backend failed on a warm-up batch of "
                                 f"{s['run_batch']} x {_shape_str(s['model_shape'][1:])}: {e!r}") from e

    # -- shapes and settings ----------------------------------------------------------------------
    def _derive(self, backend: Backend, cfg: InferConfig) -> dict[str, Any]:
        """Check the model input against the config and precompute every per-batch parameter."""
        if not backend.inputs:
            raise InferenceError(f"{self.name}: the model reports no input")
        inp = backend.inputs[0]
        shape = tuple(inp.shape)
        where = f" (config {cfg.path})" if cfg.path else ""
        if len(shape) != 4:
            raise InferenceError(f"{self.name}: model input '{inp.name}' has shape {_shape_str(shape)}; pysm feeds "
                                 f"4-D image batches (N, C, H, W) or (N, H, W, C){where}")
        nhwc = cfg.network_input_order == 1
        model_chw = (shape[3], shape[1], shape[2]) if nhwc else (shape[1], shape[2], shape[3])
        order = "N;H;W;C" if nhwc else "N;C;H;W"
        if cfg.infer_dims is not None:
            want = tuple(cfg.infer_dims)
            if any(m is not None and m != w for m, w in zip(model_chw, want)):
                c, h, w = want
                expect = (shape[0], h, w, c) if nhwc else (shape[0], c, h, w)
                raise InferenceError(
                    f"{self.name}: model input '{inp.name}' has shape {_shape_str(shape)} ({order}) but the config's "
                    f"infer-dims={';'.join(map(str, want))} needs {_shape_str(expect)}{where}")
            chw = want
        else:
            if any(m is None for m in model_chw):
                raise InferenceError(f"{self.name}: model input '{inp.name}' has dynamic shape {_shape_str(shape)}: "
                                     f"set infer-dims=C;H;W in the config{where}")
            chw = tuple(int(m) for m in model_chw)  # type: ignore[arg-type]
        want_c = 1 if cfg.model_color_format == 2 else 3
        if chw[0] != want_c:
            raise InferenceError(
                f"{self.name}: model input '{inp.name}' has {chw[0]} channels (shape {_shape_str(shape)}) but "
                f"model-color-format={cfg.model_color_format} gives {want_c}{where}")
        c, h, w = chw
        model_batch = backend.max_batch
        fixed = backend.fixed_batch
        run_batch = model_batch if fixed and model_batch else max(1, cfg.batch_size)
        if not fixed and model_batch:
            run_batch = min(run_batch, model_batch)
        in_dtype = inp.dtype if inp.dtype in ("float32", "float16") else "float32"
        # The layout the backend wants in memory may differ from the model's (channels-last torch).
        phys = backend.input_order(cfg.network_input_order)
        pads = list(cfg.padding_value) * (3 if len(cfg.padding_value) == 1 else 1)
        # scaling-filter (NvBufSurfTransform_Inter): 0 nearest, 1 bilinear, 2-4 (cubic, super,
        # Lanczos) -> antialiased bilinear; unset or other values -> bilinear.
        filt = {0: 0, 1: 1, 2: 2, 3: 2, 4: 2}.get(cfg.scaling_filter, 1) if "scaling-filter" in cfg.explicit else 1
        pre = {
            "width": w, "height": h, "color": cfg.model_color_format, "order": phys,
            "filter": filt,
            "scale": cfg.net_scale_factor, "offsets": list(cfg.offsets) or [0.0, 0.0, 0.0],
            "maintain_aspect_ratio": cfg.maintain_aspect_ratio, "symmetric_padding": cfg.symmetric_padding,
            "pad_value": pads,
        }
        select = {
            "secondary": cfg.is_secondary, "operate_on_gie_id": cfg.operate_on_gie_id,
            "operate_on_class_ids": list(cfg.operate_on_class_ids),
            "min_width": cfg.input_object_min_width, "min_height": cfg.input_object_min_height,
            "max_width": cfg.input_object_max_width, "max_height": cfg.input_object_max_height,
        }
        if cfg.is_secondary and (cfg.network_type == 1 or "secondary-reinfer-interval" in cfg.explicit):
            # Tracked objects are classified once per track (or every secondary-reinfer-interval
            # frames); a new model (reload) starts with an empty history.
            from pysm._native import _core

            select["history"] = _core.ObjectHistory(cfg.secondary_reinfer_interval, cfg.network_type == 1)
        settings: dict[str, Any] = {
            "backend": backend, "cfg": cfg, "pre": pre, "select": select, "run_batch": run_batch, "fixed": fixed,
            "in_shape": (h, w, c) if nhwc else (c, h, w), "in_dtype": in_dtype, "model_shape": shape,
            "alloc_shape": (h, w, c) if phys == 1 else (c, h, w),
            "net": (w, h), "detector": None, "classifier": None,
        }
        if cfg.network_type == 0:
            settings["detector"] = DetectorSettings(cfg, w, h, cfg.detector_labels())
        elif cfg.network_type == 1:
            settings["classifier"] = {"unique_id": cfg.gie_unique_id, "threshold": cfg.classifier_threshold,
                                      "labels": cfg.labels()}
        if cfg.output_blob_names:
            names = [o.name for o in backend.outputs]
            missing = [n for n in cfg.output_blob_names if names and n not in names]
            if missing:
                raise InferenceError(f"{self.name}: output-blob-names {missing} are not outputs of the model "
                                     f"(it has {names}){where}")
        return settings

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The network input of one item, (C, H, W) or (H, W, C); None before start()."""
        s = self._settings
        return s["in_shape"] if s else None

    # -- running ----------------------------------------------------------------------------------
    def process(self, buffer) -> None:
        """Infer one batch in place: attach results to ``buffer``'s metadata."""
        self.finish(self.submit(buffer))

    def submit(self, buffer) -> "_Submitted | None":
        """Queue the inference of one batch; its detections are attached by :meth:`finish`.

        Everything up to the detections' copy to the host is queued on the backend's stream
        without waiting, so a caller that submits batch k+1 before finishing batch k keeps the
        GPU busy while it attaches k's metadata. Classifier, custom-parser and tensor outputs are
        attached here already. Returns None when there is nothing to finish."""
        from pysm._native import _core

        with self._lock:
            s = self._settings
        if s is None:
            raise StateError(f"{self.name}: process() before start()")
        cfg: InferConfig = s["cfg"]
        with self._run_lock:
            index = self._batch_index
            self._batch_index += 1
            if cfg.interval and index % (cfg.interval + 1) != 0:
                return None  # nvinfer's interval: skip this many batches between inferences
            plan = _core.infer_plan(buffer, s["select"])
            n = len(plan)
            if n == 0:
                return None  # no frames, or no objects to infer on in secondary mode
            backend: Backend = s["backend"]
            step = s["run_batch"]
            pending = []
            for start in range(0, n, step):
                chunk = plan.chunk(start, start + step)
                k = len(chunk)
                rows = step if s["fixed"] else backend.run_batch(k, step)
                inp = backend.input_tensor(rows, s["alloc_shape"], s["in_dtype"])
                _core.infer_preprocess(buffer, chunk, s["pre"], inp, backend.stream_handle)
                outs = backend.run(inp, k)
                p = self._postprocess(buffer, chunk, outs, k, s)
                if p is not None:
                    pending.append((chunk, p, s["detector"].attach))
        return _Submitted(buffer, pending) if pending else None

    def finish(self, submitted: "_Submitted | None") -> None:
        """Wait for a submitted batch's detections and attach them to its buffer."""
        if submitted is None:
            return
        from pysm._native import _core

        for chunk, p, attach in submitted.pending:
            _core.infer_detect_finish(submitted.buffer, chunk, p, attach)
        submitted.pending = []

    def _ordered_outputs(self, outs: dict[str, Any], cfg: InferConfig) -> tuple[list[str], list[Any]]:
        names = list(outs)
        if cfg.output_blob_names:
            missing = [n for n in cfg.output_blob_names if n not in outs]
            if missing:
                raise InferenceError(f"{self.name}: output-blob-names {missing} not in the model outputs {names}")
            names = list(cfg.output_blob_names)
        return names, [outs[n] for n in names]

    def _postprocess(self, buffer, chunk, outs: dict[str, Any], k: int, s: dict[str, Any]):
        """Attach what needs no waiting; returns the queued detections of a built-in decoder."""
        from pysm._native import _core

        cfg: InferConfig = s["cfg"]
        backend: Backend = s["backend"]
        names, tensors = self._ordered_outputs(outs, cfg)
        tensors = [_rows(t, k) for t in tensors]
        det: DetectorSettings | None = s["detector"]
        pending = None
        if det is not None:
            if det.custom is not None:
                w, h = s["net"]
                info = ParserInfo(w, h, cfg.num_detected_classes, k, tuple(names), cfg.gie_unique_id)
                if any(_on_device(t) for t in tensors):
                    _sync_stream(backend.stream_handle, backend.device)
                try:
                    result = det.custom(dict(zip(names, tensors)), info)
                    rows = list(result)
                except Exception as e:  # noqa: BLE001 - the user's parser
                    raise InferenceError(
                        f"{self.name}: parse-bbox-func-name={cfg.parse_bbox_func_name} raised {e!r}\n"
                        f"{traceback.format_exc()}") from e
                _core.infer_attach_parsed(buffer, chunk, rows, det.cluster, det.attach)
            else:
                pending = _core.infer_detect_submit(tensors, det.decode, det.cluster, backend.stream_handle)
        elif s["classifier"] is not None:
            if any(_on_device(t) for t in tensors):
                _sync_stream(backend.stream_handle, backend.device)
            _core.infer_classify(buffer, chunk, [_host_f32(t).reshape(k, -1) for t in tensors], s["classifier"])
        elif cfg.network_type == 2:  # segmentation: the first output layer holds the class probabilities
            if _on_device(tensors[0]):
                _sync_stream(backend.stream_handle, backend.device)
            _core.infer_segmentation(buffer, chunk, _host_f32(tensors[0]), cfg.segmentation_output_order == 1,
                                     cfg.segmentation_threshold, cfg.gie_unique_id)
        if cfg.output_tensor_meta:
            _core.infer_tensor_meta(buffer, chunk, names, tensors, cfg.gie_unique_id, backend.stream_handle)
        return pending

    def __repr__(self) -> str:
        state = f"{self._backend_name} {self.input_shape}" if self.started else "stopped"
        return f"<InferEngine {self.name!r} {state} config={self.config.path!r}>"
