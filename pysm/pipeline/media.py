"""Opening a video URI for a source element: demux + decode with connect/read timeouts.

With ``pysm.codec`` (the native decoder: NVDEC on the GPU, CPU fallback) frames come as native
Frames and stay on the device. Without it, PyAV decodes on the CPU and frames are copied into
pooled host surfaces. Either way the source sees an iterator of Frames.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Iterator, Optional

from pysm.errors import SourceError, TimeoutError as PysmTimeoutError

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "udp", "rtp", "srt", "tcp")


def uri_scheme(uri: str) -> str:
    return urllib.parse.urlparse(uri).scheme.lower()


def is_live_uri(uri: str) -> bool:
    return uri_scheme(uri) in LIVE_SCHEMES


def to_location(uri: str) -> str:
    """file:// URIs to paths (PyAV/FFmpeg take paths and network URLs)."""
    if uri_scheme(uri) == "file":
        return urllib.parse.unquote(urllib.parse.urlparse(uri).path)
    return uri


def check_uri(uri: str, element: str) -> None:
    """A local file must exist; a bad URI is a per-source error, raised here to be reported."""
    if not uri:
        raise SourceError(f"source '{element}': no 'uri' set")
    scheme = uri_scheme(uri)
    if scheme in ("", "file"):
        path = to_location(uri)
        if not os.path.exists(path):
            raise SourceError(f"source '{element}': file '{path}' does not exist (uri '{uri}')")


def _codec_module() -> Optional[Any]:
    try:
        from pysm import codec  # the native demuxer/decoder (decode helper's package)
    except ImportError:
        return None
    return codec if hasattr(codec, "Demuxer") and hasattr(codec, "Decoder") else None


class VideoInput:
    """An open video input: ``frames()`` yields decoded Frames; ``live`` tells whether it is a
    live stream (no end, no looping)."""

    def __init__(self, uri: str, *, device: str = "auto", open_timeout: float = 10.0,
                 read_timeout: float = 5.0, rtsp_tcp: bool = True, element: str = "") -> None:
        self.uri = uri
        self.element = element
        self.device = device
        self.live = is_live_uri(uri)
        self._codec = _codec_module()
        self._closed = False
        location = to_location(uri)
        self._native = None
        if self._codec is not None:
            try:
                self._native = self._codec.Demuxer(location, open_timeout=open_timeout, read_timeout=read_timeout)
            except Exception as exc:
                raise self._wrap(exc) from exc
            return
        import av

        opts = {}
        if uri_scheme(uri).startswith("rtsp"):
            opts["rtsp_transport"] = "tcp" if rtsp_tcp else "udp"
        try:
            self._container = av.open(location, options=opts, timeout=(open_timeout, read_timeout))
        except Exception as exc:
            raise self._wrap(exc) from exc
        if not self._container.streams.video:
            self._container.close()
            raise SourceError(f"source '{element}': '{uri}' has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        if self._container.duration is None and not self.live and uri_scheme(uri) not in ("", "file"):
            self.live = True

    def _wrap(self, exc: BaseException) -> Exception:
        text = str(exc)
        if isinstance(exc, (TimeoutError, PysmTimeoutError)) or "timed out" in text.lower() or "etimedout" in text.lower():
            return PysmTimeoutError(f"source '{self.element}': '{self.uri}' timed out: {text}")
        if isinstance(exc, SourceError):
            return exc
        return SourceError(f"source '{self.element}': cannot read '{self.uri}': {text}")

    def frames(self) -> Iterator[Any]:
        if self._native is not None:
            yield from self._native_frames()
            return
        from pysm._native import _core

        tb = self._stream.time_base
        rate = self._stream.average_rate or 30
        n = 0
        try:
            for packet in self._container.demux(self._stream):
                if self._closed:
                    return
                for frame in packet.decode():
                    if frame.pts is not None and tb is not None:
                        pts = int(frame.pts * tb * 1_000_000_000)
                    else:
                        pts = int(n * 1_000_000_000 / float(rate))
                    n += 1
                    yield _core.frame_from_array(frame.to_ndarray(format="nv12"), "NV12", -1, pts)
        except GeneratorExit:
            raise
        except Exception as exc:
            if self._closed:
                return
            raise self._wrap(exc) from exc

    def _native_frames(self) -> Iterator[Any]:
        dmx = self._native
        info = getattr(dmx, "info", None) or getattr(dmx, "video_info", None)
        dec = self._codec.Decoder(info, device=self.device)
        try:
            for packet in dmx:
                if self._closed:
                    return
                yield from dec.decode(packet)
            yield from dec.flush()
        except GeneratorExit:
            raise
        except Exception as exc:
            if self._closed:
                return
            raise self._wrap(exc) from exc

    def close(self) -> None:
        self._closed = True
        try:
            if self._native is not None:
                close = getattr(self._native, "close", None)
                if close:
                    close()
            else:
                self._container.close()
        except Exception:
            pass
