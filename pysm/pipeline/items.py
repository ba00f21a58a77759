"""What travels between elements: frames before the mux, batches (pysm Buffers) after it, and
end-of-stream events (per source and for the whole pipeline)."""

from __future__ import annotations

import time
from typing import Any


class FrameItem:
    """One unbatched frame on its way to a mux: a Frame (decoder) or single-frame Buffer (appsrc)."""

    __slots__ = ("payload", "frame_number", "pts", "t0", "origin", "source_id", "live")

    def __init__(self, payload: Any, frame_number: int, pts: int, origin: str, source_id: int = -1,
                 live: bool = False) -> None:
        self.payload = payload
        self.frame_number = frame_number
        self.pts = pts
        self.t0 = time.perf_counter()
        self.origin = origin
        self.source_id = source_id
        self.live = live


class SourceEOS:
    """End of one source's stream (travels on that source's path; the mux turns it into a
    per-source event and keeps batching the others)."""

    __slots__ = ("origin", "source_id", "batched", "pad_index")

    def __init__(self, origin: str, source_id: int = -1, batched: bool = False, pad_index: int = -1) -> None:
        self.origin = origin
        self.source_id = source_id
        self.batched = batched  # True after a mux: one stream of a batch ended, others go on
        self.pad_index = pad_index

    def __repr__(self) -> str:
        return f"SourceEOS({self.origin!r}, source_id={self.source_id}, batched={self.batched})"


class EndOfStream:
    """End of the whole stream on this path."""

    __slots__ = ("origin",)

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def __repr__(self) -> str:
        return f"EndOfStream({self.origin!r})"


EVENTS = (SourceEOS, EndOfStream)
