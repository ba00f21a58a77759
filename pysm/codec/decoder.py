"""Video decoding into :class:`pysm.codec.Frame`: NVDEC on the GPU, PyAV software decode as fallback.

``Decoder(info, device="auto")`` picks NVDEC when the build has it, a GPU is present, libnvcuvid
loads and ``cuvidGetDecoderCaps`` accepts the stream's codec, bit depth and size; otherwise it
decodes on the CPU into the same Frame type in host memory (``decoder.fallback_reason`` says why).
``device="cpu"`` forces the CPU path; ``device="cuda"``/``"cuda:N"`` forces NVDEC and raises instead
of falling back.

Frames come out in display order, NV12 (P016 for 10/12-bit content), with ``pts`` in ns and an
``error`` flag for pictures the decoder reported as corrupt. Each frame owns its surface: it stays
valid for as long as it is referenced, whatever the decoder does next.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import threading
from fractions import Fraction
from typing import Any

from pysm import errors
from pysm._native import _core
from pysm.codec.demux import Demuxer, Packet, StreamInfo, _ns
from pysm.codec.fast_start import FastStart

__all__ = ["Decoder", "parse_device", "nvdec_unavailable_reason", "clear_decoder_cache", "decoder_cache_info",
           "configure_decoder_cache", "warm_up", "open_source"]

log = logging.getLogger("pysm.codec")

Frame = _core.Frame
_NS = 1_000_000_000
_MATRIX_CODE = {"bt601": 0, "bt709": 1, "bt2020": 2}
# FFmpeg AVColorSpace codes of the matrices pysm converts with.
_AV_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}
_RANGE_CODE = {"limited": 0, "full": 1}
_RGB_FORMATS = ("RGB", "BGR", "RGBA", "BGRA")
#: Consecutive failing packets, with no frame ever decoded, after which the CPU path gives up.
_MAX_LEADING_ERRORS = 64
_NS_TB = Fraction(1, 1_000_000_000)
#: Decoder.picture_role values (PictureRole in csrc/include/pysm/annexb.hpp).
CLEAN_RESTART, OPEN_RESTART, LEADING = 1, 2, 3


def parse_device(device: str | int | None) -> tuple[str, int]:
    """("auto"|"cpu"|"cuda", index) from "auto", "cpu", "cuda", "cuda:N", "gpu", "gpu:N" or N."""
    if device is None:
        return "auto", 0
    if isinstance(device, int) and not isinstance(device, bool):
        return "cuda", device
    text = str(device).strip().lower()
    if text in ("auto", "cpu"):
        return text, 0
    kind, _, idx = text.partition(":")
    if kind in ("cuda", "gpu", "nvdec"):
        try:
            return "cuda", int(idx) if idx else 0
        except ValueError:
            pass
    raise errors.InvalidArgument(f"device {device!r} is not 'auto', 'cpu', 'cuda' or 'cuda:N'")


def nvdec_unavailable_reason(info: StreamInfo, index: int = 0) -> str | None:
    """Why NVDEC cannot decode this stream on GPU ``index``, or None when it can."""
    if not _core.nvdec_built():
        return "this pysm build has no NVDEC support"
    import pysm.cuda

    if not pysm.cuda.is_available():
        return f"no usable GPU ({pysm.cuda.unavailable_reason()})"
    if index >= pysm.cuda.device_count():
        return f"GPU {index} does not exist ({pysm.cuda.device_count()} visible)"
    try:
        _core.nvdec_check_support(index, info.codec, info.bit_depth, info.chroma, info.width, info.height)
    except (errors.DriverError, errors.UnsupportedError, errors.CudaError) as exc:
        return str(exc)
    return None


_warmed: set[int] = set()  # GPUs whose warm-up has started in this process
_warm_lock = threading.Lock()


def warm_up(device: str | int | None = "auto") -> threading.Thread | None:
    """Start initialising CUDA and NVDEC for ``device`` in a thread of its own, once per GPU and
    process; returns that thread (join it before the first Decoder), or None when there is nothing
    to do.

    A process's first stream waits for the driver's initialisation and the GPU's primary context
    (about 220 ms on an H100 host) and, separately, for PyAV's import and the container's probe
    (45-100 ms the first time). Started before the source is opened, the first overlaps the second
    (``VideoReader`` and ``MediaExtractor`` do this; the driver calls release the GIL). The context
    is made even if the stream then decodes on the CPU (``device="auto"`` and a codec NVDEC lacks):
    ``device="cpu"`` makes none. Failures are left to the Decoder to report.
    """
    kind, index = parse_device(device)
    if kind == "cpu" or not _core.nvdec_built():
        return None
    with _warm_lock:
        if index in _warmed:
            return None
        _warmed.add(index)

    def work() -> None:
        try:
            # Loads libcuda and libnvcuvid, runs cuInit and binds the primary context, without the GIL.
            _core.nvdec_caps(index, "h264", 8, "420")
        except Exception:  # noqa: BLE001 - no driver or no such GPU: the Decoder reports it
            pass

    thread = threading.Thread(target=work, name="pysm-cuda-warm-up")
    try:
        thread.start()
    except RuntimeError:  # no thread now (interpreter shutting down, thread limit): go without
        with _warm_lock:
            _warmed.discard(index)
        return None
    return thread


# A forked child has none of its parent's CUDA state: its first stream warms up again.
os.register_at_fork(after_in_child=_warmed.clear)


def open_source(uri: Any, device: str | int | None = "auto", **demuxer_kwargs: Any) -> Demuxer:
    """``Demuxer(uri, **demuxer_kwargs)`` for a stream to decode on ``device``, opened while the
    driver warms up (:func:`warm_up`); a source that fails to open does not wait for the driver."""
    warming = warm_up(device)
    demuxer = Demuxer(uri, **demuxer_kwargs)
    if warming is not None:
        warming.join()
    return demuxer


def clear_decoder_cache() -> int:
    """Destroy every parked NVDEC session now; returns how many there were.

    Closed hardware decoders park their session (CUvideodecoder) in a bounded process-wide cache
    so that the next stream of the same codec, bit depth and size starts without
    ``cuvidCreateDecoder`` and closing never waits ~230 ms in ``cuvidDestroyDecoder``. Parked
    sessions hold device memory (tens of MiB each at 1080p); this gives it back (and takes those
    ~230 ms per session). Set ``PYSM_NVDEC_CACHE=0`` to disable the cache for a process.
    """
    return int(_core.nvdec_cache_clear())


def decoder_cache_info() -> dict:
    """The NVDEC session cache: ``enabled``, ``max_per_key``, ``max_total``, ``parked``, ``hits``,
    ``misses``, ``parks``, ``evictions``."""
    return _core.nvdec_cache_info()


def configure_decoder_cache(enabled: bool | None = None, max_per_key: int | None = None,
                            max_total: int | None = None) -> dict:
    """Enable/disable the NVDEC session cache or change its bounds (default 4 per key, 16 in all).

    Disabling or shrinking destroys the parked sessions beyond the new bounds. Returns the new
    :func:`decoder_cache_info`.
    """
    if enabled is None:
        enabled = bool(_core.nvdec_cache_info()["enabled"])
    for name, value in (("max_per_key", max_per_key), ("max_total", max_total)):
        if value is not None and value < 0:
            raise errors.InvalidArgument(f"{name} must be >= 0, got {value}")
    _core.nvdec_cache_configure(bool(enabled), -1 if max_per_key is None else int(max_per_key),
                                -1 if max_total is None else int(max_total))
    return decoder_cache_info()


# The NVDEC queue depth of decoders created from now on (configure_nvdec_queue); -1: the native
# defaults (csrc/include/pysm/nvdec.hpp: display delay 4, 4 extra decode surfaces, 4 output surfaces).
_NVDEC_QUEUE = {"display_delay": -1, "extra_decode_surfaces": -1, "output_surfaces": -1}
_NVDEC_QUEUE_LIMITS = {"display_delay": (0, 16), "extra_decode_surfaces": (0, 32), "output_surfaces": (1, 16)}


def configure_nvdec_queue(display_delay: int | None = None, extra_decode_surfaces: int | None = None,
                          output_surfaces: int | None = None) -> dict:
    """Set how deep NVDEC decoders created from now on queue; returns the settings (-1: default).

    ``display_delay`` (0-16, default 4): pictures the parser queues on NVDEC ahead of the one
    displayed (a low-latency reader always uses 0). ``extra_decode_surfaces`` (0-32, default 4):
    decode surfaces beyond the stream's DPB minimum that hold them. ``output_surfaces`` (1-16,
    default 4): decoded pictures mapped at once while their copy-out runs. Fewer surfaces take less
    device memory per decoder (a 1080p surface is ~3 MiB; the decode surfaces in all are at most
    32). ``None`` leaves a setting as it is, ``-1`` restores its default; a refused value changes
    nothing. Decoders already open, and parked sessions of another depth, keep theirs (a reader's
    further parallel sessions take the setting current when they start).
    """
    global _NVDEC_QUEUE
    new = dict(_NVDEC_QUEUE)
    for name, value in (("display_delay", display_delay), ("extra_decode_surfaces", extra_decode_surfaces),
                        ("output_surfaces", output_surfaces)):
        if value is None:
            continue
        lo, hi = _NVDEC_QUEUE_LIMITS[name]
        try:
            number = operator.index(value) if not isinstance(value, bool) else None
        except TypeError:
            number = None
        if number is None or (number != -1 and not lo <= number <= hi):
            raise errors.InvalidArgument(f"{name} must be an integer from {lo} to {hi} (or -1 for the default), "
                                         f"got {value!r}")
        new[name] = int(number)
    _NVDEC_QUEUE = new  # replaced whole: a decoder being created reads one consistent setting
    return dict(new)


def _is_key(packet: Any) -> bool:
    """The container's key-frame flag of a PyAV packet or a pysm Packet."""
    return bool(getattr(packet, "is_keyframe", None) or getattr(packet, "key", False))


