"""The Flow API (pyservicemaker's Flow): each method adds elements to one Pipeline and returns a
new Flow over the streams it created. Element names are ``<method>-<role>-<n>``; keyword
arguments become element properties (``gpu_id=1`` -> ``gpu-id``)."""

from __future__ import annotations

import enum
import os
import urllib.parse
from collections import namedtuple
from typing import Any, Callable, Iterable, Optional, Union

from pysm.errors import ConfigError, ModelNotFoundError, NotSupportedYet, SourceError
from pysm.pipeline import Feeder, Pipeline, Receiver


class RenderMode(enum.IntEnum):
    DISPLAY = 1
    DISCARD = 2
    STREAM = 3


class MediaType(str, enum.Enum):
    VIDEO = "video"
    AUDIO = "audio"


class StreamInfo(namedtuple("StreamInfo", ["originator", "template", "media_type"], defaults=["", "generic"])):
    """One stream of a Flow: the element it comes from and the pad (template) to link from.
    ``StreamInfo("elem/template")`` is split; the media type follows the template prefix."""

    def __new__(cls, originator: str, template: str = "", media_type: str = "generic") -> "StreamInfo":
        if not template and "/" in originator:
            originator, template = originator.split("/", 1)
        if media_type == "generic":
            if template.startswith(("asrc_", "audio_")):
                media_type = "audio"
            elif template.startswith(("vsrc_", "video_")):
                media_type = "video"
        return super().__new__(cls, originator, template, media_type)


def _media_types(media_types: Any) -> list[MediaType]:
    items = media_types if isinstance(media_types, (list, tuple, set)) else [media_types]
    out: list[MediaType] = []
    for m in items:
        s = m.value if isinstance(m, MediaType) else str(m).lower()
        if s in ("av", "both", "all"):
            out += [MediaType.VIDEO, MediaType.AUDIO]
        elif s in ("video", "audio"):
            out.append(MediaType(s))
        else:
            raise ConfigError(f"unknown media type {m!r} (use 'video', 'audio' or 'av')")
    return out


def _props(kw: dict) -> dict:
    return {str(k).replace("_", "-"): v for k, v in kw.items()}


def _check_uri(uri: str) -> str:
    parsed = urllib.parse.urlparse(uri)
    if parsed.scheme in ("", "file"):
        path = urllib.parse.unquote(parsed.path) if parsed.scheme == "file" else uri
        if not os.path.exists(path):
            raise SourceError(f"File {path} doesn't exist")
        return "file://" + os.path.abspath(path) if parsed.scheme == "" else uri
    return uri


