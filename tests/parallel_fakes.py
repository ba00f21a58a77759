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