class _DiscardMark:
    """The mark a copied discard packet carries to its frame (CPU decoder). One per packet: PyAV
    keys a packet's opaque object by identity and lets it go once a frame has read it."""

    __slots__ = ()


def _is_discard(packet: Any) -> bool:
    """Whether a PyAV packet or a pysm Packet is to be decoded but not shown (edit-list pre-roll)."""
    return bool(getattr(packet, "is_discard", None) or getattr(packet, "discard", False))


def _packet_fields(packet: Any, pts: int | None, tb: Fraction) -> tuple[Any, int]:
    """(payload, pts ns) for a pysm Packet, a PyAV packet or a raw buffer."""
    if isinstance(packet, Packet):
        return packet.data, packet.pts if pts is None else pts
    ptb = getattr(packet, "time_base", None)
    ppts = getattr(packet, "pts", None) if ptb is not None else None
    if pts is None:
        if ppts is not None and ptb:
            pts = ppts * ptb.numerator * _NS // ptb.denominator
        else:
            pts = -1
    return packet, pts


# Where a parameter set goes among the sets a packet is given (with_parameter_sets): the sets a
# set refers to first. H.264: SPS 7, PPS 8; HEVC: VPS 32, SPS 33, PPS 34.
_SET_RANKS = {32: 0, 7: 1, 33: 1, 8: 2, 34: 2}


