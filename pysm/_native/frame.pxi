# Frame: one decoded picture (a native pysm::Surface) with its timestamp and error flag.

cdef class Frame:
    """One decoded frame at native resolution, in host or device memory."""
    cdef CSurface c

    @property
    def width(self):
        return self.c.width

    @property
    def height(self):
        return self.c.height

    @property
    def pts(self):
        """Presentation timestamp in nanoseconds (-1 when unknown)."""
        return self.c.pts

    @property
    def format(self):
        return color_format_name(self.c.format).decode()

    @property
    def error(self):
        """True when the decoder reported corrupt or missing data for this frame."""
        return bool(self.c.error)

    @property
    def tensor(self):
        """The frame as a Tensor (zero-copy)."""
        return tensor_from_native(self.c.tensor())


cdef Frame frame_from_native(const CSurface& s):
    cdef Frame out = Frame.__new__(Frame)
    out.c = s
    return out
