"""nvinfer / nvinferbin / pysm_infer: a thin adapter over ``pysm.infer.InferEngine``. The engine
is imported when the element is created (so a missing backend fails at ``add``), started when the
pipeline prepares, and called once per batch; it attaches its metadata in place.

Batches are processed one at a time. Submitting batch k+1 before finishing batch k (the engine's
``submit``/``finish``) was measured on an H200 and did not pay: neutral with ResNet-18 and up to
2x slower with YOLOX-Nano, whose CUDA-graph launch then blocks while the previous batch runs."""

from __future__ import annotations

from typing import Any, Optional

from pysm.errors import PipelineError
from pysm.pipeline.element import Element
from pysm.pipeline.items import FrameItem
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register

INFER_PROPS: dict[str, Prop] = {
    "config-file-path": Prop(str, "", "nvinfer config (INI or YAML)", live=False),
    "unique-id": Prop(int, 15, "gie unique id", minimum=0),
    "process-mode": Prop(int, 1, "1 primary (full frame), 2 secondary (objects)", choices=(1, 2)),
    "batch-size": Prop(int, 1, "max frames per inference", minimum=1),
    "interval": Prop(int, 0, "batches to skip between inferences", minimum=0),
    "infer-on-gie-id": Prop(int, -1, "secondary: operate on objects of this gie"),
    "infer-on-class-ids": Prop(str, "", "secondary: classes to operate on, '0:2:3'"),
    "filter-out-class-ids": Prop(str, "", "classes not to attach, '0;2;3'"),
    "model-engine-file": Prop(str, "", "serialized engine"),
    "gpu-id": Prop(int, 0, "GPU", minimum=0),
    "raw-output-file-write": Prop(bool, False, "write raw outputs to files"),
    "output-tensor-meta": Prop(bool, False, "attach output tensors as user metadata"),
    "output-instance-mask": Prop(bool, False, "attach instance masks"),
    "input-tensor-meta": Prop(bool, False, "use preprocessed tensors from metadata"),
    "clip-object-outside-roi": Prop(bool, True, "clip objects to the ROI"),
    "crop-objects-to-roi-boundary": Prop(bool, False, "crop objects to the ROI"),
    "strongly-typed": Prop(bool, False, "TensorRT strongly typed network"),
}


def _load_engine_class() -> Any:
    try:
        from pysm.infer import InferEngine
    except ImportError as exc:
        raise PipelineError(f"nvinfer: the inference engine (pysm.infer.InferEngine) is not available: {exc}. "
                            "Install pysm with its inference backends or check the build.") from exc
    return InferEngine


class InferElement(Element):
    factory = "pysm_infer"
    aliases = ("nvinfer", "nvinferbin")
    PROPS = INFER_PROPS

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self._engine_cls = _load_engine_class()
        self.engine: Optional[Any] = None
        self._explicit: set[str] = set()

    def on_property(self, name: str, value: Any) -> None:
        self._explicit.add(name)
        if self.engine is not None:
            # While running: the engine re-reads its config; a new model reloads it in place.
            self.engine.set_property(name, value)

    def prepare(self) -> None:
        if self.engine is None:
            # Only the properties the user set override the config file (DeepStream's rule).
            props = {k.replace("-", "_"): self.props[k] for k in sorted(self._explicit) if k != "config-file-path"}
            cfg = self.props["config-file-path"] or None
            self.engine = self._engine_cls(cfg, name=self.name, **props)
            self.engine.start()

    def process(self, pad: str, item: Any) -> None:
        buf = self.pipeline.as_buffer(item) if isinstance(item, FrameItem) else item
        # The engine applies `interval` itself (config key or property), so every batch goes to it.
        self.engine.process(buf)
        self.emit(item)

    def shutdown(self) -> None:
        if self.engine is not None:
            try:
                self.engine.stop()
            finally:
                self.engine = None


register(InferElement)
