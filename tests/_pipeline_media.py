"""Test media for the pipeline/flow/mux tests: small H.264 clips made with PyAV."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_clip(path: Path, frames: int, width: int = 64, height: int = 48, fps: int = 30, seed: int = 0) -> str:
    """Encode ``frames`` frames (frame i has a luma ramp offset by i) as H.264 MP4."""
    import av

    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("h264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for i in range(frames):
            img = np.roll(base, i, axis=1)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def collect_messages():
    """(callback, list): an on_message callback that appends every message."""
    msgs: list = []
    return msgs.append, msgs
