"""nvinfer config files (INI and YAML), element properties, and the error cases."""

from __future__ import annotations

import textwrap
import warnings

import pytest

from pysm.errors import ConfigError, ModelNotFoundError
from pysm.infer.config import ConfigWarning, load_config

INI = """\
[property]
gpu-id=0
net-scale-factor=0.0039215697906911373
onnx-file=model.onnx
model-engine-file=model.onnx_b4_gpu0_fp16.engine
labelfile-path=labels.txt
batch-size=4
network-mode=2
num-detected-classes=4
interval=2
gie-unique-id=3
infer-dims=3;544;960
offsets=1.5;2.5;3.5
model-color-format=1
maintain-aspect-ratio=1
symmetric-padding=1
network-type=0
process-mode=2
operate-on-gie-id=1
operate-on-class-ids=0;2
input-object-min-width=32
input-object-min-height=24
cluster-mode=2
output-tensor-meta=1
classifier-threshold=0.7
parse-bbox-func-name=yolox
backend=onnxruntime
torch-model=mypkg.models:build
padding-value=114
filter-out-class-ids=3
# a comment
workspace-size=2000

[class-attrs-all]
pre-cluster-threshold=0.25
nms-iou-threshold=0.45
topk=20
border-color=0;1;0;1

[class-attrs-2]
pre-cluster-threshold=0.6
detected-min-w=8
"""

YAML = """\
property:
  gpu-id: 0
  net-scale-factor: 0.00392156862745098
  onnx-file: model.onnx
  labelfile-path: labels.txt
  batch-size: 2
  network-mode: 0
  num-detected-classes: 4
  infer-dims: 3;368;640
  offsets: [1.0, 2.0, 3.0]
  interval: 0
  gie-unique-id: 1
  cluster-mode: 2
  maintain-aspect-ratio: true
  backend: torch
class-attrs-all:
  nms-iou-threshold: 0.2
  pre-cluster-threshold: 0.2
  topk: 20
class-attrs-0:
  pre-cluster-threshold: 0.4
"""


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "labels.txt").write_text("car\nbicycle\nperson\nroadsign\n")
    return p


def test_ini_every_key(tmp_path):
    cfg = load_config(write(tmp_path, "pgie.txt", INI))
    assert cfg.onnx_file == str(tmp_path / "model.onnx")  # relative to the config file
    assert cfg.model_engine_file == str(tmp_path / "model.onnx_b4_gpu0_fp16.engine")
    assert cfg.batch_size == 4 and cfg.network_mode == 2 and cfg.precision == "fp16"
    assert cfg.infer_dims == [3, 544, 960]
    assert cfg.net_scale_factor == pytest.approx(1 / 255)
    assert cfg.offsets == [1.5, 2.5, 3.5] and cfg.model_color_format == 1
    assert cfg.maintain_aspect_ratio and cfg.symmetric_padding
    assert cfg.num_detected_classes == 4 and cfg.interval == 2 and cfg.gie_unique_id == 3
    assert cfg.process_mode == 2 and cfg.is_secondary
    assert cfg.operate_on_gie_id == 1 and cfg.operate_on_class_ids == [0, 2]
    assert cfg.input_object_min_width == 32 and cfg.input_object_min_height == 24
    assert cfg.cluster_mode == 2 and cfg.output_tensor_meta and cfg.classifier_threshold == 0.7
    assert cfg.parse_bbox_func_name == "yolox" and cfg.backend == "onnxruntime"
    assert cfg.torch_model == "mypkg.models:build" and cfg.padding_value == [114.0]
    assert cfg.filter_out_class_ids == [3]
    a = cfg.class_attrs_all
    assert (a.pre_cluster_threshold, a.nms_iou_threshold, a.topk) == (0.25, 0.45, 20)
    assert a.border_color == (0.0, 1.0, 0.0, 1.0)
    c2 = cfg.attrs_for(2)
    # per-class groups start from class-attrs-all
    assert c2.pre_cluster_threshold == 0.6 and c2.nms_iou_threshold == 0.45 and c2.detected_min_w == 8
    assert cfg.attrs_for(1) is a
    assert cfg.detector_labels() == ["car", "bicycle", "person", "roadsign"]


def test_yaml_like_dstest1(tmp_path):
    cfg = load_config(write(tmp_path, "pgie.yml", YAML))
    assert cfg.batch_size == 2 and cfg.infer_dims == [3, 368, 640]
    assert cfg.offsets == [1.0, 2.0, 3.0] and cfg.maintain_aspect_ratio is True
    assert cfg.backend == "torch" and cfg.gie_unique_id == 1
    assert cfg.class_attrs_all.nms_iou_threshold == 0.2 and cfg.class_attrs_all.topk == 20
    assert cfg.attrs_for(0).pre_cluster_threshold == 0.4 and cfg.attrs_for(0).topk == 20
    cfg.check_files()


