# osd: drawing primitives (pyservicemaker's `osd` submodule) as value types.
#
# Every value object reaches its native struct through a weak_ptr, so one class serves both uses:
# * a free value (`osd.Rect(left=1)`) owns its struct (`_own`, a shared_ptr) and points at it;
# * a bound value (`obj.rect_params`) points into a metadata node through an aliasing pointer
#   that shares the node's ownership, so `obj.rect_params.left = 10` writes through to the
#   object, and using it after the node is gone raises ExpiredViewError (a ReferenceError).
# Nested values (`rect.border_color`, `text.font.color`) are bound the same way to their parent;
# a child of a free value keeps the parent's storage alive.
# Assigning a value (`obj.rect_params = osd.Rect(...)`, `rect.border_color = osd.Color(...)`)
# copies it.

from libcpp.memory cimport dynamic_pointer_cast
from libc.string cimport memcpy
import enum as _enum

cdef extern from "<memory>" namespace "std" nogil:
    cdef cppclass WeakPtr "std::weak_ptr"[T]:
        WeakPtr()
        WeakPtr(const shared_ptr[T]&)
        shared_ptr[T] lock()
        cbool expired()
        void reset()

cdef extern from *:
    """
    #include <memory>
    // A shared_ptr to a member `p` of the object `owner` manages (shares its ownership).
    template <class T, class U>
    static inline std::shared_ptr<T> pysm_alias(const std::shared_ptr<U>& owner, T* p) {
      return std::shared_ptr<T>(owner, p);
    }
    """
    shared_ptr[T] pysm_alias[T, U](const shared_ptr[U]& owner, T* p)

cdef extern from "pysm/meta.hpp" namespace "pysm" nogil:
    cdef cppclass CColor "pysm::Color":
        double r, g, b, a
    cdef cppclass CFontParams "pysm::FontParams":
        string name
        int size
        CColor color
    cdef cppclass CRectParams "pysm::RectParams":
        float left, top, width, height, rotation_angle
        int border_width
        CColor border_color
        cbool has_bg_color
        CColor bg_color
    cdef cppclass CTextParams "pysm::TextParams":
        string display_text
        int x_offset, y_offset
        CFontParams font
        cbool set_bg_clr
        CColor text_bg_clr
    cdef cppclass CLineParams "pysm::LineParams":
        int x1, y1, x2, y2, width
        CColor color
    cdef enum class CArrowHead "pysm::ArrowHead"(int):
        pass
    cdef cppclass CArrowParams "pysm::ArrowParams":
        int x1, y1, x2, y2, width
        CArrowHead head
        CColor color
    cdef cppclass CCircleParams "pysm::CircleParams":
        int xc, yc, radius, width
        CColor color
        cbool has_bg_color
        CColor bg_color
    cdef cppclass CMaskParams "pysm::MaskParams":
        vector[float] data
        int width, height
        float threshold


cdef object _np_mod = None

cdef object _numpy():
    """NumPy, imported on first use so that `import pysm` stays cheap."""
    global _np_mod
    if _np_mod is None:
        import numpy
        _np_mod = numpy
    return _np_mod


cdef object _expired(str what):
    return _errors.ExpiredViewError(
        f"{what} was used after its metadata was released (the Buffer is gone or the node was "
        f"removed); copy the values you need while the buffer is alive")


cdef string _text_arg(object v, str what) except *:
    """str or bytes -> UTF-8 std::string (pyservicemaker samples pass bytes)."""
    if isinstance(v, bytes):
        return <bytes>v
    if isinstance(v, str):
        return (<str>v).encode("utf-8")
    raise TypeError(f"{what} must be str or bytes, not {type(v).__name__}")


class FontFamily(_enum.IntEnum):
    """Font families of on-screen text (DeepStream offers only Serif)."""
    Serif = 0


_FONT_NAMES = {FontFamily.Serif: "Serif"}


class ArrowHead(_enum.IntEnum):
    """Where an arrow has its head."""
    Start = 0
    End = 1
    Both = 2


# ---- Color ---------------------------------------------------------------------------------

