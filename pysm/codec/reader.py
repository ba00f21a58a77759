"""``VideoReader``: demux + decode of one source as an iterator of frames.

The loop reads a few packets at a time (``Demuxer.read_batch``) and decodes them in one native call
(``Decoder.decode_many``): with NVDEC the GIL is released once per batch instead of once per
packet, and no per-packet Python objects are created beyond PyAV's own. That is what keeps tens of
streams decoding in threads at the hardware's rate. Batches are single packets until the first
frame is out (so it is not delayed), then double up to ``batch_packets``; live sources and
``low_latency`` always use one.

A file may also decode on several NVDEC sessions at once, one coded sequence each
(:mod:`pysm.codec.parallel`, ``sessions``): one session keeps one NVDEC engine busy at most, so a
single stream, or a few, would otherwise leave most of a GPU's engines idle.
"""

from __future__ import annotations

import functools
import itertools
import os
import threading
import time
import weakref
from typing import Any, Callable, Iterator

from pysm import errors
from pysm.codec.decoder import CLEAN_RESTART, OPEN_RESTART, Decoder, _is_key, open_source, parse_device
from pysm.codec.demux import Demuxer, StreamInfo
from pysm.codec import parallel as _parallel
from pysm.codec.parallel import LOOKAHEAD_MIB, ParallelDecode, auto_lookahead_mib, auto_sessions
from pysm.codec.parameter_sets import ParameterSets
from pysm.gil import tune_switch_interval

__all__ = ["VideoReader"]

#: Frames an automatic reader decodes on its own decoder before judging whether its consumer keeps
#: up with it.
_WATCH_FRAMES = 48
_iterating: dict[str, int] = {}  # readers iterating right now, in any thread, per device
_iterating_lock = threading.Lock()


def _nvdec_engines(info: StreamInfo, device: str) -> int:
    """NVDEC engines of a GPU that decode this stream (cuvidGetDecoderCaps, cached), 1 when unknown."""
    from pysm._native import _core

    try:
        row = _core.nvdec_caps(parse_device(device)[1], info.codec, info.bit_depth or 8, info.chroma or "420")
    except errors.Error:
        return 1
    return max(1, int(row["num_engines"])) if row["supported"] else 1


@functools.lru_cache(maxsize=None)
def _memory_bytes(device: str) -> int:
    """Memory of the device frames are decoded into: the GPU's, or the host's for "cpu"."""
    kind, index = parse_device(device)
    if kind == "cuda":
        from pysm import cuda

        return int(cuda.device_info(index)["total_memory"])
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _restart_kind(decoder: Decoder, sets: ParameterSets, packet: Any) -> int:
    """CLEAN_RESTART or OPEN_RESTART where a segment may start at ``packet``, else 0. Read with
    the parameter sets the stream carried before it (``sets``): an H.264 recovery point's slice
    header means something else under the container's SPS where a later part brought its own."""
    if not _is_key(packet):
        return 0
    role = decoder.picture_role(sets.prefixed(packet))
    return role if role in (CLEAN_RESTART, OPEN_RESTART) else 0


