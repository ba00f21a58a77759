# decoder: NVDEC decoder, capability table and Annex-B conversion (csrc/codec).

from libcpp.memory cimport unique_ptr

cdef extern from "pysm/annexb.hpp" namespace "pysm::codec" nogil:
    cdef cppclass CAnnexBConverter "pysm::codec::AnnexBConverter":
        CAnnexBConverter()
        CAnnexBConverter(const string& codec, const uint8_t* extradata, size_t size) except +raise_native
        cbool length_prefixed()
        int nal_length_size()
        const vector[uint8_t]& headers()
        cbool convert(const uint8_t* data, size_t size, vector[uint8_t]& out)

cdef extern from "pysm/nvdec.hpp" namespace "pysm::codec" nogil:
    cdef cppclass CNvdecCaps "pysm::codec::NvdecCaps":
        string codec
        int bit_depth
        string chroma
        cbool supported
        int max_width, max_height, min_width, min_height
        int64_t max_mb_count
        int num_engines
    cbool c_nvdec_built "pysm::codec::nvdec_built"()
    vector[CNvdecCaps] c_nvdec_capabilities "pysm::codec::nvdec_capabilities"(int device) except +raise_native
    void c_nvdec_check_support "pysm::codec::nvdec_check_support"(int device, const string& codec, int bit_depth, const string& chroma,
                             int width, int height) except +raise_native
    cdef cppclass CNvdecConfig "pysm::codec::NvdecConfig":
        int device
        string codec
        vector[uint8_t] extradata
        cbool low_latency
        int max_width, max_height
        int target_width, target_height
        int extra_decode_surfaces
        int output_surfaces
        int matrix
        int range
        string source
    cdef cppclass CNvdecStats "pysm::codec::NvdecStats":
        int64_t packets, decoded, displayed, errors, dropped, reconfigures, recreates
        int coded_width, coded_height, width, height, bit_depth, decode_surfaces
        string last_error
    cdef cppclass CNvdecDecoder "pysm::codec::NvdecDecoder":
        CNvdecDecoder(const CNvdecConfig& config) except +raise_native
        vector[CSurface] decode(const uint8_t* data, size_t size, int64_t pts, cbool end_of_picture) except +raise_native
        vector[CSurface] flush() except +raise_native
        int device()
        CNvdecStats stats()


def nvdec_built():
    """Whether this build of pysm has NVDEC support compiled in."""
    return bool(c_nvdec_built())


def nvdec_capabilities(int device=0):
    """NVDEC capabilities of a GPU, one dict per (codec, bit depth, chroma) combination.

    Keys: codec, bit_depth, chroma, supported, max_width, max_height, min_width, min_height,
    max_mb_count, num_engines. Raises DriverError when libnvcuvid cannot be loaded.
    """
    cdef vector[CNvdecCaps] rows
    with nogil:
        rows = c_nvdec_capabilities(device)
    return [dict(codec=r.codec.decode(), bit_depth=r.bit_depth, chroma=r.chroma.decode(),
                 supported=bool(r.supported), max_width=r.max_width, max_height=r.max_height,
                 min_width=r.min_width, min_height=r.min_height, max_mb_count=r.max_mb_count,
                 num_engines=r.num_engines) for r in rows]


def nvdec_check_support(int device, str codec, int bit_depth=8, str chroma="420", int width=0, int height=0):
    """Raise UnsupportedError (naming codec, depth, size and GPU) unless NVDEC can decode this."""
    cdef string c = codec.encode()
    cdef string ch = chroma.encode()
    with nogil:
        c_nvdec_check_support(device, c, bit_depth, ch, width, height)


cdef inline const uint8_t* _buffer_ptr(const uint8_t[::1] mv):
    return &mv[0] if mv.shape[0] > 0 else NULL


cdef class AnnexBConverter:
    """Length-prefixed (AVCC/HVCC) packets to Annex-B, with the extradata's parameter sets."""
    cdef CAnnexBConverter c

    def __cinit__(self, str codec, extradata=b""):
        cdef const uint8_t[::1] ed = memoryview(extradata or b"").cast("B")
        self.c = CAnnexBConverter(codec.encode(), _buffer_ptr(ed), ed.shape[0])

    @property
    def length_prefixed(self):
        return bool(self.c.length_prefixed())

    @property
    def headers(self):
        """In-band headers (Annex-B parameter sets / sequence header) to send before the first packet."""
        cdef const vector[uint8_t]* h = &self.c.headers()
        return bytes((<const char*>h.data())[:h.size()]) if h.size() else b""

    def convert(self, data):
        """Annex-B form of one packet; raises DecodeError when a NAL length overruns the packet."""
        cdef const uint8_t[::1] mv = memoryview(data).cast("B")
        cdef vector[uint8_t] out
        cdef cbool ok
        cdef const uint8_t* p = _buffer_ptr(mv)
        cdef size_t n = mv.shape[0]
        with nogil:
            ok = self.c.convert(p, n, out)
        if not ok:
            raise _errors.DecodeError("a NAL unit length runs past the end of the packet: the packet is truncated or corrupt")
        return bytes((<const char*>out.data())[:out.size()]) if out.size() else b""


