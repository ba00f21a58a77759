"""Fast start: the first frame of an NVDEC stream, decoded on the CPU while the driver creates the
hardware session.

The cuvid parser asks for a hardware session at a stream's first slice, and ``cuvidCreateDecoder``
then takes 35-45 ms in the driver (H100, whatever the surface counts; creations from several threads
are serialised). Opening a local file therefore gave its first frame after 46-53 ms, nearly all of
it waiting for the driver. H.264 and HEVC decoding is exact by specification, so the first picture
of a stream that starts at an IDR, decoded by FFmpeg, is the picture NVDEC gives. :class:`FastStart`
decodes that one packet on the CPU, uploads the frame to the GPU and hands it out, while a helper
thread feeds the same packet to NVDEC (which creates its session meanwhile). From the next call on
NVDEC decodes alone; its own copy of the first picture is recognised by its timestamp and dropped.

It steps aside wherever the frame could differ or nothing is gained: codecs other than H.264/HEVC,
chroma other than 4:2:0, more than 10 bits, output scaled by NVDEC (its scaler is not swscale),
interlaced pictures (NVDEC deinterlaces them), a first call of more than one packet, an H.264
first packet too large for the CPU to win (``_H264_RACE_MAX_BYTES``), a first packet that is not
an IDR without leading pictures (HEVC: IDR_N_LP/BLA_N_LP; an IDR_W_RADL, as
after a seek, may be followed by pictures shown before it) or carries no timestamp, and a stream
for which the decoder cache holds a parked session (that one starts in about 4 ms). The CPU's
frame carries the timestamp NVDEC would give it (the same rules, offset included).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from pysm import errors
from pysm._native import _core

__all__ = ["FastStart"]

log = logging.getLogger("pysm.codec")

#: Codecs whose decoding is bit-exact by specification (FFmpeg's output is NVDEC's, pixel for pixel).
_EXACT_CODECS = ("h264", "hevc")

#: H.264 first packets larger than this are left to NVDEC alone. FFmpeg decodes a CABAC picture
#: at 7-10 KB/ms whatever its threads (one slice; the 410 KB IDR of the 1080p retail clip: 43 ms on
#: a desktop core, 60 ms on an H100 host), while the driver's session takes 33-50 ms: no measured
#: race at that size was won by the CPU, and running it delayed NVDEC's first frame (H100: 43.9 ms
#: with the race, 37.3 without). HEVC decodes on several threads and wins (16 ms against 36).
_H264_RACE_MAX_BYTES = 256 * 1024


class FastStart:
    """Wraps an NVDEC backend (same interface) so that its first frame comes from the CPU while the
    hardware session is being created.

    Args:
        hw: the NVDEC backend (``decode``, ``decode_many``, ``flush``, ``starts_sequence``,
            ``stats``, ``close``).
        cpu: makes the CPU backend that decodes the first packet (used once, then dropped).
        info: the stream description.
        index: the GPU the frames go to.
        upload: moves the CPU's frame to where NVDEC's frames are (default: ``frame.cuda(index)``).
    """

    def __init__(self, hw: Any, cpu: Callable[[], Any], info: Any, index: int,
                 upload: Callable[[Any], Any] | None = None) -> None:
        self._hw = hw
        self._make_cpu = cpu
        self._info = info
        self._index = index
        self._upload = upload or (lambda frame: frame.cuda(index))
        self._state = "first"  # "first" -> "dedupe" (CPU frame out, NVDEC's copy pending) -> "off"
        self._thread: threading.Thread | None = None
        self._hw_done = threading.Event()  # the helper's hardware call has returned
        self._result: tuple[list, BaseException | None] = ([], None)
        self._annexb: Any = None
        self._shown = -1      # pts of the frame handed out from the CPU
        self.used = False     # the first frame came from the CPU
        self.dropped_leading = 0  # NVDEC frames shown before that one (leading pictures), dropped

    @staticmethod
    def eligible(info: Any, output_size: tuple[int, int] | None) -> bool:
        """Whether a stream of this kind may start on the CPU (see the module's docstring)."""
        return (info.codec in _EXACT_CODECS and (info.chroma or "420") == "420" and (info.bit_depth or 8) <= 10
                and output_size is None and bool(info.width) and bool(info.height))

    # ---- the backend interface -----------------------------------------------------------------

    def decode(self, packet: Any, pts: int | None) -> list:
        if self._state == "first":
            from pysm.codec.decoder import _packet_fields

            payload, at = _packet_fields(packet, pts, self._info.time_base)
            return self._race(packet, payload, at, lambda: self._hw.decode(packet, pts),
                              lambda cpu: cpu.decode(packet, pts) + cpu.flush())
        return self._after(lambda: self._hw.decode(packet, pts))

    def decode_many(self, packets: Any, pts_offset: int) -> list:
        if self._state == "first" and len(packets) == 1:
            first = packets[0]
            tb = self._info.time_base
            # The payload and timestamp exactly as the native decoder will take them.
            payload, at = _core._packet_views_info([first], tb.numerator, tb.denominator, pts_offset)[0]
            return self._race(first[0] if type(first) is tuple else first, payload, at,
                              lambda: self._hw.decode_many(packets, pts_offset),
                              lambda cpu: cpu.decode_many([first], pts_offset) + cpu.flush())
        if len(packets) and self._state == "first":
            self._state = "off"  # several packets at once: no race (their frames come as they would)
        return self._after(lambda: self._hw.decode_many(packets, pts_offset))

    def flush(self) -> list:
        self._state = "off" if self._state == "first" else self._state
        frames = self._after(self._hw.flush)
        self._state = "off"  # drained: no copy of the CPU's frame can come any more
        return frames

    def starts_sequence(self, packet: Any) -> bool:
        return self._hw.starts_sequence(packet)

    @property
    def stats(self) -> dict:
        st = dict(self._hw.stats)
        st["fast_start"] = self.used
        return st

    def close(self) -> None:
        # The helper's call must end before the session is parked or destroyed; its error no longer
        # matters (an interrupt while waiting does).
        try:
            self._join(raise_error=False)
        finally:
            self._hw.close()

    # ---- the race -------------------------------------------------------------------------------

    def _race(self, packet: Any, payload: Any, pts: int, hw_call: Callable[[], list],
              cpu_call: Callable[[Any], list]) -> list:
        self._state = "off"
        if pts < 0 or not self._worth_it(packet, payload):
            return hw_call()
        # Both run in threads of their own and the first to finish wins: a large H.264 IDR can take
        # FFmpeg longer than the driver's session (a 420 KB one: 60 ms, one slice, CABAC), and then
        # the CPU's work is dropped instead of delaying the stream.
        settled = threading.Event()
        cpu: list = []
        self._start(hw_call, settled)

        def decode_on_cpu() -> None:
            try:
                cpu.append(self._cpu_frame(cpu_call))
            finally:
                settled.set()

        # Not daemons: the interpreter waits for them at exit rather than leave a thread in the driver.
        threading.Thread(target=decode_on_cpu, name="pysm-fast-start-cpu").start()
        settled.wait()
        frame = cpu[0] if cpu else None
        if frame is None:
            return self._join()  # NVDEC was first, or the CPU gave nothing usable
        frame.pts = pts
        self.used = True
        self._shown = pts
        self._state = "dedupe"
        return [frame]

    def _worth_it(self, packet: Any, payload: Any) -> bool:
        from pysm.codec import decoder

        info = self._info
        if not decoder._is_key(packet) or decoder._is_discard(packet):  # a hidden pre-roll picture shows nothing
            return False
        if info.codec == "h264" and memoryview(payload).nbytes > _H264_RACE_MAX_BYTES:
            return False
        if self._annexb is None:
            self._annexb = decoder.annexb_converter(info)  # False: malformed codec configuration, no race
        if not self._annexb or not self._annexb.starts_sequence(payload, True, True):
            return False
        # The depth the hardware decoder was made with (a setting changed since does not apply to it).
        queue = getattr(self._hw, "queue", None) or decoder._NVDEC_QUEUE
        return not _core.nvdec_cache_has(self._index, info.codec, info.bit_depth or 8, info.width, info.height,
                                         extra_decode_surfaces=queue["extra_decode_surfaces"],
                                         output_surfaces=queue["output_surfaces"])

    def _cpu_frame(self, cpu_call: Callable[[Any], list]) -> Any:
        """The first packet's frame, decoded on the CPU and uploaded, or None when that does not give
        exactly one clean progressive frame or NVDEC finished first (then nothing is uploaded)."""
        try:
            cpu = self._make_cpu()
            frames = cpu_call(cpu)
            if len(frames) != 1 or frames[0].error or getattr(cpu, "interlaced", False) or self._hw_done.is_set():
                return None
            return self._upload(frames[0])
        except Exception as exc:  # noqa: BLE001 - the hardware decode goes on regardless
            log.debug("fast start of %s on the CPU failed: %s", self._info.uri, exc)
            return None

    def _start(self, call: Callable[[], list], settled: threading.Event) -> None:
        def work() -> None:
            try:
                self._result = (call(), None)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                self._result = ([], exc)
            finally:
                self._hw_done.set()
                settled.set()

        self._thread = threading.Thread(target=work, name="pysm-nvdec-start")
        self._thread.start()

    def _join(self, raise_error: bool = True) -> list:
        """The helper's frames (its error re-raised here), once it is done."""
        thread = self._thread
        if thread is None:
            return []
        thread.join()
        self._thread = None
        frames, exc = self._result
        self._result = ([], None)
        if exc is not None and raise_error:
            raise exc
        return frames

    def _after(self, call: Callable[[], list]) -> list:
        if self._thread is None and self._state == "off":
            return call()
        try:
            frames = self._join()
        except errors.UnsupportedError:
            raise  # no session for this stream: nothing more will decode
        except errors.DecodeError as exc:
            # NVDEC rejected the first packet that the CPU decoded and showed: counted in its stats
            # like any rejected packet; this call's packets still go in.
            log.warning("%s: NVDEC rejected the first packet (%s); its frame came from the CPU", self._info.uri, exc)
            frames = []
        frames += call()
        return self._dedupe(frames)

    def _dedupe(self, frames: list) -> list:
        """Drops NVDEC's copy of the frame already handed out from the CPU (and, should the stream
        show pictures before it, those: they cannot come after a frame already out)."""
        if self._state != "dedupe":
            return frames
        for i, f in enumerate(frames):
            if 0 <= f.pts < self._shown:
                self.dropped_leading += 1
                if self.dropped_leading == 1:
                    log.warning("%s shows pictures before its first IDR; the fast start dropped them "
                                "(Decoder(fast_start=False) keeps them)", self._info.uri)
                continue
            self._state = "off"
            return frames[i + 1:] if f.pts == self._shown else frames[i:]
        return []
