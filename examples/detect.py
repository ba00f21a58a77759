"""A DeepStream test1-style app on pysm: N video files -> NVDEC -> batch -> detector -> per-frame counts.

    python examples/detect.py examples/yolox_pgie.txt clip1.mp4 [clip2.mp4 ...]

yolox_pgie.txt is a DeepStream nvinfer config; put yolox_nano_416.onnx and coco_labels.txt beside it
(relative paths resolve against the config file), or point it at your own model.
"""
import sys
from pysm import BatchMetadataOperator, Flow, Pipeline, Probe, RenderMode


class Counter(BatchMetadataOperator):
    def handle_metadata(self, batch_meta):
        for frame in batch_meta.frame_items:
            labels = [o.label for o in frame.object_items]
            if frame.frame_number % 30 == 0:
                print(f"source {frame.source_id} frame {frame.frame_number}: "
                      f"{labels.count('person')} persons, boxes {frame.boxes().shape}")


(Flow(Pipeline("detect"))
    .batch_capture(sys.argv[2:], width=1920, height=1080)
    .infer(sys.argv[1])
    .attach(what=Probe("counter", Counter()))
    .render(mode=RenderMode.DISCARD))()