def _weak(method: Callable, default: Any = None) -> Callable:
    """``method`` called through a weak reference to its object; ``default`` once it is gone
    (None: raise SourceError). Other callables (a test's stand-in) are used as they are."""
    if not hasattr(method, "__self__"):
        return method
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> Any:
        m = ref()
        if m is None:
            if default is None:
                raise errors.SourceError("the VideoReader of this decode was garbage-collected")
            return default
        return m(*args)

    return call


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
        sessions: decoder sessions that may decode this file at once, one coded sequence (GOP
            from an IDR) each, frames identical and in order (:mod:`pysm.codec.parallel`); they
            start with the first frame. ``None``: automatic, on NVDEC and for files - the reader
            decodes on its own decoder, and after 48 frames, if its consumer takes less than half
            the decode's time and a GOP or two fit in ``lookahead_mib``, hands over at the next
            IDR to up to 4 sessions while no more readers iterate on the GPU than it has NVDEC
            engines, 2 while up to twice as many do (HEVC: 1 once readers outnumber engines).
            1 on the CPU, for live sources and with ``low_latency``.
        lookahead_mib: device memory the frames decoded ahead of the consumer may take when
            several sessions decode (MiB). ``None``: 512, and for automatic sessions on a file
            whose GOPs need more, enough for them at the hand-over while fewer readers iterate
            on the GPU than it has NVDEC engines, up to an eighth of its memory shared among
            them and at most 4 GiB (the frames are only held while the consumer keeps up).
        output_format, output_size, fast_start, open_timeout, read_timeout, options: passed on
            to :class:`Decoder` and :class:`Demuxer` (``fast_start``: the first frame is decoded on
            the CPU while NVDEC creates its session, :mod:`pysm.codec.fast_start`).

    ``first_frame_latency`` holds the seconds from construction to the first frame;
    ``seamless_loop`` whether looped passes follow each other without draining the decoder;
    ``sessions_used`` the most sessions that decoded at once.
    """

    def __init__(self, uri: str | os.PathLike, device: str | int = "auto", *, loop: bool = False,
                 low_latency: bool | None = False, output_format: str = "NV12",
                 output_size: tuple[int, int] | None = None, open_timeout: float = 10.0,
                 read_timeout: float = 10.0, options: dict[str, str] | None = None,
                 batch_packets: int = 8, sessions: int | None = None, lookahead_mib: float | None = None,
                 fast_start: bool = True) -> None:
        self._t0 = time.perf_counter()
        if sessions is not None and (isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 1):
            raise errors.InvalidArgument(f"sessions must be None (automatic) or an int >= 1, got {sessions!r}")
        if lookahead_mib is not None and not lookahead_mib > 0:
            raise errors.InvalidArgument(f"lookahead_mib must be > 0, got {lookahead_mib!r}")
        self._demuxer = open_source(uri, device, open_timeout=open_timeout, read_timeout=read_timeout,
                                    options=options)
        try:
            if low_latency is None:
                low_latency = bool(self._demuxer.info.is_live)
            self._decoder = Decoder(self._demuxer.info, device, low_latency=low_latency,
                                    output_format=output_format, output_size=output_size, fast_start=fast_start)
        except BaseException:
            self._demuxer.close()
            raise
        self.info = self._demuxer.info
        self._sessions = sessions
        self._output_size = output_size
        self._parallel: ParallelDecode | None = None
        self._closed = False  # close() was called: an iteration hands out no more frames
        self._auto_lookahead = lookahead_mib is None
        #: the bound in force (MiB); an automatic one may grow at the hand-over to sessions
        self.lookahead_mib = LOOKAHEAD_MIB if lookahead_mib is None else float(lookahead_mib)
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
        if self._closed:
            raise errors.StateError(f"the reader of {self.info.uri} is closed")
        device = self._decoder.device
        with _iterating_lock:
            _iterating[device] = _iterating.get(device, 0) + 1
            if sum(_iterating.values()) >= 2:  # readers in threads: see pysm.gil
                tune_switch_interval()
        try:
            yield from self._frames(self._sessions_now())
        except errors.Error:
            if not self._closed:
                raise
            # close() from the caller: the closed source or decoder failing ends the iteration
        finally:
            with _iterating_lock:
                _iterating[device] -= 1

    def _sessions_now(self) -> int:
        """Sessions this reader may decode on (see ``sessions``), for now."""
        if self.info.is_live or self.low_latency:
            return 1
        if self._sessions is not None:
            return self._sessions
        if self._decoder.device == "cpu":
            return 1  # FFmpeg already spreads one stream over the cores
        device = self._decoder.device
        return auto_sessions(_nvdec_engines(self.info, device), self._readers_now(), self.info.codec)

    def _readers_now(self) -> int:
        """Readers iterating on this reader's device right now (at least 1)."""
        with _iterating_lock:
            return max(1, _iterating.get(self._decoder.device, 0))

    def _lookahead_room_mib(self) -> float:
        """Most an automatic lookahead may grow to now (see ``lookahead_mib``)."""
        device = self._decoder.device
        return auto_lookahead_mib(_memory_bytes(device), self._readers_now(), _nvdec_engines(self.info, device))

    def _lookahead_fits(self, gop: int, allowed: int) -> bool:
        """Whether segments of ``gop`` frames let ``allowed`` sessions (3 at most, else 2) decode at
        once within the lookahead; an automatic one grows to fit, with half a GOP to spare."""
        frame_mib = self._frame_bytes() / 2**20
        room = max(self._lookahead_room_mib(), self.lookahead_mib) if self._auto_lookahead else self.lookahead_mib
        for want in range(min(allowed, 3), 1, -1):
            need = gop * (want - 1) * frame_mib
            if need <= room:
                if self._auto_lookahead:
                    self.lookahead_mib = max(self.lookahead_mib, min(room, need + gop * frame_mib / 2))
                return True
        return False

    def _passes(self, count: Callable[[], int], made_frames: Callable[[int], bool]):
        """Packet batches ``(packets, pts offset ns)`` of every pass over the source, and
        ``(None, flush)`` at the end of each pass, ``flush`` true unless the next pass can follow
        seamlessly. ``count()`` is the frames decoded so far (batches are single packets until
        frames flow); ``made_frames(at_start)`` whether the pass that began at that count made
        any (a looping source that makes none stops)."""
        demuxer, decoder = self._demuxer, self._decoder
        tb = self.info.time_base
        unit_num, unit_den = tb.numerator * 1_000_000_000, tb.denominator
        looping = self.loop and not self.info.is_live
        offset = 0       # ns added to this pass's timestamps, so that a looped timeline keeps rising
        later = False    # a pass after the first
        span = None      # ns one pass lasts, from the first pass's packet timestamps
        other_sets = False  # the first pass carried parameter sets other than the configuration's
        lo = hi = None
        step = 0
        while True:
            at_start = count()
            n = 1
            read_any = False
            while True:
                batch = demuxer.read_batch(n)
                if not batch:
                    break
                if later and not read_any and other_sets:
                    # A later pass of a file whose parameter sets change part-way: it starts with
                    # the codec configuration's, not the last in-band ones the decoder took (its
                    # first part decoded damaged with its last part's).
                    batch[0] = decoder.with_configuration(batch[0])
                elif looping and span is None and not other_sets:
                    other_sets = any(decoder.changes_configuration(p) for p in batch)
                read_any = True
                if self.seamless_loop is None:
                    self.seamless_loop = looping and decoder.continues_at(batch[0])
                if n < self.batch_packets and count():  # single packets until frames flow
                    n = min(self.batch_packets, n * 2)
                if span is None:
                    for p in batch:
                        # Not the pre-roll an MP4 edit list hides (a stream-copy cut decodes from
                        # the keyframe before its first shown frame): those are never shown, and
                        # counting them left a gap of up to a GOP between passes.
                        if p.pts is not None and not p.is_discard:  # (PyAV packets: read_batch)
                            lo = p.pts if lo is None else min(lo, p.pts)
                            hi = p.pts if hi is None else max(hi, p.pts)
                    step = batch[-1].duration or step
                yield batch, offset
                del batch
            # Draining the decoder stalls the hardware (about 7 % of NVDEC time with 7 looping
            # 10-s clips): a pass that restarts at an IDR/key frame follows the last one directly,
            # and the held-back frames come out with the next pass's first packets, still carrying
            # their own timestamps. Otherwise (and when a pass has shown nothing yet) flush.
            yield None, not (self.seamless_loop and count() > at_start)
            # A pass without packets (a source whose seek does not bring it back) or frames ends
            # the loop rather than spinning on it.
            if demuxer.truncated and not looping:
                raise demuxer.truncation_error()  # after its frames, as a read error would be
            if not looping or not read_any or not made_frames(at_start):
                return
            if span is None:
                if step:
                    step_ns = step * unit_num // unit_den
                else:
                    step_ns = int(1_000_000_000 / self.info.fps) if self.info.fps else 0
                span = (hi - lo) * unit_num // unit_den + step_ns if lo is not None else 0
            offset += span
            later = True
            demuxer.seek(0)

    def _frames(self, sessions: int) -> Iterator[Any]:
        """Decode on the reader's own decoder, in the caller's thread; with automatic sessions
        (``sessions`` > 1 allowed now), hand over to parallel sessions at the next restart point
        once the consumer proves faster than this one decoder. Asked-for sessions start at once."""
        decoder = self._decoder
        par: list[ParallelDecode] = []  # the parallel run, once handed over

        def count() -> int:
            return par[0].produced if par else self.frames

        def made_frames(at_start: int) -> bool:
            if par:
                return par[0].produced > 0 or par[0].settle() > 0
            return self.frames > at_start

        passes = self._passes(count, made_frames)
        sets = ParameterSets(decoder)  # what later segments' sessions must be given first
        if sessions > 1 and self._sessions is not None:
            yield from self._parallel_frames(passes, par, sets, asked=True)
            return
        watch = sessions > 1
        handover = False
        t_decode = t_consumer = 0.0
        packets = 0
        restarts: list[int] = []  # packet numbers of the last two restart points seen
        for batch, extra in passes:
            if batch is None:  # the end of a pass: flush unless the next one follows seamlessly
                frames = decoder.flush() if extra else None  # frames carry their packets' offset
            else:
                if handover:
                    # This decoder goes on as the first session, up to the next restart point.
                    rest = itertools.chain([(batch, extra)], passes)
                    del batch
                    yield from self._parallel_frames(rest, par, sets, asked=False, continues=True)
                    return
                if watch:
                    for k, p in enumerate(batch):
                        sets.see(p)
                        if _restart_kind(decoder, sets, p):
                            restarts = [restarts[-1], packets + k] if restarts else [packets + k]
                    packets += len(batch)
                t = time.perf_counter()
                frames = decoder.decode_many(batch, extra)
                t_decode += time.perf_counter() - t
            del batch
            if frames:
                self._account(frames)
                t = time.perf_counter()
                yield from self._hand_out(frames)
                t_consumer += time.perf_counter() - t
                # More sessions pay while the consumer keeps up, if still allowed, and if the
                # restart points come often enough for a segment or two to fit in the lookahead.
                if (watch and not handover and self.frames >= _WATCH_FRAMES and len(restarts) == 2
                        and self._consumer_keeps_up(t_consumer, t_decode)):
                    allowed = self._sessions_now()
                    handover = allowed > 1 and self._lookahead_fits(restarts[1] - restarts[0], allowed)

    @staticmethod
    def _consumer_keeps_up(t_consumer: float, t_decode: float) -> bool:
        # A consumer that takes less than half the decode's time leaves this session's engine the
        # bottleneck.
        return t_consumer < 0.5 * t_decode

    def _parallel_frames(self, batches: Iterator, par: list, sets: ParameterSets, asked: bool,
                         continues: bool = False) -> Iterator[Any]:
        decoder = self._decoder
        # Alone on its GPU, a reader's sessions take segments as they come free and read further
        # ahead; beside other readers that made the sessions contend for the engines (see
        # ParallelDecode).
        alone = self._readers_now() == 1
        # The sessions' threads hold the run: weak references to this reader let a reader kept in a
        # cycle with its own iterator be collected (its iterator's cleanup then stops them).
        p = ParallelDecode(
            decoder, _weak(self._new_session), _weak(self._sessions_now, default=1),
            functools.partial(_restart_kind, decoder, sets), leading=decoder.is_leading,
            hidden=decoder.hidden_copy, continues=continues, parameter_sets=sets, batch=self.batch_packets,
            max_lookahead_frames=self._lookahead_frames(),
            eager=asked, parallel_now=True, free_first=alone,
            max_queued_packets=_parallel.MAX_QUEUED_PACKETS_ALONE if alone else None)
        par.append(p)
        self._parallel = p
        tune_switch_interval()  # the sessions decode in threads of their own
        # The reader's own decoder is session 0 now: like the others it leaves the timestamps to the
        # loop below (in order, one clock) and an empty segment unreported (checked on the run).
        before = decoder.synthesize_pts, decoder.report_empty
        decoder.synthesize_pts = decoder.report_empty = False
        run = p.run(batches)
        try:
            for frames in run:
                decoder.clock.stamp(frames)
                self._account(frames)
                yield from self._hand_out(frames)
        finally:
            run.close()  # stops the sessions' threads now, not when the generator is collected
            decoder.synthesize_pts, decoder.report_empty = before
        if not self.frames and p.fed and before[1]:
            raise decoder.no_frame_error(p.fed)

    def _lookahead_frames(self) -> int:
        return int(self.lookahead_mib * 2**20 // self._frame_bytes())

    def _frame_bytes(self) -> int:
        """About the bytes one output frame takes (pitch padding aside)."""
        w, h = self._output_size or (self.info.width or 1920, self.info.height or 1080)
        fmt = self._decoder.output_format
        if fmt in ("RGB", "BGR"):
            return w * h * 3
        if fmt in ("RGBA", "BGRA"):
            return w * h * 4
        return w * h * 3 // 2 * (2 if (self.info.bit_depth or 8) > 8 else 1)

    def _new_session(self) -> Decoder:
        """The decoder of one more session: the same device and output as the first."""
        d = self._decoder
        session = Decoder(self.info, d.device, low_latency=False, output_format=d.output_format,
                          output_size=self._output_size, fast_start=False)  # starts mid-stream, for throughput
        session.synthesize_pts = False  # timed by the reader, in order (_parallel_frames)
        # A segment that gives no frame is not a stream that gives none: its errors are flagged
        # frame by frame, as on one session.
        session.report_empty = False
        return session

    @property
    def sessions_used(self) -> int:
        """Most decoder sessions that decoded this reader's stream at once (1: serial decode)."""
        return self._parallel.sessions_used if self._parallel is not None else 1

    @property
    def parallel_stats(self) -> dict | None:
        """Where the parallel sessions' time went (:attr:`ParallelDecode.stats`), or None while
        the reader decodes on one session."""
        return self._parallel.stats if self._parallel is not None else None

    def _account(self, frames: list) -> None:
        """Count frames and note the first-frame latency."""
        if self.first_frame_latency is None:
            self.first_frame_latency = time.perf_counter() - self._t0
        self.frames += len(frames)

    def _hand_out(self, frames: list) -> Iterator[Any]:
        """Yield frames one by one, dropping the list's reference to each as it goes, so their pool
        surfaces come back as soon as the caller lets go of them; none once the reader is closed."""
        frames.reverse()
        pop = frames.pop
        while frames and not self._closed:
            yield pop()
        frames.clear()

    def close(self) -> None:
        """Stop the parallel sessions (if any), then close the decoder and the source; an
        iteration in progress ends at its next frame."""
        self._closed = True
        if self._parallel is not None:
            self._parallel.stop()  # its threads decode on the decoders closed below
        self._decoder.close()
        self._demuxer.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pysm.codec.VideoReader {self.info.uri} {self.info.codec} on {self.device}>"
