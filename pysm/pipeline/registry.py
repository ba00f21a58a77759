"""Element factories by name: pysm's names and DeepStream's as aliases."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from pysm.errors import ConfigError

if TYPE_CHECKING:
    from pysm.pipeline.element import Element

_FACTORIES: dict[str, type] = {}


def register(cls: type) -> type:
    """Register an Element subclass under its ``factory`` name and ``aliases``."""
    for n in (cls.factory, *cls.aliases):
        _FACTORIES[n] = cls
    return cls


def factory_names() -> list[str]:
    _load()
    return sorted(_FACTORIES)


def lookup(factory: str, element_name: str = "") -> type:
    _load()
    cls = _FACTORIES.get(factory)
    if cls is None:
        close = difflib.get_close_matches(factory, list(_FACTORIES), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"unknown element factory '{factory}' for element '{element_name}'{hint} "
                          f"(pysm knows: {', '.join(sorted(_FACTORIES))})")
    return cls


_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import pysm.pipeline.elements  # noqa: F401  (registers every built-in element)
