"""``MediaInfo.discover(uri)``: what a media source contains, as pyservicemaker's ``utils.MediaInfo``.

The result is falsy when the source cannot be opened (``info.error`` says why), so
``if not MediaInfo.discover(uri): ...`` works as in pyservicemaker. Durations are nanoseconds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

__all__ = ["MediaInfo", "VideoStreamInfo", "AudioStreamInfo"]

_NS = 1_000_000_000


@dataclass
class VideoStreamInfo:
    """One video stream. ``framerate`` is ``(numerator, denominator)``."""

    codec: str
    width: int
    height: int
    framerate: tuple[int, int]
    bit_depth: int = 8
    pix_fmt: str = ""
    profile: str = ""
    color_matrix: str = "bt709"
    color_range: str = "limited"
    color_primaries: str = "unknown"
    color_transfer: str = "unknown"
    duration: int = -1      #: ns, -1 when unknown
    frame_count: int = -1   #: -1 when unknown
    index: int = 0


@dataclass
class AudioStreamInfo:
    """One audio stream."""

    codec: str
    channels: int
    sampling_rate: int
    index: int = 0


def _channels(cc) -> int:
    n = getattr(cc, "channels", None)
    if not n and getattr(cc, "layout", None) is not None:
        n = getattr(cc.layout, "nb_channels", 0)
    return int(n or 0)


StreamInfoType = Union[VideoStreamInfo, AudioStreamInfo]


@dataclass
class MediaInfo:
    """Description of a media source; falsy when discovery failed."""

    uri: str = ""
    live: bool = False
    duration: int = -1  #: ns, -1 when unknown (live sources)
    streams: list[StreamInfoType] = field(default_factory=list)
    container: str = ""
    error: str = ""

    def __bool__(self) -> bool:
        return not self.error and bool(self.streams)

    # Convenience accessors for the first video stream (None when there is none).
    @property
    def video(self) -> VideoStreamInfo | None:
        return next((s for s in self.streams if isinstance(s, VideoStreamInfo)), None)

    @property
    def audio(self) -> AudioStreamInfo | None:
        return next((s for s in self.streams if isinstance(s, AudioStreamInfo)), None)

    @property
    def codec(self) -> str | None:
        return self.video.codec if self.video else None

    @property
    def width(self) -> int:
        return self.video.width if self.video else 0

    @property
    def height(self) -> int:
        return self.video.height if self.video else 0

    @property
    def framerate(self) -> tuple[int, int]:
        return self.video.framerate if self.video else (0, 1)

    @property
    def frame_count(self) -> int:
        return self.video.frame_count if self.video else -1

    @property
    def bit_depth(self) -> int:
        return self.video.bit_depth if self.video else 0

    @property
    def color_matrix(self) -> str | None:
        return self.video.color_matrix if self.video else None

    @property
    def color_range(self) -> str | None:
        return self.video.color_range if self.video else None

    @staticmethod
    def discover(uri: str | os.PathLike, timeout: float = 10.0) -> "MediaInfo":
        """Open ``uri`` (path, ``file://``, ``rtsp://``, ``http(s)://``) and describe its streams.

        Never raises for a bad source: the returned object is falsy and ``error`` holds the reason.
        """
        import av

        from pysm.codec.demux import LIVE_SCHEMES, Demuxer, _bit_depth, _normalise_uri, codec_name

        text = os.fspath(uri)
        try:
            # Discovery wants every field (H.264 colour from the bitstream too): full probe.
            demux = Demuxer(text, open_timeout=timeout, read_timeout=timeout, fast_open=False)
        except Exception as exc:  # noqa: BLE001 - discovery reports, it does not raise
            # Audio-only files have no video stream but are still media: describe them.
            return MediaInfo._discover_without_video(text, timeout, str(exc))
        with demux:
            v = demux.info
            container = demux._container
            streams: list[StreamInfoType] = []
            for st in container.streams:
                if st.type == "video":
                    if st is demux._stream:
                        streams.append(VideoStreamInfo(
                            codec=v.codec, width=v.width, height=v.height, framerate=v.framerate,
                            bit_depth=v.bit_depth, pix_fmt=v.pix_fmt, profile=v.profile,
                            color_matrix=v.color_matrix, color_range=v.color_range,
                            color_primaries=v.color_primaries, color_transfer=v.color_transfer,
                            duration=v.duration, frame_count=v.frame_count, index=st.index))
                    else:
                        cc = st.codec_context
                        rate = st.average_rate or st.guessed_rate
                        fr = Fraction(rate) if rate else Fraction(0)
                        streams.append(VideoStreamInfo(
                            codec=codec_name(cc), width=cc.width, height=cc.height,
                            framerate=(fr.numerator, fr.denominator) if fr else (0, 1),
                            bit_depth=_bit_depth(cc.pix_fmt) if cc.pix_fmt else 8,
                            pix_fmt=cc.pix_fmt or "", index=st.index))
                elif st.type == "audio":
                    cc = st.codec_context
                    streams.append(AudioStreamInfo(codec=codec_name(cc), channels=_channels(cc),
                                                   sampling_rate=int(cc.sample_rate or 0), index=st.index))
            _, scheme = _normalise_uri(text)
            live = v.is_live or scheme in LIVE_SCHEMES
            duration = -1
            if not live:
                if container.duration:
                    duration = int(container.duration) * _NS // av.time_base
                else:
                    duration = v.duration
            return MediaInfo(uri=text, live=live, duration=duration, streams=streams,
                             container=v.container)

    @staticmethod
    def _discover_without_video(uri: str, timeout: float, why: str) -> "MediaInfo":
        import av

        from pysm.codec.demux import LIVE_SCHEMES, _normalise_uri, codec_name

        target, scheme = _normalise_uri(uri)
        try:
            with av.open(target, timeout=(timeout, timeout)) as c:
                streams: list[StreamInfoType] = [
                    AudioStreamInfo(codec=codec_name(s.codec_context), channels=_channels(s.codec_context),
                                    sampling_rate=int(s.codec_context.sample_rate or 0), index=s.index)
                    for s in c.streams if s.type == "audio"]
                if not streams:
                    return MediaInfo(uri=uri, error=why)
                live = scheme in LIVE_SCHEMES
                duration = -1 if live or not c.duration else int(c.duration) * _NS // av.time_base
                return MediaInfo(uri=uri, live=live, duration=duration, streams=streams,
                                 container=c.format.name if c.format else "")
        except Exception:  # noqa: BLE001
            return MediaInfo(uri=uri, error=why)
