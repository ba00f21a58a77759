"""Typed element properties with DeepStream's hyphenated names; wrong names or types raise
ConfigError naming the element and the property."""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable, Optional

from pysm.errors import ConfigError


class Prop:
    """One property: its Python type, default, and optional range/choices/validator."""

    __slots__ = ("type", "default", "doc", "minimum", "maximum", "choices", "validate", "live")

    def __init__(self, type_: type, default: Any, doc: str = "", *, minimum: Optional[float] = None,
                 maximum: Optional[float] = None, choices: Optional[Iterable[Any]] = None,
                 validate: Optional[Callable[[Any], Any]] = None, live: bool = True) -> None:
        self.type = type_
        self.default = default
        self.doc = doc
        self.minimum = minimum
        self.maximum = maximum
        self.choices = tuple(choices) if choices is not None else None
        self.validate = validate
        self.live = live  # may be changed while the element runs

    def coerce(self, element: str, name: str, value: Any) -> Any:
        """Convert ``value`` to this property's type or raise ConfigError."""
        t = self.type

        def bad(why: str = "") -> ConfigError:
            return ConfigError(f"element '{element}': property '{name}' expects {t.__name__}"
                               f"{why}, got {value!r} ({type(value).__name__})")

        if t is bool:
            if isinstance(value, bool):
                out = value
            elif isinstance(value, int) and value in (0, 1):
                out = bool(value)
            elif isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
                out = value.strip().lower() in ("true", "1", "yes")
            else:
                raise bad()
        elif t is int:
            if isinstance(value, bool):
                out = int(value)
            elif isinstance(value, int):
                out = value
            elif isinstance(value, float) and value.is_integer():
                out = int(value)
            elif isinstance(value, str):
                try:
                    out = int(value.strip(), 0)
                except ValueError:
                    raise bad() from None
            else:
                raise bad()
        elif t is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                out = float(value)
            elif isinstance(value, str):
                try:
                    out = float(value)
                except ValueError:
                    raise bad() from None
            else:
                raise bad()
        elif t is str:
            if isinstance(value, (str, int, float)) and not isinstance(value, bool):
                out = str(value)
            elif value is None:
                out = ""
            else:
                raise bad()
        else:  # any object (e.g. callables set from Python)
            out = value
        if self.minimum is not None and out < self.minimum:
            raise ConfigError(f"element '{element}': property '{name}' must be >= {self.minimum}, got {out}")
        if self.maximum is not None and out > self.maximum:
            raise ConfigError(f"element '{element}': property '{name}' must be <= {self.maximum}, got {out}")
        if self.choices is not None and out not in self.choices:
            raise ConfigError(f"element '{element}': property '{name}' must be one of {list(self.choices)}, got {out!r}")
        if self.validate is not None:
            out = self.validate(out)
        return out


def normalize_name(name: str) -> str:
    """Property names are hyphenated; Flow kwargs arrive with underscores."""
    return str(name).replace("_", "-")


def unknown_property(element: str, factory: str, name: str, known: Iterable[str]) -> ConfigError:
    close = difflib.get_close_matches(name, list(known), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"element '{element}' ({factory}) has no property '{name}'{hint}")
