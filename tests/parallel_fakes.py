"""Fake packets and decoder sessions for ParallelDecode, shared by tests/test_decode_parallel.py and
benchmarks/parallel_schedule.py: packets carry their number and whether they start a segment;
sessions hold one frame back, as reordering does, and sleep outside the GIL, as NVDEC calls do."""

from __future__ import annotations

import random
import time

from pysm import errors


class Packet:
    __slots__ = ("n", "key")

    def __init__(self, n: int, key: bool) -> None:
        self.n, self.key = n, key


class Frame:
    height = pitch = 1
    format = "NV12"

    def __init__(self, n: int) -> None:
        self.n = n


class FakeDecoder:
    """Holds one frame back (as reordering does) and takes a random time per call, up to ``most_s``."""

    def __init__(self, rng: random.Random, fail_at: int | None = None, log: list | None = None,
                 most_s: float = 0.002) -> None:
        self.rng, self.fail_at, self.log, self.most_s = rng, fail_at, log, most_s
        self.held: list = []
        self.closed = False

    def decode_many(self, packets, offset):
        if self.most_s:
            time.sleep(self.rng.uniform(0, self.most_s))
        if self.log is not None:
            self.log.append(None)
        out = self.held
        self.held = []
        for p in packets:
            if p.n == self.fail_at:
                raise errors.DecodeError(f"packet {p.n} is broken")
            out.append(Frame(p.n + offset))
        if out:
            self.held = [out.pop()]
        return out

    def flush(self):
        out, self.held = self.held, []
        return out

    def close(self):
        self.closed = True


class NoSessionDecoder(FakeDecoder):
    """A further session that cannot be had: its first call raises what NVDEC's session creation
    raises when the device has no room for it (the fake's packets are not consumed)."""

    def decode_many(self, packets, offset):
        raise errors.OutOfMemoryError("cuvidCreateDecoder: CUDA_ERROR_OUT_OF_MEMORY (fake)")


class TimedDecoder(FakeDecoder):
    """Takes a fixed time per packet (plus FakeDecoder's random time per call, up to ``most_s``)
    and notes when each call ran in ``spans``."""

    def __init__(self, spans: list, per_packet_s: float = 0.001, most_s: float = 0.002) -> None:
        super().__init__(random.Random(0), most_s=most_s)
        self.spans, self.per_packet_s = spans, per_packet_s

    def decode_many(self, packets, offset):
        t = time.perf_counter()
        time.sleep(self.per_packet_s * len(packets))
        out = super().decode_many(packets, offset)
        self.spans.append((t, time.perf_counter()))
        return out


def batches(n: int, gop: int, batch: int, passes: int = 1, cut_between_passes: bool = False):
    """``passes`` passes of ``n`` packets in batches, a restart point every ``gop``; pass k's
    frames are numbered from k * 1000; each pass ends with ``(None, cut_between_passes)``."""
    for k in range(passes):
        pkts = [Packet(i, i % gop == 0) for i in range(n)]
        for i in range(0, n, batch):
            yield pkts[i:i + batch], k * 1000
        yield None, cut_between_passes


class GopPacket:
    """A packet of an open-GOP stream (see ``open_gop_batches``): ``role`` as
    ``Decoder.picture_role`` gives it, ``needs`` the packets a session must have decoded first."""

    __slots__ = ("n", "key", "role", "needs", "discard")

    def __init__(self, n: int, role: int, needs: tuple, discard: bool = False) -> None:
        self.n, self.role, self.needs, self.discard = n, role, needs, discard
        self.key = role in (1, 2)

    def hidden(self) -> "GopPacket":
        return GopPacket(self.n, self.role, self.needs, discard=True)


class OpenGopDecoder(FakeDecoder):
    """Decodes ``GopPacket`` streams as an HEVC decoder does: a packet whose references this
    session has not decoded is an error (the frame would be garbage), a discard packet gives no
    frame, and a restart point is shown after the leading pictures that follow it."""

    def __init__(self, rng: random.Random, most_s: float = 0.001) -> None:
        super().__init__(rng, most_s=most_s)
        self.seen: set = set()

    def decode_many(self, packets, offset):
        if self.most_s:
            time.sleep(self.rng.uniform(0, self.most_s))
        out: list = []
        for p in packets:
            missing = [x for x in p.needs if x not in self.seen]
            if missing:
                raise errors.DecodeError(f"packet {p.n} predicts from {missing}, not decoded by this session")
            self.seen.add(p.n)
            frame = None if p.discard else Frame(p.n + offset)
            if p.role == 3:  # a leading picture: shown before the restart point held back
                if frame is not None:
                    out.append(frame)
                continue
            out += self.held
            self.held = [frame] if frame is not None else []
        return out


def open_gop_packets(n: int, gop: int, leading: int) -> list:
    """An IDR, then a CRA every ``gop`` packets followed by ``leading`` leading pictures (which
    predict from the packet before their CRA and from it); every other picture predicts from the
    picture before it in decoding order that is not a leading one."""
    out = []
    last = None  # the last picture that is not a leading one
    cra = None
    for i in range(n):
        if i == 0:
            role, needs = 1, ()
        elif i % gop == 0:
            role, needs, cra = 2, (), i
        elif cra is not None and i - cra <= leading:
            role, needs = 3, (cra - 1, cra)
        else:
            role, needs = 0, (last,)
        out.append(GopPacket(i, role, needs))
        if role != 3:
            last = i
    return out


def open_gop_display_order(n: int, gop: int, leading: int) -> list:
    """The frame numbers of ``open_gop_packets`` in display order: each CRA after its leading pictures."""
    order: list = []
    held: list = []
    for p in open_gop_packets(n, gop, leading):
        if p.role == 3:
            order.append(p.n)
            continue
        order += held
        held = [p.n] if p.role == 2 else []
        if p.role != 2:
            order.append(p.n)
    return order + held


def open_gop_batches(n: int, gop: int, leading: int, batch: int, passes: int = 1, cut_between_passes: bool = False):
    """``batches`` of ``open_gop_packets``."""
    pkts = open_gop_packets(n, gop, leading)
    for k in range(passes):
        for i in range(0, n, batch):
            yield pkts[i:i + batch], k * 1000
        yield None, cut_between_passes
