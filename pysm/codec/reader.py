"""``VideoReader``: demux + decode of one source as an iterator of frames."""

from __future__ import annotations

import os
import time
from typing import Any, Iterator

from pysm.codec.decoder import Decoder
from pysm.codec.demux import Demuxer

__all__ = ["VideoReader"]


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
        output_format, output_size, open_timeout, read_timeout, options: passed on to
            :class:`Decoder` and :class:`Demuxer`.

    ``first_frame_latency`` holds the seconds from construction to the first frame.
    """

    def __init__(self, uri: str | os.PathLike, device: str | int = "auto", *, loop: bool = False,
                 low_latency: bool = False, output_format: str = "NV12",
                 output_size: tuple[int, int] | None = None, open_timeout: float = 10.0,
                 read_timeout: float = 10.0, options: dict[str, str] | None = None) -> None:
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
        offset = 0
        while True:
            first = last = None
            step = 0
            for packet in self._demuxer:
                for frame in self._decoder.decode(packet):
                    yield self._emit(frame, offset)
                if packet.pts >= 0:
                    first = packet.pts if first is None else min(first, packet.pts)
                    last = packet.pts if last is None else max(last, packet.pts)
                    step = packet.duration or step
            for frame in self._decoder.flush():
                yield self._emit(frame, offset)
            if not self.loop or self._demuxer.info.is_live or first is None:
                return
            # The next pass continues the timeline: one frame after the last one of this pass.
            if not step and self.info.fps:
                step = int(1_000_000_000 / self.info.fps)
            offset += last - first + step
            self._demuxer.seek(0)

    def _emit(self, frame: Any, offset: int) -> Any:
        if offset and frame.pts >= 0:
            frame.pts = frame.pts + offset
        if self.first_frame_latency is None:
            self.first_frame_latency = time.perf_counter() - self._t0
        self.frames += 1
        return frame

    def close(self) -> None:
        self._decoder.close()
        self._demuxer.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pysm.codec.VideoReader {self.info.uri} {self.info.codec} on {self.device}>"
