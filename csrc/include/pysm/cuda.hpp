// The CUDA runtime as pysm uses it: the device's primary context only (never a private one),
// non-blocking streams and events, and error messages that carry the error name and a hint.
// Handles are opaque (void*) so that this header compiles in CPU-only builds.
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace pysm::cuda {

using StreamHandle = void*;  // cudaStream_t
using EventHandle = void*;   // cudaEvent_t

// True when this build has CUDA and at least one device is usable. Never throws.
bool is_available() noexcept;
// Number of usable devices (0 without driver/GPU/CUDA build). Never throws.
int device_count() noexcept;
// Why is_available() is false ("" when it is true).
std::string unavailable_reason();
// Whether the core was compiled with CUDA, and for which architectures.
bool built_with_cuda() noexcept;
std::string built_architectures();
int runtime_version() noexcept;

struct DeviceInfo {
  int index = 0;
  std::string name;
  size_t total_memory = 0;
  size_t free_memory = 0;
  int major = 0, minor = 0;
  int multiprocessors = 0;
  std::string pci_bus_id;
};
DeviceInfo device_info(int device);

// Throws Error(Cuda) "what: cudaErrorX (text). hint" when code != 0.
void check(int code, const char* what);
// Makes `device` current on this thread (binds its primary context).
void set_device(int device);
int current_device();

// Makes `prev` the thread's device again after work on another one, unless that would create
// `prev`'s primary context: a thread that never used CUDA reports device 0 without device 0 having
// a context, and setting it (CUDA 12+ initialises at once) would cost a context of ~500 MB on GPU 0
// in a process that only uses another GPU. In that case the thread stays on the device it is on,
// as PyTorch's MaybeSetDevice does. Never throws.
void restore_device(int prev) noexcept;

// On a thread with no current context, makes `device` current (-1: the first device whose primary
// context exists, else 0) before a runtime call on one of its handles (an event, a pinned block
// released from a consumer thread): the runtime would otherwise create the context of the thread's
// default device 0 for it. A thread with a current context is left as it is. Never throws.
void ensure_context(int device = -1) noexcept;

// Makes `device` current on this thread for one scope and restores the thread's previous device,
// so that pysm does not change what torch or CuPy see as the current device. The one exception
// (see restore_device): a thread whose previous device has no context yet in this process stays
// on `device`, rather than pysm creating a context on a GPU the process does not use.
class DeviceScope {
 public:
  explicit DeviceScope(int device);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int prev_ = 0;
  bool switched_ = false;
};

// Owned non-blocking stream on a device.
class Stream {
 public:
  explicit Stream(int device = 0);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  StreamHandle handle() const { return stream_; }
  int device() const { return device_; }
  void synchronize() const;

 private:
  StreamHandle stream_ = nullptr;
  int device_ = 0;
};

// Owned event (timing disabled). record() on a producer stream, wait() on consumers.
class Event {
 public:
  explicit Event(int device = 0);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(StreamHandle stream);
  void wait(StreamHandle stream) const;  // consumer stream waits; never blocks the host
  bool query() const;                    // true when complete
  void synchronize() const;              // host blocks until complete
  EventHandle handle() const { return event_; }
  int device() const { return device_; }

 private:
  EventHandle event_ = nullptr;
  int device_ = 0;
};
using EventPtr = std::shared_ptr<Event>;

// A per-device stream for pysm's own work when the caller supplies none.
StreamHandle default_stream(int device);

// True when host waits (Event/Stream::synchronize) sleep instead of spinning (PYSM_CUDA_WAIT).
bool blocking_waits();

// The host waits for the work queued so far on `stream` (of `device`), by the policy above.
void synchronize(StreamHandle stream, int device);

}  // namespace pysm::cuda
