// Runtime loading of NVIDIA driver libraries. pysm never links libcuda, libnvcuvid or
// libnvidia-encode: they are dlopen'ed on first use so that `import pysm` works on machines
// without a GPU or driver, and a failure reports every name tried with its dlerror() text.
#pragma once
#include <string>

namespace pysm::driver {

struct Library {
  void* handle = nullptr;  // dlopen handle; never closed (the driver must outlive all users)
  std::string name;        // the name that loaded
  std::string report;      // "name: dlerror; name: dlerror" for every failed attempt
  bool loaded() const { return handle != nullptr; }
  // Look up a symbol; nullptr when missing.
  void* symbol(const char* name) const;
  // Like symbol() but throws Error(Driver) naming the library and symbol.
  void* require(const char* name) const;
};

// Each is loaded once, thread-safely, on first call. Never throws.
const Library& libcuda();
const Library& libnvcuvid();
const Library& libnvidia_encode();

// Throws Error(Driver) with the load report when the library is missing.
const Library& require_libcuda();
const Library& require_libnvcuvid();

// Driver version as reported by cuDriverGetVersion (e.g. 13000), or 0 when unavailable.
int driver_version();

// The CUresult name for a driver error code ("CUDA_ERROR_OUT_OF_MEMORY"), via cuGetErrorName.
std::string cu_error_name(int result);

}  // namespace pysm::driver