cdef class Color:
    """An RGBA colour, each channel a float in 0..1."""
    cdef shared_ptr[CColor] _own
    cdef WeakPtr[CColor] _ref

    def __init__(self, double r=0.0, double g=0.0, double b=0.0, double a=0.0):
        self._own = make_shared[CColor]()
        self._ref = WeakPtr[CColor](self._own)
        cdef CColor* c = self._own.get()
        c.r, c.g, c.b, c.a = r, g, b, a

    cdef shared_ptr[CColor] _p(self) except *:
        cdef shared_ptr[CColor] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.Color")
        return p

    @property
    def r(self):
        return self._p().get().r
    @r.setter
    def r(self, double v):
        self._p().get().r = v

    @property
    def g(self):
        return self._p().get().g
    @g.setter
    def g(self, double v):
        self._p().get().g = v

    @property
    def b(self):
        return self._p().get().b
    @b.setter
    def b(self, double v):
        self._p().get().b = v

    @property
    def a(self):
        return self._p().get().a
    @a.setter
    def a(self, double v):
        self._p().get().a = v

    def as_tuple(self):
        """(r, g, b, a)"""
        cdef shared_ptr[CColor] p = self._p()
        return (p.get().r, p.get().g, p.get().b, p.get().a)

    def __eq__(self, other):
        if not isinstance(other, Color):
            return NotImplemented
        return self.as_tuple() == (<Color>other).as_tuple()

    def __repr__(self):
        return "Color(r=%g, g=%g, b=%g, a=%g)" % self.as_tuple()


cdef Color _color_view(shared_ptr[CColor] p, cbool keep):
    cdef Color out = Color.__new__(Color)
    out._ref = WeakPtr[CColor](p)
    if keep:
        out._own = p
    return out


cdef CColor _color_value(object v, str what) except *:
    if not isinstance(v, Color):
        raise TypeError(f"{what} must be an osd.Color, not {type(v).__name__}")
    return (<Color>v)._p().get()[0]


# ---- Font ----------------------------------------------------------------------------------

cdef class Font:
    """Font of a text: `name` (set with a FontFamily or a name; reads as str), `size`, `color`."""
    cdef shared_ptr[CFontParams] _own
    cdef WeakPtr[CFontParams] _ref

    def __init__(self, name=FontFamily.Serif, int size=12, color=None):
        self._own = make_shared[CFontParams]()
        self._ref = WeakPtr[CFontParams](self._own)
        self.name = name
        self.size = size
        if color is not None:
            self.color = color

    cdef shared_ptr[CFontParams] _p(self) except *:
        cdef shared_ptr[CFontParams] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.Font")
        return p

    @property
    def name(self):
        return self._p().get().name.decode("utf-8", "replace")
    @name.setter
    def name(self, v):
        cdef shared_ptr[CFontParams] p = self._p()
        if isinstance(v, FontFamily):
            p.get().name = _FONT_NAMES[v].encode()
        elif isinstance(v, (str, bytes)):
            if not v:
                raise ValueError("Font.name must not be empty; use osd.FontFamily.Serif")
            p.get().name = _text_arg(v, "Font.name")
        else:
            raise TypeError(f"Font.name takes an osd.FontFamily or a font name, not {type(v).__name__}")

    @property
    def size(self):
        return self._p().get().size
    @size.setter
    def size(self, int v):
        self._p().get().size = v

    @property
    def color(self):
        cdef shared_ptr[CFontParams] p = self._p()
        return _color_view(pysm_alias[CColor, CFontParams](p, &p.get().color), self._own.get() != NULL)
    @color.setter
    def color(self, v):
        self._p().get().color = _color_value(v, "Font.color")

    def __repr__(self):
        return f"Font(name={self.name!r}, size={self.size}, color={self.color!r})"


cdef Font _font_view(shared_ptr[CFontParams] p, cbool keep):
    cdef Font out = Font.__new__(Font)
    out._ref = WeakPtr[CFontParams](p)
    if keep:
        out._own = p
    return out


# ---- TextParams / Text -----------------------------------------------------------------------

