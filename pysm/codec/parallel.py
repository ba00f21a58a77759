"""Decoding one file on several decoder sessions at once, one coded sequence each.

An NVDEC session decodes one picture at a time on one engine: a single 1080p H.264 stream stops at
about a seventh of an H100's seven NVDECs (694 fps on the retail clip), and seven streams leave
5-15 % of the engines idle. A file, though, can be cut at its clean restart points (H.264 IDR,
HEVC IDR/BLA, key frames of VP8/VP9/AV1/MJPEG; :meth:`Decoder.starts_sequence`): a decoder outputs
every earlier picture before such a point and needs none of them after it, so each piece
(*segment*) decodes on its own session into exactly the frames a serial decode gives there.
:class:`ParallelDecode` hands consecutive segments to up to K sessions and gives their frames back
in order. Measured on an H100 with the retail clip (GOP of 60), raw sessions without the ordering:
one stream 694 fps on one session, 1,369 on two, 2,726 on four; seven streams 87-95 % NVDEC busy on
one session each, 97-100 % on three. Through ``VideoReader`` (benchmarks/RESULTS.md, H100): one
stream 2,504 fps on 4 sessions (2,588 on an H200), four 4,361 fps, seven 97 % busy. Packets are read
ahead of the sessions across segments, so the next segment's session starts while the one before
still decodes, whatever the GOP length (bounded per segment instead, one stream on 3 sessions gave
1,768 fps).

HEVC encoders default to open GOPs (x265: an IDR, then a CRA at each key frame), where the only
clean restart point of a file is its first picture. A CRA is an *open* restart point
(:meth:`Decoder.picture_role`): a decoder starting there gives the same frames from it on, except
its leading pictures (RASL/RADL: after it in decoding order, shown before it), which may predict
from pictures before it. So a segment may start at a CRA as well: the segment before decodes the
CRA without showing it and then takes those leading pictures (HEVC puts all of them before the
first trailing picture, and no trailing picture predicts from one), and the new segment starts at
the CRA without them. x264's open GOPs are cut the same way, at their I pictures with an exact
recovery point: H.264 marks no leading pictures, so their picture order counts tell them
(:meth:`Decoder.is_leading`), and a leading picture coded after a trailing one (no encoder known
to us does that; H.264 does not forbid it) would go to the new segment and decode damaged there.

A further session's decoder knows only the container's parameter sets (SPS/PPS/VPS), while a file
whose sets change part-way carries the new ones in band where they start to apply: a segment's
first packet carries the sets the stream brought before it, ahead of its own
(:class:`~pysm.codec.parameter_sets.ParameterSets`).

Frames of later segments wait for the consumer, so the lookahead costs device memory: at most
``max_lookahead_frames`` frames in the segments after the one being handed out (plus one call's
frames per session), and two batches of that one. Unless the caller asked for a
number of sessions, only as much of it is used as the consumer proves it needs: sessions beyond the
first start once the consumer spends a fair share of its time waiting for frames (a consumer paced
slower than one session gains nothing from more), and the frames held ahead start at one batch and
double each time such a consumer waits while a session is held back by that bound.

One known difference from a serial decode: an H.264/HEVC IDR with ``no_output_of_prior_pics_flag``
set makes a serial decoder discard the pictures not yet output before it; here the segment before
it is flushed and those pictures come out. Encoders practically never set the flag.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Iterator

from pysm import errors
from pysm.codec.decoder import CLEAN_RESTART, OPEN_RESTART

log = logging.getLogger("pysm.codec")

__all__ = ["ParallelDecode", "auto_sessions", "auto_lookahead_mib", "MAX_AUTO_SESSIONS", "LOOKAHEAD_MIB"]

#: Most sessions one reader takes on its own accord (four gave 3.9x one session on an H100).
MAX_AUTO_SESSIONS = 4
#: Sessions the readers of one GPU aim to keep busy, per NVDEC engine: at 7 streams on 7 engines,
#: 2 sessions per stream gave 95-96 % NVDEC busy, 3 gave 97-100 % (H100, retail H.264).
SESSIONS_PER_ENGINE = 2.5
#: Share of its time (since the first frame) a consumer must spend waiting for frames before more
#: sessions and more lookahead are spent on it.
WAIT_SHARE = 0.2
#: Most packets read ahead of the sessions (plus two batches), whatever the frame lookahead: two
#: GOPs of 250.
MAX_QUEUED_PACKETS = 512
#: The same for a reader alone on its GPU, whose sessions take segments as they come free: four
#: GOPs of 250 keep 4 sessions busy (one HEVC file on an H100: 4,844 fps against 3,454 with 512).
MAX_QUEUED_PACKETS_ALONE = 1024
#: Device memory (MiB) a reader's frames decoded ahead of its consumer may take by default.
LOOKAHEAD_MIB = 512.0
#: An automatic reader whose GOPs are too long for LOOKAHEAD_MIB may take up to this share of the
#: device's memory, split among the readers iterating on it, and at most LOOKAHEAD_MAX_MIB: one
#: HEVC stream with 246-frame GOPs (730 MiB of 1080p frames each) decoded at 1,397 fps on one
#: session and 5,046 on four; four streams 5,409 / 8,444 fps (H100, medians of 2).
LOOKAHEAD_DEVICE_SHARE = 0.125
LOOKAHEAD_MAX_MIB = 4096.0


def auto_sessions(engines: int, readers: int, codec: str = "h264") -> int:
    """Sessions per reader when ``readers`` readers of ``codec`` share a GPU with ``engines`` NVDECs.

    Up to twice as many readers as engines still take two sessions each (8 H.264 streams on one
    session each: 89-97 % NVDEC busy on an H100, 96 % on 2-3); beyond that every engine stays busy on
    one session per stream (92-100 % from 16 streams on) and more sessions cost more than they give.
    HEVC takes more than one session only while readers < engines. With one reader per engine, more
    sessions keep the engines busier but each frame takes them longer: 7 open-GOP HEVC streams cut
    at their CRAs on an H100 gave 8,866 / 9,132 fps on one session each (94 / 97 % busy) against
    8,431 / 8,762 on three (94 / 96 %), at twice the host CPU; with engines to spare they pay:
    four streams 5,409 fps on one session against 8,444 on four, five 6,643 / 8,674, six 7,857 /
    8,713 on three (medians of 2). Beyond that, two sessions per HEVC stream never did
    better and lost on a first run (16 streams, H100: 74 / 77.5 % busy on the first run with new
    sessions, 97-98 % on a repeat with parked ones, one session 98-99.5 %; 10 streams 74 / 99 % vs
    91-94 %). Not the device pool (no frees to the system in those runs) nor sessions created
    meanwhile (8 new sessions during a 7-stream run did not lower its fps)."""
    readers = max(1, readers)
    if engines <= 0 or readers > 2 * engines or (readers >= engines and codec == "hevc"):
        return 1
    if readers > engines:
        return 2
    return max(1, min(MAX_AUTO_SESSIONS, math.ceil(SESSIONS_PER_ENGINE * engines / readers)))


def auto_lookahead_mib(memory_bytes: int, readers: int, engines: int) -> float:
    """Most memory (MiB) an automatic reader's frames ahead may take, on a device of
    ``memory_bytes`` where ``readers`` readers iterate and ``engines`` NVDECs decode.

    More than LOOKAHEAD_MIB only while readers leave engines free: at 7 HEVC streams on 7 engines,
    two sessions each with the GOPs ahead gave fewer frames than one (8,375 vs 8,940 fps, H100,
    twice the host CPU per stream): there the sessions cost more than the engines they would fill."""
    readers = max(1, readers)
    if readers >= engines:
        return LOOKAHEAD_MIB
    share = memory_bytes / 2**20 * LOOKAHEAD_DEVICE_SHARE / readers
    return max(LOOKAHEAD_MIB, min(LOOKAHEAD_MAX_MIB, share))


class _Segment:
    """Packets from one restart point to the next and the frames decoded from them."""

    __slots__ = ("chunks", "queued", "sealed", "frames", "done", "error", "length", "seq", "started",
                 "given_back")

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq                # its place in the stream
        self.chunks: deque = deque()  # [packets, pts offset] not yet taken by the worker
        self.queued = 0               # packets in chunks
        self.length = 0               # packets fed so far
        self.sealed = False           # no more packets will come
        self.frames: list = []        # decoded, not yet handed to the consumer
        self.done = False             # flushed (or failed): no more frames will come
        self.error: BaseException | None = None
        self.started = False          # its session took packets of it
        self.given_back = False       # waits for any session, ahead of the later ones (see _give_back)


class _Feed:
    """Where the consumer is in the packet source: packets read and not yet in a segment."""

    __slots__ = ("pending", "offset", "segment", "eof", "error", "open_cut", "leading_to", "restart")

    def __init__(self) -> None:
        self.pending: deque = deque()  # all with the same pts offset
        self.offset: Any = 0
        self.segment: _Segment | None = None  # the segment packets go to
        self.eof = False
        self.error: BaseException | None = None  # the source's, raised once the frames before it are out
        # A cut at an open restart point (`restart`: an HEVC CRA, ...): pending[0] is that point,
        # which the next segment starts with; the segment before decodes it hidden, then takes the
        # leading pictures that follow it (they predict from pictures before it) and is sealed at
        # the first picture that is not one.
        self.open_cut = False
        self.leading_to: _Segment | None = None
        self.restart: Any = None


class _Worker:
    """One session: a decoder and the thread that runs it over the segments it takes, one at a time."""

    __slots__ = ("index", "thread", "segment", "queue", "decoder", "decode_s", "starved_s", "held_s",
                 "idle_s", "taken", "retired", "proven")

    def __init__(self, index: int, decoder: Any) -> None:
        self.index = index
        self.thread: threading.Thread | None = None
        self.segment: _Segment | None = None  # the one it decodes
        self.queue: deque[_Segment] = deque()  # tied to it, to decode next (see ParallelDecode)
        self.decoder = decoder
        # Where the session's thread spent its time (seconds): in native decode calls, waiting for
        # packets of its segment, held back by the lookahead, waiting for a segment at all.
        self.decode_s = self.starved_s = self.held_s = self.idle_s = 0.0
        self.taken = 0  # segments decoded
        self.retired = False  # its session could not start: it takes no segment
        self.proven = index == 0  # a decode call of its session returned: it will not be retired

    def stats(self) -> dict:
        return {"decode_s": self.decode_s, "starved_s": self.starved_s, "held_s": self.held_s,
                "idle_s": self.idle_s, "segments": self.taken, "failed_to_start": self.retired}


class _SessionDidNotStart(Exception):
    """A further session failed before it decoded anything (its segment is untouched)."""


def _cannot_start(exc: BaseException, created: bool) -> bool:
    """Whether a further session's failure, at its decoder's creation or (``created``) at its first
    call, says the session could not be had (out of memory, the driver refused a session) rather
    than the stream being bad, which any other session would meet as well."""
    if isinstance(exc, errors.DecodeError):
        return False
    if isinstance(exc, MemoryError):
        return True
    # NVDEC creates its session at the first picture: only the driver's refusal then counts.
    return isinstance(exc, errors.CudaError) and (not created or any(
        call in str(exc) for call in ("cuvidCreateDecoder", "cuvidCtxLockCreate")))


class ParallelDecode:
    """Decode a stream of packet batches on up to ``sessions()`` decoders, frames in order.

    Args:
        first: the decoder of session 0 (owned by the caller, not closed here).
        make_decoder: creates the decoder of a further session (closed here when the run ends);
            called in that session's thread, so creating it never delays the frames.
        sessions: how many sessions may decode at once, asked whenever a segment opens.
        starts_sequence: whether a packet is a restart point: false for none, OPEN_RESTART for an
            open one (an HEVC CRA, see ``leading``), anything else true for a clean one.
        leading: ``leading(packet, restart)``, whether a packet is a leading picture of the open
            restart point ``restart`` before it (shown before it, and may predict from pictures
            before it; :meth:`Decoder.is_leading`); None: no cut at open restart points.
        hidden: a packet to be decoded but not shown (``Decoder.hidden_copy``); needed with
            ``leading``.
        continues: the first decoder is part-way through the stream: the first segment goes on
            from there on that decoder, up to the first restart point.
        parameter_sets: a :class:`~pysm.codec.parameter_sets.ParameterSets` of the stream (with
            what it has seen before ``run``'s first packet): a segment's first packet then
            carries the in-band parameter sets that came before it, and so does the open restart
            point ``leading`` is asked about. ``starts_sequence`` is left to read a packet with
            them itself (the reader's does).
        batch: most packets per native decode call.
        min_segment: restart points closer than this many packets to the last cut are not cut.
        max_lookahead_frames: bound on the frames decoded ahead of the consumer.
        eager: use every session and the whole lookahead from the start (the caller asked for a
            number of sessions), instead of once the consumer has shown it waits for frames.
        parallel_now: allow sessions beyond the first from the start (the consumer has shown it
            is faster than one), the lookahead still growing as it is needed.
        free_first: a segment goes to whichever session is free first; otherwise it is tied, when
            it opens, to the session with the fewest segments, behind the one that session decodes.
        max_queued_packets: bound on the packets read ahead of the sessions (default
            MAX_QUEUED_PACKETS).

    Taken by the first free session, a segment never waits on a slow one while the others run out
    of work and fill the lookahead with later segments: with fake sessions, 4 sessions on 246-frame
    GOPs with 615 frames ahead reach 0.91 of their sum instead of 0.70. On an H100 that pays for a
    reader alone on the GPU (one HEVC file on 3-4 sessions with 1,024 packets read ahead: 4,844 fps
    instead of 3,454), and costs where readers share the engines (4 HEVC files: 6,410-6,835 fps
    instead of 7,911, the sessions contending for the engines more): VideoReader asks for it, and
    for the larger packet bound, only for a reader alone on its GPU.

    A further session that cannot be had (its decoder's creation runs out of device memory or the
    driver refuses it, as at dozens of NVDEC sessions opened at once) is retired before it decodes
    anything: its segments are given back, ahead of later ones, to the sessions that run, and the
    run goes on with those. A session that has not started its segment yet gives it back too and
    takes the earlier one. To keep the bounds, no session starts a segment after one held by a
    session that has not decoded yet, but for the head (a few tens of ms, once per session, while
    the driver creates it): a session part-way through such a later segment would otherwise have
    to finish it past the bounds before it could take the given-back one.
    """

    def __init__(self, first: Any, make_decoder: Callable[[], Any], sessions: Callable[[], int],
                 starts_sequence: Callable[[Any], int], *, leading: Callable[[Any, Any], bool] | None = None,
                 hidden: Callable[[Any], Any] | None = None, continues: bool = False,
                 parameter_sets: Any = None, batch: int = 8,
                 min_segment: int = 24, max_lookahead_frames: int = 64, eager: bool = False,
                 parallel_now: bool = False, free_first: bool = False,
                 max_queued_packets: int | None = None) -> None:
        self._make = make_decoder
        self._sessions = sessions
        self._starts = starts_sequence
        self._leading = leading if hidden is not None else None
        self._hidden = hidden
        self._continues = continues
        self._parameter_sets = parameter_sets
        self._batch = max(1, int(batch))
        self._min_segment = max(1, int(min_segment))
        self._max_frames = max(self._batch, int(max_lookahead_frames))
        self._cv = threading.Condition()
        self._workers: list[_Worker] = [_Worker(0, first)]
        self._segments: deque[_Segment] = deque()  # open, in order; [0] is the head
        self._free_first = free_first
        # With free_first: open segments no session has taken yet, in order; the first session to
        # be free takes the earliest.
        self._unstarted: deque[_Segment] = deque()
        self._opened = 0            # segments opened so far (their seq)
        self._allowed = 1           # sessions that may take segments now
        self._buffered = 0          # frames decoded and not handed out
        self._queued = 0            # packets in segments, not yet taken by their sessions
        # Packets read ahead of the sessions, all segments together: enough for the next segment's
        # session to start while the one before still decodes (see _feed). Capped apart from the
        # frames: a small output size allows thousands of frames ahead, and packets of a 4K or
        # intra-only stream are not small.
        cap = MAX_QUEUED_PACKETS if max_queued_packets is None else int(max_queued_packets)
        self._max_queued = max(4 * self._batch, min(self._max_frames, cap) + 2 * self._batch)
        # Frames the sessions may hold ahead (grows, see the module doc), and whether sessions
        # beyond the first may decode (once the consumer waited for a frame).
        self._budget = self._max_frames if eager else self._batch
        self._head_limit = 2 * self._batch  # frames of the head not yet taken by the consumer
        self._parallel = eager or parallel_now
        self._held_back = False     # a session waited on the budget since the consumer last waited
        self._stop = False
        self._read_s = 0.0          # consumer: seconds reading packets from the source
        self._wait_s = 0.0          # consumer: seconds waiting for frames
        self.produced = 0           # frames decoded so far
        self.fed = 0                # packets put into segments so far
        self.sessions_used = 1      # most sessions that decoded at once

    @property
    def stats(self) -> dict:
        """Where the time went, for tuning: per session (``sessions``, in order) seconds in native
        decode calls (``decode_s``), waiting for packets (``starved_s``: the reading falls behind),
        held back by the lookahead bound (``held_s``: the consumer falls behind), waiting for a
        segment (``idle_s``), and segments decoded; the consumer's seconds reading packets
        (``read_s``) and waiting for frames (``consumer_wait_s``)."""
        with self._cv:
            return {"sessions": [w.stats() for w in self._workers], "read_s": self._read_s,
                    "consumer_wait_s": self._wait_s}

    # ---- worker side -------------------------------------------------------------------------

    def _ahead(self) -> int:
        """Frames of the segments after the head: the lookahead the budget bounds."""
        return self._buffered - (len(self._segments[0].frames) if self._segments else 0)

    def _may_decode(self, seg: _Segment) -> bool:
        if self._segments and self._segments[0] is seg:
            # The head goes on while the consumer keeps up with it, whatever the lookahead holds:
            # bounding both together made the head's session wait for the consumer batch by batch.
            return len(seg.frames) < self._head_limit
        # A head given back by a retired session waits for a session to come free: one that is
        # part-way through a later segment finishes it whatever the bound, or nothing would
        # decode the head. (One that has not started its segment gives it back instead.)
        return self._ahead() < self._budget or (seg.started and self._orphan_head())

    def _unproven_before(self, seg: _Segment) -> bool:
        """Whether a further session that has not decoded yet holds a segment before ``seg``
        (lock held)."""
        return any(not x.proven and not x.retired and (
            (x.segment is not None and x.segment.seq < seg.seq) or (x.queue and x.queue[0].seq < seg.seq))
            for x in self._workers)

    def _orphan_head(self) -> bool:
        """Whether the head is a given-back segment no session has taken yet (lock held)."""
        return bool(self._segments) and self._segments[0].given_back

    def _given_back_before(self, seg: _Segment) -> bool:
        return any(s.given_back and s.seq < seg.seq for s in self._unstarted)

    def _give_back(self, segs: list) -> None:
        """Put segments no session decodes any more in ``_unstarted``, in stream order, ahead of
        the later ones for every session (lock held)."""
        for s in segs:
            s.given_back = True
        self._unstarted = deque(sorted([*self._unstarted, *segs], key=lambda s: s.seq))
        self._cv.notify_all()

    def _run_worker(self, w: _Worker) -> None:
        cv = self._cv
        try:
            while True:
                with cv:
                    t = time.perf_counter()
                    while not self._stop and not (w.queue or (self._unstarted and w.index < self._allowed)):
                        cv.wait()
                    w.idle_s += time.perf_counter() - t
                    if self._stop:
                        return
                    # The earliest segment first: a given-back one may come before this session's own.
                    shared = bool(self._unstarted) and w.index < self._allowed and (
                        not w.queue or self._unstarted[0].seq < w.queue[0].seq)
                    seg = w.segment = (self._unstarted if shared else w.queue).popleft()
                    seg.given_back = False
                    self.sessions_used = max(self.sessions_used,
                                             sum(1 for x in self._workers if x.segment is not None))
                try:
                    if w.decoder is None:
                        try:
                            w.decoder = self._make()
                        except BaseException as exc:
                            if w.index and _cannot_start(exc, created=False):
                                raise _SessionDidNotStart(exc) from exc
                            raise
                    if not self._decode_segment(w, seg):
                        with cv:
                            w.segment = None
                        continue
                except _SessionDidNotStart as gone:
                    with cv:
                        self._retire(w, seg, gone.__cause__)
                    return
                except BaseException as exc:  # noqa: BLE001 - handed to the consumer in order
                    with cv:
                        seg.error = exc
                        seg.chunks.clear()
                        self._queued -= seg.queued
                        seg.queued = 0
                with cv:
                    seg.done = True
                    w.segment = None
                    w.taken += 1
                    cv.notify_all()
        finally:
            if w.index and w.decoder is not None:
                try:
                    w.decoder.close()
                except Exception:  # noqa: BLE001 - closing must not mask the run's own outcome
                    log.debug("closing parallel decoder session %d failed", w.index, exc_info=True)

    def _decode_segment(self, w: _Worker, seg: _Segment) -> bool:
        """Decode ``seg``; False when it was given back before its first packet (an earlier
        segment given back by a retired session needs this session more)."""
        cv = self._cv
        decoder = w.decoder
        while True:
            with cv:
                while not self._stop:
                    if not seg.started and w.index < self._allowed and self._given_back_before(seg):
                        self._give_back([seg])
                        return False
                    if seg.chunks or seg.sealed:
                        head = bool(self._segments) and self._segments[0] is seg
                        # Not ahead of a session that may yet fail to start: its segment would come
                        # back, and this one would have to be finished past the bounds first.
                        if head or seg.started or not self._unproven_before(seg):
                            if self._may_decode(seg):
                                break
                            if not head:
                                self._held_back = True
                        starved = False
                    else:
                        starved = True
                    t = time.perf_counter()
                    cv.wait()
                    if starved:
                        w.starved_s += time.perf_counter() - t
                    else:
                        w.held_s += time.perf_counter() - t
                if self._stop:
                    return True
                if not seg.chunks:  # sealed and empty
                    break
                first, seg.started = not seg.started, True
                packets, offset = seg.chunks[0]
                if len(packets) > self._batch:
                    take = packets[:self._batch]
                    seg.chunks[0][0] = packets[self._batch:]
                else:
                    take = packets
                    seg.chunks.popleft()
                seg.queued -= len(take)
                self._queued -= len(take)
                cv.notify_all()  # room for the feeder
            t = time.perf_counter()
            try:
                frames = decoder.decode_many(take, offset)
            except BaseException as exc:
                # NVDEC creates a session at its first picture: a further session's first call is
                # where it fails to be had. Its packets go back, untouched, for another session.
                if w.index and not w.taken and first and _cannot_start(exc, created=True):
                    with cv:
                        seg.chunks.appendleft([take, offset])
                        seg.queued += len(take)
                        self._queued += len(take)
                        seg.started = False
                    raise _SessionDidNotStart(exc) from exc
                raise
            w.decode_s += time.perf_counter() - t
            if not w.proven:
                with cv:
                    w.proven = True
                    cv.notify_all()  # sessions waiting to start later segments
            self._deliver(seg, frames)
        t = time.perf_counter()
        frames = decoder.flush()
        w.decode_s += time.perf_counter() - t
        self._deliver(seg, frames)
        return True

    def _retire(self, w: _Worker, seg: _Segment, cause: BaseException | None) -> None:
        """Session ``w`` could not start on ``seg`` (lock held): it takes no more segments, and
        ``seg`` and the ones tied to it wait, in order, for the sessions that run."""
        log.warning("decoder session %d could not start (%s: %s); going on with the other sessions",
                    w.index, type(cause).__name__, cause)
        w.retired = True
        w.segment = None
        self._give_back([seg, *w.queue])
        w.queue.clear()

    def _deliver(self, seg: _Segment, frames: list) -> None:
        if not frames:
            return
        with self._cv:
            seg.frames.extend(frames)
            self._buffered += len(frames)
            self.produced += len(frames)
            self._cv.notify_all()

    # ---- consumer side ----------------------------------------------------------------------

    def _queue_for_new_segment(self) -> deque | None:
        """Where a new segment waits for its session, starting the threads of sessions allowed
        anew; None when none may open now.

        At most one segment per session allowed waits, so that a session goes on without a gap
        when its segment ends. Sessions beyond the first are allowed once the consumer waited."""
        allowed = max(1, int(self._sessions())) if self._parallel else 1
        if allowed != self._allowed:
            self._allowed = allowed
            self._cv.notify_all()
        while len(self._workers) < allowed:
            self._workers.append(_Worker(len(self._workers), None))
        for w in self._workers[:allowed]:
            if w.thread is None:
                w.thread = threading.Thread(target=self._run_worker, args=(w,), daemon=True,
                                            name=f"pysm-decode-session-{w.index}")
                w.thread.start()
        live = [w for w in self._workers[:allowed] if not w.retired]  # session 0 is never retired
        if self._free_first:
            return self._unstarted if len(self._unstarted) < len(live) else None
        w = min(live, key=lambda x: len(x.queue) + (x.segment is not None))
        return w.queue if len(w.queue) + (w.segment is not None) < 2 else None

    def _open(self, continuing: bool = False) -> _Segment | None:
        """A new segment for a session, or None when none may open now; ``continuing``: the first
        segment, which goes on from where the first decoder stopped (on it, up to the first
        restart point)."""
        if self._segments and self._ahead() >= self._budget:
            return None  # its session could not decode yet: do not take another one
        queue = self._queue_for_new_segment()  # (which also starts the sessions' threads)
        if continuing:
            queue = self._workers[0].queue  # its decoder is the one part-way through the stream
        if queue is None:
            return None
        self._opened += 1
        seg = _Segment(self._opened)
        if continuing:
            seg.length = self._min_segment  # it may end at the first restart point
        self._segments.append(seg)
        queue.append(seg)
        self._cv.notify_all()
        return seg

    def run(self, batches: Iterable[tuple[list | None, Any]]) -> Iterator[list]:
        """Yield lists of frames in display order.

        ``batches`` yields ``(packets, pts_offset)``, and ``(None, cut)`` at the end of each pass of
        a looping file, ``cut`` true where the segment must end there (the next pass does not
        continue seamlessly). Errors of a segment are raised after its frames, where a serial
        decode would have raised them.
        """
        cv = self._cv
        source = iter(batches)
        feed = _Feed()
        if self._continues:
            with cv:
                feed.segment = self._open(continuing=True)
        first_since: float | None = None  # when the first frame came out
        waited = 0.0                      # seconds the consumer waited for frames since then
        try:
            while True:
                out: list = []
                error: BaseException | None = None
                with cv:
                    if self._stop:  # stop(): the reader was closed
                        return
                    fed = self._feed(source, feed)
                    while self._segments:
                        head = self._segments[0]
                        if head.frames:
                            out, head.frames = head.frames, []
                            self._buffered -= len(out)
                            cv.notify_all()
                            break
                        if not head.done:
                            break
                        self._segments.popleft()
                        # The next segment is the head now: a session held back by the budget
                        # may decode it, and nothing else would wake that session.
                        cv.notify_all()
                        if head.error is not None:
                            error = head.error
                            break
                    if error is None and not out and not fed:
                        if feed.eof and not self._segments:
                            if feed.error is not None:
                                raise feed.error
                            return
                        t = time.perf_counter()
                        cv.wait(0.5)
                        self._wait_s += time.perf_counter() - t
                        if first_since is not None:
                            waited += time.perf_counter() - t
                            self._consumer_waited(waited, time.perf_counter() - first_since)
                if error is not None:
                    raise error
                if out:
                    if first_since is None:
                        first_since = time.perf_counter()
                    yield out
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop the sessions' threads and close the decoders of sessions beyond the first, waiting
        for a decode call in progress to end (up to 30 s a session). Any thread may call it; the
        run then ends at its next step. Idempotent."""
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._cv._is_owned():
            # Called with the run's lock held (the run's generator collected by a garbage collection
            # in a thread that holds it): the sessions need that lock to see the stop, so joining
            # here would wait for nothing. They end on their own.
            return
        for w in self._workers:
            if w.thread is not None and w.thread is not threading.current_thread():
                w.thread.join(timeout=30)
                if w.thread.is_alive():
                    log.warning("decoder session %d did not stop within 30 s", w.index)

    def _consumer_waited(self, waited: float, elapsed: float) -> None:
        """The consumer waited for frames (lock held). Once waiting is a fair share of its time it
        is faster than the sessions decoding now: let more of them in, and let them run further
        ahead. (A consumer paced slower than one session only waits for the odd frame at a
        segment's start: no reason to spend sessions and memory on it.)"""
        if waited < WAIT_SHARE * elapsed:
            return
        self._parallel = True
        if self._held_back:
            self._budget = min(self._max_frames, self._budget * 2)
        self._held_back = False

    def settle(self) -> int:
        """Wait until a frame was produced or no segment is decoding; returns ``produced``."""
        with self._cv:
            while (not self.produced and not self._stop
                   and any(not s.done for s in self._segments)):
                self._cv.wait(0.1)
            return self.produced

    def _feed(self, source: Iterator, feed: "_Feed") -> bool:
        """Move packets from the source into segments, cutting at restart points (lock held).

        Reading runs ahead of the sessions by up to ``_max_queued`` packets in all segments
        together, so that a segment's session starts while the segments before it still decode.
        (A bound per segment serialised the sessions on GOPs longer than it: 2 sessions on
        250-packet GOPs ran 1.1x one.) Reading stops at that bound, when a new segment cannot open
        yet (no session free, or the lookahead is full), and while the head has frames to hand out
        and the segment being fed has a batch queued. Returns whether anything moved."""
        fed = False
        while True:
            seg = feed.segment
            # While a retired session's segment waits at the head, the sessions part-way through
            # later segments must finish them to take it: the one being fed, whatever the bound.
            bound = math.inf if seg is not None and seg.started and self._orphan_head() else self._max_queued
            if self._queued >= bound:
                break
            if self._segments and self._segments[0].frames and (seg is None or seg.queued >= self._batch):
                break  # frames to hand out first (the first frame especially); its session has work
            if not feed.pending:
                if feed.eof:
                    break
                self._cv.release()
                t = time.perf_counter()
                try:
                    item = next(source, None)
                except Exception as exc:  # noqa: BLE001 - a read error: the packets before it decode first
                    item, feed.error = None, exc
                finally:
                    self._cv.acquire()
                    self._read_s += time.perf_counter() - t
                fed = True
                if item is None:
                    feed.eof = True
                    self._end_segment(feed)
                    break
                packets, extra = item
                if packets is None:  # the end of a pass
                    if extra:
                        self._end_segment(feed)
                    continue
                feed.pending.extend(packets)
                feed.offset = extra
                continue
            if seg is None:
                seg = feed.segment = self._open()
                if seg is None:
                    break
            take: list = []
            lead: list = []
            pending = feed.pending
            cut = 0
            while pending and self._queued + len(take) + len(lead) < bound:
                p = pending[0]
                if feed.open_cut:  # the open restart point the last cut left to this segment
                    feed.open_cut = False
                else:
                    if feed.leading_to is not None:
                        if self._leading(p, feed.restart):
                            lead.append(self._next(pending))
                            continue
                        self._add(feed.leading_to, lead, feed.offset)
                        lead = []
                        self._seal(feed.leading_to)
                        feed.leading_to = feed.restart = None
                    if seg.length + len(take) >= self._min_segment:
                        cut = self._restart(p)
                        if cut:
                            break
                take.append(self._next(pending, first=not take and seg.length == 0))
            if lead:
                self._add(feed.leading_to, lead, feed.offset)
            if take:
                self._add(seg, take, feed.offset)
            if cut:  # pending[0] starts the next segment
                if cut == OPEN_RESTART:
                    # This segment decodes the restart point hidden (its leading pictures predict
                    # from it) and stays open for them; the next one starts at it.
                    self._add(seg, [self._hidden(pending[0])], feed.offset, counted=False)
                    feed.leading_to, feed.segment, feed.open_cut = seg, None, True
                    # Its leading pictures are told by slice headers read with the parameter sets
                    # carried before it too (H.264).
                    sets = self._parameter_sets
                    feed.restart = sets.prefixed(pending[0]) if sets is not None else pending[0]
                else:
                    self._end_segment(feed)
            if take or lead or cut:
                fed = True
                self._cv.notify_all()
        return fed

    def _next(self, pending: deque, first: bool = False) -> Any:
        """The next packet of the stream, taken from ``pending``; ``first``: the first of a new
        segment, which then carries the parameter sets that came before it."""
        packet = pending.popleft()
        sets = self._parameter_sets
        if sets is None:
            return packet
        out = sets.prefixed(packet) if first else packet
        sets.see(packet)
        return out

    def _restart(self, packet: Any) -> int:
        """0, CLEAN_RESTART or OPEN_RESTART (the latter only where open cuts are possible)."""
        kind = self._starts(packet)
        if not kind:
            return 0
        if kind == OPEN_RESTART:
            return OPEN_RESTART if self._leading is not None else 0
        return CLEAN_RESTART

    def _add(self, seg: _Segment, packets: list, offset: Any, counted: bool = True) -> None:
        """Queue ``packets`` for ``seg``'s session (lock held); ``counted``: packets of the source
        (not a hidden copy)."""
        if not packets:
            return
        seg.chunks.append([packets, offset])
        seg.queued += len(packets)
        self._queued += len(packets)
        if counted:
            seg.length += len(packets)
            self.fed += len(packets)

    def _seal(self, seg: _Segment) -> None:
        seg.sealed = True
        self._cv.notify_all()

    def _end_segment(self, feed: "_Feed") -> None:
        """No more packets for the segment being fed, nor for one waiting for leading pictures."""
        for seg in (feed.leading_to, feed.segment):
            if seg is not None:
                self._seal(seg)
        feed.segment = feed.leading_to = feed.restart = None
