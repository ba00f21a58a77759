"""Demultiplexing with PyAV: files (mp4, mkv, ts, mov, ...), RTSP (TCP by default) and HTTP(S).

A :class:`Demuxer` opens one source, describes its video stream (:class:`StreamInfo`) and yields
compressed :class:`Packet` objects whose payload is the PyAV packet itself, handed to the decoder
through the buffer protocol without a copy. For network sources, opening and every read are
bounded by timeouts (PyAV's interrupt callback), so a dead camera raises instead of blocking
forever. Regular local files are read without that callback: it takes the GIL on every I/O call,
which costs decode throughput when many streams run in threads.

Opening a local H.264/HEVC file skips FFmpeg's probe decode (``avformat_find_stream_info``
decodes frames in software just to learn the pixel format: ~50 ms for a 1080p clip). The bit
depth and chroma come from the profile instead (Baseline/Main/High: 8-bit 4:2:0; High 10/Main 10:
10-bit 4:2:0). Any other profile or codec, and every network source, is probed as usual.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator
from urllib.parse import unquote, urlparse

from pysm.errors import SourceError

__all__ = ["Demuxer", "Packet", "StreamInfo", "LIVE_SCHEMES"]

#: URI schemes whose sources are live (no end, no seeking).
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "srt", "tcp"})

_NS = 1_000_000_000
_SEEK_KEEP_BYTES = 64 << 20  # a seek keeps at most this much of the GOP it scans (see _keyframe_within)
_SEEK_TRIES = 12  # an approximate seek backs off 1, 2, 4, ... s before the target; then the start

log = logging.getLogger("pysm.codec")

# FFmpeg AVColorSpace / AVColorRange / AVColorPrimaries / AVColorTransferCharacteristic codes.
_MATRIX = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 9: "bt2020",
              11: "smpte431", 12: "smpte432"}
_TRANSFER = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
             13: "srgb", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}

# Fast open: codec options for the decoders avformat_find_stream_info probes with (no probe
# decode, no threads), so opening a local file costs ~3 ms instead of ~50 ms; and for MP4/MOV the
# least probe size. Without a probe decode an H.264 stream's pixel format stays unknown, so FFmpeg
# would read packets up to the default 5 MB looking for it: 2.4 ms against 0.75 for the 1080p H.264
# clip. An MP4's index holds every sample's timing; elsewhere the probed packets are what gives the
# rate and the decode timestamps (MPEG-TS/PS: 60 fps for 30; Matroska without DefaultDuration: 60
# or 1000 fps, and H.264 DTS out of order, since Matroska stores none).
_FAST_PROBE = {"threads": "1", "skip_frame": "all"}
_TS_PTS_BITS = 33  # MPEG-TS timestamps: 90 kHz, 33 bits (wrapping every 26.5 hours)
_RAW_FORMATS = ("h264", "hevc")  # FFmpeg's demuxers of raw Annex-B elementary streams
_FAST_PROBE_SIZE = {"probesize": "32"}
_INDEXED_EXTENSIONS = (".mp4", ".m4v", ".mov")   # the guess, before opening
_INDEXED_FORMAT = "mov,mp4,m4a,3gp,3g2,mj2"     # what FFmpeg found, checked after
# Formats on MPEG's 33-bit, 90-kHz clock, whose timestamps wrap every 26.5 hours.
_PTS_WRAP_FORMATS = ("mpegts", "mpeg")
# Profiles whose pixel format is fixed (FFmpeg profile names) -> (bit depth, chroma, pix_fmt).
# Profiles that allow 4:2:2/4:4:4 or several depths (High 4:2:2, High 4:4:4, Rext, ...) are probed.
_PROFILE_FORMAT = {
    "h264": {p: (8, "420", "yuv420p") for p in ("Baseline", "Constrained Baseline", "Main", "Extended", "High",
                                               "Progressive High", "Constrained High")}
    | {p: (10, "420", "yuv420p10le") for p in ("High 10", "High 10 Intra")},
    "hevc": {"Main": (8, "420", "yuv420p"), "Main Still Picture": (8, "420", "yuv420p"),
             "Main 10": (10, "420", "yuv420p10le")},
}


@dataclass
class StreamInfo:
    """What a decoder needs to know about one video stream."""

    uri: str
    codec: str                      #: FFmpeg codec name: h264, hevc, av1, vp9, mpeg4, mjpeg, ...
    width: int
    height: int
    fps: Fraction                   #: average frame rate (0 when unknown)
    time_base: Fraction             #: packet timestamp unit of the container
    bit_depth: int = 8
    pix_fmt: str = ""
    chroma: str = "420"             #: "420", "422", "444" or "400"
    profile: str = ""
    color_matrix: str = "bt709"     #: matrix the decoder uses: bt601, bt709 or bt2020
    color_range: str = "limited"    #: "limited" or "full"
    color_primaries: str = "unknown"
    color_transfer: str = "unknown"
    color_specified: bool = False   #: False when the stream leaves the matrix unspecified (guessed by size)
    duration: int = -1              #: ns, -1 when unknown (live)
    #: from the container's index; where it has none (mkv, ts) duration x frame rate, rounded;
    #: -1 when unknown (live)
    frame_count: int = -1
    start_time: int = 0             #: ns, the stream's first timestamp (0 when it has none)
    is_live: bool = False
    container: str = ""
    extradata: bytes = field(default=b"", repr=False)

    @property
    def framerate(self) -> tuple[int, int]:
        """Frame rate as (numerator, denominator), pyservicemaker's convention."""
        return (self.fps.numerator, self.fps.denominator) if self.fps else (0, 1)


