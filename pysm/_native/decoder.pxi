# decoder: NVDEC decoder, capability table and Annex-B conversion (csrc/codec).

from libcpp.memory cimport unique_ptr
from libc.stdlib cimport malloc, free
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE

cdef extern from "pysm/annexb.hpp" namespace "pysm::codec" nogil:
    cdef enum class CPictureRole "pysm::codec::PictureRole"(int):
        Other "pysm::codec::PictureRole::Other"
    cdef cppclass CParameterSet "pysm::codec::AnnexBConverter::ParameterSet":
        size_t offset, size
        int type, id
    cdef cppclass CAnnexBConverter "pysm::codec::AnnexBConverter":
        CAnnexBConverter()
        CAnnexBConverter(const string& codec, const uint8_t* extradata, size_t size) except +raise_native
        cbool length_prefixed()
        int nal_length_size()
        const vector[uint8_t]& headers()
        cbool convert(const uint8_t* data, size_t size, vector[uint8_t]& out)
        cbool starts_sequence(const uint8_t* data, size_t size, cbool keyframe, cbool no_leading)
        CPictureRole picture_role(const uint8_t* data, size_t size, cbool keyframe)
        int leads(const uint8_t* data, size_t size, const uint8_t* restart, size_t restart_size)
        vector[CParameterSet] parameter_sets(const uint8_t* data, size_t size)

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
    CNvdecCaps c_nvdec_caps "pysm::codec::nvdec_caps"(int device, const string& codec, int bit_depth,
                                                     const string& chroma) except +raise_native
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
        int display_delay
        int error_threshold
        int matrix
        int range
        string source
        string profile
    cbool c_packet_time_known "pysm::codec::packet_time_known"(int64_t pts, cbool discard)
    cdef cppclass CNvdecPacket "pysm::codec::NvdecPacket":
        const uint8_t* data
        size_t size
        int64_t pts
        cbool discard
    cdef cppclass CNvdecCacheInfo "pysm::codec::NvdecCacheInfo":
        cbool enabled
        int max_per_key, max_total, parked
        int64_t hits, misses, parks, evictions
    CNvdecCacheInfo c_nvdec_cache_info "pysm::codec::nvdec_cache_info"() except +raise_native
    void c_nvdec_cache_configure "pysm::codec::nvdec_cache_configure"(cbool enabled, int max_per_key, int max_total) except +raise_native
    int c_nvdec_cache_clear "pysm::codec::nvdec_cache_clear"() except +raise_native
    cbool c_nvdec_cache_has "pysm::codec::nvdec_cache_has"(int device, const string& codec, int bit_depth, int width, int height,
                                                          int extra_decode_surfaces, int output_surfaces) except +raise_native
    cdef cppclass CNvdecStats "pysm::codec::NvdecStats":
        int64_t packets, sessions_reused, decoded, displayed, errors, damaged, dropped, discarded, reconfigures, recreates
        int coded_width, coded_height, width, height, bit_depth, decode_surfaces
        string last_error
    cdef cppclass CNvdecDecoder "pysm::codec::NvdecDecoder":
        CNvdecDecoder(const CNvdecConfig& config) except +raise_native
        vector[CSurface] decode(const uint8_t* data, size_t size, int64_t pts, cbool end_of_picture, cbool discard) except +raise_native
        vector[CSurface] decode_many(const CNvdecPacket* packets, size_t count, cbool end_of_picture) except +raise_native
        vector[CSurface] flush() except +raise_native
        cbool continues_at(const uint8_t* data, size_t size, cbool keyframe) except +raise_native
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
    return [_caps_dict(r) for r in rows]


cdef dict _caps_dict(const CNvdecCaps& r):
    return dict(codec=r.codec.decode(), bit_depth=r.bit_depth, chroma=r.chroma.decode(),
                supported=bool(r.supported), max_width=r.max_width, max_height=r.max_height,
                min_width=r.min_width, min_height=r.min_height, max_mb_count=r.max_mb_count,
                num_engines=r.num_engines)


def nvdec_caps(int device, str codec, int bit_depth=8, str chroma="420"):
    """One row of :func:`nvdec_capabilities` (same keys), queried once per process and cached."""
    cdef string c = codec.encode()
    cdef string ch = chroma.encode()
    cdef CNvdecCaps r
    with nogil:
        r = c_nvdec_caps(device, c, bit_depth, ch)
    return _caps_dict(r)


