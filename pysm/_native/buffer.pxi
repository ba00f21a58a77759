# Buffer: one batch of frames plus its BatchMetadata (pyservicemaker's Buffer).

cdef class Buffer:
    """A batch: `batch_size` frames and one BatchMetadata.

    * ``Buffer()`` is empty (batch_size 0); returned by a BufferProvider it means end of stream.
    * ``Buffer(data)`` (a list of ints 0..255, bytes, bytearray, or any C-contiguous buffer such as
      a NumPy array) holds a copy of those bytes in one host surface: ``batch_size`` is 1 and
      ``extract(0)`` returns them as a uint8 tensor of shape (1, len(data)). The appsrc that
      receives it reinterprets the bytes with its caps (format, width, height).

    Metadata views taken from a Buffer (``batch_meta`` and everything reached from it) stay
    valid while the batch lives; once the Buffer and every native holder are gone, using them
    raises ``ReferenceError`` (``pysm.errors.ExpiredViewError``).
    """
    cdef shared_ptr[CBuffer] c

    def __cinit__(self, *args, **kwargs):
        self.c = make_shared[CBuffer]()

    def __init__(self, data=None):
        if data is None:
            self.c.get().eos = True
            return
        if isinstance(data, (list, tuple)):
            try:
                data = bytes(data)
            except (ValueError, TypeError) as e:
                raise _errors.InvalidArgument(f"Buffer(data): a list must hold ints in 0..255 ({e})") from None
        try:
            mv = memoryview(data)
        except TypeError:
            raise TypeError(f"Buffer(data) takes a list of ints, bytes or a buffer object, not {type(data).__name__}") from None
        if not mv.c_contiguous:
            mv = memoryview(mv.tobytes())
        if mv.ndim != 1 or mv.format != "B":
            mv = mv.cast("B")
        cdef const unsigned char[::1] view = mv
        cdef size_t n = view.shape[0]
        if n == 0:
            raise _errors.InvalidArgument("Buffer(data): data is empty; use Buffer() for end of stream")
        cdef shared_ptr[CBuffer] out
        with nogil:
            out = CBuffer.from_bytes(&view[0], n)
        self.c = out

    @property
    def batch_size(self):
        """Number of frames (0 for an empty/EOS buffer)."""
        return self.c.get().batch_size()

    @property
    def batch_meta(self):
        """The BatchMetadata of this batch (a view; see the class docstring on lifetime)."""
        return batch_metadata_from_native(self.c.get().meta)

    @property
    def timestamp(self):
        """Presentation timestamp in ns; 2**64-1 (GStreamer's CLOCK_TIME_NONE) when unknown."""
        cdef int64_t pts = self.c.get().pts
        return 0xFFFFFFFFFFFFFFFF if pts < 0 else pts

    @timestamp.setter
    def timestamp(self, v):
        v = int(v)
        self.c.get().pts = -1 if v < 0 or v >= 0x7FFFFFFFFFFFFFFF else v

    @property
    def eos(self):
        """True for an empty buffer that marks end of stream."""
        return bool(self.c.get().eos) or self.c.get().batch_size() == 0

    def extract(self, int batch_id):
        """Frame `batch_id` as a Tensor (zero-copy; keeps the frame's memory alive).
        IndexError when batch_id is out of range."""
        return tensor_from_native(self.c.get().extract(batch_id))

    def get_chunk_id(self, int batch_id):
        """Chunk id of frame `batch_id` (pysm sources are not chunked: 0)."""
        if batch_id < 0 or batch_id >= self.c.get().batch_size():
            raise _errors.OutOfRangeError(
                f"Buffer.get_chunk_id({batch_id}): batch has {self.c.get().batch_size()} frame(s)")
        return 0

    def __repr__(self):
        return f"Buffer(batch_size={self.batch_size}, timestamp={self.timestamp})"


cdef Buffer buffer_from_native(shared_ptr[CBuffer] b):
    cdef Buffer out = Buffer.__new__(Buffer)
    out.c = b
    return out


def _buffer_from_tensors(tensors, int format, pts=None):
    """Internal (pipeline, mux, tests): a Buffer batching `tensors` as frame surfaces of colour
    format `format` (a ColorFormat value), zero-copy, with one FrameMetadata per frame
    (batch_id = pad_index = index, source and pipeline size = the frame's size, buffer_pts =
    pts[i] when `pts` is given). The caller then sets source ids and frame numbers."""
    cdef vector[CSurface] surfaces
    cdef CSurface s
    tensors = list(tensors)
    if pts is not None:
        pts = [int(p) for p in pts]
        if len(pts) != len(tensors):
            raise _errors.InvalidArgument(f"pts has {len(pts)} entries for {len(tensors)} tensors")
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"tensors[{i}] is a {type(t).__name__}, not a pysm Tensor")
        s = CSurface.from_tensor((<Tensor>t).c, <CColorFormat>format)
        if pts is not None:
            s.pts = pts[i]
        surfaces.push_back(s)
    return buffer_from_native(CBuffer.from_surfaces(surfaces))
