# imgproc: colour conversion (csrc/imgproc/color_convert_*.{cpp,cu}) and YUV packing for CPU decode.

cdef extern from "pysm/color_convert.hpp" namespace "pysm::imgproc" nogil:
    CSurface convert_color(const CSurface& src, CColorFormat format, CColorMatrix matrix, CColorRange range,
                           StreamHandle stream) except +raise_native
    CSurface pack_yuv420_cpu(const uint8_t* y, int64_t ys, const uint8_t* u, int64_t us, const uint8_t* v,
                             int64_t vs, int width, int height, int bit_depth) except +raise_native

_FORMATS = {"NV12": CColorFormat.NV12, "P016": CColorFormat.P016, "P010": CColorFormat.P016,
            "RGB": CColorFormat.RGB, "BGR": CColorFormat.BGR, "RGBA": CColorFormat.RGBA,
            "BGRA": CColorFormat.BGRA, "GRAY8": CColorFormat.GRAY8, "I420": CColorFormat.I420}
_MATRICES = {"bt601": 0, "bt470bg": 0, "smpte170m": 0, "bt709": 1, "bt2020": 2, "bt2020nc": 2,
             "bt2020_ncl": 2}
_RANGES = {"limited": 0, "tv": 0, "mpeg": 0, "full": 1, "pc": 1, "jpeg": 1}


cdef CColorFormat _format_of(object fmt) except *:
    name = getattr(fmt, "name", fmt)
    key = str(name).upper()
    if key not in _FORMATS:
        raise _errors.InvalidArgument(f"unknown colour format {fmt!r}; expected one of {sorted(_FORMATS)}")
    return <CColorFormat><int>_FORMATS[key]


cdef int _matrix_of(object m, int default) except -2:
    if m is None:
        return default
    if isinstance(m, int):
        if m not in (0, 1, 2):
            raise _errors.InvalidArgument(f"colour matrix {m} is not 0 (bt601), 1 (bt709) or 2 (bt2020)")
        return m
    key = str(m).lower().replace(".", "").replace("-", "")
    if key not in _MATRICES:
        raise _errors.InvalidArgument(f"unknown colour matrix {m!r}; expected bt601, bt709 or bt2020")
    return _MATRICES[key]


cdef int _range_of(object r, int default) except -2:
    if r is None:
        return default
    if isinstance(r, bool) or isinstance(r, int):
        return 1 if r else 0
    key = str(r).lower()
    if key not in _RANGES:
        raise _errors.InvalidArgument(f"unknown colour range {r!r}; expected 'limited' or 'full'")
    return _RANGES[key]


def convert_frame(Frame src, format, matrix=None, range=None):
    """Convert an NV12/P016 frame to RGB/BGR/RGBA/BGRA on its own device (CUDA kernel or CPU twin).

    The frame's colour matrix and range are used unless overridden. On the GPU the call returns at
    once; the result's ready event orders later consumers after the kernel.
    """
    cdef CColorFormat f = _format_of(format)
    cdef CColorMatrix m = <CColorMatrix>_matrix_of(matrix, <int>src.c.matrix)
    cdef CColorRange r = <CColorRange>_range_of(range, <int>src.c.range)
    cdef CSurface out
    with nogil:
        out = convert_color(src.c, f, m, r, NULL)
    return frame_from_native(out)


def frame_from_tensor(Tensor t, format="NV12", matrix="bt709", range="limited", int64_t pts=-1):
    """Wrap a Tensor (e.g. an NV12 ``(H*3/2, W)`` plane pair) as a Frame without copying."""
    cdef CSurface s = CSurface.from_tensor(t.c, _format_of(format))
    s.matrix = <CColorMatrix>_matrix_of(matrix, 1)
    s.range = <CColorRange>_range_of(range, 0)
    s.pts = pts
    return frame_from_native(s)


def frame_from_yuv420(y, u, v, int y_stride, int u_stride, int v_stride, int width, int height,
                      int bit_depth=8, int64_t pts=-1, matrix="bt709", range="limited"):
    """Pack 4:2:0 planes (buffer-protocol objects, strides in bytes) into a new host NV12/P016 Frame.

    ``v=None`` means ``u`` already holds interleaved CbCr. Samples wider than 8 bits are
    little-endian uint16 and are moved to the most significant bits, as NVDEC's P016 has them.
    """
    cdef const uint8_t[::1] ym = memoryview(y).cast("B")
    cdef const uint8_t[::1] um = memoryview(u).cast("B")
    cdef const uint8_t[::1] vm
    cdef const uint8_t* vp = NULL
    cdef int64_t cw = (width + 1) // 2
    cdef int64_t ch = (height + 1) // 2
    cdef int64_t bpp = 2 if bit_depth > 8 else 1
    if width <= 0 or height <= 0:
        raise _errors.InvalidArgument(f"frame size must be positive, got {width}x{height}")
    # A stride shorter than its row (or negative) would make the size checks below pass while
    # the copy reads before or past the buffer.
    if y_stride < width * bpp or u_stride < cw * bpp * (1 if v is not None else 2) or \
            (v is not None and v_stride < cw * bpp):
        raise _errors.InvalidArgument(
            f"plane strides ({y_stride}, {u_stride}, {v_stride} bytes) must hold a row of {width}x{height} "
            f"{bit_depth}-bit 4:2:0 samples")
    if ym.shape[0] < (height - 1) * y_stride + width * bpp:
        raise _errors.InvalidArgument("the luma plane is smaller than its stride and height say")
    if v is not None:
        vm = memoryview(v).cast("B")
        vp = _buffer_ptr(vm)
        if um.shape[0] < (ch - 1) * u_stride + cw * bpp or vm.shape[0] < (ch - 1) * v_stride + cw * bpp:
            raise _errors.InvalidArgument("a chroma plane is smaller than its stride and height say")
    elif um.shape[0] < (ch - 1) * u_stride + 2 * cw * bpp:
        raise _errors.InvalidArgument("the interleaved chroma plane is smaller than its stride and height say")
    cdef CSurface s
    cdef const uint8_t* yp = _buffer_ptr(ym)
    cdef const uint8_t* up = _buffer_ptr(um)
    with nogil:
        s = pack_yuv420_cpu(yp, y_stride, up, u_stride, vp, v_stride, width, height, bit_depth)
    s.pts = pts
    s.matrix = <CColorMatrix>_matrix_of(matrix, 1)
    s.range = <CColorRange>_range_of(range, 0)
    return frame_from_native(s)
