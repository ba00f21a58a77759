"""The torch backend's inference rewrites (pysm.infer.backends.torch_graph): same function,
less work."""

import numpy as np
import pytest

import infer_models

torch = pytest.importorskip("torch")

from pysm.infer.backends.torch_graph import is_conv_net, optimize_graph  # noqa: E402


def rel_err(a, b) -> float:
    return float((a - b).norm() / b.norm())


def test_silu_fusion_keeps_the_function():
    net = infer_models.conv_bn_net()
    x = torch.rand(2, 3, 20, 28) * 4 - 2
    with torch.inference_mode():
        ref = net(x)
        opt, counts = optimize_graph(net)
        out = opt(x)
    assert counts == {"silu_fused": 2}
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in opt.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in opt.modules()) == 2  # not folded (see optimize_graph)
    assert rel_err(out, ref) < 1e-6
    assert is_conv_net(opt)


def test_a_sigmoid_of_another_tensor_is_not_fused():
    from torch import nn

    class Gate(nn.Module):
        def forward(self, x, y):
            return x * torch.sigmoid(y) + y * torch.sigmoid(y)

    net = Gate()
    x, y = torch.rand(2, 5) - 0.5, torch.rand(2, 5) - 0.5
    opt, counts = optimize_graph(net)
    assert counts == {"silu_fused": 1}
    assert rel_err(opt(x, y), net(x, y)) < 1e-6


def test_untraceable_models_are_left_alone():
    from torch import nn

    class DataDependent(nn.Module):
        def forward(self, x):
            if x.sum() > 0:  # control flow on values: torch.fx cannot trace it
                return x * torch.sigmoid(x)
            return x

    net = DataDependent()
    opt, counts = optimize_graph(net)
    assert opt is net and counts == {}


def test_engine_applies_the_passes_and_can_be_told_not_to():
    import pysm
    from pysm._native import _core

    rng = np.random.default_rng(3)
    frames = [(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8), "RGB") for _ in range(3)]
    outs = {}
    for optimize in (1, 0):
        e = pysm.InferEngine(None, model=infer_models.conv_bn_net(), infer_dims="3;32;48", net_scale_factor=1 / 255,
                             network_type=100, output_tensor_meta=1, backend="torch", batch_size=4,
                             torch_optimize=optimize)
        e.start()
        assert e.backend.optimizations == ({"silu_fused": 2, "host_constants": 0}
                                           if optimize else {})
        buf = _core.infer_buffer_from_arrays(frames)
        e.process(buf)
        outs[optimize] = [fr["user_meta"][0]["layers"]["output"] for fr in _core.infer_buffer_metadata(buf)]
        e.stop()
    for a, b in zip(outs[1], outs[0]):
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-5