def nvdec_check_support(int device, str codec, int bit_depth=8, str chroma="420", int width=0, int height=0):
    """Raise UnsupportedError (naming codec, depth, size and GPU) unless NVDEC can decode this."""
    cdef string c = codec.encode()
    cdef string ch = chroma.encode()
    with nogil:
        c_nvdec_check_support(device, c, bit_depth, ch, width, height)


def nvdec_cache_info():
    """The NVDEC session cache: enabled, max_per_key, max_total, parked, hits, misses, parks, evictions."""
    cdef CNvdecCacheInfo i = c_nvdec_cache_info()
    return dict(enabled=bool(i.enabled), max_per_key=i.max_per_key, max_total=i.max_total, parked=i.parked,
                hits=i.hits, misses=i.misses, parks=i.parks, evictions=i.evictions)


def nvdec_cache_configure(bint enabled=True, int max_per_key=-1, int max_total=-1):
    """Enable/disable the NVDEC session cache and set its bounds (negative: keep the current one).

    Disabling or shrinking destroys the parked sessions beyond the new bounds (~230 ms each).
    """
    with nogil:
        c_nvdec_cache_configure(enabled, max_per_key, max_total)


def nvdec_cache_clear():
    """Destroy every parked NVDEC session now (~230 ms each in the driver); returns how many."""
    cdef int n
    with nogil:
        n = c_nvdec_cache_clear()
    return n


def nvdec_cache_has(int device, str codec, int bit_depth, int width, int height, *,
                    int extra_decode_surfaces=-1, int output_surfaces=-1):
    """Whether a parked NVDEC session was made for this device, codec, bit depth, display size and
    queue depth (-1: the defaults): a stream like that most likely starts without waiting for the
    driver to create one."""
    cdef string c = codec.encode()
    cdef cbool r
    with nogil:
        r = c_nvdec_cache_has(device, c, bit_depth, width, height, extra_decode_surfaces, output_surfaces)
    return r


cdef int64_t _NS = 1000000000
cdef object _AV_PACKET_TYPE = None     # av.Packet, looked up on first use
cdef object _PYSM_PACKET_TYPE = None   # pysm.codec.demux.Packet


cdef inline int64_t _ticks_to_ns(int64_t ticks, int64_t num, int64_t den):
    """floor(ticks * num * 1e9 / den) without overflow for any realistic time base (num * den < 9e9)."""
    cdef int64_t q = ticks // den  # Python (floor) semantics: cdivision is off
    cdef int64_t r = ticks - q * den
    return q * num * _NS + (r * num * _NS) // den


cdef int64_t _av_packet_pts(object pkt, int64_t num, int64_t den) except? -2:
    """pts (dts when pts is unset) of a PyAV packet in ns, or -1."""
    t = pkt.pts
    if t is None:
        t = pkt.dts
        if t is None:
            return -1
    if num > 0 and den > 0 and num * den < 9000000000:
        return _ticks_to_ns(t, num, den)
    tb = pkt.time_base if num <= 0 or den <= 0 else None
    if tb is not None:
        return t * tb.numerator * _NS // tb.denominator
    if num > 0 and den > 0:
        return t * num * _NS // den
    return -1


cdef inline cbool _is_discard_payload(object data):
    """The discard mark of a tuple item's payload (a PyAV packet or a pysm Packet)."""
    if type(data) is _AV_PACKET_TYPE:
        return data.is_discard
    if type(data) is _PYSM_PACKET_TYPE:
        return data.discard
    return False


cdef class _PacketViews:
    """Payload buffers of a batch of packets, held (PyObject_GetBuffer) while native code reads them."""
    cdef vector[CNvdecPacket] pk
    cdef Py_buffer* views
    cdef Py_ssize_t held

    def __dealloc__(self):
        cdef Py_ssize_t i
        if self.views != NULL:
            for i in range(self.held):
                PyBuffer_Release(&self.views[i])
            free(self.views)
            self.views = NULL


