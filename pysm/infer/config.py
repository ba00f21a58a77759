"""DeepStream nvinfer configuration files, INI or YAML, plus element properties.

INI files have a ``[property]`` group and optional ``[class-attrs-all]`` / ``[class-attrs-<id>]``
groups; YAML files have the same groups as top-level mappings (``property:``,
``class-attrs-all:``), like DeepStream's ``dstest1_pgie_config.yml``. Element properties
(``unique-id``, ``batch-size``, ``infer-on-gie-id`` ...) override config keys, as in nvinfer.

Unknown keys give a :class:`ConfigWarning` naming the key; a wrong value raises
:class:`pysm.errors.ConfigError` naming the file and the key; a missing model, label or
calibration file raises :class:`pysm.errors.ModelNotFoundError` naming the path.

pysm-specific keys in ``[property]``:

``backend``
    ``tensorrt``, ``torch``, ``onnxruntime`` or ``auto`` (default): TensorRT when importable and a
    GPU is present, else torch on the GPU, else ONNX Runtime on the CPU.
``torch-model``
    A TorchScript file, an ExportedProgram (``.pt2``) or a ``module:factory`` callable returning an
    ``nn.Module``.
``padding-value``
    Letterbox fill in pixel units (0..255), one value or ``r;g;b`` (default 0).
``nms-class-agnostic``
    1 for class-agnostic NMS (default 0: class-wise, as nvinfer).
``nms-max-candidates``
    Candidates per frame kept for NMS, best first (default 1024).
``yolox-strides``, ``yolo-box-format`` (``cxcywh``/``xyxy``), ``box-coordinates-normalized``,
``detectnet-box-norm``, ``ssd-background-class``
    Box decoder details (see :mod:`pysm.infer.postprocess`).
``cuda-graph``
    torch backend on a GPU: unset (default) captures the forward pass in a CUDA graph when the
    model allows it and runs it eagerly otherwise; 1 requires the capture; 0 never captures.
``torch-optimize``
    1 (default): fuse SiLU, keep shape constants on the host and use channels-last memory for
    convolutional networks on the GPU; 0 runs the torch model exactly as given.
``torch-compile``
    0 (default), 1 or ``max-autotune``: compile the torch model with TorchInductor at start (fused
    kernels; ``max-autotune`` also benchmarks kernel choices, minutes on first use, cached by
    torch afterwards, the way a TensorRT engine build is). The model then always runs at the full
    ``batch-size``, so that partial batches do not trigger recompilation.

``scaling-filter`` (a DeepStream key) picks the resize: 0 nearest, 1 bilinear (OpenCV
INTER_LINEAR, the default when unset), 2/3/4 antialiased bilinear (a tent filter widened by the
downscale factor, like swscale's and PIL's bilinear) for large reductions.
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pysm.errors import ConfigError, ModelNotFoundError
from pysm.yaml_file import load_yaml

__all__ = ["ConfigWarning", "ClassAttributes", "InferConfig", "load_config", "PROPERTY_ALIASES"]


class ConfigWarning(UserWarning):
    """A config key pysm does not know, or knows but does not act on."""


# ---- value parsers (accept the INI string form and typed values from YAML / properties) ---------

def _split(v: Any, seps: str = ";") -> list[str]:
    if isinstance(v, (list, tuple)):
        return [str(x).strip() for x in v if str(x).strip() != ""]
    s = str(v).strip()
    for sep in seps[1:]:
        s = s.replace(sep, seps[0])
    return [p.strip() for p in s.split(seps[0]) if p.strip() != ""]


def _int(v: Any) -> int:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return int(str(v).strip(), 0)


def _float(v: Any) -> float:
    return float(str(v).strip()) if not isinstance(v, (int, float)) else float(v)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "on"):
        return True
    if s in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 0/1 or true/false")


def _auto_bool(v: Any) -> bool | None:
    """0/1, or auto / -1 for "decide at run time" (None)."""
    if v is None or str(v).strip().lower() in ("auto", "-1", ""):
        return None
    return _bool(v)


def _str(v: Any) -> str:
    return str(v).strip()


def _int_list(v: Any) -> list[int]:
    return [_int(x) for x in _split(v, ";:,")]


def _float_list(v: Any) -> list[float]:
    return [_float(x) for x in _split(v, ";,")]


def _str_list(v: Any) -> list[str]:
    return _split(v, ";")


def _choice(*allowed: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        i = _int(v)
        if i not in allowed:
            raise ValueError(f"expected one of {', '.join(map(str, allowed))}")
        return i
    return parse


def _min(lo: int) -> Callable[[Any], int]:
    def parse(v: Any) -> int:
        i = _int(v)
        if i < lo:
            raise ValueError(f"must be >= {lo}")
        return i
    return parse


def _range(v: Any, lo: int, hi: int) -> int:
    i = _int(v)
    if not lo <= i <= hi:
        raise ValueError(f"must be in {lo}..{hi}")
    return i


def _dims(v: Any) -> list[int]:
    d = [_int(x) for x in _split(v, ";x,")]
    if len(d) != 3 or any(x <= 0 for x in d):
        raise ValueError("expected C;H;W with three positive integers")
    return d


def _color(v: Any) -> tuple[float, float, float, float]:
    c = _float_list(v)
    if len(c) not in (3, 4) or any(not 0 <= x <= 1 for x in c):
        raise ValueError("expected r;g;b;a with values in 0..1")
    return (c[0], c[1], c[2], c[3] if len(c) == 4 else 1.0)


def _backend(v: Any) -> str:
    s = _str(v).lower()
    aliases = {"trt": "tensorrt", "pytorch": "torch", "ort": "onnxruntime", "onnx": "onnxruntime"}
    s = aliases.get(s, s)
    if s not in ("auto", "tensorrt", "torch", "onnxruntime"):
        raise ValueError("expected tensorrt, torch, onnxruntime or auto")
    return s


def _compile_mode(v: Any) -> str | None:
    s = _str(v).lower()
    if s in ("0", "false", "no", "off", ""):
        return None
    if s in ("1", "true", "yes", "on", "default"):
        return "default"
    if s in ("max-autotune", "max-autotune-no-cudagraphs"):
        return "max-autotune-no-cudagraphs"  # pysm captures its own CUDA graphs
    raise ValueError("expected 0, 1 (default mode) or max-autotune")


def _box_format(v: Any) -> str:
    s = _str(v).lower()
    if s not in ("cxcywh", "xyxy"):
        raise ValueError("expected cxcywh or xyxy")
    return s


# ---- the keys -----------------------------------------------------------------------------------

# [property] key -> (attribute, parser, is_path)
_PROPERTY_KEYS: dict[str, tuple[str, Callable[[Any], Any], bool]] = {
    # model and labels
    "onnx-file": ("onnx_file", _str, True),
    "model-engine-file": ("model_engine_file", _str, True),
    "int8-calib-file": ("int8_calib_file", _str, True),
    "labelfile-path": ("labelfile_path", _str, True),
    # batching, precision, input
    "batch-size": ("batch_size", _min(1), False),
    "network-mode": ("network_mode", _choice(0, 1, 2, 3), False),
    "infer-dims": ("infer_dims", _dims, False),
    "net-scale-factor": ("net_scale_factor", _float, False),
    "offsets": ("offsets", _float_list, False),
    "model-color-format": ("model_color_format", _choice(0, 1, 2), False),
    "network-input-order": ("network_input_order", _choice(0, 1), False),
    "maintain-aspect-ratio": ("maintain_aspect_ratio", _bool, False),
    "symmetric-padding": ("symmetric_padding", _bool, False),
    "scaling-filter": ("scaling_filter", _int, False),
    "scaling-compute-hw": ("scaling_compute_hw", _int, False),
    # role, scheduling, identity
    "network-type": ("network_type", _choice(0, 1, 2, 3, 100), False),
    "num-detected-classes": ("num_detected_classes", _min(1), False),
    "interval": ("interval", _min(0), False),
    "gie-unique-id": ("gie_unique_id", _int, False),
    "gpu-id": ("gpu_id", _min(0), False),
    # secondary mode
    "process-mode": ("process_mode", _choice(1, 2), False),
    "operate-on-gie-id": ("operate_on_gie_id", _int, False),
    "operate-on-class-ids": ("operate_on_class_ids", _int_list, False),
    "input-object-min-width": ("input_object_min_width", _min(0), False),
    "input-object-min-height": ("input_object_min_height", _min(0), False),
    "input-object-max-width": ("input_object_max_width", _min(0), False),
    "input-object-max-height": ("input_object_max_height", _min(0), False),
    "secondary-reinfer-interval": ("secondary_reinfer_interval", lambda v: _range(v, 0, 2**31 - 1), False),
    # clustering and outputs
    "cluster-mode": ("cluster_mode", _choice(0, 1, 2, 3, 4), False),
    "output-tensor-meta": ("output_tensor_meta", _bool, False),
    "classifier-threshold": ("classifier_threshold", _float, False),
    "classifier-type": ("classifier_type", _str, False),
    # Accepted; pysm classifies synchronously (a new object's result is attached on its own frame,
    # not a later one) and the object history spares the model tracked objects as async mode does.
    "classifier-async-mode": ("classifier_async_mode", _bool, False),
    "parse-bbox-func-name": ("parse_bbox_func_name", _str, False),
    "parse-classifier-func-name": ("parse_classifier_func_name", _str, False),
    "custom-lib-path": ("custom_lib_path", _str, True),
    "output-blob-names": ("output_blob_names", _str_list, False),
    "filter-out-class-ids": ("filter_out_class_ids", _int_list, False),
    "segmentation-threshold": ("segmentation_threshold", _float, False),
    "segmentation-output-order": ("segmentation_output_order", _choice(0, 1), False),
    # pysm-specific
    "backend": ("backend", _backend, False),
    "torch-model": ("torch_model", _str, False),
    "padding-value": ("padding_value", _float_list, False),
    "nms-class-agnostic": ("nms_class_agnostic", _bool, False),
    "nms-max-candidates": ("nms_max_candidates", lambda v: _range(v, 1, 8192), False),
    "yolox-strides": ("yolox_strides", _int_list, False),
    "yolo-box-format": ("yolo_box_format", _box_format, False),
    "box-coordinates-normalized": ("box_coordinates_normalized", _bool, False),
    "detectnet-box-norm": ("detectnet_box_norm", _float, False),
    "ssd-background-class": ("ssd_background_class", _int, False),
    "cuda-graph": ("cuda_graph", _auto_bool, False),
    "torch-optimize": ("torch_optimize", _bool, False),
    "torch-compile": ("torch_compile", _compile_mode, False),
}

# DeepStream keys accepted without effect: they tune TensorRT/DLA builds, memory pools or debug
# dumps that pysm does not have, so the result does not change.
_ACCEPTED_WITHOUT_EFFECT = {
    "workspace-size", "enable-dla", "use-dla-core", "tensor-meta-pool-size", "disable-output-host-copy",
    "layer-device-precision", "output-io-formats", "force-implicit-batch-dim", "dump-input-tensor",
    "dump-output-tensor", "warmup-engine", "strongly-typed", "dynamic-properties", "engine-create-func-name",
    "crop-objects-to-roi-boundary", "output-instance-mask", "parse-bbox-instance-mask-func-name",
    "uff-input-order", "uff-input-blob-name", "input-tensor-meta",
    "raw-output-file-write", "clip-object-outside-roi", "model-file", "proto-file", "uff-file",
    "tlt-encoded-model", "tlt-model-key", "custom-network-config", "mean-file",
}
# Of those, keys that name a model format pysm cannot load: an error if they are the only model.
_FOREIGN_MODEL_KEYS = ("model-file", "proto-file", "uff-file", "tlt-encoded-model", "custom-network-config")

# [class-attrs-*] key -> (attribute, parser)
_CLASS_KEYS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "pre-cluster-threshold": ("pre_cluster_threshold", _float),
    "threshold": ("pre_cluster_threshold", _float),  # legacy name
    "post-cluster-threshold": ("post_cluster_threshold", _float),
    "nms-iou-threshold": ("nms_iou_threshold", _float),
    "topk": ("topk", _int),
    "eps": ("eps", _float),
    "group-threshold": ("group_threshold", _int),
    "minBoxes": ("min_boxes", _int),
    "dbscan-min-score": ("dbscan_min_score", _float),
    "roi-top-offset": ("roi_top_offset", _min(0)),
    "roi-bottom-offset": ("roi_bottom_offset", _min(0)),
    "detected-min-w": ("detected_min_w", _min(0)),
    "detected-min-h": ("detected_min_h", _min(0)),
    "detected-max-w": ("detected_max_w", _min(0)),
    "detected-max-h": ("detected_max_h", _min(0)),
    "border-color": ("border_color", _color),
    "bg-color": ("bg_color", _color),
}

# Element properties (nvinfer GObject names) -> [property] keys they override.
PROPERTY_ALIASES: dict[str, str] = {
    "unique-id": "gie-unique-id",
    "infer-on-gie-id": "operate-on-gie-id",
    "infer-on-class-ids": "operate-on-class-ids",
}
# Element properties that are not config keys.
_ELEMENT_ONLY = {"config-file-path", "name"}


@dataclass
class ClassAttributes:
    """One ``[class-attrs-*]`` group (defaults as nvinfer)."""

    pre_cluster_threshold: float = 0.2
    post_cluster_threshold: float = 0.0
    nms_iou_threshold: float = 0.3
    topk: int = -1
    eps: float = 0.0
    group_threshold: int = 0
    min_boxes: int = 0
    dbscan_min_score: float = 0.0
    roi_top_offset: int = 0
    roi_bottom_offset: int = 0
    detected_min_w: int = 0
    detected_min_h: int = 0
    detected_max_w: int = 0
    detected_max_h: int = 0
    border_color: tuple[float, float, float, float] | None = None
    bg_color: tuple[float, float, float, float] | None = None


@dataclass
class InferConfig:
    """A parsed nvinfer configuration. Attribute names are the keys with ``_`` for ``-``."""

    path: str | None = None
    onnx_file: str | None = None
    model_engine_file: str | None = None
    int8_calib_file: str | None = None
    labelfile_path: str | None = None
    batch_size: int = 1
    network_mode: int = 0
    infer_dims: list[int] | None = None
    net_scale_factor: float = 1.0
    offsets: list[float] = field(default_factory=list)
    model_color_format: int = 0
    network_input_order: int = 0
    maintain_aspect_ratio: bool = False
    symmetric_padding: bool = False
    scaling_filter: int = 0
    scaling_compute_hw: int = 0
    network_type: int = 0
    num_detected_classes: int = 0
    interval: int = 0
    gie_unique_id: int = 15
    gpu_id: int = 0
    process_mode: int = 1
    operate_on_gie_id: int = -1
    operate_on_class_ids: list[int] = field(default_factory=list)
    input_object_min_width: int = 0
    input_object_min_height: int = 0
    input_object_max_width: int = 0
    input_object_max_height: int = 0
    secondary_reinfer_interval: int = 2**31 - 1
    cluster_mode: int = 0
    output_tensor_meta: bool = False
    classifier_threshold: float = 0.5
    classifier_type: str = ""
    classifier_async_mode: bool = False
    parse_bbox_func_name: str | None = None
    parse_classifier_func_name: str | None = None
    custom_lib_path: str | None = None
    output_blob_names: list[str] = field(default_factory=list)
    filter_out_class_ids: list[int] = field(default_factory=list)
    segmentation_threshold: float = 0.5
    segmentation_output_order: int = 0  # 0: [N, C, H, W], 1: [N, H, W, C]
    backend: str = "auto"
    torch_model: str | None = None
    padding_value: list[float] = field(default_factory=lambda: [0.0])
    nms_class_agnostic: bool = False
    nms_max_candidates: int = 1024
    yolox_strides: list[int] = field(default_factory=lambda: [8, 16, 32])
    yolo_box_format: str = "cxcywh"
    box_coordinates_normalized: bool = False
    detectnet_box_norm: float = 35.0
    ssd_background_class: int = -1
    cuda_graph: bool | None = None  # None: when the model allows it
    torch_optimize: bool = True
    torch_compile: str | None = None
    class_attrs_all: ClassAttributes = field(default_factory=ClassAttributes)
    class_attrs: dict[int, ClassAttributes] = field(default_factory=dict)
    #: keys present in the file or properties (hyphenated), for "was it set" questions
    explicit: set[str] = field(default_factory=set)
    #: foreign model keys seen (model-file, uff-file, ...)
    foreign_models: dict[str, str] = field(default_factory=dict)

    # -- derived views ------------------------------------------------------------------------
    @property
    def precision(self) -> str:
        """``fp32``, ``int8`` or ``fp16`` (network-mode 3 'best' builds fp16)."""
        return {0: "fp32", 1: "int8", 2: "fp16", 3: "fp16"}[self.network_mode]

    @property
    def is_secondary(self) -> bool:
        return self.process_mode == 2

    def attrs_for(self, class_id: int) -> ClassAttributes:
        return self.class_attrs.get(class_id, self.class_attrs_all)

    def labels(self) -> list[list[str]]:
        """Label file lines, each split on ';' (detectors: one class per line; classifiers: one
        output layer per line). Empty when there is no label file."""
        if not self.labelfile_path:
            return []
        with open(self.labelfile_path, encoding="utf-8") as f:
            return [[p.strip() for p in line.rstrip("\n").split(";") if p.strip()] for line in f if line.strip()]

    def detector_labels(self) -> list[str]:
        lines = self.labels()
        if len(lines) == 1 and len(lines[0]) > 1:  # all classes on one line, ';'-separated
            return lines[0]
        return [ln[0] for ln in lines]

    def check_files(self) -> None:
        """Raise ModelNotFoundError for a named file that does not exist, or ConfigError when no
        model is named at all."""
        where = f" (config {self.path})" if self.path else ""
        for key in ("onnx-file", "labelfile-path", "int8-calib-file"):
            p = getattr(self, key.replace("-", "_"))
            if p and not os.path.exists(p):
                raise ModelNotFoundError(f"{key}: file '{p}' does not exist{where}; fix the path")
        tm = self.torch_model
        if tm and not _is_factory(tm) and not os.path.exists(tm):
            raise ModelNotFoundError(f"torch-model: file '{tm}' does not exist{where}; fix the path")
        eng = self.model_engine_file
        if eng and not os.path.exists(eng) and not self.onnx_file and not tm:
            raise ModelNotFoundError(
                f"model-engine-file: file '{eng}' does not exist and no onnx-file is given to build it from{where}")
        if not (self.onnx_file or eng or tm):
            foreign = ", ".join(self.foreign_models) or "none"
            raise ConfigError(
                f"{self.path or 'properties'}: [property] no model: set onnx-file, model-engine-file or torch-model "
                f"(formats pysm cannot load: {foreign})")


def _is_factory(spec: str) -> bool:
    """``package.module:callable`` (not a Windows drive letter, not a path)."""
    if ":" not in spec:
        return False
    mod, _, fn = spec.rpartition(":")
    return bool(mod) and fn.isidentifier() and "/" not in mod and not os.path.exists(spec)


# ---- reading files ------------------------------------------------------------------------------

def _read_ini(path: str) -> dict[str, dict[str, Any]]:
    cp = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=("#",),
                                   inline_comment_prefixes=None, delimiters=("=",))
    cp.optionxform = str  # keys are case-sensitive (minBoxes)
    try:
        with open(path, encoding="utf-8") as f:
            cp.read_file(f)
    except configparser.Error as e:
        raise ConfigError(f"{path}: not a valid INI nvinfer config: {e}".replace("\n", " ")) from None
    return {s: dict(cp.items(s)) for s in cp.sections()}


def _read_yaml(path: str) -> dict[str, dict[str, Any]]:
    doc = load_yaml(path, "nvinfer config")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: a YAML nvinfer config is a mapping with 'property:' and 'class-attrs-*:' groups")
    out: dict[str, dict[str, Any]] = {}
    for section, body in doc.items():
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigError(f"{path}: group '{section}' must be a mapping of keys to values")
        out[str(section)] = {str(k): v for k, v in body.items()}
    return out


def _read(path: str) -> dict[str, dict[str, Any]]:
    if path.lower().endswith((".yml", ".yaml")):
        return _read_yaml(path)
    return _read_ini(path)


def _resolve(base: str | None, value: str) -> str:
    if not value or os.path.isabs(value) or base is None:
        return value
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(base)), value))


def _apply_property(cfg: InferConfig, key: str, value: Any, origin: str, base: str | None) -> None:
    key = key.strip()
    where = f"{origin}: [property] {key}"
    if key in _PROPERTY_KEYS:
        attr, parse, is_path = _PROPERTY_KEYS[key]
        try:
            v = parse(value)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{where}={value!r}: {e}") from None
        if attr == "offsets" and len(v) > 3:
            raise ConfigError(f"{where}={value!r}: at most 3 per-channel offsets")
        if attr == "padding_value" and len(v) not in (1, 3):
            raise ConfigError(f"{where}={value!r}: one value or r;g;b")
        if attr == "torch_model" and not _is_factory(v):
            v = _resolve(base, v)
        if is_path:
            v = _resolve(base, v)
        setattr(cfg, attr, v)
        cfg.explicit.add(key)
    elif key in _ACCEPTED_WITHOUT_EFFECT:
        if key in _FOREIGN_MODEL_KEYS:
            cfg.foreign_models[key] = str(value)
        cfg.explicit.add(key)
    else:
        warnings.warn(f"{origin}: unknown key '{key}' in [property] ignored", ConfigWarning, stacklevel=4)


def _apply_class_attrs(attrs: ClassAttributes, section: str, body: dict[str, Any], origin: str) -> None:
    for key, value in body.items():
        key = str(key).strip()
        if key not in _CLASS_KEYS:
            warnings.warn(f"{origin}: unknown key '{key}' in [{section}] ignored", ConfigWarning, stacklevel=4)
            continue
        attr, parse = _CLASS_KEYS[key]
        try:
            setattr(attrs, attr, parse(value))
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{origin}: [{section}] {key}={value!r}: {e}") from None


def load_config(path: str | os.PathLike | None = None, properties: dict[str, Any] | None = None) -> InferConfig:
    """Parse an nvinfer config file (INI or YAML) and apply element properties over it.

    Property names may use ``-`` or ``_`` (``batch_size=4``); nvinfer's element names
    (``unique-id``, ``infer-on-gie-id``, ``infer-on-class-ids``) map to their config keys.
    """
    cfg = InferConfig()
    props = {str(k).replace("_", "-"): v for k, v in (properties or {}).items()}
    if path is None and props.get("config-file-path"):
        path = props["config-file-path"]
    if path is not None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ModelNotFoundError(f"config-file-path: file '{path}' does not exist; fix the path")
        cfg.path = os.path.abspath(path)
        groups = _read(path)
        if "property" not in groups:
            raise ConfigError(f"{path}: no [property] group; an nvinfer config needs one")
        # class-attrs-all first, so that per-class groups start from it.
        pending: list[tuple[int, str, dict]] = []
        for section, body in groups.items():
            if section == "property":
                for k, v in body.items():
                    _apply_property(cfg, k, v, path, path)
            elif section == "class-attrs-all":
                _apply_class_attrs(cfg.class_attrs_all, section, body, path)
            elif section.startswith("class-attrs-"):
                try:
                    cid = int(section[len("class-attrs-"):])
                except ValueError:
                    raise ConfigError(f"{path}: group [{section}]: expected class-attrs-all or class-attrs-<id>") from None
                pending.append((cid, section, body))
            else:
                warnings.warn(f"{path}: unknown group [{section}] ignored", ConfigWarning, stacklevel=2)
        for cid, section, body in pending:
            attrs = dataclasses.replace(cfg.class_attrs_all)
            _apply_class_attrs(attrs, section, body, path)
            cfg.class_attrs[cid] = attrs
    for key, value in props.items():
        if key in _ELEMENT_ONLY or value is None:
            continue
        ckey = PROPERTY_ALIASES.get(key, key)
        if key == "infer-on-gie-id" and _int(value) < 0:
            continue  # -1: the element default, "all producers"
        _apply_property(cfg, ckey, value, "element property", None)
    _validate(cfg)
    return cfg


def _validate(cfg: InferConfig) -> None:
    origin = cfg.path or "element property"
    if cfg.network_type == 3:
        raise ConfigError(f"{origin}: [property] network-type=3: instance segmentation is not supported by pysm yet; "
                          "use network-type=100 with output-tensor-meta=1")
    if cfg.network_mode == 1 and "int8-calib-file" not in cfg.explicit and cfg.backend == "tensorrt" \
            and not (cfg.model_engine_file and os.path.exists(cfg.model_engine_file)):
        raise ConfigError(f"{origin}: [property] network-mode=1 (int8) needs int8-calib-file to build an engine")
    if cfg.infer_dims is not None and cfg.model_color_format == 2 and cfg.infer_dims[0] != 1:
        raise ConfigError(f"{origin}: [property] infer-dims={cfg.infer_dims}: model-color-format=2 (GRAY) needs 1 channel")
    if cfg.infer_dims is not None and cfg.model_color_format in (0, 1) and cfg.infer_dims[0] != 3:
        raise ConfigError(f"{origin}: [property] infer-dims={cfg.infer_dims}: RGB/BGR input needs 3 channels")
    if cfg.custom_lib_path and cfg.parse_bbox_func_name and ":" not in cfg.parse_bbox_func_name:
        from pysm.infer.postprocess import builtin_decoder_for

        if builtin_decoder_for(cfg.parse_bbox_func_name) is None:
            raise ConfigError(
                f"{origin}: [property] parse-bbox-func-name={cfg.parse_bbox_func_name}: pysm cannot load C/C++ parser "
                f"libraries (custom-lib-path); use a built-in decoder (yolox, yolo, detectnet_v2, ssd) or a Python "
                f"parser 'module:function'")
