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
import threading
import time
from typing import Any, Iterator

from pysm.codec.decoder import Decoder
from pysm.codec.demux import Demuxer
from pysm.gil import tune_switch_interval

__all__ = ["VideoReader"]

_iterating = 0  # readers iterating right now, in any thread
_iterating_lock = threading.Lock()


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
        low_latency: decoder outputs frames without reordering delay; ``None``: when the source
            is live.
        batch_packets: most packets decoded per native call for files.
        output_format, output_size, open_timeout, read_timeout, options: passed on to
            :class:`Decoder` and :class:`Demuxer`.

    ``first_frame_latency`` holds the seconds from construction to the first frame;
    ``seamless_loop`` whether looped passes follow each other without draining the decoder.
    """

    def __init__(self, uri: str | os.PathLike, device: str | int = "auto", *, loop: bool = False,
                 low_latency: bool | None = False, output_format: str = "NV12",
                 output_size: tuple[int, int] | None = None, open_timeout: float = 10.0,
                 read_timeout: float = 10.0, options: dict[str, str] | None = None,
                 batch_packets: int = 8) -> None:
        self._t0 = time.perf_counter()
        self._demuxer = Demuxer(uri, open_timeout=open_timeout, read_timeout=read_timeout, options=options)
        try:
            if low_latency is None:
                low_latency = bool(self._demuxer.info.is_live)
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
        # Set on the first packet of a looping reader: True when each pass follows the last without
        # draining the decoder (NVDEC, file starting at an IDR/key frame), False when it flushes.
        self.seamless_loop: bool | None = None

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
        global _iterating
        with _iterating_lock:
            _iterating += 1
            if _iterating >= 2:  # readers in threads: see pysm.gil
                tune_switch_interval()
        try:
            yield from self._frames()
        finally:
            with _iterating_lock:
                _iterating -= 1

    def _frames(self) -> Iterator[Any]:
        demuxer, decoder = self._demuxer, self._decoder
        tb = self.info.time_base
        unit_num, unit_den = tb.numerator * 1_000_000_000, tb.denominator
        looping = self.loop and not self.info.is_live
        offset = 0       # ns added to this pass's timestamps, so that a looped timeline keeps rising
        span = None      # ns one pass lasts, from the first pass's packet timestamps
        lo = hi = None
        step = 0
        while True:
            frames_before = self.frames
            n = 1
            while True:
                batch = demuxer.read_batch(n)
                if not batch:
                    break
                if self.seamless_loop is None:
                    self.seamless_loop = looping and decoder.continues_at(batch[0])
                if n < self.batch_packets and self.frames:  # single packets until frames flow
                    n = min(self.batch_packets, n * 2)
                if span is None:
                    for p in batch:
                        if p.pts is not None:
                            lo = p.pts if lo is None else min(lo, p.pts)
                            hi = p.pts if hi is None else max(hi, p.pts)
                    step = batch[-1].duration or step
                frames = decoder.decode_many(batch, offset)
                del batch
                if frames:
                    self._account(frames)
                    yield from _hand_out(frames)
            # Draining the decoder stalls the hardware (about 7 % of NVDEC time with 7 looping
            # 10-s clips): a pass that restarts at an IDR/key frame follows the last one directly,
            # and the held-back frames come out with the next pass's first packets, still carrying
            # their own timestamps. Otherwise (and when a pass has shown nothing yet) flush.
            if not (self.seamless_loop and self.frames > frames_before):
                frames = decoder.flush()  # frames carry the offset of the packets they came from
                if frames:
                    self._account(frames)
                    yield from _hand_out(frames)
            if not looping or self.frames == frames_before:
                return
            if span is None:
                if step:
                    step_ns = step * unit_num // unit_den
                else:
                    step_ns = int(1_000_000_000 / self.info.fps) if self.info.fps else 0
                span = (hi - lo) * unit_num // unit_den + step_ns if lo is not None else 0
            offset += span
            demuxer.seek(0)

    def _account(self, frames: list) -> None:
        """Count frames and note the first-frame latency."""
        if self.first_frame_latency is None:
            self.first_frame_latency = time.perf_counter() - self._t0
        self.frames += len(frames)

    def close(self) -> None:
        self._decoder.close()
        self._demuxer.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pysm.codec.VideoReader {self.info.uri} {self.info.codec} on {self.device}>"
