# Extern declarations of the core's base headers (driver, cuda, memory, tensor, surface, buffer).
# Included textually into _core.pyx after errors.pxi, so `except +raise_native` maps native errors.

cdef extern from "pysm/driver.hpp" namespace "pysm::driver" nogil:
    cdef cppclass CLibrary "pysm::driver::Library":
        void* handle
        string name
        string report
        cbool loaded()
        void* symbol(const char* name)
    const CLibrary& libcuda()
    const CLibrary& libnvcuvid()
    const CLibrary& libnvidia_encode()
    int driver_version()

cdef extern from "pysm/cuda.hpp" namespace "pysm::cuda" nogil:
    ctypedef void* StreamHandle
    cdef cppclass CDeviceInfo "pysm::cuda::DeviceInfo":
        int index
        string name
        size_t total_memory
        size_t free_memory
        int major, minor
        int multiprocessors
        string pci_bus_id
    cbool is_available()
    int device_count()
    string unavailable_reason() except +raise_native
    cbool built_with_cuda()
    string built_architectures() except +raise_native
    int runtime_version()
    CDeviceInfo device_info(int device) except +raise_native
    StreamHandle default_stream(int device) except +raise_native
    cdef cppclass CEvent "pysm::cuda::Event":
        CEvent(int device) except +raise_native
        void record(StreamHandle stream) except +raise_native
        void wait(StreamHandle stream) except +raise_native
        cbool query() except +raise_native
        void synchronize() except +raise_native

cdef extern from "pysm/memory.hpp" namespace "pysm" nogil:
    cdef enum class CMemoryKind "pysm::MemoryKind"(int):
        Host "pysm::MemoryKind::Host", PinnedHost "pysm::MemoryKind::PinnedHost", Device "pysm::MemoryKind::Device"
    cdef cppclass CMemoryStats "pysm::MemoryStats":
        size_t in_use_bytes
        size_t cached_bytes
        size_t peak_bytes
        uint64_t allocations
        uint64_t reuses
        uint64_t system_allocs
        uint64_t system_frees
        size_t cache_limit
    cdef cppclass CMemoryPool "pysm::MemoryPool":
        @staticmethod
        CMemoryPool& host() except +raise_native
        @staticmethod
        CMemoryPool& device(int device) except +raise_native
        @staticmethod
        vector[CMemoryPool*] all()
        CMemoryStats stats()
        void trim() except +raise_native
        void set_cache_limit(size_t bytes)
        CMemoryKind kind()
        int device_index()

cdef extern from "pysm/tensor.hpp" namespace "pysm" nogil:
    cdef enum class CDeviceType "pysm::DeviceType"(int32_t):
        CPU, CUDA, CUDAHost
    cdef cppclass CDevice "pysm::Device":
        CDeviceType type
        int32_t id
        cbool is_cuda()
    cdef cppclass CDType "pysm::DType":
        uint8_t code
        uint8_t bits
        uint16_t lanes
        size_t itemsize()
        string str()
    cdef cppclass CTensor "pysm::Tensor":
        CTensor()
        CTensor(shared_ptr[void] owner, void* data, CDType dtype, vector[int64_t] shape,
               vector[int64_t] strides, CDevice device, string layout) except +raise_native
        @staticmethod
        CTensor empty(const vector[int64_t]& shape, CDType dtype, CDevice device, string layout) except +raise_native
        void* data()
        CDType dtype()
        const vector[int64_t]& shape()
        const vector[int64_t]& strides()
        int ndim()
        CDevice device()
        const string& layout()
        void set_layout(string l)
        const shared_ptr[void]& owner()
        int64_t numel()
        size_t nbytes()
        cbool is_contiguous()
        void mark_written(StreamHandle stream) except +raise_native
        void wait_ready(StreamHandle stream) except +raise_native
        void synchronize() except +raise_native
        const shared_ptr[CEvent]& ready_event()
        void set_ready_event(shared_ptr[CEvent] e)
        CTensor clone(StreamHandle stream) except +raise_native
        CTensor to(CDevice device, StreamHandle stream) except +raise_native
    void copy_tensor(const CTensor& src, CTensor& dst, StreamHandle stream) except +raise_native

cdef extern from "pysm/surface.hpp" namespace "pysm" nogil:
    cdef enum class CColorFormat "pysm::ColorFormat"(int):
        Invalid, GRAY8, I420, NV12, P016, RGBA, BGRA, RGB, BGR
    const char* color_format_name(CColorFormat f)
    cdef enum class CColorMatrix "pysm::ColorMatrix"(int):
        BT601, BT709, BT2020
    cdef enum class CColorRange "pysm::ColorRange"(int):
        Limited, Full
    cdef cppclass CSurface "pysm::Surface":
        CColorFormat format
        int width
        int height
        int64_t pitch
        CDevice device
        shared_ptr[void] owner
        uint8_t* data
        int64_t pts
        CColorMatrix matrix
        CColorRange range
        shared_ptr[CEvent] ready
        cbool error
        cbool empty()
        CTensor tensor() except +raise_native
        @staticmethod
        CSurface from_tensor(const CTensor& t, CColorFormat format) except +raise_native
        @staticmethod
        CSurface allocate(CColorFormat format, int width, int height, CDevice device, int align) except +raise_native

cdef extern from "pysm/buffer.hpp" namespace "pysm" nogil:
    cdef cppclass CBatchMeta "pysm::BatchMeta"
    cdef cppclass CBuffer "pysm::Buffer":
        vector[CSurface] surfaces
        shared_ptr[CBatchMeta] meta
        int64_t pts
        cbool eos
        cbool raw
        int batch_size()
        CTensor extract(int i) except +raise_native
        @staticmethod
        shared_ptr[CBuffer] from_bytes(const void* data, size_t n) except +raise_native
        @staticmethod
        shared_ptr[CBuffer] from_surfaces(vector[CSurface] surfaces) except +raise_native
