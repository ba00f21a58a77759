# CUDA availability, devices and memory statistics (pysm.cuda, pysm.memory_stats).

def cuda_is_available():
    cdef cbool ok
    with nogil:  # the first call loads libcuda and runs cuInit (100-200 ms on an H100 host)
        ok = is_available()
    return ok

def cuda_device_count():
    cdef int n
    with nogil:
        n = device_count()
    return n

def cuda_unavailable_reason():
    return unavailable_reason().decode()

def cuda_build_info():
    return {
        "cuda": bool(built_with_cuda()),
        "architectures": built_architectures().decode(),
        "runtime_version": runtime_version() if built_with_cuda() else 0,
    }

def cuda_device_info(int device):
    cdef CDeviceInfo info = device_info(device)
    return {
        "index": info.index,
        "name": info.name.decode(),
        "total_memory": info.total_memory,
        "free_memory": info.free_memory,
        "compute_capability": (info.major, info.minor),
        "multiprocessors": info.multiprocessors,
        "pci_bus_id": info.pci_bus_id.decode(),
    }

cdef object _library_status(const CLibrary& lib):
    return (bool(lib.loaded()), lib.name.decode(), lib.report.decode())

def driver_libraries():
    """Load status of the driver libraries: {name: (loaded, loaded_name, dlerror report)}."""
    return {
        "libcuda": _library_status(libcuda()),
        "libnvcuvid": _library_status(libnvcuvid()),
        "libnvidia-encode": _library_status(libnvidia_encode()),
    }

def cuda_driver_version():
    return driver_version()

def memory_stats():
    """Statistics of every memory pool created so far."""
    cdef vector[CMemoryPool*] pools = CMemoryPool.all()
    cdef CMemoryStats st
    out = {}
    for p in pools:
        st = p.stats()
        kind = p.kind()
        if kind == CMemoryKind.Device:
            key = "cuda:%d" % p.device_index()
        elif kind == CMemoryKind.PinnedHost:
            key = "host_pinned"
        else:
            key = "host"
        out[key] = {
            "in_use_bytes": st.in_use_bytes, "cached_bytes": st.cached_bytes,
            "peak_bytes": st.peak_bytes, "allocations": st.allocations,
            "reuses": st.reuses, "system_allocs": st.system_allocs,
            "system_frees": st.system_frees, "cache_limit_bytes": st.cache_limit,
        }
    return out

def set_cache_limit(size_t limit_bytes, int device=-1):
    """Bound the cached bytes of the host pool (device -1) or of CUDA device ``device``'s pool."""
    cdef CMemoryPool* p = &CMemoryPool.host() if device < 0 else &CMemoryPool.device(device)
    p.set_cache_limit(limit_bytes)

def empty_cache():
    """Return every cached pool block to the system."""
    cdef CMemoryPool* p
    for p in CMemoryPool.all():
        p.trim()

cdef extern from "pysm/nvenc_info.hpp" namespace "pysm::nvenc" nogil:
    cdef cppclass CNvencInfo "pysm::nvenc::Info":
        cbool loaded
        string library
        string report
        uint32_t max_api_version
        string error
        int major()
        int minor()
    CNvencInfo nvenc_probe "pysm::nvenc::probe"()

def nvenc_info():
    """NVENC presence: {loaded, library, report, max_api_version: (major, minor) or None, error}."""
    cdef CNvencInfo info
    with nogil:
        info = nvenc_probe()
    return {
        "loaded": bool(info.loaded),
        "library": info.library.decode(),
        "report": info.report.decode(),
        "max_api_version": (info.major(), info.minor()) if info.max_api_version else None,
        "error": info.error.decode(),
    }
