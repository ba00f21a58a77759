"""osd value types: fields, str/bytes text, nested write-through, copies, bad input."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from pysm import osd


def test_color_fields_and_equality():
    c = osd.Color(0.1, 0.2, 0.3, 0.4)
    assert (c.r, c.g, c.b, c.a) == pytest.approx((0.1, 0.2, 0.3, 0.4))
    c.g = 0.9
    assert c.as_tuple() == pytest.approx((0.1, 0.9, 0.3, 0.4))
    assert osd.Color(1, 0, 0, 1) == osd.Color(1.0, 0.0, 0.0, 1.0)
    assert osd.Color(1, 0, 0, 1) != osd.Color(0, 1, 0, 1)
    assert osd.Color() == osd.Color(0, 0, 0, 0)
    assert "Color(" in repr(c)
    with pytest.raises(TypeError):
        c.r = "red"


def test_font_family_and_arrow_head_members():
    assert [m.name for m in osd.FontFamily] == ["Serif"]
    assert {m.name for m in osd.ArrowHead} == {"Start", "End", "Both"}


def test_font_name_size_color():
    f = osd.Font()
    assert f.name == "Serif"
    f.name = osd.FontFamily.Serif
    assert f.name == "Serif" and isinstance(f.name, str)
    f.name = "Sans"
    assert f.name == "Sans"
    f.size = 17
    assert f.size == 17
    f.color = osd.Color(0.5, 0.25, 0.125, 1.0)
    assert f.color == osd.Color(0.5, 0.25, 0.125, 1.0)
    f.color.r = 0.75  # nested values write through
    assert f.color.r == pytest.approx(0.75)
    with pytest.raises(TypeError):
        f.name = 3.5
    with pytest.raises(ValueError):
        f.name = ""
    with pytest.raises(TypeError):
        f.color = (1, 1, 1, 1)


def test_text_accepts_str_and_bytes_and_has_display_aliases():
    t = osd.Text()
    t.display_text = "Person: 3"
    assert t.display_text == "Person: 3"
    t.display_text = "Vehicle: 7".encode("ascii")
    assert t.display_text == "Vehicle: 7" and isinstance(t.display_text, str)
    t.x_offset, t.y_offset = 10, 12
    assert (t.x_offset, t.y_offset) == (10, 12)
    t.font.name = osd.FontFamily.Serif
    t.font.size = 14
    t.font.color = osd.Color(1, 1, 0, 1)
    assert t.font.size == 14 and t.font_params.size == 14
    assert t.font.color == osd.Color(1, 1, 0, 1)
    t.set_bg_color = True
    t.bg_color = osd.Color(0, 0, 0, 0.5)
    assert t.set_bg_clr is True and t.text_bg_clr == osd.Color(0, 0, 0, 0.5)
    with pytest.raises(TypeError):
        t.display_text = 42


def test_text_params_fields():
    tp = osd.TextParams("car", 3, 4)
    assert (tp.display_text, tp.x_offset, tp.y_offset) == ("car", 3, 4)
    tp.font_params = osd.Font(size=20, color=osd.Color(0, 1, 0, 1))
    assert tp.font_params.size == 20 and tp.font_params.color == osd.Color(0, 1, 0, 1)
    tp.set_bg_clr = True
    tp.text_bg_clr = osd.Color(0.2, 0.2, 0.2, 1)
    assert tp.set_bg_clr and tp.text_bg_clr == osd.Color(0.2, 0.2, 0.2, 1)
    assert not hasattr(tp, "bg_color")  # the display names belong to osd.Text


def test_rect_fields_round_trip_and_nested_colors():
    r = osd.Rect(1.5, 2.5, 30, 40, rotation_angle=5, border_width=2)
    assert (r.left, r.top, r.width, r.height) == (1.5, 2.5, 30, 40)
    assert r.rotation_angle == 5 and r.border_width == 2
    r.left, r.top, r.width, r.height = 11, 12, 13, 14
    assert (r.left, r.top, r.width, r.height) == (11, 12, 13, 14)
    r.border_color = osd.Color(0, 0, 1, 1)
    r.border_color.g = 0.5
    assert r.border_color == osd.Color(0, 0.5, 1, 1)
    assert r.has_bg_color is False
    r.has_bg_color = True
    r.bg_color = osd.Color(0.1, 0.1, 0.1, 0.3)
    assert r.has_bg_color and r.bg_color == osd.Color(0.1, 0.1, 0.1, 0.3)
    with pytest.raises(TypeError):
        r.left = "x"


def test_child_of_free_value_keeps_parent_storage_alive():
    r = osd.Rect(border_color=osd.Color(0.3, 0.4, 0.5, 0.6))
    color = r.border_color
    del r
    gc.collect()
    assert color == osd.Color(0.3, 0.4, 0.5, 0.6)
    color.r = 1.0
    assert color.r == 1.0


def test_assigning_a_value_copies_it():
    c = osd.Color(1, 0, 0, 1)
    r = osd.Rect()
    r.border_color = c
    c.r = 0.0
    assert r.border_color.r == 1.0


def test_line_arrow_circle_fields():
    line = osd.Line(1, 2, 3, 4, width=5, color=osd.Color(1, 0, 0, 1))
    assert (line.x1, line.y1, line.x2, line.y2, line.width) == (1, 2, 3, 4, 5)
    line.x2 = 99
    assert line.x2 == 99 and line.color == osd.Color(1, 0, 0, 1)

    a = osd.Arrow(5, 6, 7, 8, width=2)
    assert a.head is osd.ArrowHead.End
    a.head = osd.ArrowHead.Both
    assert a.head is osd.ArrowHead.Both
    a.color = osd.Color(0, 1, 0, 1)
    assert (a.x1, a.y1, a.x2, a.y2, a.width) == (5, 6, 7, 8, 2) and a.color.g == 1
    with pytest.raises(ValueError):
        a.head = 7

    c = osd.Circle(50, 60, 10, color=osd.Color(0, 0, 1, 1), width=3)
    assert (c.xc, c.yc, c.radius, c.width) == (50, 60, 10, 3)
    assert c.has_bg_color is False
    c.bg_color = osd.Color(1, 1, 1, 0.5)
    c.has_bg_color = True
    assert c.has_bg_color and c.bg_color.a == 0.5


def test_mask_array_round_trip_is_a_copy():
    rng = np.random.default_rng(1)
    arr = rng.random((7, 5), dtype=np.float32)
    m = osd.Mask(arr, threshold=0.3)
    assert m.threshold == pytest.approx(0.3)
    assert (m.height, m.width) == (7, 5)
    out = m.mask_array
    assert out.dtype == np.float32 and out.shape == (7, 5)
    np.testing.assert_array_equal(out, arr)
    arr[0, 0] = 42.0  # the mask holds its own copy
    out[1, 1] = -1.0
    assert m.mask_array[0, 0] != 42.0 and m.mask_array[1, 1] != -1.0
    m.mask_array = np.ones((2, 3), dtype=np.float64)  # converted to float32
    np.testing.assert_array_equal(m.mask_array, np.ones((2, 3), np.float32))
    assert osd.Mask().mask_array.shape == (0, 0)
    with pytest.raises(ValueError):
        m.mask_array = np.zeros(4)


def test_reprs_do_not_fail():
    for v in (osd.Color(), osd.Font(), osd.Text(), osd.TextParams(), osd.Rect(), osd.Line(), osd.Arrow(),
              osd.Circle(), osd.Mask()):
        assert type(v).__name__ in repr(v)
