"""``VideoReader``: demux + decode of one source as an iterator of frames.

The loop reads a few packets at a time (``Demuxer.read_batch``) and decodes them in one native call
(``Decoder.decode_many``): with NVDEC the GIL is released once per batch instead of once per
packet, and no per-packet Python objects are created beyond PyAV's own. That is what keeps tens of
streams decoding in threads at the hardware's rate. Batches are single packets until the first
frame is out (so it is not delayed), then double up to ``batch_packets``; live sources and
``low_latency`` always use one.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

from pysm.codec.decoder import Decoder
from pysm.codec.demux import Demuxer

__all__ = ["VideoReader"]


def _hand_out(frames: list):
    """Yield frames one by one, dropping the list's reference to each as it goes, so their pool
    surfaces come back as soon as the caller lets go of them."""
    frames.reverse()
    pop = frames.pop
    while frames:
        yield pop()


class VideoReader:
    """Iterate over the decoded frames of a file or stream.

    >>> with VideoReader("clip.mp4") as reader:          # doctest: +SKIP
    ...     for frame in reader:
    ...         rgb = frame.to("RGB")

    Args:
        uri: path or URI (file, rtsp://, http(s)://).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (see :class:`Decoder`).
        loop: restart at the beginning at the end of a file; timestamps keep increasing.
        low_latency: decoder outputs frames without reordering delay (live sources).
        batch_packets: most packets decoded per native call for files.
        output_format, output_size, open_timeout, read_timeout, options: passed on to
            :class:`Decoder` and :class:`Demuxer`.

    ``first_frame_latency`` holds the seconds from construction to the first frame.
    """

    def __init__(self, uri: str | os.PathLike, device: str | int = "auto", *, loop: bool = False,
                 low_latency: bool = False, output_format: str = "NV12",
                 output_size: tuple[int, int] | None = None, open_timeout: float = 10.0,
                 read_timeout: float = 10.0, options: dict[str, str] | None = None,
                 batch_packets: int = 8) -> None:
        self._t0 = time.perf_counter()
        self._demuxer = Demuxer(uri, open_timeout=open_timeout, read_timeout=read_timeout, options=options)
        try:
            self._decoder = Decoder(self._demuxer.info, device, low_latency=low_latency,
                                    output_format=output_format, output_size=output_size)
        except BaseException:
            self._demuxer.close()
            raise
        self.info = self._demuxer.info
        self.loop = loop
        self.low_latency = low_latency
        self.batch_packets = 1 if (low_latency or self.info.is_live) else max(1, int(batch_packets))
        self.frames = 0
        self.first_frame_latency: float | None = None

    @property
    def device(self) -> str:
        return self._decoder.device

    @property
    def decoder(self) -> Decoder:
        return self._decoder

    @property
    def demuxer(self) -> Demuxer:
        return self._demuxer

    def __iter__(self) -> Iterator[Any]:
        demuxer, decoder = self._demuxer, self._decoder
        tb = self.info.time_base
        unit_num, unit_den = tb.numerator * 1_000_000_000, tb.denominator
        offset = 0
        while True:
            # pts span of this pass (without the offset), for the next pass's offset when looping
            first = last = None
            step = 0
            n = 1
            while True:
                batch = demuxer.read_batch(n)
                if not batch:
                    break
                if n < self.batch_packets and self.frames:  # single packets until frames flow
                    n = min(self.batch_packets, n * 2)
                duration = batch[-1].duration
                if duration:
                    step = duration * unit_num // unit_den
                frames = decoder.decode_many(batch, offset)
                del batch
                if frames:
                    first, last = self._account(frames, offset, first, last)
                    yield from _hand_out(frames)
            frames = decoder.flush()  # frames carry the offset of the packets they came from
            if frames:
                first, last = self._account(frames, offset, first, last)
                yield from _hand_out(frames)
            if not self.loop or self.info.is_live or first is None:
                return
            # The next pass continues the timeline: one frame after the last one of this pass.
            if not step and self.info.fps:
                step = int(1_000_000_000 / self.info.fps)
            offset += last - first + step
            demuxer.seek(0)

    def _account(self, frames: list, offset: int, first: int | None, last: int | None) -> tuple:
        """Count frames, note the first-frame latency, and widen the pass's (first, last) pts."""
        if self.first_frame_latency is None:
            self.first_frame_latency = time.perf_counter() - self._t0
        self.frames += len(frames)
        pts = [f.pts for f in frames]
        known = [p - offset for p in pts if p >= 0]
        if known:
            lo, hi = min(known), max(known)
            first = lo if first is None else min(first, lo)
            last = hi if last is None else max(last, hi)
        return first, last

    def close(self) -> None:
        self._decoder.close()
        self._demuxer.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pysm.codec.VideoReader {self.info.uri} {self.info.codec} on {self.device}>"