def _set_rank(item: tuple[Any, bytes]) -> int:
    return _SET_RANKS.get(item[0][0], 3)


def _keyed(sets: list) -> list[tuple[Any, bytes]]:
    """AnnexBConverter.parameter_sets's ``((type, id), nal)``, a set whose id could not be read
    keyed by its bytes instead (no other set replaces it)."""
    return [((key[0], nal) if key[1] < 0 else key, nal) for key, nal in sets]


def annexb_converter(info: StreamInfo) -> Any:
    """A bitstream parser for ``info``'s codec (restart points, AVCC/HVCC to Annex-B), or False
    where its codec configuration is malformed: then no restart point is known."""
    try:
        return _core.AnnexBConverter(info.codec, info.extradata or b"")
    except errors.Error:
        return False


class _NvdecBackend:
    def __init__(self, info: StreamInfo, index: int, low_latency: bool, output_size: tuple[int, int] | None,
                 max_size: tuple[int, int] | None) -> None:
        tw, th = output_size or (0, 0)
        mw, mh = max_size or (0, 0)
        self._tb = info.time_base
        self.queue = _NVDEC_QUEUE  # the queue depth this decoder asks for (configure_nvdec_queue)
        self._dec = _core.NvdecDecoder(
            info.codec, info.extradata, device=index, low_latency=low_latency, target_width=tw,
            target_height=th, max_width=mw, max_height=mh,
            # The bitstream's VUI is authoritative; the container's description only fills in
            # what the bitstream leaves unspecified.
            matrix=-1 if not info.color_specified else _MATRIX_CODE.get(info.color_matrix, -1),
            range=1 if info.color_range == "full" else -1, source=info.uri, profile=info.profile or "",
            **self.queue)

    def decode(self, packet: Any, pts: int | None) -> list:
        data, p = _packet_fields(packet, pts, self._tb)
        return self._dec.decode(data, p, True, _is_discard(packet))

    def decode_many(self, packets: Any, pts_offset: int) -> list:
        return self._dec.decode_many(packets, self._tb.numerator, self._tb.denominator, pts_offset)

    def flush(self) -> list:
        return self._dec.flush()

    def starts_sequence(self, packet: Any) -> bool:
        data, _ = _packet_fields(packet, None, self._tb)
        return self._dec.continues_at(data, _is_key(packet))

    @property
    def stats(self) -> dict:
        return self._dec.stats

    def close(self) -> None:
        self._dec.close()


# FFmpeg's decoder of a codec's own name where that one cannot decode in software: its "av1"
# needs a hardware accelerator, and FFmpeg picks libdav1d for an AV1 file.
_SOFTWARE_DECODERS = {"av1": ("libdav1d", "libaom-av1")}


@functools.lru_cache(maxsize=None)
def _software_decoder(codec: str) -> str:
    """The PyAV decoder name that decodes ``codec`` on the CPU."""
    import av

    for name in _SOFTWARE_DECODERS.get(codec, ()):
        try:
            av.codec.Codec(name, "r")
        except Exception:  # noqa: BLE001 - not in this FFmpeg build
            continue
        return name
    return codec


