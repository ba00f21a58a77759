"""Buffers and their metadata (pyservicemaker's Buffer, BatchMetadata, FrameMetadata, ...).

The metadata lives in native structures; these classes are thin views of it:

* :class:`Buffer` — one batch: ``batch_size`` frames and one :class:`BatchMetadata`.
* :class:`BatchMetadata` → :class:`FrameMetadata` → :class:`ObjectMetadata` →
  :class:`ClassifierMetadata`; :class:`DisplayMetadata` per frame; :class:`UserMetadata`
  (:class:`TensorOutputUserMetadata`, :class:`SegmentationUserMetadata`,
  :class:`EventMessageUserMetadata`, JSON user data) on batches, frames and objects.

Lifetime: a view never keeps its batch alive. Once the Buffer (and any native stage holding
the batch) is gone, or a node was removed, using a view of it raises ``ReferenceError``
(:class:`pysm.errors.ExpiredViewError`) — it never crashes. Copy what you need to keep.

Creating metadata: ``batch_meta.acquire_*_meta()`` returns a node owned by the batch; fill it and
``append`` it to its parent (frame, object or batch). ``frame.remove(obj)`` detaches a node.

Vectorised reads: ``frame.boxes()``, ``frame.class_ids()``, ``frame.confidences()``,
``frame.object_ids()``, ``frame.unique_component_ids()`` and ``frame.object_arrays()`` return NumPy
arrays for all objects of a frame in one call; ``batch_meta.extract(max_items)`` summarises a batch.

Threads: appends, removes, iteration steps and the vectorised reads lock the batch, so several
threads may add metadata to one batch. Plain field reads/writes are not locked.
"""

from __future__ import annotations

import enum

from pysm._native._core import (
    MAX_ELEMENTS_IN_DISPLAY_META,
    UNTRACKED_OBJECT_ID,
    BatchMetadata,
    Buffer,
    ClassifierMetadata,
    DisplayMetadata,
    EventMessageUserMetadata,
    FrameMetadata,
    LabelInfo,
    ObjectMetadata,
    SegmentationUserMetadata,
    TensorOutputUserMetadata,
    UserMetadata,
)


class UserMetaType(enum.IntEnum):
    """``UserMetadata.meta_type`` values (DeepStream's NvDsMetaType numbers where one exists)."""

    CUSTOM = 0
    PAYLOAD = 8  # NVDS_PAYLOAD_META
    EVENT_MESSAGE = 9  # NVDS_EVENT_MSG_META
    TENSOR_OUTPUT = 12  # NVDSINFER_TENSOR_OUTPUT_META
    SEGMENTATION = 13  # NVDSINFER_SEGMENTATION_META
    JSON = 1001  # pysm: data set with set_user_data_json


class EventType(enum.IntEnum):
    """``EventMessageUserMetadata.event_type`` (DeepStream's NvDsEventType)."""

    ENTRY = 0
    EXIT = 1
    MOVING = 2
    STOPPED = 3
    EMPTY = 4
    PARKED = 5
    RESET = 6
    RESERVED = 0x100
    CUSTOM = 0x101


class ObjectType(enum.IntEnum):
    """``EventMessageUserMetadata.obj_type`` (DeepStream's NvDsObjectType)."""

    VEHICLE = 0
    PERSON = 1
    FACE = 2
    BAG = 3
    BICYCLE = 4
    ROADSIGN = 5
    VEHICLE_EXT = 6
    PERSON_EXT = 7
    FACE_EXT = 8
    PRODUCT = 9
    PRODUCT_EXT = 10
    RESERVED = 0x100
    CUSTOM = 0x101
    UNKNOWN = 0x102


__all__ = [
    "Buffer", "BatchMetadata", "FrameMetadata", "ObjectMetadata", "ClassifierMetadata", "LabelInfo",
    "DisplayMetadata", "UserMetadata", "TensorOutputUserMetadata", "SegmentationUserMetadata",
    "EventMessageUserMetadata", "UserMetaType", "EventType", "ObjectType", "UNTRACKED_OBJECT_ID",
    "MAX_ELEMENTS_IN_DISPLAY_META",
]
