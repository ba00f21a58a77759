# Tensor: Python view of a native pysm::Tensor (zero-copy exchange type; DLPack 1.0).

cdef class Tensor:
    """A zero-copy view of host or device memory, exchanged through DLPack."""
    cdef CTensor c

    @property
    def shape(self):
        return tuple(self.c.shape())

    @property
    def strides(self):
        return tuple(self.c.strides())

    @property
    def layout(self):
        return self.c.layout().decode()


cdef Tensor tensor_from_native(const CTensor& t):
    cdef Tensor out = Tensor.__new__(Tensor)
    out.c = t
    return out

