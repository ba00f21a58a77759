"""Messages a pipeline posts to its ``on_message`` callback (pyservicemaker's bus messages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from pysm.pipeline.state import PipelineState


class PipelineMessage:
    """Base class of every message posted on a pipeline's bus."""

    origin: str = ""

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "traceback")
        return f"{type(self).__name__}({fields})"


class EOSMessage(PipelineMessage):
    """The whole pipeline reached end of stream (every sink saw the end of its inputs)."""

    def __init__(self, origin: str = "") -> None:
        self.origin = origin


class StateTransitionMessage(PipelineMessage):
    """An element (``origin``) or the pipeline itself changed state."""

    def __init__(self, old_state: PipelineState, new_state: PipelineState, origin: str) -> None:
        self.old_state = old_state
        self.new_state = new_state
        self.origin = origin


class DynamicSourceMessage(PipelineMessage):
    """A source was added to or removed from a multi-source element (``source_added=False`` is
    also posted when a dynamic source completes)."""

    def __init__(self, source_added: bool, source_id: int, sensor_id: str = "N/A",
                 sensor_name: str = "N/A", uri: str = "N/A", origin: str = "") -> None:
        self.source_added = bool(source_added)
        self.source_id = int(source_id)
        self.sensor_id = sensor_id or "N/A"
        self.sensor_name = sensor_name or "N/A"
        self.uri = uri or "N/A"
        self.origin = origin


class ErrorMessage(PipelineMessage):
    """An error. ``source_id`` is set when it concerns one source only (the rest of the pipeline
    keeps running); ``fatal`` when the pipeline stops because of it. ``traceback`` holds the
    formatted traceback of an exception raised by user code (probe, provider, retriever)."""

    def __init__(self, origin: str, error: BaseException, *, source_id: Optional[int] = None,
                 fatal: bool = False, traceback: str = "") -> None:
        self.origin = origin
        self.error = error
        self.message = str(error)
        self.source_id = source_id
        self.fatal = fatal
        self.traceback = traceback


class WarningMessage(PipelineMessage):
    """A non-fatal problem (for instance a display sink without a display)."""

    def __init__(self, origin: str, message: str) -> None:
        self.origin = origin
        self.message = message


class SourceStateMessage(PipelineMessage):
    """A source's own state: ``connecting``, ``playing``, ``reconnecting``, ``error``, ``eos``.
    ``attempt`` counts reconnection attempts; ``delay`` is the backoff before the next one."""

    def __init__(self, origin: str, source_id: int, state: str, uri: str = "", attempt: int = 0,
                 delay: float = 0.0, live: bool = False) -> None:
        self.origin = origin
        self.source_id = source_id
        self.state = state
        self.uri = uri
        self.attempt = attempt
        self.delay = delay
        self.live = live


class StreamEOSMessage(PipelineMessage):
    """One source reached its end; the pipeline goes on with the others."""

    def __init__(self, origin: str, source_id: int, uri: str = "") -> None:
        self.origin = origin
        self.source_id = source_id
        self.uri = uri


__all__ = ["PipelineMessage", "EOSMessage", "StateTransitionMessage", "DynamicSourceMessage",
           "ErrorMessage", "WarningMessage", "SourceStateMessage", "StreamEOSMessage"]
