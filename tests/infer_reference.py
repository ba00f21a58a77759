"""NumPy float64 references for the inference ops (preprocessing, box decoders, NMS), written
from the rules in csrc/infer independently of the native code."""

from __future__ import annotations

import math

import numpy as np

_MATRICES = {  # (kr_v, kg_u, kg_v, kb_u)
    0: (1.402, 0.344136, 0.714136, 1.772),
    1: (1.5748, 0.187324, 0.468124, 1.8556),
    2: (1.4746, 0.164553, 0.571353, 1.8814),
}


def frame_pixels(frame: np.ndarray, fmt: str, matrix: int = 1, rng: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rgb float64 HxWx3 in 0..255, gray float64 HxW) as the kernel fetches pixels."""
    if fmt in ("NV12", "P016"):
        h = frame.shape[0] * 2 // 3
        scale = 1 / 256 if fmt == "P016" else 1.0
        y = frame[:h].astype(np.float64) * scale
        uv = frame[h:].astype(np.float64) * scale
        w = frame.shape[1]
        xs = (np.arange(w) // 2) * 2
        ys = np.arange(h) // 2
        u = uv[ys][:, xs]
        v = uv[ys][:, xs + 1]
        if rng == 1:
            yy, cb, cr = y, u - 128, v - 128
        else:
            yy, cb, cr = (y - 16) * (255 / 219), (u - 128) * (255 / 224), (v - 128) * (255 / 224)
        krv, kgu, kgv, kbu = _MATRICES[matrix]
        rgb = np.stack([yy + krv * cr, yy - kgu * cb - kgv * cr, yy + kbu * cb], axis=-1)
        return np.clip(rgb, 0, 255), y
    if fmt == "GRAY8":
        g = frame.astype(np.float64)
        return np.stack([g, g, g], axis=-1), g
    px = frame[..., :3].astype(np.float64)
    if fmt in ("BGR", "BGRA"):
        px = px[..., ::-1]
    gray = 0.299 * px[..., 0] + 0.587 * px[..., 1] + 0.114 * px[..., 2]
    return px, gray


def plan(fw: int, fh: int, region, p: dict) -> dict:
    x, y, w, h = region
    if w <= 0 and h <= 0:
        x0, y0, x1, y1 = 0, 0, fw, fh
    else:
        x0, y0 = x, y
        x1 = x + w if w > 0 else fw
        y1 = y + h if h > 0 else fh
    x0, x1 = np.clip([x0, x1], 0, fw)
    y0, y1 = np.clip([y0, y1], 0, fh)
    cw, ch = max(0, x1 - x0), max(0, y1 - y0)
    W, H = p["width"], p["height"]
    t = {"crop": (int(x0), int(y0), int(cw), int(ch)), "valid": cw > 0 and ch > 0, "pad": (0, 0)}
    if not t["valid"]:
        return t
    if p.get("maintain_aspect_ratio"):
        r = min(W / cw, H / ch)
        sw = min(max(int(math.floor(cw * r + 1e-6)), 1), W)
        sh = min(max(int(math.floor(ch * r + 1e-6)), 1), H)
        if p.get("symmetric_padding"):
            t["pad"] = ((W - sw) // 2, (H - sh) // 2)
    else:
        sw, sh = W, H
    t["scaled"] = (sw, sh)
    t["scale"] = (cw / sw, ch / sh)
    return t


def _tent(c0: int, n: int, l: np.ndarray, s: float) -> np.ndarray:
    """Antialiased-bilinear weights (len(l), n) over a crop of n pixels: a tent of radius
    max(1, s) around each sample centre, taps clamped to the crop edge, normalised."""
    r = max(1.0, s)
    W = np.zeros((len(l), n))
    for o, lo_ in enumerate(l):
        c = (lo_ + 0.5) * s - 0.5  # crop-relative centre
        for i in range(int(np.floor(c - r)) + 1, int(np.floor(c + r)) + 1):
            w = 1 - abs(i - c) / r
            if w > 0:
                W[o, min(max(i, 0), n - 1)] += w
        W[o] /= W[o].sum()
    return W


def preprocess(frame: np.ndarray, fmt: str, region, p: dict, matrix: int = 1, rng: int = 0) -> np.ndarray:
    """One network item as float64 (C, H, W)."""
    color = p.get("color", 0)
    C = 1 if color == 2 else 3
    W, H = p["width"], p["height"]
    scale = p.get("scale", 1.0)
    offs = np.array(list(p.get("offsets", (0, 0, 0))) + [0, 0, 0], dtype=np.float64)[:3]
    pads = p.get("pad_value", 0.0)
    pads = np.array(pads if isinstance(pads, (list, tuple)) else [pads] * 3, dtype=np.float64)
    fh = frame.shape[0] * 2 // 3 if fmt in ("NV12", "P016") else frame.shape[0]
    fw = frame.shape[1]
    t = plan(fw, fh, region, p)
    out = np.empty((C, H, W), dtype=np.float64)
    for c in range(C):
        out[c] = scale * (pads[c] - offs[c])
    if not t["valid"]:
        return out
    rgb, gray = frame_pixels(frame, fmt, matrix, rng)
    src = gray[..., None] if C == 1 else rgb
    cx, cy, cw, ch = t["crop"]
    px, py = t["pad"]
    sw, sh = t["scaled"]
    sx, sy = np.float32(t["scale"][0]), np.float32(t["scale"][1])
    lx = np.arange(sw, dtype=np.float64)
    ly = np.arange(sh, dtype=np.float64)
    filt = p.get("filter", 1)
    if filt == 0:
        # float32 like the kernel: the floor of an exact product must round the same way
        xs = np.clip(np.floor(np.float32(cx) + (lx.astype(np.float32) + np.float32(0.5)) * sx), cx, cx + cw - 1).astype(int)
        ys = np.clip(np.floor(np.float32(cy) + (ly.astype(np.float32) + np.float32(0.5)) * sy), cy, cy + ch - 1).astype(int)
        v = src[ys][:, xs]
    elif filt == 2 and (sx > 1 or sy > 1):
        wy = _tent(cy, ch, ly, float(sy))
        wx = _tent(cx, cw, lx, float(sx))
        v = np.einsum("oh,hwc->owc", wy, src[cy:cy + ch, cx:cx + cw])
        v = np.einsum("pw,owc->opc", wx, v)
    if filt == 0 or (filt == 2 and (sx > 1 or sy > 1)):
        if C == 3 and color == 1:
            v = v[..., ::-1]
        for c in range(C):
            out[c, py:py + sh, px:px + sw] = scale * (v[..., c] - offs[c])
        return out
    fx = np.clip(cx + (lx + 0.5) * sx - 0.5, cx, cx + cw - 1)
    fy = np.clip(cy + (ly + 0.5) * sy - 0.5, cy, cy + ch - 1)
    x0 = np.floor(fx).astype(int)
    y0 = np.floor(fy).astype(int)
    x1 = np.minimum(x0 + 1, cx + cw - 1)
    y1 = np.minimum(y0 + 1, cy + ch - 1)
    ax = (fx - x0)[None, :, None]
    ay = (fy - y0)[:, None, None]
    top = src[y0][:, x0] * (1 - ax) + src[y0][:, x1] * ax
    bot = src[y1][:, x0] * (1 - ax) + src[y1][:, x1] * ax
    v = top * (1 - ay) + bot * ay  # (sh, sw, C)
    if C == 3 and color == 1:
        v = v[..., ::-1]
    for c in range(C):
        out[c, py:py + sh, px:px + sw] = scale * (v[..., c] - offs[c])
    return out


# ---- box decoders -------------------------------------------------------------------------------

def _clip_keep(boxes, W, H):
    b = boxes.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, W)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, H)
    ok = np.isfinite(boxes).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    return b, ok


def _finish(cls, score, boxes, thr, W, H, max_candidates):
    """Rows (class, score, x1, y1, x2, y2) of valid candidates, best first, ties in slot order."""
    thr = np.asarray(thr, dtype=np.float64)
    t = thr[cls] if thr.size > 1 else np.full(cls.shape, thr.item())
    b, ok = _clip_keep(boxes, W, H)
    ok &= np.isfinite(score) & (score >= t)
    rows = np.concatenate([cls[ok, None].astype(np.float64), score[ok, None], b[ok]], axis=1)
    order = np.argsort(-rows[:, 1], kind="stable")
    return rows[order][:max_candidates]


def _f32_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a * b rounded as the kernels compute it (float32): in float64, near-equal scores can sort
    the other way round."""
    return (a.astype(np.float32) * b.astype(np.float32)).astype(np.float64)


