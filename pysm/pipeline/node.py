"""Node: the handle ``pipeline[name]`` returns (pyservicemaker's Node)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Union

from pysm.errors import ConfigError

if TYPE_CHECKING:
    from pysm.pipeline.pipeline import Pipeline


class Node:
    """A named element of a pipeline: ``set``/``get`` properties, ``link``, ``attach``."""

    def __init__(self, pipeline: "Pipeline", name: str) -> None:
        self._pipeline = pipeline
        self.name = name

    @property
    def element(self) -> Any:
        return self._pipeline.element(self.name)

    @property
    def factory(self) -> str:
        return self.element.factory

    def set(self, properties: Union[dict, list, str], value: Any = None) -> "Node":
        """``set({"key": value, ...})``, ``set([dict, ...])`` or ``set("key", value)``."""
        el = self.element
        if isinstance(properties, str):
            el.set_property(properties, value)
        elif isinstance(properties, dict):
            for k, v in properties.items():
                el.set_property(k, v)
        elif isinstance(properties, (list, tuple)):
            for d in properties:
                self.set(d)
        else:
            raise ConfigError(f"element '{self.name}': set() takes a dict, a list of dicts or (key, value)")
        return self

    def get(self, key: str) -> Any:
        return self.element.get_property(key)

    def link(self, other: Union["Node", str], hints: Optional[tuple] = None) -> "Node":
        dst = other.name if isinstance(other, Node) else str(other)
        if hints:
            self._pipeline.link((self.name, dst), hints)
        else:
            self._pipeline.link(self.name, dst)
        return self._pipeline[dst]

    def attach(self, what: Any, tips: str = "") -> "Node":
        self._pipeline.attach(self.name, what, "", tips)
        return self

    def find(self, name: str) -> Any:
        return self._pipeline.find(name)

    # nvmultiurisrcbin / nvdsdynamicsrcbin
    def add_source(self, uri: str, *args: Any, **kwargs: Any) -> int:
        return self._pipeline.add_source(uri, *args, element=self.name, **kwargs) \
            if hasattr(self.element, "sources") else self.element.add_source(uri)

    def remove_source(self, source: Any) -> bool:
        return self.element.remove_source(source)

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.element.factory})"
