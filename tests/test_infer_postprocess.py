"""Box decoders and NMS (CPU twins) against the NumPy references on random data."""

from __future__ import annotations

import numpy as np
import pytest

import pysm.errors as E
from pysm._native import _core
import infer_reference as ref

RNG = np.random.default_rng(99)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def check_rows(got_list, want_list, atol=1e-3):
    assert len(got_list) == len(want_list)
    for got, want in zip(got_list, want_list):
        assert got.shape == want.shape, (got.shape, want.shape)
        np.testing.assert_array_equal(got[:, 0], want[:, 0])
        np.testing.assert_allclose(got[:, 1:], want[:, 1:], atol=atol, rtol=1e-5)


def yolox_output(B, W, H, C, strides=(8, 16, 32)):
    n = sum((W // s) * (H // s) for s in strides)
    o = RNG.normal(0, 1, (B, n, 5 + C)).astype(np.float32)
    o[..., 4:] = sigmoid(o[..., 4:] * 2)
    return o


def test_yolox_decoder():
    W, H, C = 64, 96, 7
    out = yolox_output(3, W, H, C)
    params = dict(kind="yolox", net_width=W, net_height=H, thresholds=[0.25], max_candidates=5000)
    got = _core.infer_decode_boxes([out], params)
    check_rows(got, ref.decode_yolox(out, W, H, 0.25, max_candidates=5000))
    assert all(len(g) > 10 for g in got)


def test_yolox_per_class_thresholds_and_limit():
    W, H, C = 64, 64, 4
    out = yolox_output(2, W, H, C, strides=(8, 16))
    thr = [0.1, 0.5, 0.9, 0.3]
    params = dict(kind="yolox", net_width=W, net_height=H, thresholds=thr, strides=[8, 16], max_candidates=7)
    got = _core.infer_decode_boxes([out], params)
    check_rows(got, ref.decode_yolox(out, W, H, thr, strides=(8, 16), max_candidates=7))
    assert all(len(g) == 7 for g in got)


def test_yolox_float16_outputs():
    W, H, C = 32, 64, 3
    out = yolox_output(1, W, H, C).astype(np.float16)
    got = _core.infer_decode_boxes([out], dict(kind="yolox", net_width=W, net_height=H, thresholds=[0.2]))
    check_rows(got, ref.decode_yolox(out.astype(np.float32), W, H, 0.2), atol=1e-2)


def test_nan_and_inf_rows_are_dropped():
    W, H, C = 32, 32, 2
    out = yolox_output(1, W, H, C)
    out[0, :, 4] = 0.99
    out[0, :, 5] = 0.99
    out[0, 3, 0] = np.nan
    out[0, 5, 4] = np.inf
    out[0, 7, 2] = 200.0  # exp overflows to inf
    out[0, 9, 6] = np.nan  # a NaN class score
    got = _core.infer_decode_boxes([out], dict(kind="yolox", net_width=W, net_height=H, thresholds=[0.1], max_candidates=10**6))[0]
    assert np.isfinite(got).all()
    want = ref.decode_yolox(out, W, H, 0.1, max_candidates=10**6)[0]
    check_rows([got], [want])
    assert len(got) < 16 + 4 + 1


@pytest.mark.parametrize("layout", ["4+C", "5+C", "transposed", "xyxy-normalized"])
def test_yolo_decoder(layout):
    W, H, C, N = 80, 48, 5, 300
    B = 2
    k = 5 + C if layout == "5+C" else 4 + C
    o = RNG.uniform(0, 1, (B, N, k)).astype(np.float32)
    kw = {}
    if layout == "xyxy-normalized":
        o[..., 2:4] = o[..., 0:2] + o[..., 2:4] * 0.3
        kw = dict(xyxy=True, normalized=True)
    else:
        o[..., 0] *= W
        o[..., 1] *= H
        o[..., 2] *= W / 3
        o[..., 3] *= H / 3
    params = dict(kind="yolo", net_width=W, net_height=H, num_classes=C, thresholds=[0.4],
                  yolo_xyxy=kw.get("xyxy", False), normalized=kw.get("normalized", False))
    feed = o.transpose(0, 2, 1).copy() if layout == "transposed" else o
    got = _core.infer_decode_boxes([feed], params)
    want = ref.decode_yolo(o, W, H, C, 0.4, **kw)
    check_rows(got, want)


def test_detectnet_v2_decoder():
    W, H, C = 96, 64, 3
    gh, gw = H // 16, W // 16
    cov = RNG.uniform(0, 1, (2, C, gh, gw)).astype(np.float32)
    bbox = RNG.normal(0, 0.5, (2, 4 * C, gh, gw)).astype(np.float32)
    thr = [0.3, 0.6, 0.5]
    params = dict(kind="detectnet_v2", net_width=W, net_height=H, thresholds=thr, box_norm=35.0)
    # Either output order is accepted.
    for outs in ([cov, bbox], [bbox, cov]):
        got = _core.infer_decode_boxes(outs, params)
        check_rows(got, ref.decode_detectnet(cov, bbox, W, H, thr))


def test_ssd_decoder():
    W, H, N, C = 100, 80, 200, 4
    b = RNG.uniform(0, 1, (2, N, 4)).astype(np.float32)
    b[..., 2:] = b[..., :2] + RNG.uniform(0, 0.4, (2, N, 2))
    s = RNG.uniform(0, 1, (2, N, C)).astype(np.float32)
    params = dict(kind="ssd", net_width=W, net_height=H, thresholds=[0.7], normalized=True, background_class=0)
    got = _core.infer_decode_boxes([b, s], params)
    check_rows(got, ref.decode_ssd(b, s, W, H, 0.7, background=0))
    assert all((g[:, 0] != 0).all() for g in got)


def test_decoder_shape_errors_name_both_sides():
    out = yolox_output(1, 64, 64, 3)
    with pytest.raises(E.InferenceError, match="rows but a 32x32 input"):
        _core.infer_decode_boxes([out], dict(kind="yolox", net_width=32, net_height=32))
    with pytest.raises(E.InferenceError, match="num-detected-classes is 5"):
        _core.infer_decode_boxes([out], dict(kind="yolox", net_width=64, net_height=64, num_classes=5))
    with pytest.raises(E.InferenceError, match="set num-detected-classes"):
        _core.infer_decode_boxes([out], dict(kind="yolo", net_width=64, net_height=64))
    with pytest.raises(E.InferenceError, match="int32 is not supported|float32 or float16"):
        _core.infer_decode_boxes([out.astype(np.int32)], dict(kind="yolox", net_width=64, net_height=64))


def random_candidates(n, classes, spread=60.0):
    xy = RNG.uniform(0, spread, (n, 2))
    wh = RNG.uniform(5, 30, (n, 2))
    rows = np.concatenate([RNG.integers(0, classes, (n, 1)), RNG.uniform(0, 1, (n, 1)), xy, xy + wh], axis=1)
    rows = rows.astype(np.float32).astype(np.float64)
    return rows[np.argsort(-rows[:, 1], kind="stable")]


@pytest.mark.parametrize("agnostic", [False, True])
def test_nms_against_reference(agnostic):
    for trial in range(5):
        rows = random_candidates(int(RNG.integers(1, 300)), 4)
        thr = float(RNG.uniform(0.2, 0.7))
        got = _core.infer_nms(rows, dict(iou_threshold=thr, class_agnostic=agnostic))
        assert got == ref.nms(rows, thr, agnostic=agnostic)


def test_nms_per_class_thresholds_and_topk():
    rows = random_candidates(400, 3, spread=40)
    thr = [0.2, 0.5, 0.8]
    topk = [3, -1, 5]
    got = _core.infer_nms(rows, dict(iou_threshold=thr, topk=topk))
    want = ref.nms(rows, thr, topk=topk)
    assert got == want
    cls = rows[got, 0].astype(int)
    assert (cls == 0).sum() == 3 and (cls == 2).sum() == 5
    got = _core.infer_nms(rows, dict(iou_threshold=0.5, topk_total=7, class_agnostic=True))
    assert got == ref.nms(rows, 0.5, topk_total=7, agnostic=True)
    assert len(got) == 7


def test_nms_empty_input():
    assert _core.infer_nms(np.zeros((0, 6)), dict(iou_threshold=0.5)) == []


def cluster(rows, mode, nms=None, **kw):
    return _core.infer_cluster(rows, dict(mode=mode, nms=nms or {}, **kw))


@pytest.mark.parametrize("eps,min_boxes,min_score", [(0.5, 2, 0.0), (0.7, 3, 1.2), (0.3, 1, 0.0), (0.6, 2, 0.9)])
def test_dbscan_against_reference(eps, min_boxes, min_score):
    for trial in range(4):
        rows = random_candidates(int(RNG.integers(1, 250)), 3, spread=50)
        got = cluster(rows, 1, default_eps=eps, default_min_boxes=min_boxes, default_min_score=min_score)
        want = ref.dbscan(rows, eps, min_boxes, min_score)
        check_rows([got], [want], atol=1e-3)


def test_dbscan_per_class_values_and_unclustered_class():
    rows = random_candidates(300, 3, spread=40)
    eps, mb, ms = [0.4, 0.8, 0.5], [2, 3, 0], [0.0, 0.5, 0.0]  # class 2: minBoxes 0 = not clustered
    got = cluster(rows, 1, eps=eps, min_boxes=mb, min_score=ms)
    want = ref.dbscan(rows, eps, mb, ms)
    check_rows([got], [want])
    assert (got[:, 0] == 2).sum() == (rows[:, 0] == 2).sum()
    assert (got[:, 0] == 1).sum() < (rows[:, 0] == 1).sum()


def test_dbscan_merges_a_cluster_and_drops_noise():
    rows = np.array([
        [0, 0.9, 10, 10, 50, 90],
        [0, 0.6, 12, 8, 52, 88],
        [0, 0.3, 8, 12, 48, 92],
        [0, 0.95, 200, 200, 220, 230],  # alone: noise with minBoxes 2
    ])
    got = cluster(rows, 1, default_eps=0.3, default_min_boxes=2)
    assert got.shape == (1, 6)
    w = rows[:3, 1]
    np.testing.assert_allclose(got[0, 2:], (rows[:3, 2:] * w[:, None]).sum(0) / w.sum(), atol=1e-4)
    assert got[0, 1] == pytest.approx(0.9)
    # dbscan-min-score above the cluster's summed scores: no core box, nothing left
    assert len(cluster(rows, 1, default_eps=0.3, default_min_boxes=2, default_min_score=1.9)) == 0


def test_hybrid_is_dbscan_members_then_nms():
    for trial in range(4):
        rows = random_candidates(int(RNG.integers(2, 250)), 3, spread=50)
        got = cluster(rows, 3, nms=dict(iou_threshold=0.4), default_eps=0.6, default_min_boxes=2)
        members = ref.dbscan(rows, 0.6, 2, 0.0, merge=False)
        want = members[ref.nms(members, 0.4)] if len(members) else members
        check_rows([got], [want])


def test_no_clustering_and_nms_modes_apply_topk():
    rows = random_candidates(200, 3)
    got = cluster(rows, 4, nms=dict(topk=5))
    check_rows([got], [ref.topk(rows, 5)])
    assert len(cluster(rows, 4)) == len(rows)
    got = cluster(rows, 2, nms=dict(iou_threshold=0.45, topk=4))
    check_rows([got], [rows[ref.nms(rows, 0.45, topk=4)]])
    with pytest.raises(E.InvalidArgument, match="cluster mode 7"):
        cluster(rows, 7)


def test_cluster_mode_0_is_nms_at_iou_05_topk_20_like_deepstream(tmp_path):
    from pysm.infer.config import load_config
    from pysm.infer.postprocess import DetectorSettings

    path = tmp_path / "pgie.txt"
    path.write_text("[property]\nparse-bbox-func-name=yolo\nnum-detected-classes=3\n"
                    "[class-attrs-all]\nnms-iou-threshold=0.2\ntopk=100\n")
    cfg = load_config(path)
    assert cfg.cluster_mode == 0
    s = DetectorSettings(cfg, 64, 64, [])
    rows = random_candidates(400, 3, spread=30)
    got = _core.infer_cluster(rows, s.cluster)
    check_rows([got], [rows[ref.nms(rows, 0.5, topk=20)]])
    assert (np.bincount(got[:, 0].astype(int)) == 20).all()


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4])
def test_detect_decodes_then_clusters(mode):
    """decode + cluster of whole batch outputs (the engine's path) = decode, then cluster_cpu."""
    W, H, C = 64, 96, 4
    out = yolox_output(2, W, H, C)
    decode = dict(kind="yolox", net_width=W, net_height=H, thresholds=[0.3], max_candidates=400)
    cl = dict(mode=mode, nms=dict(iou_threshold=0.45, topk=6), default_eps=0.9, default_min_boxes=2)
    got = _core.infer_detect_submit([out], decode, cl).rows()
    cands = _core.infer_decode_boxes([out], decode)
    want = [_core.infer_cluster(c, cl) for c in cands]
    check_rows(got, want, atol=1e-6)
    assert all(0 < len(g) <= 6 * C for g in got)
