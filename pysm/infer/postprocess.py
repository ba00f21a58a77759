"""Output parsing for nvinfer-style engines.

Detectors use a built-in box decoder in the native core (CUDA for device outputs, the CPU twin
for host outputs), chosen by ``parse-bbox-func-name``:

``yolox``
    one output ``[B, N, 5+C]``: ``tx, ty, tw, th, obj, cls...`` on the stride 8/16/32 grids
    (``yolox-strides``); ``cx = (tx+gx)*s``, ``w = exp(tw)*s``, score ``obj*cls``.
``yolo``
    one output ``[B, N, 4+C]`` (score = class score) or ``[B, N, 5+C]`` (score = obj*class), or
    transposed ``[B, 4+C, N]``; boxes ``cx, cy, w, h`` or ``x1, y1, x2, y2`` (``yolo-box-format``),
    in network pixels or normalised (``box-coordinates-normalized``). Needs ``num-detected-classes``.
``detectnet_v2`` (default, as nvinfer's resnet parser)
    coverage ``[B, C, gh, gw]`` + bbox ``[B, 4C, gh, gw]``, ``detectnet-box-norm`` (35).
``ssd``
    boxes ``[B, N, 4]`` (``x1, y1, x2, y2``, normalised unless ``box-coordinates-normalized=0``)
    + scores ``[B, N, C]``; ``ssd-background-class`` is never a detection.

DeepStream parser names map onto these (``NvDsInferParseCustomResnet`` → detectnet_v2, names
containing ``yolox``/``yolo``/``ssd``). A Python parser ``package.module:function`` is called once
per batch as ``function(outputs, info)`` where ``outputs`` maps layer names to batch tensors
(objects with ``__dlpack__``: NumPy arrays or torch tensors) and ``info`` is a
:class:`ParserInfo`; it returns, per batch item, rows ``(class_id, confidence, x1, y1, x2, y2)``
in network-input pixels (a sequence of tuples or an ``[K, 6]`` array). pysm then clusters them
and writes ObjectMetadata.

Clustering follows ``cluster-mode`` (per-class values from ``[class-attrs-*]``):

``0`` GroupRectangles (nvinfer's default)
    DeepStream's shipped nvinfer is built without OpenCV and replaces it with NMS at IoU 0.5 and
    ``topk`` 20 for every class; pysm does the same.
``1`` DBSCAN
    boxes of a class whose distance ``1 - IoU`` is at most ``eps`` are neighbours; a box with at
    least ``minBoxes`` neighbours (itself included) whose scores sum to ``dbscan-min-score`` or
    more is a core box; each cluster becomes one box, the score-weighted mean of its members,
    scored with its best member; boxes in no cluster are dropped. A class with ``minBoxes=0`` is
    not clustered.
``2`` NMS
    greedy, per class (or across classes with ``nms-class-agnostic=1``), ``nms-iou-threshold``.
``3`` DBSCAN + NMS
    DBSCAN only drops the boxes in no cluster; NMS then picks among the members.
``4`` none.

Every mode then keeps the ``topk`` best per class; ``post-cluster-threshold`` and the
``detected-min/max-w/h`` gates apply when the objects are written. NMS runs on the GPU for device
outputs; DBSCAN runs on the host, as in nvinfer.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from pysm.errors import ConfigError

__all__ = ["BUILTIN_DECODERS", "builtin_decoder_for", "load_callable", "ParserInfo", "DetectorSettings"]

BUILTIN_DECODERS = ("yolox", "yolo", "detectnet_v2", "ssd")


def builtin_decoder_for(name: str | None) -> str | None:
    """The built-in decoder for a ``parse-bbox-func-name`` value (None: not built in)."""
    if not name:
        return "detectnet_v2"
    n = name.strip().lower()
    if n in BUILTIN_DECODERS:
        return n
    if ":" in n:
        return None
    if "yolox" in n:
        return "yolox"
    if "yolo" in n:
        return "yolo"
    if "ssd" in n:
        return "ssd"
    if "resnet" in n or "detectnet" in n:
        return "detectnet_v2"
    return None


def load_callable(spec: str, key: str, origin: str) -> Callable[..., Any]:
    """Import ``package.module:attr`` (``attr`` may be dotted); ConfigError naming the key if not."""
    mod_name, sep, attr = spec.rpartition(":")
    if not sep or not mod_name or not attr:
        raise ConfigError(f"{origin}: [property] {key}={spec}: expected 'package.module:function'")
    try:
        obj: Any = importlib.import_module(mod_name)
    except Exception as e:  # noqa: BLE001 - any import failure is a config problem here
        raise ConfigError(f"{origin}: [property] {key}={spec}: cannot import '{mod_name}': {e!r}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(f"{origin}: [property] {key}={spec}: '{mod_name}' has no attribute '{attr}'") from None
    if not callable(obj):
        raise ConfigError(f"{origin}: [property] {key}={spec}: '{attr}' is not callable")
    return obj


@dataclass(frozen=True)
class ParserInfo:
    """What a custom Python parser is told about the batch."""

    network_width: int
    network_height: int
    num_classes: int
    batch_size: int                  # items in this batch (rows of each output that are valid)
    output_names: tuple[str, ...]
    unique_id: int


class DetectorSettings:
    """Decoder, clustering and metadata parameters of a detector config, as the native ops take them."""

    def __init__(self, cfg, net_width: int, net_height: int, labels: list[str]):
        self.cfg = cfg
        origin = cfg.path or "element property"
        name = cfg.parse_bbox_func_name
        self.decoder = builtin_decoder_for(name)
        self.custom: Callable[..., Any] | None = None
        if self.decoder is None:
            if name and ":" in name:
                self.custom = load_callable(name, "parse-bbox-func-name", origin)
            else:
                raise ConfigError(
                    f"{origin}: [property] parse-bbox-func-name={name}: unknown parser; use yolox, yolo, detectnet_v2, "
                    f"ssd or a Python parser 'package.module:function'")
        n = max([cfg.num_detected_classes] + [c + 1 for c in cfg.class_attrs]) if cfg.class_attrs else 0
        per = [cfg.attrs_for(c) for c in range(n)]
        a = cfg.class_attrs_all
        self.decode = {
            "kind": self.decoder or "yolox",
            "num_classes": cfg.num_detected_classes,
            "net_width": net_width,
            "net_height": net_height,
            "default_threshold": a.pre_cluster_threshold,
            "thresholds": [x.pre_cluster_threshold for x in per] if len(per) > 1 else [],
            "max_candidates": cfg.nms_max_candidates,
            "strides": list(cfg.yolox_strides),
            "yolo_xyxy": cfg.yolo_box_format == "xyxy",
            "normalized": cfg.box_coordinates_normalized if "box-coordinates-normalized" in cfg.explicit
            else self.decoder == "ssd",
            "box_norm": cfg.detectnet_box_norm,
            "background_class": cfg.ssd_background_class,
        }
        many = len(per) > 1
        if cfg.cluster_mode == 0:
            # GroupRectangles needs OpenCV; DeepStream's nvinfer (built without it) runs NMS with
            # IoU 0.5 and top-k 20 for every class instead.
            nms = {"default_iou_threshold": 0.5, "iou_threshold": [], "default_topk": 20, "topk": [],
                   "topk_total": -1, "class_agnostic": cfg.nms_class_agnostic}
        else:
            nms = {
                "default_iou_threshold": a.nms_iou_threshold,
                "default_topk": -1 if cfg.nms_class_agnostic else a.topk,
                "iou_threshold": [x.nms_iou_threshold for x in per] if many else [],
                "topk": [x.topk for x in per] if many and not cfg.nms_class_agnostic else [],
                "topk_total": a.topk if cfg.nms_class_agnostic else -1,
                "class_agnostic": cfg.nms_class_agnostic,
            }
        self.cluster = {
            "mode": cfg.cluster_mode,
            "nms": nms,
            "default_eps": a.eps, "default_min_boxes": a.min_boxes, "default_min_score": a.dbscan_min_score,
            "eps": [x.eps for x in per] if many else [],
            "min_boxes": [x.min_boxes for x in per] if many else [],
            "min_score": [x.dbscan_min_score for x in per] if many else [],
        }
        self.attach = {
            "unique_id": cfg.gie_unique_id,
            "labels": labels,
            "all": _attrs_dict(a),
            "per_class": {c: _attrs_dict(x) for c, x in cfg.class_attrs.items()},
            "filter_out_class_ids": list(cfg.filter_out_class_ids),
            "net_width": net_width,
            "net_height": net_height,
        }


def _attrs_dict(a) -> dict[str, Any]:
    return {
        "border_color": a.border_color, "bg_color": a.bg_color,
        "post_cluster_threshold": a.post_cluster_threshold,
        "min_width": a.detected_min_w, "min_height": a.detected_min_h,
        "max_width": a.detected_max_w, "max_height": a.detected_max_h,
        "roi_top_offset": a.roi_top_offset, "roi_bottom_offset": a.roi_bottom_offset,
    }
