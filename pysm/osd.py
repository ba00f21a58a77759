"""On-screen-display primitives (pyservicemaker's ``osd`` submodule).

Value types: :class:`Color`, :class:`Font` (with :class:`FontFamily`), :class:`Text` (for
``DisplayMetadata.add_text``), :class:`TextParams` (``ObjectMetadata.text_params``), :class:`Rect`,
:class:`Line`, :class:`Arrow` (with :class:`ArrowHead`), :class:`Circle` and :class:`Mask`.

Semantics of nested values: a value read from metadata or from another value is *bound* to it,
so ``obj.rect_params.left = 10`` and ``rect.border_color.r = 1.0`` write through; assigning a
value (``obj.rect_params = osd.Rect(...)``) copies it. A bound value used after its metadata is
released raises ``ReferenceError`` (:class:`pysm.errors.ExpiredViewError`).

Example::

    from pysm import osd
    text = osd.Text()
    text.display_text = "Person: 3".encode("ascii")   # str or bytes
    text.x_offset, text.y_offset = 10, 12
    text.font.name = osd.FontFamily.Serif
    text.font.size = 12
    text.font.color = osd.Color(1.0, 1.0, 1.0, 1.0)
    text.set_bg_color = True
    text.bg_color = osd.Color(0.0, 0.0, 0.0, 1.0)
    display_meta.add_text(text)
"""

from __future__ import annotations

from pysm._native._core import (
    Arrow,
    ArrowHead,
    Circle,
    Color,
    Font,
    FontFamily,
    Line,
    Mask,
    Rect,
    Text,
    TextParams,
)

__all__ = [
    "Color", "FontFamily", "Font", "Text", "TextParams", "Rect", "Line", "Arrow", "ArrowHead",
    "Circle", "Mask",
]
