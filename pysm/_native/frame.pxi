# Frame: one decoded picture (a native pysm::Surface) with its timestamp and error flag.

from cpython.buffer cimport PyBUF_WRITABLE

_MATRIX_NAMES = {0: "bt601", 1: "bt709", 2: "bt2020"}
_RANGE_NAMES = {0: "limited", 1: "full"}


cdef class _HostTensorBuffer:
    """Exposes a host CTensor through the buffer protocol (for NumPy), keeping its memory alive."""
    cdef CTensor t
    cdef Py_ssize_t shape[8]
    cdef Py_ssize_t strides[8]
    cdef bytes fmt

    def __getbuffer__(self, Py_buffer* buf, int flags):
        cdef int nd = self.t.ndim()
        cdef size_t item = self.t.dtype().itemsize()
        cdef Py_ssize_t span = 0
        cdef int i
        if nd > 8:
            raise ValueError("tensor has too many dimensions for the buffer protocol")
        for i in range(nd):
            self.shape[i] = self.t.shape()[i]
            self.strides[i] = self.t.strides()[i] * item
            if self.shape[i] > 0:
                span += (self.shape[i] - 1) * self.strides[i]
        buf.buf = self.t.data()
        buf.obj = self
        buf.len = self.t.numel() * item
        buf.readonly = 0
        buf.itemsize = item
        buf.format = self.fmt
        buf.ndim = nd
        buf.shape = self.shape
        buf.strides = self.strides
        buf.suboffsets = NULL
        buf.internal = NULL

    def __releasebuffer__(self, Py_buffer* buf):
        pass


cdef object host_tensor_to_numpy(const CTensor& t):
    """A NumPy array viewing a host tensor (zero-copy; the array keeps the memory alive)."""
    import numpy as np
    cdef _HostTensorBuffer b = _HostTensorBuffer.__new__(_HostTensorBuffer)
    cdef CDType dt = t.dtype()
    b.t = t
    if dt.code == 1 and dt.bits == 8:
        b.fmt = b"B"
    elif dt.code == 1 and dt.bits == 16:
        b.fmt = b"H"
    elif dt.code == 2 and dt.bits == 32:
        b.fmt = b"f"
    elif dt.code == 0 and dt.bits == 32:
        b.fmt = b"i"
    else:
        raise _errors.InvalidArgument(f"no NumPy view for dtype {dt.str().decode()}")
    return np.asarray(b)


cdef CTensor host_copy(const CTensor& t) except *:
    """The tensor itself when host-resident, else a host copy (waits for the copy)."""
    cdef CDevice cpu
    cdef CTensor out
    if not t.device().is_cuda():
        with nogil:
            t.synchronize()
        return t
    cpu.type = CDeviceType.CPU
    cpu.id = 0
    with nogil:
        out = t.to(cpu, NULL)
    return out


cdef class Frame:
    """One decoded frame at native resolution, in host or device memory.

    ``tensor`` is a zero-copy view (NV12: one ``(H*3/2, W)`` uint8 plane pair with the row pitch as
    stride; P016: the same in uint16; RGB/BGR: ``(H, W, 3)``). ``to("RGB")`` converts colour with the
    frame's own matrix and range; ``numpy()`` gives a host array.
    """
    cdef CSurface c

    @property
    def width(self):
        return self.c.width

    @property
    def height(self):
        return self.c.height

    @property
    def pitch(self):
        """Bytes per row of the first plane."""
        return self.c.pitch

    @property
    def pts(self):
        """Presentation timestamp in nanoseconds (-1 when unknown)."""
        return self.c.pts

    @pts.setter
    def pts(self, int64_t value):
        self.c.pts = value

    @property
    def format(self):
        return color_format_name(self.c.format).decode()

    @property
    def error(self):
        """True when the frame may be damaged: the decoder reported corrupt or missing data for it,
        or for a picture it was predicted from since the last key frame (damage propagates to
        every frame that references a damaged one until the stream restarts)."""
        return bool(self.c.error)

    @property
    def device(self):
        """``"cpu"`` or ``"cuda:N"``."""
        if self.c.device.is_cuda():
            return f"cuda:{self.c.device.id}"
        return "cpu"

    @property
    def matrix(self):
        """Colour matrix of the YUV samples: ``"bt601"``, ``"bt709"`` or ``"bt2020"``."""
        return _MATRIX_NAMES.get(<int>self.c.matrix, "bt709")

    @property
    def range(self):
        """Sample range: ``"limited"`` (16-235) or ``"full"`` (0-255)."""
        return _RANGE_NAMES.get(<int>self.c.range, "limited")

    @property
    def tensor(self):
        """The frame as a Tensor (zero-copy)."""
        return tensor_from_native(self.c.tensor())

    def _set_error(self, bint value):
        self.c.error = value

    def synchronize(self):
        """Block the host until the frame's pixels are written (no-op for host frames)."""
        cdef shared_ptr[CEvent] ev = self.c.ready
        if ev:
            with nogil:
                ev.get().synchronize()

    def cuda(self, int device=0):
        """A copy of the frame in the memory of GPU ``device`` (same format, pts and colour)."""
        return self._copy_to(CDeviceType.CUDA, device)

    def cpu(self):
        """The frame in host memory: itself when already there, else a copy."""
        if not self.c.device.is_cuda():
            return self
        return self._copy_to(CDeviceType.CPU, 0)

    cdef Frame _copy_to(self, CDeviceType kind, int index):
        cdef CDevice dev
        cdef CTensor t = self.c.tensor()
        cdef CTensor moved
        cdef CSurface s
        dev.type = kind
        dev.id = index
        with nogil:
            moved = t.to(dev, NULL)
        s = CSurface.from_tensor(moved, self.c.format)
        s.pts = self.c.pts
        s.matrix = self.c.matrix
        s.range = self.c.range
        s.error = self.c.error
        return frame_from_native(s)

    def numpy(self):
        """The pixels as a NumPy array on the host: zero-copy for host frames, a copy otherwise."""
        cdef CTensor t = self.c.tensor()
        return host_tensor_to_numpy(host_copy(t))

    def to(self, format, matrix=None, range=None):
        """Convert to ``"RGB"``, ``"BGR"``, ``"RGBA"`` or ``"BGRA"`` on the frame's device.

        ``matrix``/``range`` override the frame's colour description (e.g. ``"bt601"``, ``"full"``).
        """
        return convert_frame(self, format, matrix, range)

    def __repr__(self):
        flag = " error" if self.c.error else ""
        return (f"<pysm.Frame {self.format} {self.c.width}x{self.c.height} pts={self.c.pts} "
                f"on {self.device}{flag}>")


cdef Frame frame_from_native(const CSurface& s):
    cdef Frame out = Frame.__new__(Frame)
    out.c = s
    return out
