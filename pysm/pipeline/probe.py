"""User operators and the objects that attach them: Probe (BufferOperator, BatchMetadataOperator,
BufferObserver), Receiver (BufferRetriever on an appsink) and Feeder (BufferProvider on an appsrc).
Each runs once per buffer; an exception becomes an error message and stops the pipeline."""

from __future__ import annotations

from typing import Any, Optional

from pysm.errors import ConfigError


class BufferOperator:
    """Override ``handle_buffer(buffer) -> bool``; returning False drops the buffer."""

    def __init__(self) -> None:
        self._properties: dict[str, Any] = {}

    def handle_buffer(self, buffer: Any) -> bool:
        return True

    def get_property(self, name: str) -> Any:
        return getattr(self, "_properties", {}).get(name)


class BatchMetadataOperator:
    """Override ``handle_metadata(batch_meta)``; the buffer always passes."""

    def __init__(self) -> None:
        self._properties: dict[str, Any] = {}

    def handle_metadata(self, batch_meta: Any) -> None:
        pass

    def get_property(self, name: str) -> Any:
        return getattr(self, "_properties", {}).get(name)


class BufferObserver:
    """Override ``handle_buffer(buffer)``: read-only, the buffer always passes."""

    def __init__(self) -> None:
        self._properties: dict[str, Any] = {}

    def handle_buffer(self, buffer: Any) -> None:
        pass

    def get_property(self, name: str) -> Any:
        return getattr(self, "_properties", {}).get(name)


class Probe:
    """``Probe(name, operator)``: runs ``operator`` on every buffer leaving a node's pad."""

    def __init__(self, name: str, operator: Any = None) -> None:
        if operator is not None and not isinstance(operator, (BufferOperator, BatchMetadataOperator, BufferObserver)) \
                and not (hasattr(operator, "handle_buffer") or hasattr(operator, "handle_metadata")):
            raise ConfigError(f"Probe '{name}': the operator must be a BufferOperator, BatchMetadataOperator "
                              f"or BufferObserver, got {type(operator).__name__}")
        self.name = name
        self.operator = operator

    def set(self, properties: dict) -> "Probe":
        """Configure a factory-made probe (its declared parameters)."""
        op = self.operator
        setter = getattr(op, "set", None)
        if setter is not None and not isinstance(op, (BufferOperator, BatchMetadataOperator, BufferObserver)):
            setter(properties)
        elif hasattr(op, "configure"):
            op.configure(properties)
        else:
            props = getattr(op, "_properties", None)
            if props is None:
                raise ConfigError(f"Probe '{self.name}' takes no properties")
            props.update({str(k).replace("_", "-"): v for k, v in properties.items()})
        return self

    def __call__(self, buffer: Any) -> bool:
        op = self.operator
        if isinstance(op, BatchMetadataOperator) or (not hasattr(op, "handle_buffer") and hasattr(op, "handle_metadata")):
            op.handle_metadata(buffer.batch_meta)
            return True
        if isinstance(op, BufferObserver):
            op.handle_buffer(buffer)
            return True
        result = op.handle_buffer(buffer)
        return result is not False

    def __repr__(self) -> str:
        return f"Probe({self.name!r}, {type(self.operator).__name__})"


class BufferRetriever:
    """Override ``consume(buffer) -> int``; the buffer is released when it returns (clone what
    you keep)."""

    def consume(self, buffer: Any) -> int:
        return 0


class BufferProvider:
    """Override ``generate(size) -> Buffer``; an empty ``Buffer()`` ends the stream. For
    ``Flow.inject`` set ``format``, ``width``, ``height``, ``framerate`` and ``device``."""

    format: str = "RGB"
    width: int = 0
    height: int = 0
    framerate: int = 30
    device: str = "cpu"

    def generate(self, size: int) -> Any:
        from pysm._native._core import Buffer

        return Buffer()


class Receiver:
    """``Receiver(name, retriever)``: attach to an appsink (tips ``"new-sample"``)."""

    def __init__(self, name: str, retriever: BufferRetriever) -> None:
        if not hasattr(retriever, "consume"):
            raise ConfigError(f"Receiver '{name}': the retriever must have consume(buffer)")
        self.name = name
        self.retriever = retriever


class Feeder:
    """``Feeder(name, provider)``: attach to an appsrc (tips ``"need-data/enough-data"``)."""

    def __init__(self, name: str, provider: BufferProvider) -> None:
        if not hasattr(provider, "generate"):
            raise ConfigError(f"Feeder '{name}': the provider must have generate(size)")
        self.name = name
        self.provider = provider


def probe_target(what: Any) -> Optional[str]:
    if isinstance(what, Probe):
        return "probe"
    if isinstance(what, Receiver):
        return "receiver"
    if isinstance(what, Feeder):
        return "feeder"
    return None