cdef class TextParams:
    """Text of an object (ObjectMetadata.text_params): display_text, x_offset, y_offset,
    font_params, set_bg_clr, text_bg_clr."""
    cdef shared_ptr[CTextParams] _own
    cdef WeakPtr[CTextParams] _ref

    def __init__(self, display_text="", int x_offset=0, int y_offset=0, font=None, bg_color=None):
        self._own = make_shared[CTextParams]()
        self._ref = WeakPtr[CTextParams](self._own)
        self.display_text = display_text
        self.x_offset = x_offset
        self.y_offset = y_offset
        if font is not None:
            self.font_params = font
        if bg_color is not None:
            self.text_bg_clr = bg_color
            self.set_bg_clr = True

    cdef shared_ptr[CTextParams] _p(self) except *:
        cdef shared_ptr[CTextParams] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.TextParams")
        return p

    @property
    def display_text(self):
        """The text; set with str or bytes, reads as str."""
        return self._p().get().display_text.decode("utf-8", "replace")
    @display_text.setter
    def display_text(self, v):
        self._p().get().display_text = _text_arg(v, "display_text")

    @property
    def x_offset(self):
        return self._p().get().x_offset
    @x_offset.setter
    def x_offset(self, int v):
        self._p().get().x_offset = v

    @property
    def y_offset(self):
        return self._p().get().y_offset
    @y_offset.setter
    def y_offset(self, int v):
        self._p().get().y_offset = v

    @property
    def font_params(self):
        cdef shared_ptr[CTextParams] p = self._p()
        return _font_view(pysm_alias[CFontParams, CTextParams](p, &p.get().font), self._own.get() != NULL)
    @font_params.setter
    def font_params(self, v):
        if not isinstance(v, Font):
            raise TypeError(f"font must be an osd.Font, not {type(v).__name__}")
        self._p().get().font = (<Font>v)._p().get()[0]

    @property
    def set_bg_clr(self):
        return bool(self._p().get().set_bg_clr)
    @set_bg_clr.setter
    def set_bg_clr(self, v):
        self._p().get().set_bg_clr = bool(v)

    @property
    def text_bg_clr(self):
        cdef shared_ptr[CTextParams] p = self._p()
        return _color_view(pysm_alias[CColor, CTextParams](p, &p.get().text_bg_clr), self._own.get() != NULL)
    @text_bg_clr.setter
    def text_bg_clr(self, v):
        self._p().get().text_bg_clr = _color_value(v, "text_bg_clr")

    def __repr__(self):
        return (f"{type(self).__name__}(display_text={self.display_text!r}, x_offset={self.x_offset}, "
                f"y_offset={self.y_offset}, font={self.font_params!r}, set_bg_clr={self.set_bg_clr}, "
                f"bg_color={self.text_bg_clr!r})")


cdef class Text(TextParams):
    """Text for DisplayMetadata.add_text: display_text, x_offset, y_offset, font, set_bg_color,
    bg_color (the same data as TextParams under DeepStream's display names)."""

    @property
    def font(self):
        return self.font_params
    @font.setter
    def font(self, v):
        self.font_params = v

    @property
    def set_bg_color(self):
        return self.set_bg_clr
    @set_bg_color.setter
    def set_bg_color(self, v):
        self.set_bg_clr = v

    @property
    def bg_color(self):
        return self.text_bg_clr
    @bg_color.setter
    def bg_color(self, v):
        self.text_bg_clr = v


cdef TextParams _text_params_view(shared_ptr[CTextParams] p, cbool keep, cbool as_text):
    cdef TextParams out = (Text.__new__(Text) if as_text else TextParams.__new__(TextParams))
    out._ref = WeakPtr[CTextParams](p)
    if keep:
        out._own = p
    return out


cdef CTextParams _text_value(object v, str what) except *:
    if not isinstance(v, TextParams):
        raise TypeError(f"{what} must be an osd.Text or osd.TextParams, not {type(v).__name__}")
    return (<TextParams>v)._p().get()[0]


# ---- Rect ----------------------------------------------------------------------------------

