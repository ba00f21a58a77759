"""Source-list YAML files (``batch_capture``'s input) and recording settings: SourceConfig,
SensorInfo, CameraInfo, RecordConfig (pyservicemaker's source_config module)."""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any, Optional

from pysm.yaml_file import load_yaml

from pysm.errors import ConfigError

SensorInfo = namedtuple("SensorInfo", ["sensor_id", "sensor_name", "uri"])

_CAMERA_KEYS = ("camera-type", "camera-width", "camera-height", "camera-fps-n", "camera-fps-d",
                "camera-v4l2-dev-node", "camera-video-format", "camera-csi-sensor-id", "gpu-id",
                "nvbuf-mem-type", "nvvideoconvert-copy-hw")
CameraInfo = namedtuple("CameraInfo", [k.replace("-", "_") for k in _CAMERA_KEYS],
                        defaults=[None] * len(_CAMERA_KEYS))


class SourceConfig:
    """``SourceConfig().load(path)``: ``sensor_list``, ``camera_list``, ``source_type``,
    ``source_properties``."""

    def __init__(self) -> None:
        self.sensor_list: list[SensorInfo] = []
        self.camera_list: list[CameraInfo] = []
        self.source_type: str = "nvurisrcbin"
        self.source_properties: dict[str, Any] = {}

    def load(self, path: str) -> "SourceConfig":
        doc = load_yaml(path, "source list")
        if not isinstance(doc, dict):
            raise ConfigError(f"source list '{path}': expected a mapping with 'source-list'")
        sensors = doc.get("source-list") or []
        if not isinstance(sensors, list):
            raise ConfigError(f"source list '{path}': 'source-list' must be a list")
        self.sensor_list = []
        for i, s in enumerate(sensors):
            if not isinstance(s, dict) or not s.get("uri"):
                raise ConfigError(f"source list '{path}': entry #{i} of 'source-list' needs a 'uri'")
            self.sensor_list.append(SensorInfo(str(s.get("sensor-id", f"UniqueSensorId{i}")),
                                               str(s.get("sensor-name", f"UniqueSensorName{i}")), str(s["uri"])))
        cfg = doc.get("source-config") or {}
        if not isinstance(cfg, dict):
            raise ConfigError(f"source list '{path}': 'source-config' must be a mapping")
        self.source_type = str(cfg.get("source-bin", "nvurisrcbin"))
        self.source_properties = dict(cfg.get("properties") or {})
        cams = doc.get("camera-list") or []
        self.camera_list = []
        for i, c in enumerate(cams):
            if not isinstance(c, dict):
                raise ConfigError(f"source list '{path}': entry #{i} of 'camera-list' must be a mapping")
            unknown = set(c) - set(_CAMERA_KEYS)
            if unknown:
                raise ConfigError(f"source list '{path}': camera #{i} has unknown keys {sorted(unknown)}")
            self.camera_list.append(CameraInfo(**{k.replace("-", "_"): v for k, v in c.items()}))
        if self.camera_list:
            self.source_type = "camerabin"
        return self


@dataclass
class RecordConfig:
    """Smart-record settings for ``batch_capture(record_config=...)``."""

    recording_type: str = "local"
    proto_lib: Optional[str] = None
    conn_str: Optional[str] = None
    msgconv_config_file: Optional[str] = None
    proto_config_file: Optional[str] = None
    topic_list: Optional[str] = None
    rec_cache: int = 20
    rec_container: int = 0
    rec_dir_path: str = "."
    rec_mode: int = 0

    def __post_init__(self) -> None:
        if self.recording_type not in ("local", "cloud"):
            raise ValueError(f"RecordConfig.recording_type must be 'local' or 'cloud', got {self.recording_type!r}")
        if self.recording_type == "cloud":
            missing = [k for k in ("proto_lib", "conn_str", "msgconv_config_file", "proto_config_file", "topic_list")
                       if not getattr(self, k)]
            if missing:
                raise ValueError(f"RecordConfig: cloud recording needs {', '.join(missing)}")


__all__ = ["SourceConfig", "SensorInfo", "CameraInfo", "RecordConfig"]
