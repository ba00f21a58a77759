# Bindings of the batching mux (csrc/mux) and the frame plumbing the pipeline runtime needs:
# build a batch from frames, read the routing fields of a batch, split a batch, and copy frames
# between NumPy and pooled surfaces (test sources, raw appsrc buffers, colour conversion).

cdef extern from "pysm/mux.hpp" namespace "pysm" nogil:
    cdef cppclass CMuxFrame "pysm::MuxFrame":
        CSurface surface
        uint32_t source_id
        uint32_t pad_index
        uint64_t frame_number
        int64_t pts
        uint64_t ntp_timestamp
    cdef cppclass CMuxConfig "pysm::MuxConfig":
        int width
        int height
        cbool enable_padding
        int gpu_id
        uint32_t batch_size
    cdef cppclass CMuxer "pysm::Muxer":
        CMuxer(CMuxConfig config) except +raise_native
        shared_ptr[CBuffer] batch(const vector[CMuxFrame]& frames) except +raise_native
    cdef cppclass CFrameInfo "pysm::FrameInfo":
        uint32_t source_id, pad_index, batch_id
        uint64_t frame_number
        int64_t pts
        uint64_t ntp_timestamp
        uint32_t source_width, source_height, pipeline_width, pipeline_height
        uint32_t num_objects
    vector[CFrameInfo] frame_infos(const CBuffer& b) except +raise_native
    CSurface upload_frame(const CTensor& src, CColorFormat format, int width, int height, CDevice device,
                          int64_t pts) except +raise_native
    shared_ptr[CBuffer] select_frames(const CBuffer& src, const vector[int]& indices) except +raise_native


cdef CSurface _payload_surface(object payload) except *:
    """The surface of a pre-mux item: a Frame, or a single-frame Buffer (appsrc)."""
    if isinstance(payload, Frame):
        return (<Frame>payload).c
    if isinstance(payload, Buffer):
        if (<Buffer>payload).c.get().batch_size() < 1:
            raise _errors.InvalidArgument("an empty Buffer carries no frame")
        return (<Buffer>payload).c.get().surfaces[0]
    raise _errors.InvalidArgument(f"expected a Frame or a Buffer, got {type(payload).__name__}")


cdef class NativeMux:
    """The native batcher of one nvstreammux element."""
    cdef CMuxer* m
    cdef readonly int width, height, gpu_id
    cdef readonly bint enable_padding

    def __cinit__(self, int width=0, int height=0, bint enable_padding=False, int gpu_id=0, int batch_size=0):
        cdef CMuxConfig cfg
        cfg.width = width
        cfg.height = height
        cfg.enable_padding = enable_padding
        cfg.gpu_id = gpu_id
        cfg.batch_size = <uint32_t>max(batch_size, 0)
        self.m = new CMuxer(cfg)
        self.width, self.height, self.gpu_id, self.enable_padding = width, height, gpu_id, enable_padding

    def __dealloc__(self):
        del self.m

    def batch(self, list items):
        """items: (payload, source_id, pad_index, frame_number, pts_ns, ntp_ns) tuples -> Buffer."""
        cdef vector[CMuxFrame] frames
        cdef CMuxFrame f
        cdef shared_ptr[CBuffer] out
        frames.reserve(len(items))
        for payload, source_id, pad_index, frame_number, pts, ntp in items:
            f.surface = _payload_surface(payload)
            f.source_id = source_id
            f.pad_index = pad_index
            f.frame_number = frame_number
            f.pts = pts
            f.ntp_timestamp = ntp
            frames.push_back(f)
        with nogil:
            out = self.m.batch(frames)
        return buffer_from_native(out)


def batch_frame_info(Buffer buf):
    """Per frame of a batch: (source_id, pad_index, batch_id, frame_number, pts, ntp_timestamp,
    source_width, source_height, pipeline_width, pipeline_height, num_objects)."""
    cdef vector[CFrameInfo] infos = frame_infos(buf.c.get()[0])
    return [(i.source_id, i.pad_index, i.batch_id, i.frame_number, i.pts, i.ntp_timestamp,
             i.source_width, i.source_height, i.pipeline_width, i.pipeline_height, i.num_objects)
            for i in infos]


def batch_select(Buffer buf, indices):
    """A Buffer with frames `indices` of `buf` (surfaces shared, FrameMeta copied, objects shared)."""
    cdef vector[int] idx = [int(i) for i in indices]
    return buffer_from_native(select_frames(buf.c.get()[0], idx))


def payload_info(object payload):
    """(width, height, format name, is_cuda, device id, pts) of a Frame or single-frame Buffer."""
    cdef CSurface s = _payload_surface(payload)
    return (s.width, s.height, color_format_name(s.format).decode(), s.device.is_cuda(), s.device.id, s.pts)


cdef CColorFormat _format_from_name(str name) except *:
    table = {"GRAY8": CColorFormat.GRAY8, "I420": CColorFormat.I420, "NV12": CColorFormat.NV12,
             "RGBA": CColorFormat.RGBA, "BGRA": CColorFormat.BGRA, "RGB": CColorFormat.RGB,
             "BGR": CColorFormat.BGR}
    try:
        return table[name.upper()]
    except KeyError:
        raise _errors.InvalidArgument(f"unsupported colour format {name!r}; expected one of {sorted(table)}") from None


