"""nvdsdynamicsrcbin: one stream that plays queued URIs one after another, driven by a
``signal.SourceManager`` (actions add-source, remove-source, terminate). Each finished URI posts
DynamicSourceMessage(source_added=False); after ``terminate`` the stream ends once the queue is
empty."""

from __future__ import annotations

import collections
import threading
from typing import Any

from pysm.errors import SourceError
from pysm.pipeline.element import SourceElement
from pysm.pipeline.items import FrameItem
from pysm.pipeline.media import VideoInput, check_uri
from pysm.pipeline.messages import DynamicSourceMessage
from pysm.pipeline.properties import Prop
from pysm.pipeline.registry import register


class DynamicSource(SourceElement):
    factory = "nvdsdynamicsrcbin"
    aliases = ("pysm_dynamicsrc",)
    src_templates = ("src", "vsrc_%u")
    PROPS = {
        "gpu-id": Prop(int, 0, "GPU that decodes", minimum=0),
        "device": Prop(str, "auto", "pysm: 'auto', 'cpu' or 'cuda'", choices=("auto", "cpu", "cuda")),
        "connect-timeout": Prop(float, 10.0, "pysm: seconds to open an input"),
        "read-timeout": Prop(float, 5.0, "pysm: seconds without data"),
    }

    def __init__(self, name: str, pipeline: Any) -> None:
        super().__init__(name, pipeline)
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._terminated = False
        self._current = -1
        self._skip_current = False
        self._next_id = 0
        self.chunk_id = -1

    def add_source(self, uri: str) -> int:
        with self._cond:
            sid = self._next_id
            self._next_id += 1
            self._queue.append((sid, uri))
            self._cond.notify_all()
        return sid

    def remove_source(self, source_id: int) -> bool:
        with self._cond:
            for entry in list(self._queue):
                if entry[0] == source_id:
                    self._queue.remove(entry)
                    return True
            if self._current == source_id:
                self._skip_current = True
                return True
        return False

    def terminate(self) -> None:
        with self._cond:
            self._terminated = True
            self._cond.notify_all()

    def produce(self) -> None:
        frame_number = 0
        while not self.stopping:
            with self._cond:
                while not self._queue and not self._terminated and not self.stopping:
                    self._cond.wait(0.1)
                if self.stopping or (not self._queue and self._terminated):
                    return
                sid, uri = self._queue.popleft()
                self._current, self._skip_current = sid, False
            self.chunk_id = sid
            inp = None
            try:
                check_uri(uri, self.name)
                inp = VideoInput(uri, device=self.props["device"], open_timeout=self.props["connect-timeout"],
                                 read_timeout=self.props["read-timeout"], element=self.name)
                for frame in inp.frames():
                    if self.stopping or self._skip_current:
                        break
                    self.emit(FrameItem(frame, frame_number, int(getattr(frame, "pts", -1)), self.name))
                    frame_number += 1
            except SourceError as exc:
                self.pipeline.report_source_error(self, exc)
            except Exception as exc:
                self.pipeline.report_source_error(self, SourceError(f"source '{self.name}': '{uri}': {exc}"))
            finally:
                if inp is not None:
                    inp.close()
            self._current = -1
            self.pipeline.post(DynamicSourceMessage(False, sid, uri=uri, origin=self.name))

    def request_end(self) -> None:
        super().request_end()
        self.terminate()


register(DynamicSource)
