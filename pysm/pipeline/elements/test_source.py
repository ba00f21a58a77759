"""videotestsrc: a synthetic video source (moving gradient and bars), for tests and demos.
``num-buffers`` bounds it, ``is-live`` paces it at ``framerate``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from pysm._native import _core
from pysm.pipeline.element import SourceElement
from pysm.pipeline.items import FrameItem
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register


def test_pattern(width: int, height: int, index: int, fmt: str, pattern: int = 0) -> np.ndarray:
    """Frame ``index`` of the pattern, as an NV12 (H*3/2, W) or RGB(A)/BGR (H, W, C) uint8 array."""
    x = np.arange(width, dtype=np.int32)[None, :]
    y = np.arange(height, dtype=np.int32)[:, None]
    if pattern == 1:  # flat grey level changing with the frame index
        luma = np.full((height, width), (index * 7) % 220 + 16, np.int32)
    else:  # diagonal gradient moving right, with 8 vertical bars
        luma = ((x + y + index * 4) % 220 + 16) ^ ((x * 8 // max(width, 1)) * 4)
    luma = luma.astype(np.uint8)
    fmt = fmt.upper()
    if fmt == "NV12":
        h2, w2 = (height + 1) // 2, (width + 1) // 2
        uv = np.empty((h2, w2 * 2), np.uint8)
        uv[:, 0::2] = ((np.arange(w2)[None, :] * 255 // max(w2, 1)) + index) % 256
        uv[:, 1::2] = ((np.arange(h2)[:, None] * 255 // max(h2, 1)) + 2 * index) % 256
        return np.concatenate([luma, uv[:, :width]], axis=0)
    if fmt == "GRAY8":
        return luma
    ch = 4 if fmt in ("RGBA", "BGRA") else 3
    out = np.empty((height, width, ch), np.uint8)
    out[..., 0] = luma
    out[..., 1] = ((x * 3 + index) % 256).astype(np.uint8)
    out[..., 2] = ((y * 5 + 2 * index) % 256).astype(np.uint8)
    if ch == 4:
        out[..., 3] = 255
    return out


class TestSource(SourceElement):
    factory = "videotestsrc"
    aliases = ("pysm_testsrc",)
    src_templates = ("src",)
    PROPS = {
        "num-buffers": Prop(int, -1, "frames to produce (-1: unlimited)", minimum=-1),
        "is-live": Prop(bool, False, "pace frames at 'framerate'"),
        "pattern": Prop(int, 0, "0 moving gradient with bars, 1 flat grey", choices=(0, 1)),
        "width": Prop(int, 320, "frame width", minimum=2),
        "height": Prop(int, 240, "frame height", minimum=2),
        "framerate": Prop(float, 30.0, "frames per second", minimum=0.001),
        "format": Prop(str, "NV12", "NV12, RGB, BGR, RGBA, BGRA or GRAY8",
                       choices=("NV12", "RGB", "BGR", "RGBA", "BGRA", "GRAY8")),
        "device": Prop(int, -1, "pysm: -1 host memory, else the CUDA device of the frames", minimum=-1),
        "source-id": Prop(int, -1, "source id on the batch (-1: the mux pad index)", minimum=-1),
    }

    def produce(self) -> None:
        p = self.props
        period = 1.0 / p["framerate"]
        start = time.monotonic()
        i = 0
        while not self.stopping and (p["num-buffers"] < 0 or i < p["num-buffers"]):
            if p["is-live"]:
                wait = start + i * period - time.monotonic()
                while wait > 0 and not self.stopping:
                    time.sleep(min(wait, 0.05))
                    wait = start + i * period - time.monotonic()
                if self.stopping:
                    return
            pts = int(i * period * 1e9)
            frame = _core.frame_from_array(test_pattern(p["width"], p["height"], i, p["format"], p["pattern"]),
                                           p["format"], p["device"], pts)
            self.emit(FrameItem(frame, i, pts, self.name, p["source-id"], p["is-live"]))
            i += 1


register(TestSource)