class _CpuBackend:
    def __init__(self, info: StreamInfo, low_latency: bool, output_size: tuple[int, int] | None,
                 threads: int) -> None:
        import av

        try:
            self._cc = av.CodecContext.create(_software_decoder(info.codec), "r")
        except (av.error.FFmpegError, ValueError) as exc:
            raise errors.UnsupportedError(
                f"no software decoder for codec '{info.codec}' in this FFmpeg build ({info.uri}); "
                f"re-encode the source or install a PyAV wheel with that decoder") from exc
        if info.extradata:
            self._cc.extradata = info.extradata
        if info.width and info.height:
            self._cc.width, self._cc.height = info.width, info.height
        # Frame threading adds a frame of delay per thread: live sources use slice threads only.
        self._cc.thread_type = "SLICE" if low_latency else "AUTO"
        self._cc.thread_count = threads
        if low_latency:
            self._cc.flags |= av.codec.context.Flags.low_delay
        self._cc.flags |= av.codec.context.Flags.copy_opaque  # a packet's mark reaches its frame
        self._info = info
        self._tb = info.time_base
        self._packet_tb: Fraction | None = None  # the time base of the packets fed (see _av_packet)
        self._size = output_size
        self._matrix = info.color_matrix
        self._range = info.color_range
        self._errors = 0
        self._leading_errors = 0
        self._frames = 0
        self._pending_error = False
        self._damaged = False  # a damaged picture came out since the last key frame
        self._damaged_frames = 0
        self._pts_offset = 0
        # Discard packets that had to be copied (PyAV cannot set the flag on a packet it did not
        # demux) carry a mark to their frames (copy_opaque), which are dropped here as FFmpeg drops
        # those of flagged packets.
        self._marked_discards = 0
        self._annexb: Any = None
        # Whether many failed packets before any frame raise (a stream that is not its codec); a
        # reader's further session, which starts at any segment, leaves damage to the frame flags.
        self.report_empty = True
        self.last_error = ""
        self.interlaced = False  # a field-coded or interlaced picture came out

    def starts_sequence(self, packet: Any) -> bool:
        if self._annexb is None:
            self._annexb = annexb_converter(self._info)
        if not self._annexb:
            return False
        data, _ = _packet_fields(packet, None, self._tb)
        return self._annexb.starts_sequence(data, _is_key(packet))

    def _av_packet(self, packet: Any, pts: int | None) -> Any:
        """The PyAV packet to decode, timed in this decoder's one time base (``_packet_tb``): PyAV
        stamps the frames a call returns with the time base of that call's packet, so frames held
        back for reordering would come out in another unit if the packets' time bases changed.
        The first timed packet chooses it: a demuxed packet its stream's, an explicit time (ns)
        nanoseconds, as NVDEC keeps them exact."""
        import av

        data = packet.data if isinstance(packet, Packet) else packet
        if isinstance(data, av.Packet) and pts is None:
            # Its own timestamp: in its time base, or (a packet built by hand) the stream's.
            ticks, dts, tb = data.pts, data.dts, data.time_base or self._tb
        else:
            p = packet.pts if isinstance(packet, Packet) and pts is None else pts
            ticks, dts, tb = (p, None, _NS_TB) if p is not None and p >= 0 else (None, None, None)
        if self._packet_tb is None and tb is not None and ticks is not None:
            self._packet_tb = tb
        mode = self._packet_tb or self._tb
        if tb is not None and tb != mode:  # rounded to the nearest tick of the decoder's time base
            ticks = None if ticks is None else _to_ticks(ticks, tb, mode)
            dts = None if dts is None else _to_ticks(dts, tb, mode)
        if (isinstance(data, av.Packet) and data.stream is not None and (tb is None or tb == mode) and pts is None
                and (data is packet or not _is_discard(packet))):
            return data  # from a demuxer, in the decoder's time base: FFmpeg's own memory
        # FFmpeg-owned memory, not a Python object: PyAV frees a packet made from `bytes` under the
        # GIL, and FFmpeg's frame threads drop their packets while the context is freed, which the
        # freeing thread does holding the GIL - a deadlock when a decoder is dropped mid-stream.
        view = memoryview(data)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        view = view.cast("B")
        pkt = av.Packet(len(view))
        memoryview(pkt)[:] = view
        if isinstance(data, av.Packet):
            pkt.is_keyframe = data.is_keyframe
        if _is_discard(packet):
            pkt.opaque = _DiscardMark()
            self._marked_discards += 1
        pkt.time_base = mode  # untimed packets too: the frames they release are stamped with it
        if ticks is not None:
            pkt.pts = ticks
        if dts is not None:
            pkt.dts = dts
        return pkt

    def _reformat(self, f: Any, **kw: Any) -> Any:
        """``f.reformat(**kw)``; an RGB-coded picture (screen captures, PNG, FFV1 RGB) becomes YUV
        with the matrix and range the frame will be labelled with (swscale's default is BT.601
        limited, whatever the label: HD colours came back shifted)."""
        if f.format.is_rgb:
            from av.video.reformatter import ColorRange, Colorspace

            # PyAV before 18 has no BT.2020 matrix for swscale: the nearest, BT.709, stands in.
            bt2020 = getattr(Colorspace, "BT2020", Colorspace.ITU709)
            kw["dst_colorspace"] = {"bt709": Colorspace.ITU709, "bt2020": bt2020}.get(self._matrix, Colorspace.ITU601)
            kw["dst_color_range"] = ColorRange.JPEG if self._range == "full" else ColorRange.MPEG
        return f.reformat(**kw)

    def _convert(self, f: Any, from_rgb: bool = False) -> Any:
        fmt = f.format.name
        depth = max(int(c.bits) for c in f.format.components)
        if self._size and (f.width, f.height) != tuple(self._size):
            from_rgb = from_rgb or f.format.is_rgb
            f = self._reformat(f, width=self._size[0], height=self._size[1],
                               format="yuv420p" if depth <= 8 else "yuv420p16le")
            fmt = f.format.name
            depth = 8 if depth <= 8 else 16
        if fmt in ("yuv420p", "yuvj420p") or (fmt.startswith("yuv420p") and fmt.endswith("le")):
            planes = f.planes
            y, u, v = planes[0], planes[1], planes[2]
            us, vs = u.line_size, v.line_size
        elif fmt in ("nv12", "p010le", "p016le"):
            planes = f.planes
            y, u, v = planes[0], planes[1], None
            us, vs = u.line_size, 0
        else:  # 4:2:2, 4:4:4, gray, RGB, big-endian, ...: let swscale make it 4:2:0
            rgb = f.format.is_rgb
            f = self._reformat(f, format="yuv420p" if depth <= 8 else "yuv420p16le")
            depth = 8 if depth <= 8 else 16
            return self._convert(f, from_rgb or rgb)
        pts = f.pts
        if pts is not None:
            tb = f.time_base or self._packet_tb or self._tb  # frames drained at flush carry none
            pts = pts * tb.numerator * _NS // tb.denominator
        # The frame's own description (the bitstream's VUI) wins over the container's, as on NVDEC.
        if from_rgb:  # made by _reformat with exactly these
            rng, matrix = self._range, self._matrix
        else:
            rng = "full" if fmt == "yuvj420p" or _code(getattr(f, "color_range", 0)) == 2 else self._range
            matrix = _AV_MATRIX.get(_code(getattr(f, "colorspace", 0)), self._matrix)
        out = _core.frame_from_yuv420(y, u, v, y.line_size, us, vs, f.width, f.height, depth,
                                      -1 if pts is None else pts, matrix, rng)
        return out

    def _frames_from(self, av_frames: list) -> list:
        out = []
        for f in av_frames:
            if self._marked_discards and type(f.opaque) is _DiscardMark:
                self._marked_discards -= 1
                continue
            if getattr(f, "interlaced_frame", False):
                self.interlaced = True
            frame = self._convert(f)
            if getattr(f, "key_frame", False):
                self._damaged = False  # predicts from nothing before it
            own = getattr(f, "is_corrupt", False) or self._pending_error
            if own:
                self._damaged = True
                self._pending_error = False
            elif self._damaged:
                self._damaged_frames += 1
            if self._damaged:  # damaged, or predicted from a damaged picture (see Frame.error)
                frame._set_error(True)
            out.append(frame)
        if out:
            self._frames += len(out)
            self._leading_errors = 0
        return out

    def decode(self, packet: Any, pts: int | None) -> list:
        import av

        pkt = self._av_packet(packet, pts)
        cc = self._context()
        try:
            frames = cc.decode(pkt)
        except (av.error.FFmpegError, ValueError) as exc:
            # Corrupt data: FFmpeg conceals what it can; the next frame is flagged as damaged.
            self._errors += 1
            self._pending_error = True
            self.last_error = str(exc)
            if self._frames == 0:
                self._leading_errors += 1
                if self._leading_errors >= _MAX_LEADING_ERRORS and self.report_empty:
                    raise errors.DecodeError(
                        f"{self._leading_errors} packets of {self._info.codec} from {self._info.uri} failed "
                        f"to decode and no frame came out: the stream is corrupt or not {self._info.codec} "
                        f"({exc})") from exc
            return []
        return self._frames_from(frames)

    def decode_many(self, packets: Any, pts_offset: int) -> list:
        out: list = []
        for p in packets:
            if type(p) is tuple:
                out += self.decode(p[0], p[1])
            else:
                out += self.decode(p, None)
        # NVDEC carries the offset from each packet to its frame, so the frames still held for
        # reordering get it at flush too: do the same here.
        self._pts_offset = pts_offset
        return _offset_frames(out, pts_offset)

    def flush(self) -> list:
        import av

        cc = self._context()
        try:
            frames = cc.decode(None)
        except av.error.EOFError:
            frames = []
        except av.error.FFmpegError as exc:
            self._errors += 1
            self.last_error = str(exc)
            frames = []
        out = _offset_frames(self._frames_from(frames), self._pts_offset)
        self._pts_offset = 0
        self._packet_tb = None  # the next stream's first timed packet chooses again
        self._damaged = False
        self._pending_error = False  # an error of this stream's last packets is not the next one's
        cc.flush_buffers()  # ready for a new stream (looping)
        return out

    @property
    def stats(self) -> dict:
        return {"displayed": self._frames, "errors": self._errors, "damaged": self._damaged_frames,
                "last_error": self.last_error}

    def _context(self) -> Any:
        # Read once per call: close() from another thread (a reader stopped) drops the reference
        # while a decode runs, and the context itself stays valid for the call that holds it.
        cc = self._cc
        if cc is None:
            raise errors.StateError(f"the decoder of {self._info.uri} is closed")
        return cc

    def close(self) -> None:
        self._cc = None


