"""Tiny ONNX models with known outputs, built with the onnx helper API (no weights to download).

`detector`: input images [B, 3, S, S]; output [B, 2, 6] in the yolo [N, 4+C] layout (C=2):
  anchor 0: cx, cy, w, h = box0, class scores (mean of channel 0, mean of channel 2)
  anchor 1: cx, cy, w, h = box1, class scores (0, mean of channel 1)
  where the means are of the network input (after net-scale-factor).
`classifier`: input [B, 3, S, S]; output probs [B, 3] = channel means (a colour classifier).
Also: buffers with tracked objects and a model-run counter for engines under test.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _means_graph(size: int, batch: int | str):
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])
    mean = helper.make_node("ReduceMean", ["images"], ["means"], axes=[2, 3], keepdims=0)
    return inp, mean


def detector(path, size: int = 32, box0=(16, 12, 10, 8), box1=(8, 8, 4, 4), batch: int | str = "batch",
             nan_anchor1: bool = False) -> str:
    inp, mean = _means_graph(size, batch)
    W = np.zeros((3, 12), np.float32)
    W[0, 4] = 1.0  # anchor 0, class 0 <- channel 0
    W[2, 5] = 1.0  # anchor 0, class 1 <- channel 2
    W[1, 11] = 1.0  # anchor 1, class 1 <- channel 1
    b = np.zeros(12, np.float32)
    b[0:4] = box0
    b[6:10] = box1
    if nan_anchor1:
        b[6] = np.nan
    nodes = [
        mean,
        helper.make_node("MatMul", ["means", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["flat"]),
        helper.make_node("Reshape", ["flat", "shape"], ["output"]),
    ]
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b"),
             numpy_helper.from_array(np.array([0, 2, 6], np.int64), "shape")]
    out = helper.make_tensor_value_info("output", TensorProto.FLOAT, [batch, 2, 6])
    g = helper.make_graph(nodes, "tiny_detector", [inp], [out], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return str(path)


def classifier(path, size: int = 16, batch: int | str = "batch") -> str:
    inp, mean = _means_graph(size, batch)
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 3])
    g = helper.make_graph([mean, helper.make_node("Identity", ["means"], ["probs"])], "tiny_classifier", [inp], [out])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return str(path)


def torch_detector(box0=(16, 12, 10, 8), box1=(8, 8, 4, 4)):
    """The same detector as an nn.Module (for the torch backend)."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("b0", torch.tensor(box0, dtype=torch.float32))
            self.register_buffer("b1", torch.tensor(box1, dtype=torch.float32))

        def forward(self, x):
            m = x.float().mean(dim=(2, 3))
            B = x.shape[0]
            a0 = torch.cat([self.b0.expand(B, 4), m[:, 0:1], m[:, 2:3]], dim=1)
            a1 = torch.cat([self.b1.expand(B, 4), torch.zeros_like(m[:, 0:1]), m[:, 1:2]], dim=1)
            return torch.stack([a0, a1], dim=1).to(x.dtype)

    return Tiny()


def conv_bn_net(num_out: int = 6, seed: int = 0):
    """A small convolutional network with BatchNorm (non-trivial running statistics), SiLU
    written as x * sigmoid(x), a residual add and a [B, N, num_out] output: what the torch
    backend's graph passes and channels-last path rewrite."""
    import torch
    from torch import nn

    class ConvBnNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 16, 3, 2, 1, bias=False)
            self.b1 = nn.BatchNorm2d(16)
            self.c2 = nn.Conv2d(16, 16, 3, 1, 1)
            self.b2 = nn.BatchNorm2d(16)
            self.head = nn.Conv2d(16, num_out, 1)
            self.act = nn.Sigmoid()

        def forward(self, x):
            y = self.b1(self.c1(x))
            y = y * self.act(y)
            z = self.b2(self.c2(y))
            z = z * torch.sigmoid(z) + y
            return self.head(z).flatten(2).transpose(1, 2)

    torch.manual_seed(seed)
    net = ConvBnNet()
    for bn in (net.b1, net.b2):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def segmenter(path, width: int = 16, height: int = 8, batch: int | str = "batch") -> str:
    """A 3-class segmentation model: the output [B, 3, H, W] is its input (after
    net-scale-factor), so each pixel's class is its strongest colour channel."""
    inp = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, height, width])
    out = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 3, height, width])
    g = helper.make_graph([helper.make_node("Identity", ["images"], ["probs"])], "segmenter", [inp], [out])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return str(path)


# -- inputs for engines under test ------------------------------------------------------------------

def buffer_with_objects(img, frame_number: int, objects, device: str = "cpu", pad: int = 0):
    """A one-frame Buffer of RGB `img`, numbered `frame_number` on source `pad`, holding objects
    from a primary detector (unique_component_id 1) given as (object_id or None, (x, y, w, h))."""
    import pysm
    from pysm._native import _core

    h, w = img.shape[:2]
    buf = _core.infer_buffer_from_arrays([(img, "RGB")], device=device)
    bm = buf.batch_meta
    fm = bm.acquire_frame_meta(frame_number=frame_number, pad_index=pad, source_id=pad, batch_id=0,
                               source_width=w, source_height=h, pipeline_width=w, pipeline_height=h)
    bm.append(fm)
    for oid, (x, y, bw, bh) in objects:
        o = bm.acquire_object_meta()
        o.rect_params = pysm.osd.Rect(x, y, bw, bh)
        o.unique_component_id = 1
        if oid is not None:
            o.object_id = oid
        fm.append(o)
    return buf


def count_runs(engine) -> list:
    """Every model run of the started `engine` appends its item count to the returned list."""
    runs: list = []
    run = engine.backend.run
    engine.backend.run = lambda inp, k: (runs.append(k), run(inp, k))[1]
    return runs
