#include "pysm/cuda.hpp"

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "pysm/driver.hpp"
#include "pysm/error.hpp"

#if PYSM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace pysm::cuda {

bool built_with_cuda() noexcept { return PYSM_WITH_CUDA != 0; }
std::string built_architectures() { return PYSM_CUDA_ARCHS; }

#if PYSM_WITH_CUDA

namespace {
std::string hint_for(cudaError_t e) {
  switch (e) {
    case cudaErrorInsufficientDriver:
      return "the NVIDIA driver is older than this build's CUDA runtime: update the driver";
    case cudaErrorNoDevice:
      return "no CUDA device is visible: check nvidia-smi and CUDA_VISIBLE_DEVICES";
    case cudaErrorMemoryAllocation:
      return "the GPU is out of memory: lower batch sizes or stream counts, or free other GPU users";
    case cudaErrorNoKernelImageForDevice:
      return "this build has no code for this GPU: rebuild with CUDAARCHS including its architecture";
    case cudaErrorInvalidDevice:
      return "the device index is out of range: see pysm.cuda.device_count()";
    default:
      return "see `python -m pysm doctor`";
  }
}

struct Probe {
  int count = 0;
  std::string reason;
};

const Probe& probe() {
  static Probe p = [] {
    Probe r;
    const auto& lib = driver::libcuda();
    if (!lib.loaded()) {
      r.reason = "no NVIDIA driver (" + lib.report + ")";
      return r;
    }
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
      r.reason = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
      cudaGetLastError();
      return r;
    }
    if (n == 0) r.reason = "the driver reports no CUDA devices";
    r.count = n;
    return r;
  }();
  return p;
}
}  // namespace

bool is_available() noexcept {
  try {
    return probe().count > 0;
  } catch (...) {
    return false;
  }
}

int device_count() noexcept {
  try {
    return probe().count;
  } catch (...) {
    return 0;
  }
}

std::string unavailable_reason() { return probe().count > 0 ? "" : probe().reason; }

int runtime_version() noexcept {
  int v = 0;
  cudaRuntimeGetVersion(&v);
  return v;
}

void check(int code, const char* what) {
  if (code == 0) return;
  auto e = static_cast<cudaError_t>(code);
  cudaGetLastError();  // clear sticky-free errors so later calls are not poisoned
  raise(e == cudaErrorMemoryAllocation ? ErrorKind::Memory : ErrorKind::Cuda,
        std::string(what) + ": " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + "); " + hint_for(e));
}

static void require_device(int device) {
  if (!is_available())
    raise(ErrorKind::Cuda, "no CUDA device is available (" + unavailable_reason() +
                               "); use device='cpu' or run `python -m pysm doctor`");
  if (device < 0 || device >= device_count())
    raise(ErrorKind::Value, "CUDA device " + std::to_string(device) + " does not exist; " +
                                std::to_string(device_count()) + " device(s) are visible");
}

void set_device(int device) {
  require_device(device);
  check(cudaSetDevice(device), "cudaSetDevice");
}

int current_device() {
  int d = 0;
  check(cudaGetDevice(&d), "cudaGetDevice");
  return d;
}

DeviceInfo device_info(int device) {
  require_device(device);
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  DeviceInfo info;
  info.index = device;
  info.name = prop.name;
  info.total_memory = prop.totalGlobalMem;
  info.major = prop.major;
  info.minor = prop.minor;
  info.multiprocessors = prop.multiProcessorCount;
  char bus[32] = {0};
  if (cudaDeviceGetPCIBusId(bus, sizeof(bus), device) == cudaSuccess) info.pci_bus_id = bus;
  int prev = 0;
  cudaGetDevice(&prev);
  if (cudaSetDevice(device) == cudaSuccess) {
    size_t f = 0, t = 0;
    if (cudaMemGetInfo(&f, &t) == cudaSuccess) info.free_memory = f;
    if (prev != device) restore_device(prev);
  }
  cudaGetLastError();
  return info;
}

namespace {
// Whether `device`'s primary context exists in this process (driver API: the runtime has no call
// that answers without creating it). True when it cannot tell, so that the restore happens as before.
bool has_primary_context(int device) noexcept {
  using GetFn = int (*)(int*, int);
  using StateFn = int (*)(int, unsigned*, int*);
  static const auto get = reinterpret_cast<GetFn>(driver::libcuda().symbol("cuDeviceGet"));
  static const auto state = reinterpret_cast<StateFn>(driver::libcuda().symbol("cuDevicePrimaryCtxGetState"));
  int dev = 0;
  unsigned flags = 0;
  int active = 1;
  if (!get || !state || get(&dev, device) != 0 || state(dev, &flags, &active) != 0) return true;
  return active != 0;
}
}  // namespace

