"""pyservicemaker's ``signal`` submodule: Emitter and SourceManager (runtime source control of
an ``nvdsdynamicsrcbin`` or ``nvmultiurisrcbin``)."""

from __future__ import annotations

from typing import Any, Optional

from pysm.errors import ConfigError


class Emitter:
    """Binds named actions to elements: ``attach(action, node)``."""

    ACTIONS: tuple[str, ...] = ()

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._targets: dict[str, list[Any]] = {}

    def attach(self, action: str, node: Any) -> "Emitter":
        if self.ACTIONS and action not in self.ACTIONS:
            raise ConfigError(f"{type(self).__name__} '{self.name}' has no action '{action}' "
                              f"(actions: {', '.join(self.ACTIONS)})")
        element = getattr(node, "element", node)
        self._targets.setdefault(action, []).append(element)
        return self

    def _target(self, action: str) -> Optional[Any]:
        t = self._targets.get(action)
        return t[0] if t else None


class SourceManager(Emitter):
    """Adds and removes sources while the pipeline runs. ``add_source(uri) -> id`` (-1 on
    failure), ``remove_source(id)``, ``terminate()`` (end of stream once queued sources finish)."""

    ACTIONS = ("add-source", "remove-source", "terminate")

    def __init__(self, name: str = "source_manager") -> None:
        super().__init__(name)
        self._pending: list[str] = []

    def add_source(self, uri: str) -> int:
        el = self._target("add-source")
        if el is None:
            self._pending.append(uri)  # before Flow.capture wires it: replayed on attach
            return len(self._pending) - 1
        try:
            return int(el.add_source(uri))
        except Exception:
            return -1

    def remove_source(self, source_id: int) -> bool:
        el = self._target("remove-source")
        return bool(el.remove_source(source_id)) if el is not None else False

    def terminate(self) -> None:
        el = self._target("terminate")
        if el is not None:
            term = getattr(el, "terminate", None)
            (term or el.request_end)()

    def attach(self, action: str, node: Any) -> "SourceManager":
        super().attach(action, node)
        if action == "add-source" and self._pending:
            pending, self._pending = self._pending, []
            for uri in pending:
                self.add_source(uri)
        return self


__all__ = ["Emitter", "SourceManager"]
