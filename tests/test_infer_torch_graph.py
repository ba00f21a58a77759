"""The torch backend's inference rewrites (pysm.infer.backends.torch_graph): same function,
less work."""

import numpy as np
import pytest

import infer_models

torch = pytest.importorskip("torch")

from pysm.infer.backends.torch_graph import is_conv_net, optimize_graph  # noqa: E402


def rel_err(a, b) -> float:
    return float((a - b).norm() / b.norm())


def test_batchnorm_folding_and_silu_fusion_keep_the_function():
    net = infer_models.conv_bn_net()
    x = torch.rand(2, 3, 20, 28) * 4 - 2
    with torch.inference_mode():
        ref = net(x)
        opt, counts = optimize_graph(net)
        out = opt(x)
    assert counts == {"batchnorm_folded": 2, "silu_fused": 2}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in opt.modules())
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in opt.modules())
    assert rel_err(out, ref) < 1e-5
    assert is_conv_net(opt)


def test_a_bn_whose_conv_output_is_shared_is_not_folded():
    from torch import nn

    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 4, 1)
            self.b = nn.BatchNorm2d(4).eval()

        def forward(self, x):
            y = self.c(x)
            return self.b(y) + y  # the conv output is used twice: folding would change `y`

    net = Shared().eval()
    net.b.running_mean.uniform_(0.5, 1.0)
    x = torch.rand(1, 3, 5, 5)
    with torch.inference_mode():
        ref = net(x)
        opt, counts = optimize_graph(net)
        assert counts["batchnorm_folded"] == 0
        assert rel_err(opt(x), ref) < 1e-6


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
        assert e.backend.optimizations == ({"batchnorm_folded": 2, "silu_fused": 2, "host_constants": 0}
                                           if optimize else {})
        buf = _core.infer_buffer_from_arrays(frames)
        e.process(buf)
        outs[optimize] = [fr["user_meta"][0]["layers"]["output"] for fr in _core.infer_buffer_metadata(buf)]
        e.stop()
    for a, b in zip(outs[1], outs[0]):
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 1e-5