cdef object frames_to_list(vector[CSurface]& surfaces):
    cdef list out = []
    cdef size_t i
    for i in range(surfaces.size()):
        out.append(frame_from_native(surfaces[i]))
    return out


cdef class NvdecDecoder:
    """Hardware decoder for one stream (native csrc/codec/nvdec_decoder.cpp).

    ``decode(data, pts)`` takes any buffer-protocol object (an ``av.Packet``, bytes, memoryview) without
    copying it and returns the frames that became displayable, as device ``Frame``s. The GIL is
    released while NVDEC works, so decoders in different threads run concurrently.
    """
    cdef shared_ptr[CNvdecDecoder] c
    cdef readonly str codec

    def __cinit__(self, str codec, extradata=b"", *, int device=0, bint low_latency=False,
                  int max_width=0, int max_height=0, int target_width=0, int target_height=0,
                  int extra_decode_surfaces=4, int output_surfaces=4, int matrix=-1, int range=-1,
                  str source=""):
        cdef CNvdecConfig cfg
        cdef const uint8_t[::1] ed = memoryview(extradata or b"").cast("B")
        cfg.device = device
        cfg.codec = codec.encode()
        if ed.shape[0]:
            cfg.extradata.assign(&ed[0], &ed[0] + ed.shape[0])
        cfg.low_latency = low_latency
        cfg.max_width = max_width
        cfg.max_height = max_height
        cfg.target_width = target_width
        cfg.target_height = target_height
        cfg.extra_decode_surfaces = extra_decode_surfaces
        cfg.output_surfaces = output_surfaces
        cfg.matrix = matrix
        cfg.range = range
        cfg.source = source.encode()
        self.codec = codec
        with nogil:
            self.c.reset(new CNvdecDecoder(cfg))

    cdef shared_ptr[CNvdecDecoder] _get(self) except *:
        if not self.c:
            raise _errors.StateError(f"the {self.codec} decoder is closed")
        return self.c

    def decode(self, data, int64_t pts=-1, bint end_of_picture=True):
        """Decode one packet (pts in ns, -1 unknown); returns a list of Frames in display order."""
        cdef shared_ptr[CNvdecDecoder] d = self._get()  # keeps the decoder alive if close() races
        cdef const uint8_t[::1] mv = data if isinstance(data, (bytes, bytearray)) else memoryview(data).cast("B")
        cdef vector[CSurface] out
        cdef const uint8_t* ptr = _buffer_ptr(mv)
        cdef size_t n = mv.shape[0]
        with nogil:
            out = d.get().decode(ptr, n, pts, end_of_picture)
        return frames_to_list(out)

    def flush(self):
        """End of stream: the frames still held for reordering. Decoding may continue afterwards."""
        cdef shared_ptr[CNvdecDecoder] d = self._get()
        cdef vector[CSurface] out
        with nogil:
            out = d.get().flush()
        return frames_to_list(out)

    @property
    def device(self):
        return self._get().get().device()

    @property
    def stats(self):
        """Counters: packets, decoded, displayed, errors, dropped, reconfigures, recreates, sizes."""
        cdef CNvdecStats s = self._get().get().stats()
        return dict(packets=s.packets, decoded=s.decoded, displayed=s.displayed, errors=s.errors,
                    dropped=s.dropped, reconfigures=s.reconfigures, recreates=s.recreates,
                    coded_width=s.coded_width, coded_height=s.coded_height, width=s.width,
                    height=s.height, bit_depth=s.bit_depth, decode_surfaces=s.decode_surfaces,
                    last_error=s.last_error.decode("utf-8", "replace"))

    @property
    def closed(self):
        return not self.c

    def close(self):
        """Release the hardware decoder now (frames already returned stay valid)."""
        cdef shared_ptr[CNvdecDecoder] d
        d.swap(self.c)
        with nogil:
            d.reset()
