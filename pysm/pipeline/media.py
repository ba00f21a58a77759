"""Opening a video URI for a source element: ``pysm.codec`` demux + decode (NVDEC on the GPU,
frames stay on the device; CPU decode otherwise) with connect/read timeouts, as an iterator of
Frames."""

from __future__ import annotations

import os
import urllib.parse
from typing import Any, Iterator

from pysm.errors import SourceError, TimeoutError as PysmTimeoutError


def uri_scheme(uri: str) -> str:
    return urllib.parse.urlparse(uri).scheme.lower()


def is_live_uri(uri: str) -> bool:
    from pysm.codec.demux import LIVE_SCHEMES  # one list, the demuxer's (imported on use, as the codec is)

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


def _codec_module() -> Any:
    from pysm import codec  # the native demuxer/decoder

    return codec


class VideoInput:
    """An open video input (a :class:`pysm.codec.VideoReader`): ``frames()`` yields decoded
    Frames; ``live`` tells whether it is a live stream (no end, no looping). With ``loop`` a file
    restarts at its end inside the reader, with rising timestamps and, on NVDEC, without draining
    the decoder between passes."""

    def __init__(self, uri: str, *, device: str = "auto", gpu_id: int = 0, open_timeout: float = 10.0,
                 read_timeout: float = 5.0, rtsp_tcp: bool = True, element: str = "", loop: bool = False) -> None:
        self.uri = uri
        self.element = element
        # pysm.codec device strings: "auto", "cpu", "cuda:N"
        self.device = f"cuda:{gpu_id}" if device in ("cuda", "gpu") else ("auto" if device == "auto" else "cpu")
        self._closed = False
        opts = {} if rtsp_tcp or not uri_scheme(uri).startswith("rtsp") else {"rtsp_transport": "udp"}
        try:
            # Live sources decode with low latency (frames in decode order, no reordering delay) and
            # one packet per call, so each frame leaves as soon as it is decoded; files several
            # packets per native call (one GIL release for all of them).
            self._reader = _codec_module().VideoReader(
                to_location(uri), self.device, loop=loop, low_latency=None, open_timeout=open_timeout,
                read_timeout=read_timeout, options=opts or None)
        except Exception as exc:
            raise self._wrap(exc) from exc
        self.live = bool(self._reader.info.is_live)

    def _wrap(self, exc: BaseException) -> Exception:
        text = str(exc)
        if isinstance(exc, (TimeoutError, PysmTimeoutError)) or "timed out" in text.lower() or "etimedout" in text.lower():
            return PysmTimeoutError(f"source '{self.element}': '{self.uri}' timed out: {text}")
        if isinstance(exc, SourceError):
            return exc
        return SourceError(f"source '{self.element}': cannot read '{self.uri}': {text}")

    def frames(self) -> Iterator[Any]:
        try:
            for frame in self._reader:
                if self._closed:
                    return
                yield frame
        except GeneratorExit:
            raise
        except Exception as exc:
            if self._closed:
                return
            raise self._wrap(exc) from exc

    def close(self) -> None:
        self._closed = True
        try:
            self._reader.close()
        except Exception:
            pass
