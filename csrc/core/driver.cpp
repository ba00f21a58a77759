#include "pysm/driver.hpp"

#include <dlfcn.h>

#include <mutex>

#include "pysm/error.hpp"

namespace pysm::driver {
namespace {

Library open_first(std::initializer_list<const char*> names) {
  Library lib;
  for (const char* name : names) {
    dlerror();
    void* h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (h) {
      lib.handle = h;
      lib.name = name;
      return lib;
    }
    const char* err = dlerror();
    if (!lib.report.empty()) lib.report += "; ";
    lib.report += std::string(name) + ": " + (err ? err : "unknown dlopen error");
  }
  return lib;
}

}  // namespace

void* Library::symbol(const char* sym) const {
  if (!handle) return nullptr;
  return dlsym(handle, sym);
}

void* Library::require(const char* sym) const {
  void* p = symbol(sym);
  if (!p)
    raise(ErrorKind::Driver, "symbol " + std::string(sym) + " not found in " + name +
                                 "; the NVIDIA driver is too old for this pysm build: update the driver");
  return p;
}

// Never destroyed, like the handle: event and pool destructors may still reach the driver while
// static objects are torn down at exit.
const Library& libcuda() {
  static const Library* lib = new Library(open_first({"libcuda.so.1", "libcuda.so"}));
  return *lib;
}

const Library& libnvcuvid() {
  static Library lib = open_first({"libnvcuvid.so.1", "libnvcuvid.so"});
  return lib;
}

const Library& libnvidia_encode() {
  static Library lib = open_first({"libnvidia-encode.so.1", "libnvidia-encode.so"});
  return lib;
}

const Library& require_libcuda() {
  const Library& lib = libcuda();
  if (!lib.loaded())
    raise(ErrorKind::Driver, "the NVIDIA driver library could not be loaded (" + lib.report +
                                 "); install the NVIDIA driver or use the CPU path (device='cpu')");
  return lib;
}

const Library& require_libnvcuvid() {
  const Library& lib = libnvcuvid();
  if (!lib.loaded())
    raise(ErrorKind::Driver, "NVDEC (libnvcuvid) could not be loaded (" + lib.report +
                                 "); install the full NVIDIA driver (with the video codec libraries) "
                                 "or decode on the CPU (device='cpu')");
  return lib;
}

int driver_version() {
  const Library& lib = libcuda();
  using Fn = int (*)(int*);
  auto fn = reinterpret_cast<Fn>(lib.symbol("cuDriverGetVersion"));
  int v = 0;
  if (fn && fn(&v) == 0) return v;
  return 0;
}

std::string cu_error_name(int result) {
  using Fn = int (*)(int, const char**);
  auto fn = reinterpret_cast<Fn>(libcuda().symbol("cuGetErrorName"));
  const char* s = nullptr;
  if (fn && fn(result, &s) == 0 && s) return s;
  return "CUresult(" + std::to_string(result) + ")";
}

}  // namespace pysm::driver
