# Extern declarations of the core's base headers (driver, cuda, memory, tensor, surface, buffer).
# Included textually into _core.pyx after errors.pxi, so `except +raise_native` maps native errors.

cdef extern from "pysm/driver.hpp" namespace "pysm::driver" nogil:
    cdef cppclass Library:
        void* handle
        string name
        string report
        cbool loaded()
        void* symbol(const char* name)
    const Library& libcuda()
    const Library& libnvcuvid()
    const Library& libnvidia_encode()
    int driver_version()

cdef extern from "pysm/cuda.hpp" namespace "pysm::cuda" nogil:
    ctypedef void* StreamHandle
    cdef cppclass DeviceInfo:
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
    DeviceInfo device_info(int device) except +raise_native
    StreamHandle default_stream(int device) except +raise_native
    cdef cppclass Event:
        Event(int device) except +raise_native
        void record(StreamHandle stream) except +raise_native
        void wait(StreamHandle stream) except +raise_native
        cbool query() except +raise_native
        void synchronize() except +raise_native

cdef extern from "pysm/memory.hpp" namespace "pysm" nogil:
    cdef enum class MemoryKind(int):
        Host, PinnedHost, Device
    cdef cppclass MemoryStats:
        size_t in_use_bytes
        size_t cached_bytes
        size_t peak_bytes
        uint64_t allocations
        uint64_t reuses
        uint64_t system_allocs
    cdef cppclass MemoryPool:
        @staticmethod
        MemoryPool& host() except +raise_native
        @staticmethod
        MemoryPool& device(int device) except +raise_native
        @staticmethod
        vector[MemoryPool*] all()
        MemoryStats stats()
        void trim() except +raise_native
        MemoryKind kind()
        int device_index()

cdef extern from "pysm/tensor.hpp" namespace "pysm" nogil:
    cdef enum class DeviceType(int32_t):
        CPU, CUDA, CUDAHost
    cdef cppclass Device:
        DeviceType type
        int32_t id
        cbool is_cuda()
    cdef cppclass DType:
        uint8_t code
        uint8_t bits
        uint16_t lanes
        size_t itemsize()
        string str()
    cdef cppclass Tensor:
        Tensor()
        Tensor(shared_ptr[void] owner, void* data, DType dtype, vector[int64_t] shape,
               vector[int64_t] strides, Device device, string layout) except +raise_native
        @staticmethod
        Tensor empty(const vector[int64_t]& shape, DType dtype, Device device, string layout) except +raise_native
        void* data()
        DType dtype()
        const vector[int64_t]& shape()
        const vector[int64_t]& strides()
        int ndim()
        Device device()
        const string& layout()
        void set_layout(string l)
        const shared_ptr[void]& owner()
        int64_t numel()
        size_t nbytes()
        cbool is_contiguous()
        void mark_written(StreamHandle stream) except +raise_native
        void wait_ready(StreamHandle stream) except +raise_native
        void synchronize() except +raise_native
        const shared_ptr[Event]& ready_event()
        void set_ready_event(shared_ptr[Event] e)
        Tensor clone(StreamHandle stream) except +raise_native
        Tensor to(Device device, StreamHandle stream) except +raise_native
    void copy_tensor(const Tensor& src, Tensor& dst, StreamHandle stream) except +raise_native

cdef extern from "pysm/surface.hpp" namespace "pysm" nogil:
    cdef enum class ColorFormat(int):
        Invalid, GRAY8, I420, NV12, P016, RGBA, BGRA, RGB, BGR
    const char* color_format_name(ColorFormat f)
    cdef cppclass Surface:
        ColorFormat format
        int width
        int height
        int64_t pitch
        Device device
        shared_ptr[void] owner
        uint8_t* data
        int64_t pts
        cbool empty()
        Tensor tensor() except +raise_native
        @staticmethod
        Surface from_tensor(const Tensor& t, ColorFormat format) except +raise_native
        @staticmethod
        Surface allocate(ColorFormat format, int width, int height, Device device, int align) except +raise_native

cdef extern from "pysm/buffer.hpp" namespace "pysm" nogil:
    cdef cppclass BatchMeta
    cdef cppclass Buffer:
        vector[Surface] surfaces
        shared_ptr[BatchMeta] meta
        int64_t pts
        cbool eos
        int batch_size()
        Tensor extract(int i) except +raise_native