class Flow:
    """``Flow(pipeline, streams=None, parent=None)``."""

    def __init__(self, pipeline: Pipeline, streams: Optional[list] = None, parent: Optional["Flow"] = None) -> None:
        self._pipeline = pipeline
        self._streams: list[StreamInfo] = [s if isinstance(s, StreamInfo) else StreamInfo(*s) if isinstance(s, tuple)
                                           else StreamInfo(str(s)) for s in (streams or [])]
        self._parent = parent
        self._batch_size = parent._batch_size if parent is not None else 0
        if not hasattr(pipeline, "_flow_counters"):
            pipeline._flow_counters = {}

    # ---- helpers --------------------------------------------------------------------------------
    @property
    def pipeline(self) -> Pipeline:
        return self._pipeline

    @property
    def streams(self) -> list[StreamInfo]:
        return list(self._streams)

    def _names(self, method: str) -> Callable[[str], str]:
        counters = self._pipeline._flow_counters

        def name(role: str) -> str:
            n = counters.get(method, 0)
            counters[method] = n + 1
            return f"{method}-{role}-{n}"

        return name

    def _child(self, streams: list, batch_size: Optional[int] = None) -> "Flow":
        f = Flow(self._pipeline, streams, self)
        if batch_size is not None:
            f._batch_size = batch_size
        return f

    def _single(self) -> StreamInfo:
        if len(self._streams) != 1:
            raise Exception("Upstream error: multiple streams must be batched")
        return self._streams[0]

    def _link_from(self, stream: StreamInfo, dst: str, sink_hint: str = "") -> None:
        self._pipeline.link((stream.originator, dst), (stream.template, sink_hint))

    # ---- sources --------------------------------------------------------------------------------
    def capture(self, inputs: list, source_manager: Any = None, media_types: Any = (MediaType.VIDEO,), **kw: Any) -> "Flow":
        """One URI source per input (unbatched streams: follow with ``batch()``)."""
        types = _media_types(media_types)
        if MediaType.AUDIO in types:
            raise NotSupportedYet("Flow.capture: audio streams are not supported by pysm yet")
        name = self._names("capture")
        if source_manager is not None:
            src = name("dynamicsrc")
            self._pipeline.add("nvdsdynamicsrcbin", src, _props(kw))
            for action in ("add-source", "remove-source", "terminate"):
                source_manager.attach(action, self._pipeline[src])
            for uri in inputs or []:
                source_manager.add_source(_check_uri(uri))
            return self._child([StreamInfo(src, "", "video")])
        if not inputs:
            raise TypeError("capture() needs a list of URIs (or a source_manager)")
        streams = []
        for uri in inputs:
            src = name("source")
            self._pipeline.add("nvurisrcbin", src, {"uri": _check_uri(uri), **_props(kw)})
            streams.append(StreamInfo(src, "vsrc_%u", "video"))
        return self._child(streams)

    def batch_capture(self, input: Union[list, str], record_config: Any = None,
                      media_types: Any = (MediaType.VIDEO,), **kw: Any) -> "Flow":
        """Sources batched by one mux: a list of URIs or a source-list YAML."""
        types = _media_types(media_types)
        if types != [MediaType.VIDEO]:
            raise NotSupportedYet("Flow.batch_capture: only video is supported by pysm yet")
        if record_config is not None:
            raise NotSupportedYet("Flow.batch_capture: smart record (record_config) is not supported by pysm yet")
        from pysm.source_config import SourceConfig

        name = self._names("batch_capture")
        kw = _props(kw)
        sensors: list = []
        source_type, yaml_props = "nvurisrcbin", {}
        from_yaml = isinstance(input, str)
        if from_yaml:
            cfg = SourceConfig().load(input)
            sensors, source_type, yaml_props = cfg.sensor_list, cfg.source_type, cfg.source_properties
            if cfg.camera_list:
                raise NotSupportedYet("Flow.batch_capture: camera-list sources are not supported by pysm yet")
        else:
            from pysm.source_config import SensorInfo

            sensors = [SensorInfo(None, None, u) for u in input]
        uris = [_check_uri(s.uri) for s in sensors]
        defaults = {"width": 1920, "height": 1080, "batch-size": len(uris) or 1, "batched-push-timeout": 33000,
                    "buffer-pool-size": 4, "drop-pipeline-eos": False, "live-source": False}
        if source_type == "nvmultiurisrcbin":
            props = dict(yaml_props)
            props.update(kw)
            explicit_bs = props.pop("batch-size", None)
            for k, v in defaults.items():
                if k != "batch-size":
                    props.setdefault(k, v)
            # The bin batches max-batch-size frames; batch-size only seeds it when it is unset.
            props.setdefault("max-batch-size", explicit_bs or defaults["batch-size"])
            props["uri-list"] = ",".join(uris)
            props["sensor-id-list"] = ",".join(str(s.sensor_id) for s in sensors)
            props["sensor-name-list"] = ",".join(str(s.sensor_name) for s in sensors)
            src = name("multiurisrcbin")
            self._pipeline.add("nvmultiurisrcbin", src, props)
            bs = int(props["max-batch-size"])
            return self._child([StreamInfo(src, "", "video")], batch_size=bs)
        file_loop = kw.pop("file-loop", yaml_props.get("file-loop", False))
        mux_props = {**defaults, **kw}
        src_extra = {}
        if "gpu-id" in kw:
            src_extra["gpu-id"] = kw["gpu-id"]
        mux = name("mux")
        self._pipeline.add("nvstreammux", mux, mux_props)
        base = name("source")
        for i, (s, uri) in enumerate(zip(sensors, uris)):
            src = str(s.sensor_id) if from_yaml else f"{base}_{i}"
            self._pipeline.add(source_type if source_type != "uridecodebin" else "uridecodebin", src,
                               {"uri": uri, "file-loop": file_loop, **src_extra})
            self._pipeline.link((src, mux), ("vsrc_%u" if source_type != "uridecodebin" else "", "sink_%u"))
        return self._child([StreamInfo(mux, "", "video")], batch_size=int(mux_props["batch-size"]))

    def inject(self, providers: list, **kw: Any) -> "Flow":
        """One appsrc per BufferProvider (format, width, height, framerate, device attributes)."""
        name = self._names("inject")
        streams = []
        for p in providers:
            fmt = str(getattr(p, "format", "RGB"))
            if fmt.upper() in ("JPEG", "PNG"):
                raise NotSupportedYet(f"Flow.inject: encoded {fmt} input is not supported by pysm yet")
            if getattr(p, "media_type", "video") == "audio":
                raise NotSupportedYet("Flow.inject: audio providers are not supported by pysm yet")
            gpu = "gpu" in str(getattr(p, "device", "")).lower() or bool(getattr(p, "use_gpu", False))
            caps = (f"video/x-raw{'(memory:NVMM)' if gpu else ''}, format={fmt}, width={int(p.width)}, "
                    f"height={int(p.height)}, framerate={int(getattr(p, 'framerate', 30))}/1")
            src = name("source")
            self._pipeline.add("appsrc", src, {"caps": caps, "do-timestamp": True, **_props(kw)})
            self._pipeline.attach(src, Feeder(f"{src}-feeder", p), tips="need-data/enough-data")
            streams.append(StreamInfo(src, "", "video"))
        return self._child(streams)

    # ---- processing -------------------------------------------------------------------------------
    def batch(self, **kw: Any) -> "Flow":
        """Batch every stream with one mux (``batch-size`` = number of streams by default)."""
        if not self._streams:
            raise Exception("Upstream error: no streams to batch")
        if self._batch_size:
            raise Exception("Upstream error: the streams are already batched")
        kinds = {s.media_type for s in self._streams}
        if "audio" in kinds and "video" in kinds:
            raise Exception("Upstream error: cannot batch audio and video together")
        props = {"batch-size": len(self._streams), "width": 1920, "height": 1080, "gpu-id": 0, **_props(kw)}
        mux = self._names("batch")("mux")
        self._pipeline.add("nvstreammux", mux, props)
        for s in self._streams:
            self._link_from(s, mux, "sink_%u")
        return self._child([StreamInfo(mux, "", "video")], batch_size=int(props["batch-size"]))

    def infer(self, config: str, with_triton: bool = False, **kw: Any) -> "Flow":
        """nvinfer with ``config-file-path`` (batch-size defaults to the flow's batch size)."""
        if not isinstance(config, str):
            raise TypeError(f"infer(): config must be a path string, got {type(config).__name__}")
        if with_triton:
            raise NotSupportedYet("Flow.infer(with_triton=True): nvinferserver is not supported by pysm")
        s = self._single()
        if not os.path.exists(config):
            # pyservicemaker silently drops a missing config; pysm says so instead.
            raise ModelNotFoundError(f"Flow.infer: config file '{config}' does not exist")
        props = {"config-file-path": config, **_props(kw)}
        if self._batch_size and "batch-size" not in props:
            props["batch-size"] = self._batch_size
        el = self._names("infer")("infer")
        self._pipeline.add("nvinfer", el, props)
        self._link_from(s, el)
        return self._child([StreamInfo(el, "", "video")])

    def track(self, **kw: Any) -> "Flow":
        raise NotSupportedYet("Flow.track needs the tracker element 'nvtrackerbin', which pysm does not provide yet")

    def encode(self, dest: str, use_sw_codec: bool = False, enable_osd: bool = True, **kw: Any) -> "Flow":
        raise NotSupportedYet("Flow.encode needs the encoder elements ('nvv4l2h264enc', 'mp4mux', 'filesink'), "
                              "which pysm does not provide yet")

    def publish(self, **kw: Any) -> "Flow":
        raise NotSupportedYet("Flow.publish needs the message broker element 'nvmsgbrokersinkbin', "
                              "which pysm does not provide yet")

    def analyze(self, config: str, **kw: Any) -> "Flow":
        raise NotSupportedYet("Flow.analyze needs the analytics element 'nvdsanalytics', which pysm does not provide yet")

    def preprocess(self, config_file: str, tensor_generator: Any = None, **kw: Any) -> "Flow":
        raise NotSupportedYet("Flow.preprocess needs the element 'nvdspreprocess', which pysm does not provide yet")

    def apply(self, template_config: Any = None, template_lib: Any = None, **kw: Any) -> "Flow":
        raise NotSupportedYet("Flow.apply needs the element 'nvdsvideotemplate', which pysm does not provide yet")

    def decode(self, **kw: Any) -> "Flow":
        raise NotSupportedYet("Flow.decode needs the element 'decodebin', which pysm does not provide yet "
                              "(capture() decodes already)")

    def select(self, media_type: Any = None, originator: Optional[str] = None) -> "Flow":
        types = {m.value for m in _media_types(media_type)} if media_type is not None else None
        out = [s for s in self._streams if (types is None or s.media_type in types)
               and (originator is None or s.originator == originator)]
        if not out:
            raise Exception("No stream matched the selection")
        return self._child(out)

    def attach(self, what: Any, name: str = "", tips: str = "", properties: Optional[dict] = None) -> "Flow":
        """Attach a Probe/Receiver/Feeder or a factory-made probe to every stream's element."""
        for s in self._streams:
            self._pipeline.attach(s.originator, what, name, tips or s.template, properties)
        return self._child(self._streams)

    def fork(self) -> "Flow":
        """A tee: every terminal method called on the returned Flow makes one more branch."""
        s = self._single()
        tee = self._names("fork")("tee")
        self._pipeline.add("tee", tee)
        self._link_from(s, tee)
        return self._child([StreamInfo(tee, "src_%u", s.media_type)])

    # ---- terminals --------------------------------------------------------------------------------
    def render(self, mode: RenderMode = RenderMode.DISPLAY, enable_osd: bool = True,
               rtsp_mount_point: str = "ds-test5", rtsp_port: int = 8554, seg_mask_config: Any = None,
               **kw: Any) -> "Flow":
        """DISCARD: fakesink. DISPLAY: a display sink (which, without a display, discards with one
        warning). STREAM is not supported yet."""
        s = self._single()
        name = self._names("render")
        props = _props(kw)
        if mode == RenderMode.DISCARD:
            sink = name("sink")
            self._pipeline.add("fakesink", sink, props)
        elif mode == RenderMode.DISPLAY:
            props.pop("width", None)
            props.pop("height", None)
            sink = name("sink")
            self._pipeline.add("nveglglessink", sink, props)
        elif mode == RenderMode.STREAM:
            raise NotSupportedYet("Flow.render(RenderMode.STREAM) needs 'nvrtspoutsinkbin', which pysm does not provide yet")
        else:
            raise ConfigError(f"render(): unknown mode {mode!r}")
        self._link_from(s, sink)
        return self._child([])

    def retrieve(self, retriever: Any, **kw: Any) -> "Flow":
        """RGB frames to ``retriever.consume(buffer)`` (``buffer.extract(i)`` is (H, W, 3))."""
        s = self._single()
        name = self._names("retrieve")
        conv, caps, sink = name("convert"), name("capsfilter"), name("sink")
        gpu = _props(kw).pop("gpu-id", 0)
        self._pipeline.add("nvvideoconvert", conv, {"gpu-id": gpu})
        self._pipeline.add("capsfilter", caps, {"caps": "video/x-raw(memory:NVMM), format=RGB"})
        props = {"emit-signals": True, "sync": False, **{k: v for k, v in _props(kw).items() if k != "gpu-id"}}
        self._pipeline.add("appsink", sink, props)
        self._link_from(s, conv)
        self._pipeline.link(conv, caps, sink)
        self._pipeline.attach(sink, Receiver(f"{sink}-receiver", retriever), tips="new-sample")
        return self._child([])

    def __call__(self, on_message: Optional[Callable] = None) -> None:
        """start() + wait()."""
        self._pipeline.start(on_message).wait()

    def __repr__(self) -> str:
        return f"Flow({self._pipeline.name!r}, streams={self._streams}, batch_size={self._batch_size})"


__all__ = ["Flow", "RenderMode", "MediaType", "StreamInfo"]
