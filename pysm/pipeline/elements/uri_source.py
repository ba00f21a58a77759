"""nvurisrcbin / uridecodebin: one URI (file, RTSP, HTTP) demuxed and decoded on its own thread.

The source supervises itself: connect and read timeouts, ``file-loop`` for files, live detection,
and for live streams reconnection with exponential backoff (``rtsp-reconnect-interval`` seconds,
doubling up to ``rtsp-reconnect-max-interval``, at most ``rtsp-reconnect-attempts`` times; -1 =
forever). Its failures are reported as per-source messages; it then ends its own stream, so the
mux and the other sources go on.
"""

from __future__ import annotations

import time
from typing import Any, Optional

from pysm.errors import NotSupportedYet, SourceError
from pysm.pipeline.element import SourceElement
from pysm.pipeline.items import FrameItem
from pysm.pipeline.media import VideoInput, check_uri, is_live_uri
from pysm.pipeline.messages import SourceStateMessage, WarningMessage
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register


def _smart_record(v: int) -> int:
    if v:
        raise NotSupportedYet("nvurisrcbin: smart record ('smart-record') is not supported by pysm yet")
    return v


URI_SOURCE_PROPS: dict[str, Prop] = {
    "uri": Prop(str, "", "file://, rtsp://, http(s):// or a path", live=False),
    "gpu-id": Prop(int, 0, "GPU that decodes", minimum=0),
    "device": Prop(str, "auto", "pysm: 'auto' (NVDEC when available), 'cpu' or 'cuda'",
                   choices=("auto", "cpu", "cuda", "gpu")),
    "file-loop": Prop(bool, False, "restart files at their end"),
    "num-extra-surfaces": Prop(int, 1, "accepted for compatibility"),
    "cudadec-memtype": Prop(int, 0, "accepted for compatibility"),
    "drop-frame-interval": Prop(int, 0, "keep one frame in N (0/1: all)", minimum=0),
    "type": Prop(int, 0, "0 auto, 1 uri, 2 rtsp (accepted)"),
    "dec-skip-frames": Prop(int, 0, "accepted for compatibility"),
    "select-rtp-protocol": Prop(int, 4, "4 = RTSP over TCP (default here), 7 = auto/UDP"),
    "latency": Prop(int, 100, "jitter buffer latency in ms (accepted)"),
    "rtsp-reconnect-interval": Prop(int, 0, "seconds before reconnecting a dead live source (0: never)", minimum=0),
    "init-rtsp-reconnect-interval": Prop(int, 0, "seconds between attempts at the first connection (0: use rtsp-reconnect-interval)", minimum=0),
    "rtsp-reconnect-attempts": Prop(int, -1, "reconnection attempts (-1: unlimited)", minimum=-1),
    "rtsp-reconnect-max-interval": Prop(float, 30.0, "pysm: cap of the exponential backoff (s)", minimum=0),
    "connect-timeout": Prop(float, 10.0, "pysm: seconds to open the input", minimum=0.1),
    "read-timeout": Prop(float, 5.0, "pysm: seconds without data before the input counts as dead", minimum=0.1),
    "udp-buffer-size": Prop(int, 524288, "accepted for compatibility"),
    "drop-on-latency": Prop(bool, True, "accepted for compatibility"),
    "low-latency-mode": Prop(bool, False, "decoder low-latency mode"),
    "source-id": Prop(int, -1, "source id on the batch (-1: the mux pad index)", minimum=-1),
    "num-buffers": Prop(int, -1, "pysm: end after this many frames (-1: no limit)", minimum=-1),
    "disable-audio": Prop(bool, True, "pysm decodes video only"),
    "disable-passthrough": Prop(bool, False, "accepted for compatibility"),
    "smart-record": Prop(int, 0, "smart record (not supported yet)", validate=_smart_record),
    "smart-rec-dir-path": Prop(str, "", "accepted"),
    "smart-rec-file-prefix": Prop(str, "Smart_Record", "accepted"),
    "smart-rec-cache": Prop(int, 20, "accepted"),
    "smart-rec-container": Prop(int, 0, "accepted"),
    "smart-rec-mode": Prop(int, 0, "accepted"),
    "smart-rec-default-duration": Prop(int, 20, "accepted"),
}