def _to_ticks(value: int, tb: Fraction, to: Fraction) -> int:
    """``value`` counted in ``tb`` as a count of ``to``: floored to nanoseconds (as ``Packet.pts``
    and the frames' timestamps are), else the nearest tick."""
    if to == _NS_TB:
        return _ns(value, tb)
    q = Fraction(value) * tb / to
    return int(q.numerator * 2 + q.denominator) // (2 * q.denominator)


def _offset_frames(frames: list, offset: int) -> list:
    if offset:
        for f in frames:
            if f.pts >= 0:
                f.pts = f.pts + offset
    return frames


def _code(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


class FrameClock:
    """Timestamps for frames that carry none, as those of a raw H.264/HEVC elementary stream do:
    one frame duration (at the stream's frame rate) after the frame before, in display order, the
    first at 0. Frames that have a timestamp keep it and set the clock. The k-th untimed frame
    after the clock was set is at k frame durations, rounded to the ns once (adding a rounded
    duration frame by frame drifted: 48 frames at 30 fps ended 16 ns short of 1.6 s)."""

    __slots__ = ("period", "anchor", "count")

    def __init__(self, fps: Fraction | float | int) -> None:
        self.period = Fraction(_NS) / Fraction(fps) if fps else None  # ns per frame; None: rate unknown
        self.anchor: int | None = None  # the last timestamp a frame carried (0 before the first)
        self.count = 0                  # untimed frames stamped since then

    def stamp(self, frames: list) -> None:
        period = self.period
        for f in frames:
            if f.pts >= 0:
                self.anchor, self.count = f.pts, 0
            elif period is not None:
                if self.anchor is None:
                    self.anchor, self.count = 0, 0
                else:
                    self.count += 1
                f.pts = self.anchor + round(self.count * period)

    def restart(self) -> None:
        """The next untimed frame is the stream's first again (its source was reopened)."""
        self.anchor, self.count = None, 0


class Decoder:
    """Decodes the packets of one video stream.

    Args:
        info: the stream description (``Demuxer.info``).
        device: ``"auto"`` (NVDEC when possible, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        low_latency: output frames in decode order without reordering delay (live sources).
        output_format: ``"NV12"`` (native: NV12, or P016 for >8-bit) or ``"RGB"``, ``"BGR"``,
            ``"RGBA"``, ``"BGRA"`` (converted on the frame's device with the stream's matrix/range).
        output_size: ``(width, height)`` to scale to (NVDEC's hardware scaler on the GPU).
        max_size: largest ``(width, height)`` the stream may switch to, so that NVDEC reconfigures
            in place instead of recreating the decoder.
        threads: CPU decoder threads (0 = FFmpeg's choice).
        fast_start: on NVDEC, when the driver must create a hardware session for this stream (35-45
            ms), decode the first frame on the CPU meanwhile and upload it (H.264/HEVC, exact by
            specification; :mod:`pysm.codec.fast_start` says when it steps aside). ``stats``
            tells whether it did (``fast_start``).

    Attributes:
        synthesize_pts: time frames that carry no timestamp (raw elementary streams) at the frame
            rate, in display order (:class:`FrameClock` ``clock``); True by default.
        report_empty: :meth:`flush` raises DecodeError when packets went in and no frame ever came
            out (a stream that is not what its container says, or corrupt throughout); True by
            default.

    Raises:
        UnsupportedError: the codec/profile/size cannot be decoded on the requested device.
        DriverError: ``device="cuda"`` but libnvcuvid/libcuda cannot be loaded.
    """

    def __init__(self, info: StreamInfo, device: str | int = "auto", *, low_latency: bool = False,
                 output_format: str = "NV12", output_size: tuple[int, int] | None = None,
                 max_size: tuple[int, int] | None = None, threads: int = 0, fast_start: bool = True) -> None:
        kind, index = parse_device(device)
        fmt = str(getattr(output_format, "name", output_format)).upper()
        if fmt not in ("NV12", "P016", "P010") + _RGB_FORMATS:
            raise errors.InvalidArgument(f"output_format {output_format!r} is not NV12 or one of {_RGB_FORMATS}")
        self.info = info
        self.output_format = fmt
        self.low_latency = low_latency
        # The decoders of a reader's further sessions leave both to the reader (VideoReader).
        self.synthesize_pts = True
        self._report_empty = True
        self.clock = FrameClock(info.fps)
        self._packets_in = 0
        self._frames_out = 0
        self.fallback_reason: str | None = None
        self._closed = False
        self._roles: Any = None  # the bitstream parser of picture_role, made at its first call
        self._config_sets: dict | None = None  # the extradata's parameter sets (with_configuration)
        if kind == "auto":
            reason = nvdec_unavailable_reason(info, index)
            if reason is None:
                try:
                    self._impl: Any = _NvdecBackend(info, index, low_latency, output_size, max_size)
                    self.device = f"cuda:{index}"
                except (errors.DriverError, errors.UnsupportedError, errors.CudaError) as exc:
                    reason = str(exc)
            if reason is not None:
                self.fallback_reason = reason
                log.info("decoding %s on the CPU: %s", info.uri, reason)
                self._impl = _CpuBackend(info, low_latency, output_size, threads)
                self.device = "cpu"
        elif kind == "cuda":
            self._impl = _NvdecBackend(info, index, low_latency, output_size, max_size)
            self.device = f"cuda:{index}"
        else:
            self._impl = _CpuBackend(info, low_latency, output_size, threads)
            self.device = "cpu"
        if fast_start and self.device != "cpu" and FastStart.eligible(info, output_size):
            self._impl = FastStart(self._impl, lambda: _CpuBackend(info, True, None, 0), info, index)

    def _post(self, frames: list) -> list:
        self._frames_out += len(frames)
        if self.synthesize_pts:
            self.clock.stamp(frames)
        if self.output_format in _RGB_FORMATS and frames:
            return [f.to(self.output_format) for f in frames]
        return frames

    def decode(self, packet: Any, pts: int | None = None) -> list:
        """Decode one packet and return the frames that became ready (display order).

        ``packet`` is a :class:`Packet`, a PyAV packet, or any buffer-protocol object (then ``pts``
        in ns may be given). The payload is read in place, without a copy, with the GIL released.
        """
        if self._closed:
            raise errors.StateError(f"the decoder of {self.info.uri} is closed")
        self._packets_in += 1
        return self._post(self._impl.decode(packet, pts))

    def decode_many(self, packets: Any, pts_offset: int = 0) -> list:
        """Decode several packets in one call and return the frames that became ready.

        On NVDEC this is one native call with the GIL released once for the whole batch (instead of
        once per packet), which is what keeps many concurrent streams at the hardware's rate. Items
        are PyAV packets of this stream (``Demuxer.read_batch``; time base ``info.time_base``),
        :class:`Packet` objects, ``(buffer, pts_ns)`` tuples or plain buffers. ``pts_offset`` (ns)
        is added to every known timestamp (used for looping). A packet the decoder rejects is
        counted in ``stats`` and skipped; DecodeError only when every packet was rejected.
        """
        if self._closed:
            raise errors.StateError(f"the decoder of {self.info.uri} is closed")
        if not hasattr(packets, "__len__"):
            packets = list(packets)
        self._packets_in += len(packets)
        return self._post(self._impl.decode_many(packets, pts_offset))

    def flush(self) -> list:
        """End of stream: return the frames held back for reordering. Decoding may then restart.

        Raises:
            DecodeError: packets went in and not one frame came out since the decoder was made
                (see ``report_empty``): a per-frame error flag cannot tell that.
        """
        if self._closed:
            return []
        frames = self._post(self._impl.flush())
        if not self._frames_out and self._packets_in and self.report_empty:
            raise self.no_frame_error(self._packets_in)
        return frames

    @property
    def report_empty(self) -> bool:
        return self._report_empty

    @report_empty.setter
    def report_empty(self, value: bool) -> None:
        self._report_empty = bool(value)
        if isinstance(self._impl, _CpuBackend):  # its own early check, after 64 failed packets
            self._impl.report_empty = self._report_empty

    def no_frame_error(self, packets: int) -> errors.DecodeError:
        """The error for ``packets`` packets of this stream that gave not one frame."""
        st = self.stats
        last = st.get("last_error") or ""
        return errors.DecodeError(
            f"no frame could be decoded from {self.info.uri}: {packets} packets of {self.info.codec} "
            f"went in ({st.get('errors', 0)} rejected{', last error: ' + last if last else ''}); the "
            f"stream is corrupt, ends before its first key frame, or is not {self.info.codec} as its "
            f"container says")

    def starts_sequence(self, packet: Any) -> bool:
        """Whether decoding can start at ``packet`` without the packets before it, and give from
        there on the same frames as a decoder that saw them: it starts a new coded sequence (H.264
        IDR, HEVC IDR/BLA; a key frame of VP8/VP9/AV1/MJPEG). Other codecs, and malformed
        headers, answer False."""
        if self._closed:
            return False
        try:
            return bool(self._impl.starts_sequence(packet))
        except errors.Error:
            return False

    def picture_role(self, packet: Any) -> int:
        """What decoding from ``packet`` on gives (the packet's first slice, or its key-frame flag
        for VP8/VP9/AV1/MJPEG): :data:`CLEAN_RESTART` where :meth:`starts_sequence`;
        :data:`OPEN_RESTART` for an HEVC CRA or an H.264 I picture with an exact recovery point
        SEI (x264's open GOPs), from which a decoder gives the same frames except its leading
        pictures (:meth:`is_leading`); :data:`LEADING` for such a leading picture of HEVC
        (RADL/RASL); 0 otherwise, for other codecs and for malformed packets."""
        roles = self._bitstream()
        if not roles:
            return 0
        data, _ = _packet_fields(packet, None, self.info.time_base)
        try:
            return int(roles.picture_role(data, _is_key(packet)))
        except (errors.Error, TypeError, ValueError):  # not a buffer of bytes
            return 0

    def _bitstream(self) -> Any:
        """The parser of picture_role and is_leading, made at the first call; None once closed,
        False where the codec configuration is malformed."""
        if self._closed:
            return None
        if self._roles is None:
            self._roles = annexb_converter(self.info)
        return self._roles

    def is_leading(self, packet: Any, restart: Any) -> bool:
        """Whether ``packet`` is a leading picture of ``restart``, an :data:`OPEN_RESTART` packet
        before it in decoding order: shown before it and possibly predicting from pictures before
        it. HEVC: a RADL/RASL picture. H.264 (no such NAL types): its picture order count is below
        the restart point's; where its slice header cannot be read (a damaged packet), its
        timestamp is (False without timestamps). False for other codecs and unreadable packets."""
        roles = self._bitstream()
        if not roles:
            return False
        data, pts = _packet_fields(packet, None, self.info.time_base)
        first, restart_pts = _packet_fields(restart, None, self.info.time_base)
        try:
            leading = roles.leads(data, first)
        except (errors.Error, TypeError, ValueError):  # not a buffer of bytes
            return False
        if leading is None:  # -1: no timestamp
            return pts is not None and restart_pts is not None and 0 <= pts < restart_pts
        return leading

    def parameter_sets(self, packet: Any) -> list[tuple[Any, bytes]]:
        """The parameter-set NAL units (H.264 SPS/PPS, HEVC VPS/SPS/PPS) ``packet`` carries in band
        before its first slice, in order, as ``(key, nal)``: ``nal`` without framing, ``key``
        ``(nal_type, id)`` (a later set of the same key replaces it in a decoder), or
        ``(nal_type, nal)`` where its id cannot be read. Empty for other codecs."""
        roles = self._bitstream()
        if not roles:
            return []
        data, _ = _packet_fields(packet, None, self.info.time_base)
        try:
            sets = roles.parameter_sets(data)
        except (errors.Error, TypeError, ValueError):  # not a buffer of bytes
            return []
        return _keyed(sets)

    def with_parameter_sets(self, packet: Any, sets: list[tuple[Any, bytes]]) -> Any:
        """``packet`` carrying ahead of its own NAL units the parameter sets ``sets`` (as
        :meth:`parameter_sets` gives them), framed as the stream's packets are: a copy, or
        ``packet`` itself where ``sets`` is empty.

        The sets go first in the order they refer to each other (VPS, SPS, PPS), whatever order
        they came in: a decoder reads a PPS against the SPS it holds at that moment, so a PPS put
        before the SPS it belongs to (a stream that repeats its SPS alone) is bound to the
        container's. The packet's own sets follow and replace those of their keys, as in the
        serial stream."""
        roles = self._bitstream()
        if not sets or not roles:
            return packet
        sets = sorted(sets, key=_set_rank)
        data, pts = _packet_fields(packet, None, self.info.time_base)
        size = roles.nal_length_size
        head = b"".join((len(n).to_bytes(size, "big") if size else b"\x00\x00\x00\x01") + n for _, n in sets)
        return Packet(head + bytes(data), pts, key=_is_key(packet), discard=_is_discard(packet))

    def _configuration_sets(self) -> dict[Any, bytes]:
        """The codec configuration's (extradata's) parameter sets, key -> NAL unit, keyed as
        :meth:`parameter_sets` keys them."""
        if self._config_sets is None:
            roles = self._bitstream()
            headers = roles.headers if roles else b""
            # The configuration's headers are Annex-B whatever the packets' framing.
            sets = _core.AnnexBConverter(self.info.codec, b"").parameter_sets(headers) if headers else []
            self._config_sets = dict(_keyed(sets))
        return self._config_sets

    def changes_configuration(self, packet: Any) -> bool:
        """Whether ``packet`` carries a parameter set other than the codec configuration's of its
        type and id: decoding that starts over from the stream's first packet then needs
        :meth:`with_configuration`."""
        sets = self.parameter_sets(packet)
        if not sets:
            return False
        config = self._configuration_sets()
        return any(config.get(key) != nal for key, nal in sets)

    def with_configuration(self, packet: Any) -> Any:
        """``packet`` carrying ahead of its own NAL units the codec configuration's parameter sets
        (the extradata's; a copy, see :meth:`with_parameter_sets`), or ``packet`` itself where
        there are none: for decoding to start over from the stream's first packet."""
        return self.with_parameter_sets(packet, list(self._configuration_sets().items()))

    def hidden_copy(self, packet: Any) -> Packet:
        """``packet`` to be decoded but not shown (its payload shared, not copied): a picture that
        later ones predict from, whose frame comes from elsewhere."""
        data, pts = _packet_fields(packet, None, self.info.time_base)
        return Packet(data, pts, key=_is_key(packet), discard=True)

    def continues_at(self, packet: Any) -> bool:
        """Whether ``packet`` can follow the packets decoded so far without :meth:`flush`: it
        :meth:`starts_sequence`, so a file that loops goes on into its next pass without draining
        the decoder, the held-back frames coming out with the next pass's first packets under their
        own timestamps. NVDEC only (the CPU decoder answers False: flush there)."""
        return self.is_hardware and self.starts_sequence(packet)

    @property
    def stats(self) -> dict:
        """Counters of the backend (frames displayed, errors, ...)."""
        return self._impl.stats

    @property
    def is_hardware(self) -> bool:
        return self.device != "cpu"

    def close(self) -> None:
        """Release the decoder; returned frames stay valid.

        An NVDEC session is parked for reuse by the next stream of the same format (see
        :func:`clear_decoder_cache`), so closing does not wait for the driver.
        """
        if not self._closed:
            self._closed = True
            self._impl.close()

    def __enter__(self) -> "Decoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<pysm.codec.Decoder {self.info.codec} {self.info.width}x{self.info.height} on {self.device}>"