void ensure_context(int device) noexcept {
  using CurrentFn = int (*)(void**);
  static const auto current = reinterpret_cast<CurrentFn>(driver::libcuda().symbol("cuCtxGetCurrent"));
  void* ctx = nullptr;
  if (!current || current(&ctx) != 0 || ctx) return;
  if (device < 0) {
    device = 0;
    for (int d = 0; d < device_count(); ++d)
      if (has_primary_context(d)) {
        device = d;
        break;
      }
  }
  cudaSetDevice(device);
  cudaGetLastError();
}

void restore_device(int prev) noexcept {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now == prev) return;
  if (has_primary_context(prev)) cudaSetDevice(prev);
  cudaGetLastError();
}

DeviceScope::DeviceScope(int device) {
  cudaGetDevice(&prev_);
  set_device(device);  // also when already current: binds the primary context on a fresh thread
  switched_ = prev_ != device;
}

DeviceScope::~DeviceScope() {
  if (switched_) restore_device(prev_);
}

Stream::Stream(int device) : device_(device) {
  require_device(device);
  DeviceScope guard(device);
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  stream_ = s;
}

Stream::~Stream() {
  if (stream_) {
    int prev = 0;
    cudaGetDevice(&prev);
    cudaSetDevice(device_);
    cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
    if (prev != device_) restore_device(prev);
  }
}

void Stream::synchronize() const { cuda::synchronize(stream_, device_); }

void synchronize(StreamHandle stream, int device) {
  if (blocking_waits()) {
    Event e(device);  // created with cudaEventBlockingSync: the host thread sleeps
    e.record(stream);
    e.synchronize();
    return;
  }
  ensure_context(device);
  check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)), "cudaStreamSynchronize");
}

// Host waits spin on a core by default (the primary context's scheduling with few contexts).
// With dozens of decoder threads each waiting per frame, spinning threads outnumber the cores
// and starve the threads doing real work; blocking events sleep instead. PYSM_CUDA_WAIT=spin
// or block chooses; the default is block.
bool blocking_waits() {
  static const bool block = [] {
    const char* v = std::getenv("PYSM_CUDA_WAIT");
    return !(v && std::string(v) == "spin");
  }();
  return block;
}

Event::Event(int device) : device_(device) {
  require_device(device);
  DeviceScope guard(device);
  cudaEvent_t e = nullptr;
  const unsigned flags = cudaEventDisableTiming | (blocking_waits() ? cudaEventBlockingSync : 0u);
  check(cudaEventCreateWithFlags(&e, flags), "cudaEventCreateWithFlags");
  event_ = e;
}

Event::~Event() {
  if (!event_) return;
  ensure_context(device_);
  cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

void Event::record(StreamHandle stream) {
  ensure_context(device_);
  check(cudaEventRecord(static_cast<cudaEvent_t>(event_), static_cast<cudaStream_t>(stream)), "cudaEventRecord");
}

void Event::wait(StreamHandle stream) const {
  ensure_context(device_);
  check(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event_), 0),
        "cudaStreamWaitEvent");
}

bool Event::query() const {
  ensure_context(device_);
  cudaError_t e = cudaEventQuery(static_cast<cudaEvent_t>(event_));
  if (e == cudaSuccess) return true;
  if (e == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  check(e, "cudaEventQuery");
  return false;
}

void Event::synchronize() const {
  ensure_context(device_);
  check(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)), "cudaEventSynchronize");
}

StreamHandle default_stream(int device) {
  static std::mutex mu;
  static std::vector<std::unique_ptr<Stream>> streams;
  std::lock_guard<std::mutex> lock(mu);
  require_device(device);
  if (streams.size() <= static_cast<size_t>(device)) streams.resize(device + 1);
  if (!streams[device]) streams[device] = std::make_unique<Stream>(device);
  return streams[device]->handle();
}

#else  // CPU-only build

bool is_available() noexcept { return false; }
int device_count() noexcept { return 0; }
std::string unavailable_reason() { return "pysm was built without CUDA (nvcc was not found at build time)"; }
int runtime_version() noexcept { return 0; }
static void no_cuda() {
  raise(ErrorKind::Cuda, "pysm was built without CUDA; reinstall with nvcc on PATH to use the GPU");
}
void check(int code, const char* what) {
  if (code) no_cuda();
}
void set_device(int) { no_cuda(); }
int current_device() { no_cuda(); return 0; }
void restore_device(int) noexcept {}
void ensure_context(int) noexcept {}
DeviceScope::DeviceScope(int) { no_cuda(); }
DeviceScope::~DeviceScope() = default;
DeviceInfo device_info(int) { no_cuda(); return {}; }
Stream::Stream(int device) : device_(device) { no_cuda(); }
Stream::~Stream() = default;
void Stream::synchronize() const {}
void synchronize(StreamHandle, int) {}
bool blocking_waits() { return false; }
Event::Event(int device) : device_(device) { no_cuda(); }
Event::~Event() = default;
void Event::record(StreamHandle) {}
void Event::wait(StreamHandle) const {}
bool Event::query() const { return true; }
void Event::synchronize() const {}
StreamHandle default_stream(int) { no_cuda(); return nullptr; }

#endif

}  // namespace pysm::cuda