class UriSource(SourceElement):
    """One URI as one video stream on pad ``vsrc_0``."""

    factory = "nvurisrcbin"
    aliases = ("uridecodebin", "pysm_urisrc", "urisourcebin", "nvurisrcbin")
    PROPS = URI_SOURCE_PROPS
    src_templates = ("vsrc_%u", "src")

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self._input: Optional[VideoInput] = None
        self.frames_out = 0
        self.sensor_id = "N/A"
        self.sensor_name = "N/A"

    def _device(self) -> str:
        d = self.props["device"]
        return "cuda" if d == "gpu" else d

    def _post_state(self, state: str, attempt: int = 0, delay: float = 0.0, live: bool = False) -> None:
        self.pipeline.post(SourceStateMessage(self.name, self.message_source_id(), state, self.props["uri"],
                                              attempt, delay, live))

    def _sleep(self, seconds: float) -> bool:
        """Sleeps unless stopped; False when the source should stop."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.stopping:
                return False
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return not self.stopping

    def produce(self) -> None:
        uri = self.props["uri"]
        try:
            check_uri(uri, self.name)
        except SourceError as exc:
            self._post_state("error")
            self.pipeline.report_source_error(self, exc)
            return
        live = is_live_uri(uri)
        interval = float(self.props["rtsp-reconnect-interval"])
        init_interval = float(self.props["init-rtsp-reconnect-interval"]) or interval
        max_attempts = self.props["rtsp-reconnect-attempts"]
        cap = max(float(self.props["rtsp-reconnect-max-interval"]), interval)
        attempt = 0
        frame_number = 0
        connected_once = False
        skip = max(1, self.props["drop-frame-interval"])
        while not self.stopping:
            self._post_state("connecting" if attempt == 0 else "reconnecting", attempt, live=live)
            error: Optional[BaseException] = None
            try:
                self._input = VideoInput(uri, device=self._device(), gpu_id=self.props["gpu-id"], open_timeout=self.props["connect-timeout"],
                                         read_timeout=self.props["read-timeout"],
                                         rtsp_tcp=self.props["select-rtp-protocol"] == 4, element=self.name,
                                         loop=self.props["file-loop"])
                live = self._input.live
                connected_once = True
                attempt = 0
                self._post_state("playing", live=live)
                n_in = 0
                for frame in self._input.frames():
                    if self.stopping:
                        break
                    n_in += 1
                    if skip > 1 and (n_in - 1) % skip:
                        continue
                    item = FrameItem(frame, frame_number, int(getattr(frame, "pts", -1)), self.name, self.props["source-id"], live)
                    frame_number += 1
                    self.frames_out += 1
                    self.emit(item)
                    if 0 <= self.props["num-buffers"] <= frame_number:
                        return
            except Exception as exc:  # open/read failure of this source only
                error = exc
            finally:
                if self._input is not None:
                    self._input.close()
                    self._input = None
            if self.stopping:
                return
            if error is None and not live:
                return  # end of file (with file-loop the reader loops: it ends when a pass shows nothing)
            # A live stream that ended or failed, or a file that failed.
            retry_interval = interval if connected_once else init_interval
            if not live or retry_interval <= 0:
                if error is not None:
                    self._post_state("error", live=live)
                    self.pipeline.report_source_error(self, error)
                elif is_live_uri(uri):
                    # A camera stream has no end of its own: say that the server closed it (as
                    # rtspsrc warns), so that a lost camera does not look like a finished file.
                    self._post_state("eos", live=live)
                    self.pipeline.post(WarningMessage(
                        self.name, f"source '{self.name}': the live stream '{uri}' ended: the camera or "
                                   f"server closed it (set rtsp-reconnect-interval to reconnect)"))
                return
            if max_attempts >= 0 and attempt >= max_attempts:
                self._post_state("error", attempt, live=live)
                self.pipeline.report_source_error(
                    self, SourceError(f"source '{self.name}': Reconnection attempts exceeded for '{uri}' "
                                      f"after {attempt} attempt(s); last error: {error or 'stream ended'}"))
                return
            delay = min(cap, retry_interval * (2 ** attempt))
            attempt += 1
            self._post_state("reconnecting", attempt, delay, live=live)
            if not self._sleep(delay):
                return

    def abort(self) -> None:
        inp = self._input
        if inp is not None:
            # A flag only: the source's own thread closes the input once its decode call returns
            # (closing the decoder under a running decode could park an NVDEC session in use).
            inp._closed = True


register(UriSource)
