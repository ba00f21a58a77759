"""RTSP against a real server on 127.0.0.1 (GStreamer's RTSP server, run by the system Python in a
subprocess): frames arrive, the server is killed mid-stream and restarted, and the source
reconnects (exponential backoff) and frames resume. Skips without the Debian packages
gir1.2-gst-rtsp-server-1.0, python3-gi and gstreamer1.0-plugins-{base,good,bad,ugly}."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import pysm
from pysm import Pipeline
from pysm._native import _core
from pysm.pipeline import ErrorMessage, SourceStateMessage, WarningMessage

SYSTEM_PYTHON = "/usr/bin/python3"

SERVER = r'''
import sys
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
port = sys.argv[1]
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120,framerate=30/1 "
                   "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=300 "
                   "! rtph264pay name=pay0 pt=96 config-interval=1 )")
factory.set_shared(True)
server.get_mount_points().add_factory("/test", factory)
if server.attach(None) == 0:
    print("ATTACH-FAILED", flush=True)
    sys.exit(1)
print("READY", flush=True)
GLib.MainLoop().run()
'''


def _have_gst_rtsp() -> bool:
    if not os.path.exists(SYSTEM_PYTHON):
        return False
    code = ("import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
            "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
            "import sys; sys.exit(0 if all(Gst.ElementFactory.find(n) for n in "
            "('videotestsrc','x264enc','rtph264pay')) else 1)")
    return subprocess.run([SYSTEM_PYTHON, "-c", code], capture_output=True, timeout=60).returncode == 0


pytestmark = pytest.mark.skipif(not _have_gst_rtsp(), reason="GStreamer RTSP server packages are not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtspServer:
    def __init__(self, script: str, port: int) -> None:
        self.script, self.port, self.proc = script, port, None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.proc = subprocess.Popen([SYSTEM_PYTHON, self.script, str(self.port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=env)
        line = self.proc.stdout.readline().strip()
        if line != "READY":
            self.kill()
            raise RuntimeError(f"RTSP server did not start: {line!r}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def rtsp_server(tmp_path):
    script = tmp_path / "rtsp_server.py"
    script.write_text(SERVER)
    srv = RtspServer(str(script), _free_port())
    srv.start()
    yield srv
    srv.kill()


def _wait(cond, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_rtsp_reconnects_after_server_restart(rtsp_server):
    frames = []
    lock = threading.Lock()

    class R(pysm.BufferRetriever):
        def consume(self, buffer):
            with lock:
                frames.extend(i[3] for i in _core.batch_frame_info(buffer))
            return 1

    msgs = []
    uri = f"rtsp://127.0.0.1:{rtsp_server.port}/test"
    p = Pipeline("rtsp")
    p.add("nvurisrcbin", "cam", {"uri": uri, "rtsp-reconnect-interval": 1, "rtsp-reconnect-attempts": -1,
                                 "connect-timeout": 3, "read-timeout": 2})
    p.add("videotestsrc", "other", {"is-live": True, "framerate": 30, "width": 32, "height": 32})
    p.add("nvstreammux", "mux", {"batch-size": 2, "batched-push-timeout": 40000, "live-source": True})
    p.add("appsink", "sink")
    p.add("fakesink", "sink2")
    p.add("nvstreamdemux", "demux")
    p.link(("cam", "mux"), ("vsrc_%u", "sink_%u")).link(("other", "mux"), ("", "sink_%u"))
    p.link("mux", "demux").link(("demux", "sink"), ("src_0", "")).link(("demux", "sink2"), ("src_1", ""))
    p.attach("sink", pysm.Receiver("r", R()))
    p.start(msgs.append)
    try:
        assert _wait(lambda: len(frames) >= 15, 20), "no RTSP frames"
        rtsp_server.kill()
        time.sleep(0.5)
        other_before = p["sink2"].element.buffers
        assert _wait(lambda: any(isinstance(m, SourceStateMessage) and m.state == "reconnecting" and m.attempt >= 1
                                 for m in msgs), 10), "the source did not notice the dead server"
        # The dead camera does not stall the other source of the batch.
        time.sleep(1.0)
        assert p["sink2"].element.buffers > other_before + 10
        with lock:
            n = len(frames)
        rtsp_server.start()
        assert _wait(lambda: len(frames) >= n + 15, 30), "frames did not resume after the restart"
        with lock:
            nums = list(frames)
        assert nums == sorted(nums) and len(set(nums)) == len(nums)  # numbering continues
        assert p.state == pysm.PipelineState.PLAYING
    finally:
        t = time.monotonic()
        p.stop(timeout=4)
        p.wait(10)
        assert time.monotonic() - t < 8
    assert not [m for m in msgs if isinstance(m, ErrorMessage) and m.fatal]


def test_rtsp_reconnect_attempts_exhausted(tmp_path):
    port = _free_port()  # nothing listens there
    msgs = []
    p = Pipeline("dead")
    p.add("nvurisrcbin", "cam", {"uri": f"rtsp://127.0.0.1:{port}/none", "rtsp-reconnect-interval": 1,
                                 "init-rtsp-reconnect-interval": 0, "rtsp-reconnect-attempts": 2,
                                 "rtsp-reconnect-max-interval": 1, "connect-timeout": 1, "read-timeout": 1})
    p.add("nvstreammux", "mux", {"batch-size": 1, "batched-push-timeout": 40000}).add("fakesink", "sink")
    p.link(("cam", "mux"), ("vsrc_%u", "sink_%u")).link("mux", "sink")
    t = time.monotonic()
    p.start(msgs.append).wait(20)
    assert time.monotonic() - t < 15
    errs = [m for m in msgs if isinstance(m, ErrorMessage)]
    assert len(errs) == 1 and "Reconnection attempts exceeded" in errs[0].message and not errs[0].fatal
    attempts = [m.attempt for m in msgs if isinstance(m, SourceStateMessage) and m.state == "reconnecting"
                and m.delay > 0]
    assert attempts == [1, 2]


def test_a_frozen_camera_times_out(rtsp_server):
    # FFmpeg's RTSP demuxer hands out what its reorder queue held when the interrupt cuts a read,
    # so a frozen camera is reported after one to two read timeouts (Demuxer's read_timeout doc).
    import signal

    from pysm import errors
    from pysm.codec import VideoReader

    reader = VideoReader(f"rtsp://127.0.0.1:{rtsp_server.port}/test", "cpu", read_timeout=2, open_timeout=10)
    it = iter(reader)
    for _ in range(10):
        next(it)
    rtsp_server.proc.send_signal(signal.SIGSTOP)
    t = time.monotonic()
    try:
        with pytest.raises(errors.SourceError, match="timed out"):
            for _ in it:
                pass
        waited = time.monotonic() - t
    finally:
        rtsp_server.proc.send_signal(signal.SIGCONT)
        reader.close()
    assert 1.5 < waited < 5.0, waited


def test_a_killed_camera_is_reported(rtsp_server):
    # The server going away ended the source like a finished file: no message said it was lost.
    # Now a warning, as GStreamer's rtspsrc gives (an error where the read itself failed).
    p = Pipeline("killed")
    p.add("nvurisrcbin", "cam", {"uri": f"rtsp://127.0.0.1:{rtsp_server.port}/test", "read-timeout": 3})
    p.add("fakesink", "sink").link(("cam", "sink"), ("vsrc_%u", ""))
    msgs = []
    p.start(msgs.append)
    assert _wait(lambda: any(isinstance(m, SourceStateMessage) and m.state == "playing" for m in msgs), 20)
    time.sleep(0.5)
    rtsp_server.kill()
    p.wait(20)
    # FFmpeg sees the end of the TCP stream (a read error instead would be an ErrorMessage).
    errs = [m for m in msgs if isinstance(m, ErrorMessage)]
    warned = [m for m in msgs if isinstance(m, WarningMessage) and m.origin == "cam"]
    assert not errs and len(warned) == 1 and "ended" in warned[0].message, msgs
    assert any(isinstance(m, SourceStateMessage) and m.state == "eos" for m in msgs)