cdef class Rect:
    """A rectangle: left, top, width, height, rotation_angle, border_width, border_color,
    has_bg_color, bg_color."""
    cdef shared_ptr[CRectParams] _own
    cdef WeakPtr[CRectParams] _ref

    def __init__(self, float left=0, float top=0, float width=0, float height=0, *,
                 float rotation_angle=0, int border_width=3, border_color=None, bg_color=None):
        self._own = make_shared[CRectParams]()
        self._ref = WeakPtr[CRectParams](self._own)
        cdef CRectParams* r = self._own.get()
        r.left, r.top, r.width, r.height = left, top, width, height
        r.rotation_angle = rotation_angle
        r.border_width = border_width
        if border_color is not None:
            r.border_color = _color_value(border_color, "Rect.border_color")
        if bg_color is not None:
            r.bg_color = _color_value(bg_color, "Rect.bg_color")
            r.has_bg_color = True

    cdef shared_ptr[CRectParams] _p(self) except *:
        cdef shared_ptr[CRectParams] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.Rect")
        return p

    @property
    def left(self):
        return self._p().get().left
    @left.setter
    def left(self, float v):
        self._p().get().left = v

    @property
    def top(self):
        return self._p().get().top
    @top.setter
    def top(self, float v):
        self._p().get().top = v

    @property
    def width(self):
        return self._p().get().width
    @width.setter
    def width(self, float v):
        self._p().get().width = v

    @property
    def height(self):
        return self._p().get().height
    @height.setter
    def height(self, float v):
        self._p().get().height = v

    @property
    def rotation_angle(self):
        return self._p().get().rotation_angle
    @rotation_angle.setter
    def rotation_angle(self, float v):
        self._p().get().rotation_angle = v

    @property
    def border_width(self):
        return self._p().get().border_width
    @border_width.setter
    def border_width(self, int v):
        self._p().get().border_width = v

    @property
    def border_color(self):
        cdef shared_ptr[CRectParams] p = self._p()
        return _color_view(pysm_alias[CColor, CRectParams](p, &p.get().border_color), self._own.get() != NULL)
    @border_color.setter
    def border_color(self, v):
        self._p().get().border_color = _color_value(v, "Rect.border_color")

    @property
    def has_bg_color(self):
        return bool(self._p().get().has_bg_color)
    @has_bg_color.setter
    def has_bg_color(self, v):
        self._p().get().has_bg_color = bool(v)

    @property
    def bg_color(self):
        cdef shared_ptr[CRectParams] p = self._p()
        return _color_view(pysm_alias[CColor, CRectParams](p, &p.get().bg_color), self._own.get() != NULL)
    @bg_color.setter
    def bg_color(self, v):
        self._p().get().bg_color = _color_value(v, "Rect.bg_color")

    def __repr__(self):
        return (f"Rect(left={self.left:g}, top={self.top:g}, width={self.width:g}, height={self.height:g}, "
                f"rotation_angle={self.rotation_angle:g}, border_width={self.border_width}, "
                f"border_color={self.border_color!r}, has_bg_color={self.has_bg_color}, bg_color={self.bg_color!r})")


cdef Rect _rect_view(shared_ptr[CRectParams] p, cbool keep):
    cdef Rect out = Rect.__new__(Rect)
    out._ref = WeakPtr[CRectParams](p)
    if keep:
        out._own = p
    return out


cdef CRectParams _rect_value(object v, str what) except *:
    if not isinstance(v, Rect):
        raise TypeError(f"{what} must be an osd.Rect, not {type(v).__name__}")
    return (<Rect>v)._p().get()[0]


# ---- Line / Arrow ----------------------------------------------------------------------------

cdef class Line:
    """A line from (x1, y1) to (x2, y2): width, color."""
    cdef shared_ptr[CLineParams] _own
    cdef WeakPtr[CLineParams] _ref

    def __init__(self, int x1=0, int y1=0, int x2=0, int y2=0, int width=1, color=None):
        self._own = make_shared[CLineParams]()
        self._ref = WeakPtr[CLineParams](self._own)
        cdef CLineParams* l = self._own.get()
        l.x1, l.y1, l.x2, l.y2, l.width = x1, y1, x2, y2, width
        if color is not None:
            l.color = _color_value(color, "Line.color")

    cdef shared_ptr[CLineParams] _p(self) except *:
        cdef shared_ptr[CLineParams] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.Line")
        return p

    @property
    def x1(self):
        return self._p().get().x1
    @x1.setter
    def x1(self, int v):
        self._p().get().x1 = v

    @property
    def y1(self):
        return self._p().get().y1
    @y1.setter
    def y1(self, int v):
        self._p().get().y1 = v

    @property
    def x2(self):
        return self._p().get().x2
    @x2.setter
    def x2(self, int v):
        self._p().get().x2 = v

    @property
    def y2(self):
        return self._p().get().y2
    @y2.setter
    def y2(self, int v):
        self._p().get().y2 = v

    @property
    def width(self):
        return self._p().get().width
    @width.setter
    def width(self, int v):
        self._p().get().width = v

    @property
    def color(self):
        cdef shared_ptr[CLineParams] p = self._p()
        return _color_view(pysm_alias[CColor, CLineParams](p, &p.get().color), self._own.get() != NULL)
    @color.setter
    def color(self, v):
        self._p().get().color = _color_value(v, "Line.color")

    def __repr__(self):
        return (f"Line(x1={self.x1}, y1={self.y1}, x2={self.x2}, y2={self.y2}, width={self.width}, "
                f"color={self.color!r})")


