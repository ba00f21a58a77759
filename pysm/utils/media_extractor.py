"""``MediaExtractor``: decode chunks of media sources into queues of frames (pyservicemaker ``utils``).

>>> chunks = [MediaChunk("a.mp4", start_pts=2_000_000_000, duration=1_000_000_000)]  # doctest: +SKIP
>>> with MediaExtractor(chunks, q_size=8, blocking=True) as extractor:              # doctest: +SKIP
...     for q in extractor():
...         while (frame := q.get()) is not None:
...             use(frame.tensor, frame.timestamp)

**End of a chunk.** Every queue returned by ``__call__``/``append`` receives exactly one ``None``
after its last frame: when the chunk's duration is reached, when the source ends, when the
source fails (then ``extractor.errors[chunk]`` holds the reason) and when the extractor stops.
The ``None`` is always delivered: if the queue is full at stop time, the oldest frame makes room.

**Frames.** ``VideoFrame.tensor`` is the decoded frame as a Tensor: NV12 ``(H*3/2, W)`` (P016 for
10-bit) at native size when ``batch_size`` is 0, scaled to ``scaling`` otherwise; on the GPU when
NVDEC decodes it. ``VideoFrame.timestamp`` is its presentation time in ns; ``VideoFrame.frame``
is the :class:`pysm.codec.Frame` (``frame.to("RGB")`` converts colour).

**Timeline.** ``start_pts``, ``duration`` and ``VideoFrame.timestamp`` count from the source's
start (its first timestamp is 0), as GStreamer's stream time does in pyservicemaker: a camera
recording whose MPEG-TS clock starts at 100 s gives its first frame timestamp 0, and
``start_pts=2_000_000_000`` is two seconds into it. ``VideoFrame.frame.pts`` keeps the
container's own timestamp. Frames of a source without timestamps (a raw H.264/HEVC elementary
stream) are timed at its frame rate.

**Sampling** follows pyservicemaker: a chunk starts at ``start_pts`` (0 = the first frame) and
takes the frames before ``start + duration`` (-1 = to the end of the source), so chunks laid end to
end share no frame; with ``interval`` > 0 it keeps the first frame at or after
``start + n * interval`` for n = 0, 1, 2, ...

**Back-pressure.** With ``blocking=False`` (the default, as in pyservicemaker) a frame that cannot
enter a full queue within 1 s is dropped; with ``blocking=True`` decoding waits for the consumer.
"""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Optional

__all__ = ["MediaChunk", "MediaExtractor", "VideoFrame", "FrameSampler"]

log = logging.getLogger("pysm.utils.media_extractor")

_SEEK_THRESHOLD = 1_000_000_000  # ns: seek ahead only across gaps longer than this


class MediaChunk:
    """A time range of one media source.

    Args:
        source: file path or URL.
        start_pts: start time in ns (0 = from the first frame).
        duration: length in ns (-1 = to the end of the source).
        interval: sampling step in ns (0 = every frame).
    """

    def __init__(self, source: str, start_pts: int = 0, duration: int = -1, interval: int = 0) -> None:
        self._source = str(source)
        self._start_pts = int(start_pts)
        self._duration = int(duration)
        self._interval = int(interval)
        self.id: int = -1

    @property
    def source(self) -> str:
        return self._source

    @property
    def start_pts(self) -> int:
        return self._start_pts

    @property
    def duration(self) -> int:
        return self._duration

    @property
    def interval(self) -> int:
        return self._interval

    def __repr__(self) -> str:
        return (f"MediaChunk({self._source!r}, start_pts={self._start_pts}, duration={self._duration}, "
                f"interval={self._interval})")


class VideoFrame:
    """A decoded frame: ``tensor`` (zero-copy view of its surface) and ``timestamp`` (ns)."""

    __slots__ = ("_tensor", "_timestamp", "_frame")

    def __init__(self, data: Any, timestamp: int = -1, frame: Any = None) -> None:
        self._tensor = data
        self._timestamp = timestamp
        self._frame = frame

    @property
    def tensor(self) -> Any:
        return self._tensor

    @property
    def timestamp(self) -> int:
        return self._timestamp

    @property
    def frame(self) -> Any:
        """The :class:`pysm.codec.Frame` behind ``tensor`` (None when built from a bare tensor)."""
        return self._frame

    def __repr__(self) -> str:
        return f"VideoFrame(timestamp={self._timestamp}, frame={self._frame!r})"


