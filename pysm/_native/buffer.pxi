# Buffer: one batch of frames plus its BatchMetadata (pyservicemaker's Buffer).

cdef class Buffer:
    """A batch: `batch_size` frames and one BatchMetadata."""
    cdef shared_ptr[CBuffer] c

    def __cinit__(self):
        self.c = make_shared[CBuffer]()

    @property
    def batch_size(self):
        return self.c.get().batch_size()

    def extract(self, int batch_id):
        """Frame `batch_id` as a Tensor (zero-copy)."""
        return tensor_from_native(self.c.get().extract(batch_id))


cdef Buffer buffer_from_native(shared_ptr[CBuffer] b):
    cdef Buffer out = Buffer.__new__(Buffer)
    out.c = b
    return out