cdef Line _line_view(shared_ptr[CLineParams] p, cbool keep):
    cdef Line out = Line.__new__(Line)
    out._ref = WeakPtr[CLineParams](p)
    if keep:
        out._own = p
    return out


cdef class Arrow:
    """An arrow from (x1, y1) to (x2, y2): width, color, head (osd.ArrowHead)."""
    cdef shared_ptr[CArrowParams] _own
    cdef WeakPtr[CArrowParams] _ref

    def __init__(self, int x1=0, int y1=0, int x2=0, int y2=0, int width=1, color=None, head=ArrowHead.End):
        self._own = make_shared[CArrowParams]()
        self._ref = WeakPtr[CArrowParams](self._own)
        cdef CArrowParams* a = self._own.get()
        a.x1, a.y1, a.x2, a.y2, a.width = x1, y1, x2, y2, width
        if color is not None:
            a.color = _color_value(color, "Arrow.color")
        self.head = head

    cdef shared_ptr[CArrowParams] _p(self) except *:
        cdef shared_ptr[CArrowParams] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.Arrow")
        return p

    @property
    def x1(self):
        return self._p().get().x1
    @x1.setter
    def x1(self, int v):
        self._p().get().x1 = v

    @property
    def y1(self):
        return self._p().get().y1
    @y1.setter
    def y1(self, int v):
        self._p().get().y1 = v

    @property
    def x2(self):
        return self._p().get().x2
    @x2.setter
    def x2(self, int v):
        self._p().get().x2 = v

    @property
    def y2(self):
        return self._p().get().y2
    @y2.setter
    def y2(self, int v):
        self._p().get().y2 = v

    @property
    def width(self):
        return self._p().get().width
    @width.setter
    def width(self, int v):
        self._p().get().width = v

    @property
    def color(self):
        cdef shared_ptr[CArrowParams] p = self._p()
        return _color_view(pysm_alias[CColor, CArrowParams](p, &p.get().color), self._own.get() != NULL)
    @color.setter
    def color(self, v):
        self._p().get().color = _color_value(v, "Arrow.color")

    @property
    def head(self):
        return ArrowHead(<int>self._p().get().head)
    @head.setter
    def head(self, v):
        self._p().get().head = <CArrowHead><int>ArrowHead(v)

    def __repr__(self):
        return (f"Arrow(x1={self.x1}, y1={self.y1}, x2={self.x2}, y2={self.y2}, width={self.width}, "
                f"color={self.color!r}, head={self.head!r})")


cdef Arrow _arrow_view(shared_ptr[CArrowParams] p, cbool keep):
    cdef Arrow out = Arrow.__new__(Arrow)
    out._ref = WeakPtr[CArrowParams](p)
    if keep:
        out._own = p
    return out


# ---- Circle --------------------------------------------------------------------------------