class FrameSampler:
    """Decides which frames of a chunk to keep (pyservicemaker's sampling rules)."""

    def __init__(self, chunk: MediaChunk) -> None:
        self.chunk = chunk
        self.start = chunk.start_pts if chunk.start_pts > 0 else None
        self.captured = 0
        self.done = False

    def expected(self) -> int | None:
        if self.start is None:
            return None
        return self.start + self.chunk.interval * self.captured if self.chunk.interval > 0 else self.start

    def accept(self, pts: int) -> bool:
        """True to keep the frame at ``pts``; sets ``done`` once past the chunk's end."""
        if self.start is None:
            self.start = pts
        if self.chunk.duration > 0 and pts >= self.start + self.chunk.duration:
            self.done = True
            return False
        if pts < self.start:
            return False
        if self.chunk.interval > 0 and pts < self.start + self.chunk.interval * self.captured:
            return False
        if self.chunk.interval > 0:
            # The first frame at or after each grid point, each frame once: after a gap in the
            # timestamps this frame stands for every point it passed, and the next is the one after it.
            self.captured = (pts - self.start) // self.chunk.interval + 1
        else:
            self.captured += 1
        return True


def _put_end(q: queue.Queue, stopped: threading.Event) -> None:
    """Deliver the end-of-chunk None, making room if the extractor is stopping and q is full."""
    while True:
        try:
            q.put(None, timeout=0.1)
            return
        except queue.Full:
            if stopped.is_set():
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass


class MediaExtractor:
    """Decode media chunks into one ``queue.Queue`` of :class:`VideoFrame` per chunk.

    Args:
        chunks: the chunks to extract; ``None`` for dynamic mode (add chunks with :meth:`append`).
        batch_size: 0 keeps frames at native size; N > 0 scales every frame to ``scaling``
            (pyservicemaker batches N sources through a muxer here; pysm decodes each chunk on its
            own and scales in the decoder, NVDEC's hardware scaler on the GPU).
        scaling: ``(width, height)`` when ``batch_size`` > 0.
        n_thread: worker threads (chunks decoded concurrently).
        q_size: capacity of each output queue.
        enable_seek: seek ahead across sampling gaps longer than 1 s instead of decoding through them.
        blocking: wait for the consumer when a queue is full instead of dropping frames.
        device: decoder device, ``"auto"`` (NVDEC when possible), ``"cpu"`` or ``"cuda:N"``.
    """

    DEFAULT_RESOLUTION = (1920, 1080)

    def __init__(self, chunks: Optional[list[MediaChunk]] = None, batch_size: int = 0,
                 scaling: tuple[int, int] = DEFAULT_RESOLUTION, n_thread: int = 1, q_size: int = 1,
                 enable_seek: bool = False, blocking: bool = False, device: str = "auto") -> None:
        if n_thread < 1:
            raise ValueError("n_thread must be at least 1")
        if q_size < 1:
            raise ValueError("q_size must be at least 1")
        self._dynamic = chunks is None
        self._chunks: list[MediaChunk] = list(chunks or [])
        self._queues: list[queue.Queue] = [queue.Queue(maxsize=q_size) for _ in self._chunks]
        for i, c in enumerate(self._chunks):
            c.id = i
        self._q_size = q_size
        self._batch_size = batch_size
        self._scaling = tuple(scaling) if batch_size > 0 else None
        self._enable_seek = enable_seek
        self._blocking = blocking
        self._device = device
        self._stopped = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=n_thread, thread_name_prefix="pysm-extract")
        self._futures: list[Future] = []
        self._started = False
        self._lock = threading.Lock()
        #: chunk index -> error message, for chunks that failed.
        self.errors: dict[int, str] = {}

    # ---- running --------------------------------------------------------------------------------
    def __call__(self) -> list[queue.Queue]:
        """Start extraction; returns one queue per chunk (in chunk order)."""
        with self._lock:
            if not self._started:
                self._started = True
                for chunk, q in zip(self._chunks, self._queues):
                    self._submit(chunk, q)
        return list(self._queues)

    def append(self, chunk: MediaChunk) -> queue.Queue:
        """Add a chunk while running (dynamic mode only); returns its queue."""
        if not self._dynamic:
            raise RuntimeError("append() needs a MediaExtractor constructed without chunks")
        if self._stopped.is_set():
            raise RuntimeError("the MediaExtractor is stopped")
        q: queue.Queue = queue.Queue(maxsize=self._q_size)
        with self._lock:
            chunk.id = len(self._chunks)
            self._chunks.append(chunk)
            self._queues.append(q)
            self._submit(chunk, q)
        return q

    def _submit(self, chunk: MediaChunk, q: queue.Queue) -> None:
        self._futures.append(self._executor.submit(self._run_chunk, chunk, q))

    def _put_frame(self, q: queue.Queue, item: VideoFrame) -> None:
        while not self._stopped.is_set():
            try:
                q.put(item, timeout=1.0 if not self._blocking else 0.1)
                return
            except queue.Full:
                if not self._blocking:
                    log.warning("queue of a media chunk is full: dropping the frame at %d ns", item.timestamp)
                    return

    def _run_chunk(self, chunk: MediaChunk, q: queue.Queue) -> None:
        try:
            self._extract(chunk, q)
        except Exception as exc:  # noqa: BLE001 - reported per chunk, never kills the extractor
            self.errors[chunk.id] = str(exc)
            log.error("media chunk %s failed: %s", chunk, exc)
        finally:
            _put_end(q, self._stopped)

    def _extract(self, chunk: MediaChunk, q: queue.Queue) -> None:
        from pysm.codec import Decoder
        from pysm.codec.decoder import open_source

        sampler = FrameSampler(chunk)
        with open_source(chunk.source, self._device) as demux, Decoder(demux.info, self._device,
                                                      output_size=self._scaling) as decoder:
            origin = demux.info.start_time  # the sampler works in time since the source's start
            if chunk.start_pts > 0 and not demux.info.is_live:
                demux.seek(origin + chunk.start_pts)
            last_seek = -1
            last_pts = [-1]

            def emit(frames: list) -> bool:
                for f in frames:
                    pts = f.pts - origin if f.pts >= 0 else f.pts
                    last_pts[0] = pts
                    if sampler.accept(pts):
                        self._put_frame(q, VideoFrame(f.tensor, pts, f))
                    if sampler.done or self._stopped.is_set():
                        return True
                return False

            restart = True
            while restart:
                restart = False
                for packet in demux:
                    if emit(decoder.decode(packet)):
                        return
                    target = sampler.expected()
                    if (self._enable_seek and demux.seekable and target is not None and last_pts[0] >= 0
                            and target - last_pts[0] > _SEEK_THRESHOLD and target != last_seek):
                        # Jump over the gap: frames before `target` would be decoded only to be dropped.
                        if emit(decoder.flush()):
                            return
                        demux.seek(origin + target)
                        if not demux.seekable:  # reopened at its start (a raw elementary stream)
                            decoder.clock.restart()
                        last_seek = target
                        restart = True
                        break
            if emit(decoder.flush()):
                return
            if demux.truncated:
                raise demux.truncation_error()  # in errors[chunk], after the frames it had

    # ---- stopping -------------------------------------------------------------------------------
    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop every worker; each queue still receives its final None."""
        self._stopped.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
        for f in list(self._futures):
            if f.cancelled():
                continue
            try:
                f.result(timeout=timeout)
            except Exception:  # noqa: BLE001 - already reported in errors
                pass
        # Chunks that never started (cancelled) still end with None.
        with self._lock:
            for fut, q in zip(self._futures, self._queues):
                if fut.cancelled():
                    _put_end(q, self._stopped)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every submitted chunk has finished."""
        for f in list(self._futures):
            f.result(timeout=timeout)

    def __enter__(self) -> "MediaExtractor":
        return self

    def __exit__(self, exc_type: Optional[type[BaseException]] = None,
                 exc_value: Optional[BaseException] = None, traceback: Optional[TracebackType] = None) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            if not self._stopped.is_set():
                self._stopped.set()
                self._executor.shutdown(wait=False, cancel_futures=True)
        except Exception:  # noqa: BLE001
            pass