def decode_yolox(out: np.ndarray, W: int, H: int, thr, strides=(8, 16, 32), max_candidates=1024):
    res = []
    grids = []
    for s in strides:
        gy, gx = np.meshgrid(np.arange(H // s), np.arange(W // s), indexing="ij")
        grids.append(np.stack([gx.ravel(), gy.ravel(), np.full(gx.size, s)], axis=1))
    g = np.concatenate(grids).astype(np.float64)
    for o in out.astype(np.float64):
        cls = np.argmax(o[:, 5:], axis=1)
        score = _f32_product(o[:, 4], o[np.arange(len(o)), 5 + cls])
        cx = (o[:, 0] + g[:, 0]) * g[:, 2]
        cy = (o[:, 1] + g[:, 1]) * g[:, 2]
        with np.errstate(over="ignore"):  # exp in float32, as the kernel: overflow gives inf
            w = np.exp(o[:, 2].astype(np.float32)).astype(np.float64) * g[:, 2]
            h = np.exp(o[:, 3].astype(np.float32)).astype(np.float64) * g[:, 2]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        res.append(_finish(cls, score, boxes, thr, W, H, max_candidates))
    return res


def decode_yolo(out: np.ndarray, W: int, H: int, C: int, thr, xyxy=False, normalized=False, transposed=False,
                max_candidates=1024):
    res = []
    for o in out.astype(np.float64):
        if transposed:
            o = o.T
        has_obj = o.shape[1] == 5 + C
        first = 5 if has_obj else 4
        cls = np.argmax(o[:, first:], axis=1)
        best = o[np.arange(len(o)), first + cls]
        score = _f32_product(o[:, 4], best) if has_obj else best
        t = o[:, :4] * (np.array([W, H, W, H]) if normalized else 1)
        if xyxy:
            boxes = t
        else:
            boxes = np.stack([t[:, 0] - t[:, 2] / 2, t[:, 1] - t[:, 3] / 2,
                              t[:, 0] + t[:, 2] / 2, t[:, 1] + t[:, 3] / 2], axis=1)
        res.append(_finish(cls, score, boxes, thr, W, H, max_candidates))
    return res


def decode_detectnet(cov: np.ndarray, bbox: np.ndarray, W: int, H: int, thr, box_norm=35.0, max_candidates=1024):
    res = []
    B, C, gh, gw = cov.shape
    sx, sy = W / gw, H / gh
    gy, gx = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
    cxn = (gx * sx + 0.5) / box_norm
    cyn = (gy * sy + 0.5) / box_norm
    for b in range(B):
        cls_l, sc_l, box_l = [], [], []
        for c in range(C):
            o = bbox[b, 4 * c:4 * c + 4].astype(np.float64)
            x1 = (o[0] - cxn) * -box_norm
            y1 = (o[1] - cyn) * -box_norm
            x2 = (o[2] + cxn) * box_norm
            y2 = (o[3] + cyn) * box_norm
            box_l.append(np.stack([x1.ravel(), y1.ravel(), x2.ravel(), y2.ravel()], axis=1))
            sc_l.append(cov[b, c].astype(np.float64).ravel())
            cls_l.append(np.full(gh * gw, c))
        res.append(_finish(np.concatenate(cls_l), np.concatenate(sc_l), np.concatenate(box_l), thr, W, H,
                           max_candidates))
    return res


def decode_ssd(boxes: np.ndarray, scores: np.ndarray, W: int, H: int, thr, normalized=True, background=-1,
               max_candidates=1024):
    res = []
    B, N, C = scores.shape
    for b in range(B):
        bx = boxes[b].astype(np.float64) * (np.array([W, H, W, H]) if normalized else 1)
        cls = np.tile(np.arange(C), N)
        score = scores[b].astype(np.float64).ravel()
        rep = np.repeat(bx, C, axis=0)
        if background >= 0:
            score = np.where(cls == background, -np.inf, score)
        res.append(_finish(cls, score, rep, thr, W, H, max_candidates))
    return res


def iou(a: np.ndarray, b: np.ndarray) -> float:
    ix1, iy1 = max(a[0], b[0]), max(a[1], b[1])
    ix2, iy2 = min(a[2], b[2]), min(a[3], b[3])
    iw, ih = ix2 - ix1, iy2 - iy1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def nms(rows: np.ndarray, iou_thr, topk=-1, topk_total=-1, agnostic=False) -> list[int]:
    """Greedy NMS over rows (class, score, x1, y1, x2, y2) sorted best first; kept indices."""
    n = len(rows)
    removed = np.zeros(n, bool)
    surv = []
    cls = rows[:, 0].astype(int)
    per_thr = np.atleast_1d(np.asarray(iou_thr, dtype=np.float64))
    per_topk = np.atleast_1d(np.asarray(topk))
    for i in range(n):
        if removed[i]:
            continue
        surv.append(i)
        t = per_thr[0] if per_thr.size == 1 else per_thr[cls[i]]
        for j in range(i + 1, n):
            if removed[j] or (not agnostic and cls[j] != cls[i]):
                continue
            if iou(rows[i, 2:], rows[j, 2:]) > t:
                removed[j] = True
    kept, counts = [], {}
    for i in surv:
        if topk_total >= 0 and len(kept) >= topk_total:
            break
        k = per_topk[0] if per_topk.size == 1 else (per_topk[cls[i]] if cls[i] < per_topk.size else -1)
        c = counts.get(cls[i], 0)
        if k >= 0 and c >= k:
            continue
        counts[cls[i]] = c + 1
        kept.append(i)
    return kept


def dbscan(rows: np.ndarray, eps, min_boxes, min_score, merge=True) -> np.ndarray:
    """nvinfer-style DBSCAN per class over rows (class, score, x1, y1, x2, y2) sorted best first:
    neighbours at distance 1 - IoU <= eps, core boxes with >= min_boxes neighbours (itself
    included) scoring >= min_score together; core boxes chained by neighbourhood form a cluster
    (numbered by its best core box); a border box joins the earliest such cluster next to it.
    Values may be per class (sequences). Returns rows: merged clusters (score-weighted mean box,
    best score) or the clustered members, stable-sorted by score."""
    def per(v, c):
        a = np.atleast_1d(np.asarray(v))
        return a[0] if a.size == 1 else a[c]

    out = []
    for c in sorted(set(rows[:, 0].astype(int))):
        r = rows[rows[:, 0].astype(int) == c]
        e, mb, ms = float(per(eps, c)), int(per(min_boxes, c)), float(per(min_score, c))
        if mb <= 0:
            out.extend(r)
            continue
        n = len(r)
        adj = np.array([[1 - iou(r[i, 2:], r[j, 2:]) <= e or i == j for j in range(n)] for i in range(n)])
        core = (adj.sum(1) >= mb) & ((adj * r[:, 1][None, :]).sum(1) >= ms)
        comp = -np.ones(n, int)
        label = 0
        for s in range(n):  # connected components of the core boxes, by depth-first search
            if not core[s] or comp[s] >= 0:
                continue
            stack = [s]
            comp[s] = label
            while stack:
                i = stack.pop()
                for j in np.nonzero(adj[i] & core)[0]:
                    if comp[j] < 0:
                        comp[j] = label
                        stack.append(j)
            label += 1
        cl = comp.copy()
        for i in np.nonzero(~core)[0]:
            near = [comp[j] for j in np.nonzero(adj[i] & core)[0]]
            cl[i] = min(near) if near else -1
        if not merge:
            out.extend(r[cl >= 0])
            continue
        for k in range(label):
            m = r[cl == k]
            w = np.maximum(m[:, 1], 1e-6)
            box = (m[:, 2:] * w[:, None]).sum(0) / w.sum()
            out.append(np.concatenate([[c, m[:, 1].max()], box]))
    out = np.array(out, dtype=np.float64).reshape(-1, 6)
    return out[np.argsort(-out[:, 1], kind="stable")]


def topk(rows: np.ndarray, k=-1) -> np.ndarray:
    """The k best rows per class (rows sorted best first); -1 keeps all."""
    if k < 0:
        return rows
    counts: dict[int, int] = {}
    keep = []
    for i, c in enumerate(rows[:, 0].astype(int)):
        if counts.get(c, 0) < k:
            counts[c] = counts.get(c, 0) + 1
            keep.append(i)
    return rows[keep]