class Packet:
    """One compressed access unit.

    ``data`` is the payload as a buffer-protocol object (the PyAV packet, not a copy); ``pts`` and
    ``dts`` are in nanoseconds (-1 when unknown); ``key`` marks keyframes; ``discard`` marks a
    packet that is decoded, because later pictures predict from it, but whose picture is not shown
    (the pre-roll that an MP4 edit list hides: a stream-copy cut starts at the keyframe before it).
    """

    __slots__ = ("data", "pts", "dts", "duration", "key", "corrupt", "discard")

    def __init__(self, data: Any, pts: int = -1, dts: int = -1, duration: int = 0, key: bool = False,
                 corrupt: bool = False, discard: bool = False) -> None:
        self.data = data
        self.pts = pts
        self.dts = dts
        self.duration = duration
        self.key = key
        self.corrupt = corrupt
        self.discard = discard

    @property
    def size(self) -> int:
        return len(memoryview(self.data))

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<pysm.codec.Packet {self.size} bytes pts={self.pts}{' key' if self.key else ''}>"


def _normalise_uri(uri: str | os.PathLike) -> tuple[str, str]:
    """(what PyAV opens, scheme)."""
    text = os.fspath(uri)
    if text.startswith("file://"):
        return unquote(urlparse(text).path), "file"  # Path.as_uri() percent-encodes spaces and '#'
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    return text, scheme or "file"


def _is_attached_picture(stream: Any) -> bool:
    """A cover picture (an audio file's artwork): a video stream of one still, not a video."""
    disposition = getattr(stream, "disposition", None)
    try:
        import av

        return bool(disposition is not None and disposition & av.stream.Disposition.attached_pic)
    except (AttributeError, TypeError):
        return False


def _moving_pictures(videos: Any) -> list:
    return [s for s in videos if not _is_attached_picture(s)]


def _stream_kind(stream: Any) -> str:
    return "cover picture" if stream.type == "video" and _is_attached_picture(stream) else stream.type


def _tag_duration(stream: Any) -> int:
    """A Matroska track's DURATION tag ("HH:MM:SS.nnnnnnnnn") in ns; 0 when absent or unreadable."""
    text = (getattr(stream, "metadata", None) or {}).get("DURATION") or ""
    try:
        h, m, sec = text.strip().split(":")
        whole, _, frac = sec.partition(".")
        return ((int(h) * 60 + int(m)) * 60 + int(whole)) * _NS + int((frac + "000000000")[:9])
    except ValueError:
        return 0


_metadata_errors_kw = True  # PyAV < 19 takes metadata_errors=; 19 dropped it


@functools.lru_cache(maxsize=1)
def _per_stream_options_crash() -> bool:
    """Whether this PyAV hands open options to streams that appear while probing (before 18)."""
    import av

    try:
        return int(str(av.__version__).split(".")[0]) < 18
    except ValueError:
        return False


def _streams_in_header(target: str) -> bool:
    """Whether ``target`` is a local MP4/MOV, Matroska/WebM or MPEG-TS file by its first bytes:
    formats whose streams FFmpeg knows from the header, before it probes any packet."""
    try:
        with open(target, "rb") as f:
            head = f.read(3 * 188)
    except OSError:  # not a local file
        return False
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip") or head[:4] == b"\x1a\x45\xdf\xa3":
        return True
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47  # TS sync bytes


def codec_name(cc: Any) -> str:
    """The codec's own name (``av1``), not the decoder FFmpeg picked for it (``libdav1d``): what
    NVDEC, the capability table and users key on."""
    codec = getattr(cc, "codec", None)
    return str(getattr(codec, "canonical_name", None) or cc.name)