def test_properties_override_with_nvinfer_names(tmp_path):
    p = write(tmp_path, "pgie.txt", INI)
    cfg = load_config(p, {"unique_id": 9, "batch-size": 8, "infer_on_gie_id": 4, "infer-on-class-ids": "1:3",
                          "filter_out_class_ids": "0;1", "output_tensor_meta": False, "interval": 0,
                          "process_mode": 1, "gpu_id": 0, "model_engine_file": "other.engine"})
    assert cfg.gie_unique_id == 9 and cfg.batch_size == 8 and cfg.operate_on_gie_id == 4
    assert cfg.operate_on_class_ids == [1, 3] and cfg.filter_out_class_ids == [0, 1]
    assert not cfg.output_tensor_meta and cfg.interval == 0 and cfg.process_mode == 1
    assert cfg.model_engine_file == "other.engine"
    # infer-on-gie-id=-1 is nvinfer's "any": it does not override the file's value
    assert load_config(p, {"infer-on-gie-id": -1}).operate_on_gie_id == 1


def test_properties_alone_name_the_model(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"x")
    cfg = load_config(None, {"onnx-file": str(tmp_path / "m.onnx"), "infer-dims": "3;32;32"})
    assert cfg.path is None and cfg.infer_dims == [3, 32, 32]
    cfg.check_files()


def test_unknown_keys_warn_naming_the_key(tmp_path):
    p = write(tmp_path, "c.txt", "[property]\nonnx-file=model.onnx\nfrobnicate=1\n[class-attrs-all]\nwibble=2\n"
                                 "[mystery]\na=1\n")
    with pytest.warns(ConfigWarning) as rec:
        load_config(p)
    msgs = " ".join(str(w.message) for w in rec)
    assert "'frobnicate'" in msgs and "'wibble'" in msgs and "[mystery]" in msgs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_config(write(tmp_path, "ok.txt", INI))  # accepted DeepStream keys do not warn


@pytest.mark.parametrize("line,key", [
    ("batch-size=0", "batch-size"),
    ("batch-size=four", "batch-size"),
    ("network-mode=7", "network-mode"),
    ("infer-dims=3;416", "infer-dims"),
    ("maintain-aspect-ratio=maybe", "maintain-aspect-ratio"),
    ("process-mode=3", "process-mode"),
    ("net-scale-factor=abc", "net-scale-factor"),
    ("offsets=1;2;3;4", "offsets"),
    ("backend=tensorflow", "backend"),
    ("model-color-format=9", "model-color-format"),
])
def test_wrong_values_name_file_and_key(tmp_path, line, key):
    p = write(tmp_path, "bad.txt", f"[property]\nonnx-file=model.onnx\n{line}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(p)
    assert str(p) in str(ei.value) and key in str(ei.value)


def test_wrong_class_attr_value(tmp_path):
    p = write(tmp_path, "bad.yml", "property:\n  onnx-file: model.onnx\nclass-attrs-all:\n  topk: many\n")
    with pytest.raises(ConfigError, match=r"class-attrs-all\] topk"):
        load_config(p)
    p = write(tmp_path, "bad2.txt", "[property]\nonnx-file=model.onnx\n[class-attrs-x]\ntopk=1\n")
    with pytest.raises(ConfigError, match="class-attrs-x"):
        load_config(p)


def test_malformed_files(tmp_path):
    p = tmp_path / "broken.yml"
    p.write_text("property: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    p = tmp_path / "noprop.txt"
    p.write_text("[class-attrs-all]\ntopk=1\n")
    with pytest.raises(ConfigError, match=r"no \[property\]"):
        load_config(p)
    p = tmp_path / "garbage.txt"
    p.write_text("this is not ini\n")
    with pytest.raises(ConfigError):
        load_config(p)


def test_missing_files_name_the_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match="nope.txt"):
        load_config(tmp_path / "nope.txt")
    p = tmp_path / "c.txt"
    p.write_text("[property]\nonnx-file=absent.onnx\n")
    cfg = load_config(p)
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "absent.onnx")):
        cfg.check_files()
    p.write_text("[property]\nmodel-engine-file=absent.engine\n")
    with pytest.raises(ModelNotFoundError, match="absent.engine"):
        load_config(p).check_files()
    p.write_text("[property]\nuff-file=x.uff\n")
    with pytest.raises(ConfigError, match="no model.*uff-file"):
        load_config(p).check_files()
    with pytest.raises(FileNotFoundError):  # ModelNotFoundError is a FileNotFoundError too
        load_config(tmp_path / "nope.yml")


def test_c_parser_libraries_are_refused(tmp_path):
    p = write(tmp_path, "c.txt", "[property]\nonnx-file=model.onnx\ncustom-lib-path=libparser.so\n"
                                 "parse-bbox-func-name=NvDsInferParseCustomMine\n")
    with pytest.raises(ConfigError, match="parse-bbox-func-name"):
        load_config(p)
    # DeepStream parser names with a built-in equivalent are accepted
    p = write(tmp_path, "y.txt", "[property]\nonnx-file=model.onnx\ncustom-lib-path=libnvdsinfer_custom_impl_Yolo.so\n"
                                 "parse-bbox-func-name=NvDsInferParseYolo\n")
    load_config(p)