cdef _PacketViews _packet_views(object packets, int64_t tb_num, int64_t tb_den, int64_t pts_offset):
    """Buffers and ns timestamps of packets for NvdecDecoder.decode_many (see its docstring)."""
    global _AV_PACKET_TYPE, _PYSM_PACKET_TYPE
    cdef list items = packets if type(packets) is list else list(packets)
    cdef Py_ssize_t n = len(items)
    cdef Py_ssize_t i
    cdef int64_t pts
    cdef cbool discard
    cdef object item, data, p
    cdef _PacketViews v = _PacketViews.__new__(_PacketViews)
    if n == 0:
        return v
    if _AV_PACKET_TYPE is None:
        import av
        from pysm.codec.demux import Packet as _PysmPacket
        _AV_PACKET_TYPE = av.Packet
        _PYSM_PACKET_TYPE = _PysmPacket
    v.views = <Py_buffer*>malloc(n * sizeof(Py_buffer))
    if v.views == NULL:
        raise MemoryError()
    v.pk.resize(n)
    for i in range(n):
        item = items[i]
        discard = False
        if type(item) is _AV_PACKET_TYPE:
            data = item
            pts = _av_packet_pts(item, tb_num, tb_den)
            discard = item.is_discard
        elif type(item) is _PYSM_PACKET_TYPE:
            data = item.data
            pts = item.pts
            discard = item.discard
        elif type(item) is tuple:
            data, p = item
            pts = -1 if p is None else p
            discard = _is_discard_payload(data)
        else:
            data = item
            pts = -1
        PyObject_GetBuffer(data, &v.views[i], PyBUF_SIMPLE)
        v.held = i + 1
        v.pk[i].data = <const uint8_t*>v.views[i].buf
        v.pk[i].size = <size_t>v.views[i].len
        # Known before the offset is added (a loop pass's offset would make an unknown time known).
        v.pk[i].pts = pts + pts_offset if c_packet_time_known(pts, discard) else -1
        v.pk[i].discard = discard
    return v