def _av_open(target: str, **kw: Any) -> Any:
    """``av.open(target, mode="r", **kw)``, where PyAV takes it with ``metadata_errors="replace"``:
    titles in Latin-1 (older muxers) would otherwise fail the whole open."""
    import av

    options = kw.get("options")
    if options and _per_stream_options_crash() and not _streams_in_header(target):
        # PyAV 17 hands `options` to each stream's decoder too, through an array sized before the
        # probe, and a format whose streams appear only while probing (MPEG-PS, FLV) then crashed
        # the process; 18 refuses that instead. There they go to the container alone (the fast
        # open's decoder settings included, which it then probes without: 20-25 ms more).
        kw = dict(kw, container_options={k: v for k, v in options.items() if k not in _FAST_PROBE})
        del kw["options"]
    global _metadata_errors_kw
    if _metadata_errors_kw:
        try:
            return av.open(target, mode="r", metadata_errors="replace", **kw)
        except TypeError as exc:
            if "metadata_errors" not in str(exc):
                raise
            _metadata_errors_kw = False
    return av.open(target, mode="r", **kw)


def _bit_depth(pix_fmt: str) -> int:
    import av

    try:
        return max(int(c.bits) for c in av.VideoFormat(pix_fmt).components)
    except Exception:  # unknown/None pix_fmt: assume 8-bit
        return 8


def _chroma(pix_fmt: str) -> str:
    p = pix_fmt or ""
    if p.startswith("gray"):
        return "400"
    for tag in ("444", "422", "440", "411", "410"):
        if tag in p:
            return "444" if tag == "444" else "422" if tag in ("422", "440") else "420"
    return "420"


