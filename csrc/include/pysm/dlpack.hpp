// DLPack 1.0: the C ABI through which pysm exchanges tensors with NumPy, torch, CuPy, JAX ...
// The structs below are pysm's own definitions, laid out exactly as the DLPack 1.0 ABI requires
// (checked by static_asserts), so that no third-party header is needed to build the core.
//
// Export hands out a managed tensor whose manager context holds a copy of the pysm::Tensor: the
// memory's owner (pool block, decoder surface, another producer) stays alive until the consumer
// calls the deleter. Import takes ownership of a producer's managed tensor: the resulting Tensor's
// owner calls the producer's deleter when the last reference goes.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "pysm/tensor.hpp"

namespace pysm::dlpack {

constexpr uint32_t kMajorVersion = 1;
constexpr uint32_t kMinorVersion = 0;

struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};

// DLDeviceType values (an int-sized C enum in the reference header).
enum DLDeviceType : int32_t {
  kDLCPU = 1,
  kDLCUDA = 2,
  kDLCUDAHost = 3,
  kDLOpenCL = 4,
  kDLVulkan = 7,
  kDLMetal = 8,
  kDLVPI = 9,
  kDLROCM = 10,
  kDLROCMHost = 11,
  kDLExtDev = 12,
  kDLCUDAManaged = 13,
  kDLOneAPI = 14,
};

struct DLDevice {
  int32_t device_type;  // DLDeviceType
  int32_t device_id;
};

enum DLDataTypeCode : uint8_t {
  kDLInt = 0,
  kDLUInt = 1,
  kDLFloat = 2,
  kDLOpaqueHandle = 3,
  kDLBfloat = 4,
  kDLComplex = 5,
  kDLBool = 6,
};

struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; NULL means compact row-major
  uint64_t byte_offset;
};

// Pre-1.0 ("legacy") managed tensor, carried in a capsule named "dltensor".
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

constexpr uint64_t kFlagReadOnly = uint64_t(1) << 0;  // DLPACK_FLAG_BITMASK_READ_ONLY
constexpr uint64_t kFlagIsCopied = uint64_t(1) << 1;  // DLPACK_FLAG_BITMASK_IS_COPIED

// DLPack 1.0 managed tensor, carried in a capsule named "dltensor_versioned". The first three
// fields are ABI-stable across major versions, so a consumer can always read the version and
// call the deleter.
struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

// The ABI as the DLPack 1.0 header lays it out on LP64 platforms.
static_assert(sizeof(DLDevice) == 8, "DLDevice ABI");
static_assert(sizeof(DLDataType) == 4, "DLDataType ABI");
static_assert(offsetof(DLTensor, device) == 8 && offsetof(DLTensor, ndim) == 16 &&
                  offsetof(DLTensor, dtype) == 20 && offsetof(DLTensor, shape) == 24 &&
                  offsetof(DLTensor, strides) == 32 && offsetof(DLTensor, byte_offset) == 40 &&
                  sizeof(DLTensor) == 48,
              "DLTensor ABI");
static_assert(offsetof(DLManagedTensor, manager_ctx) == 48 && offsetof(DLManagedTensor, deleter) == 56,
              "DLManagedTensor ABI");
static_assert(offsetof(DLManagedTensorVersioned, manager_ctx) == 8 &&
                  offsetof(DLManagedTensorVersioned, deleter) == 16 &&
                  offsetof(DLManagedTensorVersioned, flags) == 24 &&
                  offsetof(DLManagedTensorVersioned, dl_tensor) == 32,
              "DLManagedTensorVersioned ABI");

// pysm device <-> DLPack device. Host memory (pageable or pinned) exports as kDLCPU so that every
// CPU consumer accepts it; device memory as kDLCUDA with its ordinal.
DLDevice to_dl_device(const Device& d);
// Throws Error(Value) for device types pysm cannot use (ROCm, Vulkan, ...).
Device from_dl_device(const DLDevice& d);

// Export (zero-copy). The caller owns the result until it hands it to a consumer; whoever holds it
// last calls its deleter exactly once. Throws Error(Value) for dtypes DLPack cannot express.
DLManagedTensorVersioned* export_versioned(const Tensor& t, bool read_only = false, bool is_copied = false);
DLManagedTensor* export_legacy(const Tensor& t);

// Import: takes ownership of `m` in every case. On success the returned Tensor's owner calls the
// producer's deleter when the last reference is dropped; on failure the deleter is called before
// Error(Value) is thrown (unsupported dtype, device, negative or broadcast strides, newer major
// version). `read_only` (optional) receives the producer's read-only flag.
Tensor import_versioned(DLManagedTensorVersioned* m, std::string layout = "", bool* read_only = nullptr);
Tensor import_legacy(DLManagedTensor* m, std::string layout = "");

// The producer side of the stream handshake: make the consumer's stream wait (on the device,
// never the host) for the pending write recorded on `t`. `stream` follows the DLPack convention:
// 1 = legacy default stream, 2 = per-thread default stream, -1 = no synchronisation, anything else
// is a cudaStream_t. No-op for host tensors and for tensors without a pending write.
// Throws Error(Value) for stream 0, which DLPack declares ambiguous for CUDA.
void wait_for_consumer(const Tensor& t, intptr_t stream);

}  // namespace pysm::dlpack