cdef class Circle:
    """A circle centred at (xc, yc): radius, color, width, has_bg_color, bg_color."""
    cdef shared_ptr[CCircleParams] _own
    cdef WeakPtr[CCircleParams] _ref

    def __init__(self, int xc=0, int yc=0, int radius=0, color=None, bg_color=None, int width=1):
        self._own = make_shared[CCircleParams]()
        self._ref = WeakPtr[CCircleParams](self._own)
        cdef CCircleParams* c = self._own.get()
        c.xc, c.yc, c.radius, c.width = xc, yc, radius, width
        if color is not None:
            c.color = _color_value(color, "Circle.color")
        if bg_color is not None:
            c.bg_color = _color_value(bg_color, "Circle.bg_color")
            c.has_bg_color = True

    cdef shared_ptr[CCircleParams] _p(self) except *:
        cdef shared_ptr[CCircleParams] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.Circle")
        return p

    @property
    def xc(self):
        return self._p().get().xc
    @xc.setter
    def xc(self, int v):
        self._p().get().xc = v

    @property
    def yc(self):
        return self._p().get().yc
    @yc.setter
    def yc(self, int v):
        self._p().get().yc = v

    @property
    def radius(self):
        return self._p().get().radius
    @radius.setter
    def radius(self, int v):
        self._p().get().radius = v

    @property
    def width(self):
        return self._p().get().width
    @width.setter
    def width(self, int v):
        self._p().get().width = v

    @property
    def color(self):
        cdef shared_ptr[CCircleParams] p = self._p()
        return _color_view(pysm_alias[CColor, CCircleParams](p, &p.get().color), self._own.get() != NULL)
    @color.setter
    def color(self, v):
        self._p().get().color = _color_value(v, "Circle.color")

    @property
    def has_bg_color(self):
        return bool(self._p().get().has_bg_color)
    @has_bg_color.setter
    def has_bg_color(self, v):
        self._p().get().has_bg_color = bool(v)

    @property
    def bg_color(self):
        cdef shared_ptr[CCircleParams] p = self._p()
        return _color_view(pysm_alias[CColor, CCircleParams](p, &p.get().bg_color), self._own.get() != NULL)
    @bg_color.setter
    def bg_color(self, v):
        self._p().get().bg_color = _color_value(v, "Circle.bg_color")

    def __repr__(self):
        return (f"Circle(xc={self.xc}, yc={self.yc}, radius={self.radius}, width={self.width}, "
                f"color={self.color!r}, has_bg_color={self.has_bg_color}, bg_color={self.bg_color!r})")


cdef Circle _circle_view(shared_ptr[CCircleParams] p, cbool keep):
    cdef Circle out = Circle.__new__(Circle)
    out._ref = WeakPtr[CCircleParams](p)
    if keep:
        out._own = p
    return out


# ---- Mask ----------------------------------------------------------------------------------

cdef class Mask:
    """An instance mask, local to its object's box: `threshold` and `mask_array` (float32 HxW).

    Reading `mask_array` returns a copy, and assigning one copies it in (DeepStream wraps the
    caller's array without a copy, which dangles once the array is freed)."""
    cdef shared_ptr[CMaskParams] _own
    cdef WeakPtr[CMaskParams] _ref

    def __init__(self, mask_array=None, float threshold=0.5):
        self._own = make_shared[CMaskParams]()
        self._ref = WeakPtr[CMaskParams](self._own)
        self._own.get().threshold = threshold
        if mask_array is not None:
            self.mask_array = mask_array

    cdef shared_ptr[CMaskParams] _p(self) except *:
        cdef shared_ptr[CMaskParams] p = self._ref.lock()
        if p.get() == NULL:
            raise _expired("osd.Mask")
        return p

    @property
    def threshold(self):
        return self._p().get().threshold
    @threshold.setter
    def threshold(self, float v):
        self._p().get().threshold = v

    @property
    def width(self):
        return self._p().get().width

    @property
    def height(self):
        return self._p().get().height

    @property
    def mask_array(self):
        np = _numpy()
        cdef shared_ptr[CMaskParams] p = self._p()
        cdef CMaskParams* m = p.get()
        cdef Py_ssize_t h = max(m.height, 0), w = max(m.width, 0)
        if <size_t>(h * w) > m.data.size():
            h = w = 0
        out = np.empty((h, w), dtype=np.float32)
        cdef float[:, ::1] mv = out
        if h * w:
            memcpy(&mv[0, 0], m.data.data(), h * w * sizeof(float))
        return out
    @mask_array.setter
    def mask_array(self, v):
        np = _numpy()
        arr = np.ascontiguousarray(v, dtype=np.float32)
        if arr.ndim != 2:
            raise _errors.InvalidArgument(f"mask_array must be 2-D (height, width), got shape {arr.shape}")
        cdef float[:, ::1] mv = arr
        cdef shared_ptr[CMaskParams] p = self._p()
        cdef CMaskParams* m = p.get()
        cdef Py_ssize_t n = arr.shape[0] * arr.shape[1]
        m.data.resize(n)
        if n:
            memcpy(m.data.data(), &mv[0, 0], n * sizeof(float))
        m.height = arr.shape[0]
        m.width = arr.shape[1]

    def __repr__(self):
        return f"Mask(height={self.height}, width={self.width}, threshold={self.threshold:g})"


cdef Mask _mask_view(shared_ptr[CMaskParams] p, cbool keep):
    cdef Mask out = Mask.__new__(Mask)
    out._ref = WeakPtr[CMaskParams](p)
    if keep:
        out._own = p
    return out