def _code(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _ns(value: int | None, tb: Fraction) -> int:
    if value is None:
        return -1
    return value * tb.numerator * _NS // tb.denominator


def _av_error_text(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


class Demuxer:
    """Opens a media source and yields the compressed packets of its first video stream.

    Args:
        uri: a path, ``file://`` URI, ``rtsp://``, ``http(s)://`` or anything FFmpeg opens.
        open_timeout: seconds to wait for the source to open.
        read_timeout: seconds to wait for each read before giving up (live sources). A frozen RTSP
            camera is reported after one to two of them: when FFmpeg's interrupt cuts a read, its
            RTSP demuxer first hands out the packets its reorder queue held.
        options: extra FFmpeg format options (e.g. ``{"rtsp_transport": "udp"}``).
        fast_open: for local H.264/HEVC files, skip FFmpeg's probe decode (see the module doc).
            With it, ``info`` takes H.264 colour descriptions from the container only (the
            decoders read the bitstream's own); pass False for a complete description.

    Raises:
        SourceError: the source cannot be opened, has no video stream, or timed out.
    """

    def __init__(self, uri: str | os.PathLike, *, open_timeout: float = 10.0, read_timeout: float = 10.0,
                 options: dict[str, str] | None = None, fast_open: bool = True) -> None:
        self.uri = os.fspath(uri)
        target, scheme = _normalise_uri(uri)
        opts: dict[str, str] = {}
        if scheme in ("rtsp", "rtsps"):
            opts["rtsp_transport"] = "tcp"  # UDP loses packets behind NAT/firewalls: TCP unless asked
        if options:
            opts.update({str(k): str(v) for k, v in options.items()})
        self._closed = False
        self._released = False  # the container freed (see close)
        # Packets read since the source's start (None after a seek elsewhere): an MP4/MOV index
        # lists every packet, so an end of the file before them all is a truncated file.
        self._pass_packets: int | None = 0
        self._truncation = ""  # how the file ends short, once a read found it (see truncated)
        self._last_corrupt = False  # the last packet read was flagged corrupt (cut short, in an MP4)
        self._container = None
        # Held while FFmpeg reads or seeks the container, and by close(): closing from another
        # thread (to stop a reader) then waits for the read in progress instead of freeing the
        # container under it, and the next read raises SourceError.
        self._io = threading.RLock()
        self._batch_iter: Any = None
        # After a seek: the packets its scan read from the keyframe it chose on (timestamps with
        # _shift), which every iterator hands out, each once, before reading the container on.
        self._replay: collections.deque = collections.deque()
        #: False once a seek found that FFmpeg cannot seek in this source (a raw elementary
        #: stream): :meth:`seek` then opens it again at its start
        self.seekable = True
        self._fast_profile: tuple[int, str, str] | None = None
        self._fast_opened = False
        self._shift = 0  # ticks added to every timestamp: an MPEG-TS whose PTS wrapped (_describe)
        # A regular local file never blocks like a socket: no interrupt callback (see module doc).
        local = scheme == "file" and os.path.isfile(target)
        timeout = None if local else (open_timeout, read_timeout)
        self._reopen_args = (target, opts, timeout, open_timeout)  # for a source that cannot seek
        if local and fast_open:
            small = target.lower().endswith(_INDEXED_EXTENSIONS)
            self._container = self._open(target, opts, timeout, open_timeout, fast=True, small_probe=small)
            if small and self._container is not None and self._container.format.name != _INDEXED_FORMAT:
                self._container.close()  # another format behind the extension: probe it as usual
                self._container = self._open(target, opts, timeout, open_timeout, fast=True)
            if self._container is not None and not self._fast_open_is_complete():
                self._container.close()
                self._container = None
            self._fast_opened = self._container is not None
        if self._container is None:
            self._container = self._open(target, opts, timeout, open_timeout, fast=False)
        try:
            if self._container.format.name == "tty":
                # FFmpeg renders any text file (.txt, .nfo, .ans, ...) as an 'ansi' video of its characters.
                raise SourceError(f"'{self.uri}' is a text file, not video (FFmpeg would only draw its characters)")
            videos = _moving_pictures(self._container.streams.video)
            if not videos:
                raise SourceError(f"'{self.uri}' has no video stream (streams: "
                                  f"{[_stream_kind(s) for s in self._container.streams] or 'none'})")
            self._stream = videos[0]
            self.info = self._describe(scheme)
            if not self.seekable:  # the start-time peek could not seek back (_peek_start_ns)
                self._reopen()
        except BaseException:
            self.close()
            raise
        self._tb = self.info.time_base

    def _open(self, target: str, opts: dict[str, str], timeout: Any, open_timeout: float, fast: bool,
              small_probe: bool = False) -> Any:
        """The opened container; None when the fast open does not apply to this format."""
        import av

        started = time.monotonic()
        try:
            if fast:
                # PyAV (18 and 19 alike) hands `options` to the container and to the decoders that
                # probe each stream; the format ignores the codec keys.
                size = _FAST_PROBE_SIZE if small_probe else {}
                return _av_open(target, options={**size, **opts, **_FAST_PROBE}, timeout=timeout)
            return _av_open(target, options=opts, timeout=timeout)
        except FileNotFoundError as exc:
            raise SourceError(f"cannot open '{self.uri}': file not found; check the path") from exc
        except PermissionError as exc:
            raise SourceError(f"cannot open '{self.uri}': permission denied") from exc
        except av.error.ExitError as exc:
            raise SourceError(f"opening '{self.uri}' timed out after {open_timeout:g} s; check that the "
                              f"source is reachable or raise open_timeout") from exc
        except av.error.InvalidDataError as exc:
            if timeout is not None and time.monotonic() - started >= 0.9 * open_timeout:
                # A server that accepts and then stays silent: FFmpeg's RTSP probe gives up with
                # "invalid data" when the interrupt fires.
                raise SourceError(f"opening '{self.uri}' timed out after {open_timeout:g} s (the server "
                                  f"sent nothing usable); check that the source is streaming or raise "
                                  f"open_timeout") from exc
            raise SourceError(f"cannot open '{self.uri}': not a media file FFmpeg understands "
                              f"({_av_error_text(exc)})") from exc
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"cannot open '{self.uri}': {_av_error_text(exc)}; check the URI, "
                              f"credentials and network") from exc
        except ValueError:
            # PyAV refuses per-stream options for formats whose streams appear only while probing
            # (raw elementary streams, some MPEG-TS): those take the normal open.
            if fast:
                return None
            raise

    def _fast_open_is_complete(self) -> bool:
        """After the fast open: whether the first video stream is described without a probe decode."""
        videos = _moving_pictures(self._container.streams.video)
        if not videos:
            return False  # found in the probe size, maybe; the normal open says
        st = videos[0]
        cc = st.codec_context
        if cc is None or cc.codec is None or not (cc.width and cc.height):
            return False
        if cc.pix_fmt:
            return True
        fmt = _PROFILE_FORMAT.get(codec_name(cc), {}).get(str(st.profile or cc.profile or ""))
        self._fast_profile = fmt
        return fmt is not None

    # ---- description --------------------------------------------------------------------------
    def _describe(self, scheme: str) -> StreamInfo:
        st = self._stream
        cc = st.codec_context
        if cc is None or cc.codec is None:
            tag = getattr(st, "codec_tag", "") or "?"
            raise SourceError(f"'{self.uri}': the video codec of stream {st.index} (tag {tag!r}) is unknown "
                              f"to FFmpeg; re-encode the source with a common codec (H.264, HEVC, AV1)")
        codec = codec_name(cc)
        width, height = int(cc.width or 0), int(cc.height or 0)
        rate = st.average_rate or st.guessed_rate or st.base_rate
        if self._container.format.name in _RAW_FORMATS and getattr(cc, "framerate", None):
            # A raw elementary stream has no container clock: its average rate is FFmpeg's 25-fps
            # placeholder, and the SPS's timing information, where the encoder wrote it, is the rate.
            rate = cc.framerate
        fps = Fraction(rate) if rate else Fraction(0)
        tb = Fraction(st.time_base) if st.time_base else Fraction(1, 90000)
        pix_fmt = cc.pix_fmt or ""
        bit_depth = _bit_depth(pix_fmt) if pix_fmt else 8
        if not pix_fmt and self._fast_profile is not None:
            bit_depth, _, pix_fmt = self._fast_profile
        matrix_code = _code(getattr(cc, "colorspace", 0))
        specified = matrix_code in _MATRIX
        matrix = _MATRIX.get(matrix_code, "bt709" if height >= 720 else "bt601")
        range_code = _code(getattr(cc, "color_range", 0))
        full = range_code == 2 or pix_fmt.startswith("yuvj") or (codec == "mjpeg" and range_code != 1)
        start = st.start_time
        if start is not None and start < 0 and self._container.format.name in _PTS_WRAP_FORMATS:
            # The 33-bit PTS (MPEG-TS/PS) wrapped within the file, and FFmpeg, the wrap being near the start,
            # put the part before it below 0: one more wrap period (added to every timestamp read)
            # keeps the whole file on the TS's own clock, increasing (those frames were re-timed
            # from 0 as untimed, and the clock then jumped back at the wrap).
            self._shift = 1 << _TS_PTS_BITS
            start += self._shift
        if start is None and self._container.start_time is not None:
            start_ns = int(self._container.start_time) * _NS // 1_000_000
        else:
            start_ns = _ns(start, tb) if start is not None else 0
        matroska = self._container.format.name == "matroska,webm"
        if self._fast_opened and matroska:
            peeked = self._peek_start_ns(tb)
            start_ns = peeked if peeked is not None else start_ns
        # Matroska/WebM keep a track's own length only in a tag; FFmpeg fills the stream's duration
        # with the file's (the longest track's, audio included). FFmpeg's muxer writes the track's
        # end time there, not its length: a track that starts late would count its start.
        duration = _tag_duration(st)
        if duration > start_ns > 0 and matroska and str(self._container.metadata.get("ENCODER", "")).startswith("Lavf"):
            duration -= start_ns
        if duration <= 0:
            if st.duration is not None and st.duration > 0:
                duration = _ns(st.duration, tb)
            elif self._container.duration:
                duration = int(self._container.duration) * _NS // 1_000_000  # AV_TIME_BASE is microseconds
            else:
                duration = -1
        frames = int(st.frames or 0)  # from the container index; 0 when it has none
        by_duration = round(Fraction(duration, _NS) * fps) if duration > 0 and fps > 0 else 0
        if 0 < by_duration < frames - 1:
            # The index counts samples an edit list hides (an MP4 cut, or B-frame delay): the
            # pictures shown are those the duration holds.
            frames = by_duration
        live = scheme in LIVE_SCHEMES or (duration <= 0 and scheme not in ("file", ""))
        if frames <= 0 and not live:
            frames = by_duration
        return StreamInfo(
            uri=self.uri, codec=codec, width=width, height=height, fps=fps, time_base=tb,
            bit_depth=bit_depth, pix_fmt=pix_fmt, chroma=_chroma(pix_fmt), profile=str(st.profile or cc.profile or ""),
            color_matrix=matrix, color_range="full" if full else "limited",
            color_primaries=_PRIMARIES.get(_code(getattr(cc, "color_primaries", 0)), "unknown"),
            color_transfer=_TRANSFER.get(_code(getattr(cc, "color_trc", 0)), "unknown"),
            color_specified=specified, duration=duration if not live else -1,
            frame_count=frames if frames > 0 else -1, start_time=start_ns, is_live=live,
            container=self._container.format.name if self._container.format else "",
            extradata=bytes(cc.extradata or b""))

    # ---- packets ------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[Packet]:
        return self.packets()

    def packets(self) -> Iterator[Packet]:
        """Yield the video packets until the end of the source.

        Raises:
            SourceError: a read failed or timed out.
        """
        import av

        with self._io:
            self._check_open()
            demux = self._demux()
        tb_num, tb_den = self._tb.numerator * _NS, self._tb.denominator
        while True:
            with self._io:
                self._check_open()  # closed while this generator was suspended
                try:
                    pkt = next(demux)
                except StopIteration:
                    self._at_end()
                    return
                except av.error.ExitError as exc:
                    raise SourceError(f"reading '{self.uri}' timed out; the source stopped sending data") from exc
                except av.error.EOFError:
                    self._at_end()
                    return
                except (av.error.FFmpegError, OSError) as exc:
                    raise SourceError(f"reading '{self.uri}' failed: {_av_error_text(exc)}") from exc
            if pkt.size == 0:  # the demuxer's end-of-stream marker
                continue
            if self._pass_packets is not None:
                self._pass_packets += 1
            corrupt = self._last_corrupt = pkt.is_corrupt
            pts, dts = pkt.pts, pkt.dts
            yield Packet(
                pkt,
                pts * tb_num // tb_den if pts is not None else (dts * tb_num // tb_den if dts is not None else -1),
                dts * tb_num // tb_den if dts is not None else -1,
                (pkt.duration or 0) * tb_num // tb_den,
                pkt.is_keyframe,
                corrupt,
                pkt.is_discard,
            )

    def read_batch(self, max_packets: int = 8) -> list:
        """Read up to ``max_packets`` packets of the video stream; ``[]`` at the end of the source.

        The items are PyAV packets (payload through the buffer protocol, ``pts``/``dts``/
        ``duration`` in ``info.time_base`` ticks), as :meth:`Decoder.decode_many` takes them: no
        per-packet wrapper objects, which matters when many streams decode in threads.

        Raises:
            SourceError: a read failed or timed out.
        """
        with self._io:
            self._check_open()
            return self._read_batch(max_packets)

    def _read_batch(self, max_packets: int) -> list:
        import av

        it = self._batch_iter
        if it is None:
            it = self._batch_iter = self._demux()
        out: list = []
        append = out.append
        try:
            for pkt in it:
                if pkt.size:  # size 0: the demuxer's end-of-stream marker
                    append(pkt)
                    if len(out) >= max_packets:
                        break
            else:
                self._batch_iter = None  # the end of the source
        except av.error.ExitError as exc:
            self._batch_iter = None
            raise SourceError(f"reading '{self.uri}' timed out; the source stopped sending data") from exc
        except av.error.EOFError:
            self._batch_iter = None  # the end of the source
        except (av.error.FFmpegError, OSError) as exc:
            self._batch_iter = None
            raise SourceError(f"reading '{self.uri}' failed: {_av_error_text(exc)}") from exc
        if self._pass_packets is not None:
            self._pass_packets += len(out)
        if out:
            self._last_corrupt = out[-1].is_corrupt
        if self._batch_iter is None:
            self._at_end()
        return out

    def _at_end(self) -> None:
        """The end of the source was read: note a truncated indexed file (see ``truncated``)."""
        fmt = self._container.format.name if self._container.format else ""
        if self._truncation or not fmt.startswith("mov"):
            return
        n, listed = self._pass_packets, self.info.frame_count
        # Against a real sample table (a fragmented MP4 lists none: its count is a guess) ...
        if n is not None and (self._stream.frames or 0) > 0 and listed > 0 and n < listed - 2:
            self._truncation = f"ends after {n} of the {listed} video packets its index lists"
        # ... or, as in a fragmented MP4, a last sample cut short (FFmpeg flags it corrupt).
        elif self._last_corrupt:
            self._truncation = "ends in the middle of a video packet"
        else:
            return
        log.warning("'%s' %s: the file is truncated", self.uri, self._truncation)

    @property
    def truncated(self) -> bool:
        """True once a read from the start ended before the packets the file's index lists, or (a
        fragmented MP4, whose index is incomplete) in the middle of a packet: an MP4/MOV cut short,
        e.g. a recording that stopped without finishing the file."""
        return bool(self._truncation)

    def truncation_error(self) -> SourceError:
        """The error for a truncated file (after its frames were decoded)."""
        return SourceError(f"'{self.uri}' {self._truncation}: the file is truncated (a recording cut short?)")

    def _drop_batch_iter(self) -> None:
        # Close the suspended generator now: its cleanup resets the container's read timeout,
        # which must not happen later, under a generator created after it.
        it, self._batch_iter = self._batch_iter, None
        if it is not None:
            try:
                it.close()
            except Exception:  # noqa: BLE001 - best effort on a broken source
                pass

    def seek(self, pts_ns: int = 0) -> None:
        """Seek to the keyframe at or before ``pts_ns`` (files only; the container's timeline, see
        ``info.start_time``): the next packet read is that keyframe.

        Some formats seek approximately (MPEG-TS searches the file for a timestamp and lands on
        whatever packet is there): from where it lands the packets are checked for a keyframe at or
        before ``pts_ns``, the seek goes back further until one is found, and the packets before
        that keyframe are skipped. A source FFmpeg cannot seek in at all (a raw H.264/HEVC
        elementary stream) is opened again and read from its start.
        """
        with self._io:
            self._check_open()
            if self.info.is_live:
                raise SourceError(f"'{self.uri}' is live and cannot seek")
            self._seek(pts_ns)

    def _seek(self, pts_ns: int) -> None:
        self._drop_batch_iter()
        self._pass_packets = 0 if pts_ns <= 0 else None
        self._last_corrupt = False
        self._replay.clear()
        back = 0
        # Where FFmpeg has nothing to land on (FLV past its last keyframe's index entry, or past the
        # end) it reads on to the end of the file: the seek then backs off from the end, not the target.
        info = self.info
        end = info.start_time + info.duration if info.duration > 0 else int(pts_ns)
        for _ in range(_SEEK_TRIES):
            at = max(0, min(int(pts_ns), end) - back)
            if not self._seek_to(at):
                self.seekable = False
                self._reopen()
                return
            if pts_ns <= 0:
                return
            replay = self._keyframe_within(pts_ns, exact=at == pts_ns and self._seeks_exactly())
            if replay is not None:
                # Not a second seek to the same place: the scan grows the index of a file that has
                # none (an AVI without idx1), and FFmpeg then lands further on, past the keyframe.
                if self._shift:
                    for pkt in replay:
                        self._shift_packet(pkt, self._shift)
                self._replay.extend(replay)
                return
            if at == 0:  # none at the start either: the target precedes the first keyframe
                self._seek_to(0)
                return
            back = max(_NS, 2 * back)
        if not self._seek_to(0):
            self.seekable = False
            self._reopen()

    def _peek_start_ns(self, tb: Fraction) -> int | None:
        """The video stream's first timestamp, from its first packets; the container is then rewound.

        The fast open of a Matroska/WebM file reads no video packet (the header describes the codec),
        and FFmpeg then gives the stream no start time or another stream's: an MKV cut at 1.5 s read
        as starting at 0, and MediaExtractor placed its chunks 1.5 s early. None when no packet
        tells."""
        import av

        first = None
        it = self._container.demux(self._stream)
        try:
            for n, pkt in enumerate(it):
                if n >= 16:  # B-frames: the smallest of the first pictures' timestamps
                    break
                if pkt.size and pkt.pts is not None:
                    first = pkt.pts if first is None else min(first, pkt.pts)
        except (av.error.FFmpegError, OSError):
            pass  # a damaged start: the reads that follow report it
        finally:
            it.close()
        self.seekable = self._seek_to(0)  # if not, reopened once the description is done
        return _ns(first, tb) if first is not None else None

    def _seek_to(self, pts_ns: int) -> bool:
        """Seek the container backwards to ``pts_ns``; False when the format cannot seek."""
        import av

        # The last tick whose time in ns, rounded down as packets' are, is at most pts_ns: a
        # keyframe's own pts seeks to it, not to the GOP before (1 tick short, as plain rounding gave).
        target = 0
        if pts_ns > 0:
            num, den = self._tb.numerator * _NS, self._tb.denominator
            target = -(-(int(pts_ns) + 1) * den // num) - 1
        target -= self._shift  # FFmpeg's own timeline
        try:
            self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        except (av.error.FFmpegError, OSError) as exc:
            log.debug("seeking '%s' to %d ns failed: %s", self.uri, pts_ns, _av_error_text(exc))
            return False
        return True

    def _seeks_exactly(self) -> bool:
        """Whether FFmpeg's seek lands on the last keyframe at or before the target itself: an MP4/MOV
        with a sample table lists every one (by presentation time). Elsewhere it lands a GOP or
        more early: MPEG-TS/PS seek by searching the file, an AVI index holds decode times, a
        Matroska file may cue only some keyframes, a fragmented MP4 indexes fragments."""
        return self._container.format.name == _INDEXED_FORMAT and (self._stream.frames or 0) > 0

    def _keyframe_within(self, pts_ns: int, exact: bool = False) -> list | None:
        """Reading from here: the packets read from the last keyframe shown at or before ``pts_ns``
        on, that keyframe first, or None when there is none (go back further; so too when no
        packet was left at all: FLV lands at the end of the file for a target in its last GOP). An
        approximate seek lands a GOP or more early, and the reader would otherwise decode from
        there; with ``exact`` (:meth:`_seeks_exactly`, the first try) the first keyframe is that one
        and reading on through its GOP would only cost time. The packets kept are bounded
        (``_SEEK_KEEP_BYTES``): a GOP larger than that ends the scan at its keyframe, a later one
        before the target unseen (the decode then starts a GOP early)."""
        import av

        num, den, shift = self._tb.numerator * _NS, self._tb.denominator, self._shift
        it = self._container.demux(self._stream)
        kept: list | None = None  # from the best keyframe so far on (at most a GOP and a little)
        size = 0
        try:
            for n, pkt in enumerate(it):
                if not pkt.size:
                    continue
                if kept is not None:
                    kept.append(pkt)
                    size += pkt.size
                    if size > _SEEK_KEEP_BYTES:
                        break
                if pkt.is_keyframe and pkt.pts is not None:
                    if (pkt.pts + shift) * num // den > pts_ns:
                        break
                    kept, size = [pkt], pkt.size
                    if exact:
                        break
                    continue
                ts = pkt.dts if pkt.dts is not None else pkt.pts
                if (ts is not None and (ts + shift) * num // den > pts_ns) or n > 10_000:
                    break
        except (av.error.FFmpegError, OSError) as exc:
            raise SourceError(f"reading '{self.uri}' after a seek failed: {_av_error_text(exc)}") from exc
        finally:
            it.close()
        return kept

    def _demux(self) -> Iterator:
        """The container's packets of the video stream from here, after those a seek keeps
        (``_replay``: checked before each read, so an iterator abandoned early, or made before the
        seek, loses none)."""
        it = self._container.demux(self._stream)
        if self._shift:
            it = self._shifted(it, self._shift)
        return self._after_seeks(it, self._replay)

    @staticmethod
    def _after_seeks(it: Iterator, replay: collections.deque) -> Iterator:
        # Static: a generator holding the Demuxer, itself held as _batch_iter, would be a cycle,
        # and a Demuxer dropped without close() would keep its file open until the collector ran.
        try:
            while True:
                while replay:
                    yield replay.popleft()  # (not held here: read once, freed once used)
                for pkt in it:  # (not `yield from`: a finished PyAV generator raises StopIteration)
                    yield pkt
                    if replay:  # a seek since
                        break
                else:
                    return
        finally:
            it.close()

    @staticmethod
    def _shifted(it: Iterator, ticks: int) -> Iterator:
        """``it`` with ``ticks`` added to every timestamp (see ``_shift``)."""
        try:
            for pkt in it:
                Demuxer._shift_packet(pkt, ticks)
                yield pkt
        finally:
            it.close()

    @staticmethod
    def _shift_packet(pkt: Any, ticks: int) -> None:
        if pkt.pts is not None:
            pkt.pts += ticks
        if pkt.dts is not None:
            pkt.dts += ticks

    def _reopen(self) -> None:
        """Open the source again, at its start."""
        target, opts, timeout, open_timeout = self._reopen_args
        old = self._container
        self._container = self._open(target, opts, timeout, open_timeout, fast=False)
        self._stream = _moving_pictures(self._container.streams.video)[0]
        try:
            old.close()
        except Exception:  # noqa: BLE001 - the old handle is of no further use
            pass

    # ---- lifetime -----------------------------------------------------------------------------
    def _check_open(self) -> None:
        """Raise SourceError once closed (I/O lock held), freeing the container if close() left
        that to the thread that was reading."""
        if self._closed:
            self._release()
            raise SourceError(f"the demuxer of '{self.uri}' is closed")

    def _release(self) -> None:
        """Free the container (I/O lock held); once."""
        if self._released or self._container is None:
            return
        self._released = True
        self._drop_batch_iter()
        self._replay.clear()
        try:
            self._container.close()
        except Exception:  # closing a broken network source must not raise
            pass

    def close(self) -> None:
        """Close the source; any thread may call it. A read in progress in another thread is never
        cut under it: the container is freed at once when no read is running, else by the reading
        thread as soon as its read returns (a network read can block up to ``read_timeout``), and
        that thread's next read raises SourceError. Returns without waiting for such a read."""
        if self._container is None:
            return
        self._closed = True
        if self._io.acquire(timeout=0.05):
            try:
                self._release()
            finally:
                self._io.release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Demuxer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