def _packet_views_info(packets, int64_t tb_num=0, int64_t tb_den=0, int64_t pts_offset=0):
    """(payload bytes, pts ns) per packet as decode_many would pass them to the native decoder (the
    fast start stamps its CPU frame with it; tests)."""
    cdef _PacketViews v = _packet_views(packets, tb_num, tb_den, pts_offset)
    cdef size_t i
    return [((<const char*>v.pk[i].data)[:v.pk[i].size] if v.pk[i].size else b"", v.pk[i].pts)
            for i in range(v.pk.size())]


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

    def starts_sequence(self, data, bint keyframe=False, bint no_leading=False):
        """True when decoding can restart at this packet without the pictures before it (H.264 IDR,
        HEVC IDR/BLA, or `keyframe` for VP8/VP9/AV1/MJPEG); with `no_leading`, also no later
        picture may be shown before it (HEVC: IDR_N_LP or BLA_N_LP only)."""
        cdef const uint8_t[::1] mv = memoryview(data).cast("B")
        return bool(self.c.starts_sequence(_buffer_ptr(mv), mv.shape[0], keyframe, no_leading))

    def picture_role(self, data, bint keyframe=False):
        """What decoding from this packet gives: 0 nothing special, 1 a clean restart
        (``starts_sequence``), 2 an open restart (HEVC CRA, H.264 I picture with an exact recovery
        point: its leading pictures need the pictures before it, see ``leads``), 3 a leading
        picture (HEVC RADL/RASL). See PictureRole in annexb.hpp."""
        cdef const uint8_t[::1] mv = memoryview(data).cast("B")
        return <int>self.c.picture_role(_buffer_ptr(mv), mv.shape[0], keyframe)

    @property
    def nal_length_size(self):
        """Bytes of each NAL unit's length prefix (AVCC/HVCC), 0 for Annex-B input."""
        return self.c.nal_length_size()

    def parameter_sets(self, data):
        """The parameter-set NAL units (H.264 SPS/PPS, HEVC VPS/SPS/PPS) this packet carries before
        its first slice, in order, as ``((nal_type, id), nal)``: ``nal`` the NAL unit's bytes
        (header byte included, without framing); ``id`` plus 256 times an HEVC set's nuh_layer_id,
        -1 where it cannot be read."""
        cdef const uint8_t[::1] mv = memoryview(data).cast("B")
        cdef vector[CParameterSet] sets = self.c.parameter_sets(_buffer_ptr(mv), mv.shape[0])
        return [((s.type, s.id), bytes(mv[s.offset:s.offset + s.size])) for s in sets]

    def leads(self, data, restart):
        """Whether this packet is a leading picture of the open restart point ``restart`` (a packet
        before it in decoding order): HEVC RADL/RASL, or an H.264 picture whose order count is below
        the restart point's. None where its order cannot be read (an H.264 slice header damaged or
        cut short)."""
        cdef const uint8_t[::1] mv = memoryview(data).cast("B")
        cdef const uint8_t[::1] rv = memoryview(restart).cast("B")
        cdef int r = self.c.leads(_buffer_ptr(mv), mv.shape[0], _buffer_ptr(rv), rv.shape[0])
        return None if r < 0 else bool(r)

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
                  int extra_decode_surfaces=-1, int output_surfaces=-1, int display_delay=-1, int error_threshold=-1, int matrix=-1, int range=-1,
                  str source="", str profile=""):
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
        # -1: the native defaults (csrc/include/pysm/nvdec.hpp)
        if extra_decode_surfaces >= 0:
            cfg.extra_decode_surfaces = extra_decode_surfaces
        if output_surfaces >= 0:
            cfg.output_surfaces = output_surfaces
        if display_delay >= 0:
            cfg.display_delay = display_delay
        if error_threshold >= 0:
            cfg.error_threshold = error_threshold
        cfg.matrix = matrix
        cfg.range = range
        cfg.source = source.encode()
        cfg.profile = profile.encode()
        self.codec = codec
        with nogil:
            self.c.reset(new CNvdecDecoder(cfg))

    cdef shared_ptr[CNvdecDecoder] _get(self) except *:
        if not self.c:
            raise _errors.StateError(f"the {self.codec} decoder is closed")
        return self.c

    def decode(self, data, int64_t pts=-1, bint end_of_picture=True, bint discard=False):
        """Decode one packet (pts in ns, -1 unknown); returns a list of Frames in display order. A
        ``discard`` packet (the pre-roll an MP4 edit list hides) is decoded but gives no frame."""
        cdef shared_ptr[CNvdecDecoder] d = self._get()  # keeps the decoder alive if close() races
        cdef const uint8_t[::1] mv = data if isinstance(data, (bytes, bytearray)) else memoryview(data).cast("B")
        cdef vector[CSurface] out
        cdef const uint8_t* ptr = _buffer_ptr(mv)
        cdef size_t n = mv.shape[0]
        with nogil:
            out = d.get().decode(ptr, n, pts, end_of_picture, discard)
        return frames_to_list(out)

    def decode_many(self, packets, int64_t tb_num=0, int64_t tb_den=0, int64_t pts_offset=0,
                    bint end_of_picture=True):
        """Decode a sequence of packets in one native call (the GIL is released once for all).

        Items: PyAV packets (pts, or dts when pts is unset, in the time base ``tb_num/tb_den``,
        else the packet's own; ``is_discard`` honoured), pysm ``Packet`` objects (pts in ns,
        ``discard``), ``(buffer, pts_ns)`` tuples, or
        plain buffers (pts unknown). ``pts_offset`` (ns) is added to every known pts. Payloads are
        read in place, without copies. Returns the frames of all packets in display order; a packet
        the parser rejects is counted in ``stats`` and skipped (DecodeError only when all are).
        """
        cdef shared_ptr[CNvdecDecoder] d = self._get()
        cdef _PacketViews v = _packet_views(packets, tb_num, tb_den, pts_offset)
        cdef vector[CSurface] out
        if v.pk.size() == 0:
            return []
        with nogil:
            out = d.get().decode_many(v.pk.data(), v.pk.size(), end_of_picture)
        v = None  # releases the payload buffers
        return frames_to_list(out)

    def flush(self):
        """End of stream: the frames still held for reordering. Decoding may continue afterwards."""
        cdef shared_ptr[CNvdecDecoder] d = self._get()
        cdef vector[CSurface] out
        with nogil:
            out = d.get().flush()
        return frames_to_list(out)

    def continues_at(self, data, bint keyframe=False):
        """True when this packet can follow the pictures decoded so far without flush() (it starts
        a new coded sequence: H.264 IDR, HEVC IDR/BLA, `keyframe` for VP8/VP9/AV1/MJPEG)."""
        cdef shared_ptr[CNvdecDecoder] d = self._get()
        cdef const uint8_t[::1] mv = data if isinstance(data, (bytes, bytearray)) else memoryview(data).cast("B")
        return bool(d.get().continues_at(_buffer_ptr(mv), mv.shape[0], keyframe))

    @property
    def device(self):
        return self._get().get().device()

    @property
    def stats(self):
        """Counters: packets, decoded, displayed, errors (frames whose own data was bad), damaged
        (frames flagged because a picture they were predicted from was bad), dropped, discarded
        (pictures of discard packets, decoded and not shown), reconfigures, recreates, sizes."""
        cdef shared_ptr[CNvdecDecoder] d = self._get()
        cdef CNvdecStats s
        with nogil:  # waits for the decoder's lock, which a decode in another thread may hold for long
            s = d.get().stats()
        return dict(packets=s.packets, sessions_reused=s.sessions_reused, decoded=s.decoded, displayed=s.displayed, errors=s.errors, damaged=s.damaged,
                    dropped=s.dropped, discarded=s.discarded, reconfigures=s.reconfigures, recreates=s.recreates,
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