cdef CSurface _surface_from_array(object array, str format, int device, int64_t pts) except *:
    import numpy as _np  # on use: importing numpy costs ~50 ms of `import pysm`
    cdef CColorFormat fmt = _format_from_name(format)
    a = _np.ascontiguousarray(array, dtype=_np.uint8)
    cdef int h, w
    if fmt == CColorFormat.NV12 or fmt == CColorFormat.I420:
        if a.ndim != 2 or a.shape[0] % 3:
            raise _errors.InvalidArgument(f"{format} frames are (H*3/2, W) uint8 arrays, got shape {a.shape}")
        h, w = a.shape[0] * 2 // 3, a.shape[1]
    elif fmt == CColorFormat.GRAY8:
        if a.ndim != 2:
            raise _errors.InvalidArgument(f"GRAY8 frames are (H, W) arrays, got shape {a.shape}")
        h, w = a.shape[0], a.shape[1]
    else:
        ch = 4 if fmt in (CColorFormat.RGBA, CColorFormat.BGRA) else 3
        if a.ndim != 3 or a.shape[2] != ch:
            raise _errors.InvalidArgument(f"{format} frames are (H, W, {ch}) arrays, got shape {a.shape}")
        h, w = a.shape[0], a.shape[1]
    cdef CDevice dev
    if device >= 0:
        dev.type = CDeviceType.CUDA
        dev.id = device
    else:
        dev.type = CDeviceType.CPU
        dev.id = 0
    cdef const uint8_t[::1] flat = a.reshape(-1)
    cdef CDType dt
    dt.code = 1
    dt.bits = 8
    dt.lanes = 1
    cdef CDevice cpu
    cpu.type = CDeviceType.CPU
    cpu.id = 0
    cdef vector[int64_t] shape = [x for x in a.shape]
    cdef CTensor src = CTensor(shared_ptr[void](), <void*>&flat[0], dt, shape, vector[int64_t](), cpu, b"")
    cdef CSurface s
    with nogil:
        s = upload_frame(src, fmt, w, h, dev, pts)
    return s


def frame_from_array(object array, str format="NV12", int device=-1, int64_t pts=-1):
    """Copy a NumPy image into a pooled surface (host, or CUDA device `device` >= 0) as a Frame.
    NV12/I420: (H*3/2, W); GRAY8: (H, W); RGB/BGR: (H, W, 3); RGBA/BGRA: (H, W, 4); uint8."""
    return frame_from_native(_surface_from_array(array, format, device, pts))


def buffer_from_arrays(list arrays, str format="RGB", int device=-1):
    """A Buffer (no frame metadata) whose frames are copies of `arrays`."""
    cdef shared_ptr[CBuffer] b = make_shared[CBuffer]()
    for a in arrays:
        b.get().surfaces.push_back(_surface_from_array(a, format, device, -1))
    return buffer_from_native(b)


cdef object _surface_to_array(const CSurface& s):
    import numpy as _np
    cdef CTensor t = s.tensor()
    out = _np.empty(tuple(t.shape()), dtype=_np.uint16 if t.dtype().bits == 16 else _np.uint8)
    cdef uint8_t[::1] flat = out.reshape(-1).view(_np.uint8)
    cdef CDevice cpu
    cpu.type = CDeviceType.CPU
    cpu.id = 0
    cdef CTensor dst = CTensor(shared_ptr[void](), <void*>&flat[0], t.dtype(), t.shape(), vector[int64_t](), cpu, b"")
    with nogil:
        copy_tensor(t, dst, NULL)
    return out


def frame_to_array(object payload, int index=0):
    """A host NumPy copy of a Frame, or of frame `index` of a Buffer (canonical tensor shape)."""
    if isinstance(payload, Buffer):
        if index < 0 or index >= (<Buffer>payload).c.get().batch_size():
            raise _errors.OutOfRangeError(f"frame {index} of a batch of {(<Buffer>payload).c.get().batch_size()}")
        return _surface_to_array((<Buffer>payload).c.get().surfaces[index])
    return _surface_to_array(_payload_surface(payload))


def buffer_frame_format(Buffer buf, int index=0):
    """(width, height, format name, is_cuda) of frame `index` of a batch."""
    if index < 0 or index >= buf.c.get().batch_size():
        raise _errors.OutOfRangeError(f"frame {index} of a batch of {buf.c.get().batch_size()}")
    cdef CSurface s = buf.c.get().surfaces[index]
    return (s.width, s.height, color_format_name(s.format).decode(), s.device.is_cuda())


def buffer_with_frames(Buffer buf, list frames):
    """A Buffer sharing `buf`'s metadata whose surfaces are `frames` (Frames, one per batch slot):
    used by converters that change the pixel format but keep the batch's metadata."""
    cdef shared_ptr[CBuffer] b = make_shared[CBuffer]()
    b.get().meta = buf.c.get().meta
    b.get().pts = buf.c.get().pts
    for f in frames:
        b.get().surfaces.push_back(_payload_surface(f))
    return buffer_from_native(b)


def buffer_frame(object payload, int index=0):
    """Frame `index` of a Buffer (or the surface of a single-frame payload) as a Frame (zero-copy)."""
    if isinstance(payload, Buffer):
        if index < 0 or index >= (<Buffer>payload).c.get().batch_size():
            raise _errors.OutOfRangeError(f"frame {index} of a batch of {(<Buffer>payload).c.get().batch_size()}")
        return frame_from_native((<Buffer>payload).c.get().surfaces[index])
    return frame_from_native(_payload_surface(payload))


def buffer_is_raw(Buffer buf):
    """True for a Buffer made from raw bytes (Buffer(data)): its appsrc reinterprets them."""
    return bool(buf.c.get().raw)


def buffer_is_eos(Buffer buf):
    """True for the empty Buffer a provider returns to signal end of stream."""
    return buf.c.get().eos or buf.c.get().batch_size() == 0
