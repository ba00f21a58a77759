#include "pysm/dlpack.hpp"

#include <memory>
#include <utility>
#include <vector>

#include "pysm/error.hpp"

namespace pysm::dlpack {
namespace {

// One allocation per exported tensor: the managed struct, the Tensor that keeps the memory's
// owner alive, and the shape/strides arrays the DLTensor points into.
template <class Managed>
struct Holder {
  Managed managed{};
  Tensor tensor;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

template <class Managed>
void delete_holder(Managed* self) {
  if (self) delete static_cast<Holder<Managed>*>(self->manager_ctx);
}

std::string dtype_name(const DLDataType& t) {
  const char* base = "unknown";
  switch (t.code) {
    case kDLInt: base = "int"; break;
    case kDLUInt: base = "uint"; break;
    case kDLFloat: base = "float"; break;
    case kDLBfloat: base = "bfloat"; break;
    case kDLComplex: base = "complex"; break;
    case kDLBool: return t.bits == 8 ? "bool" : "bool" + std::to_string(t.bits);
    case kDLOpaqueHandle: return "opaque handle";
    default: return "DLPack type code " + std::to_string(t.code) + " (" + std::to_string(t.bits) + " bits)";
  }
  std::string s = base + std::to_string(t.bits);
  if (t.lanes != 1) s += "x" + std::to_string(t.lanes);
  return s;
}

// The dtypes pysm handles: what NumPy and torch exchange for images and tensors.
bool supported_dtype(uint8_t code, uint8_t bits, uint16_t lanes) {
  if (lanes != 1) return false;
  switch (code) {
    case kDLInt:
    case kDLUInt: return bits == 8 || bits == 16 || bits == 32 || bits == 64;
    case kDLFloat: return bits == 16 || bits == 32 || bits == 64;
    case kDLBfloat: return bits == 16;
    case kDLBool: return bits == 8;
    default: return false;
  }
}

const char* kSupportedDtypes =
    "int8/16/32/64, uint8/16/32/64, float16/32/64, bfloat16 or bool (single lane)";

template <class Managed>
void fill_dl_tensor(Holder<Managed>* h, DLTensor* dl) {
  const Tensor& t = h->tensor;
  const DType dt = t.dtype();
  if (!supported_dtype(dt.code, dt.bits, dt.lanes))
    raise(ErrorKind::Value, "cannot export a tensor of dtype " + dt.str() + " through DLPack; expected " +
                                kSupportedDtypes);
  h->shape = t.shape();
  h->strides = t.strides();
  dl->data = t.data();
  dl->device = to_dl_device(t.device());
  dl->ndim = t.ndim();
  dl->dtype = DLDataType{dt.code, dt.bits, dt.lanes};
  dl->shape = h->shape.empty() ? nullptr : h->shape.data();
  // Always pass strides: pitched surfaces need them, and DLPack 1.0 consumers accept them.
  dl->strides = h->strides.empty() ? nullptr : h->strides.data();
  dl->byte_offset = 0;
}

// Validates a producer's DLTensor and builds the pysm view; `owner` already holds the deleter.
Tensor view_of(const DLTensor& dl, std::shared_ptr<void> owner, std::string layout) {
  if (dl.ndim < 0) raise(ErrorKind::Value, "DLPack tensor has a negative ndim");
  if (!supported_dtype(dl.dtype.code, dl.dtype.bits, dl.dtype.lanes))
    raise(ErrorKind::Value, "unsupported dtype " + dtype_name(dl.dtype) + " from the DLPack producer; expected " +
                                kSupportedDtypes);
  const Device device = from_dl_device(dl.device);
  std::vector<int64_t> shape(static_cast<size_t>(dl.ndim));
  for (int i = 0; i < dl.ndim; ++i) {
    if (!dl.shape) raise(ErrorKind::Value, "DLPack tensor has ndim > 0 but no shape");
    shape[i] = dl.shape[i];
    if (shape[i] < 0) raise(ErrorKind::Value, "DLPack tensor has a negative dimension");
  }
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  std::vector<int64_t> strides;
  if (dl.strides && dl.ndim > 0) {
    strides.assign(dl.strides, dl.strides + dl.ndim);
    // An empty tensor's strides address nothing; producers report arbitrary values for them.
    for (int i = 0; i < dl.ndim && numel > 0; ++i) {
      if (strides[i] < 0)
        raise(ErrorKind::Value,
              "unsupported strides: dimension " + std::to_string(i) + " has a negative stride (a reversed "
              "view); make the array contiguous first (np.ascontiguousarray, tensor.contiguous())");
      if (strides[i] == 0 && shape[i] > 1)
        raise(ErrorKind::Value,
              "unsupported strides: dimension " + std::to_string(i) + " has a zero stride (a broadcast view); "
              "make the array contiguous first (np.ascontiguousarray, tensor.contiguous())");
    }
  } else {
    strides = contiguous_strides(shape);
  }
  auto* data = static_cast<uint8_t*>(dl.data);
  if (data) data += dl.byte_offset;
  Tensor t(std::move(owner), data, DType{dl.dtype.code, dl.dtype.bits, dl.dtype.lanes}, std::move(shape),
           std::move(strides), device, std::move(layout));
  if (!t.data() && t.numel() != 0) raise(ErrorKind::Value, "DLPack tensor has elements but a null data pointer");
  return t;
}

}  // namespace

DLDevice to_dl_device(const Device& d) {
  if (d.is_cuda()) return DLDevice{kDLCUDA, d.id};
  return DLDevice{kDLCPU, 0};
}

Device from_dl_device(const DLDevice& d) {
  switch (d.device_type) {
    case kDLCPU:
    case kDLCUDAHost:  // pinned host memory: host code reads it directly
      return Device{DeviceType::CPU, 0};
    case kDLCUDA:
    case kDLCUDAManaged:  // managed memory: kernels use it as device memory
      if (d.device_id < 0) raise(ErrorKind::Value, "DLPack CUDA tensor has a negative device id");
      return Device{DeviceType::CUDA, d.device_id};
    default:
      raise(ErrorKind::Value, "unsupported DLPack device type " + std::to_string(d.device_type) +
                                  "; expected host memory (kDLCPU=1, kDLCUDAHost=3) or CUDA memory "
                                  "(kDLCUDA=2, kDLCUDAManaged=13)");
  }
}

DLManagedTensorVersioned* export_versioned(const Tensor& t, bool read_only, bool is_copied) {
  auto h = std::make_unique<Holder<DLManagedTensorVersioned>>();
  h->tensor = t;
  fill_dl_tensor(h.get(), &h->managed.dl_tensor);
  h->managed.version = DLPackVersion{kMajorVersion, kMinorVersion};
  h->managed.flags = (read_only ? kFlagReadOnly : 0) | (is_copied ? kFlagIsCopied : 0);
  h->managed.manager_ctx = h.get();
  h->managed.deleter = &delete_holder<DLManagedTensorVersioned>;
  return &h.release()->managed;
}

DLManagedTensor* export_legacy(const Tensor& t) {
  auto h = std::make_unique<Holder<DLManagedTensor>>();
  h->tensor = t;
  fill_dl_tensor(h.get(), &h->managed.dl_tensor);
  h->managed.manager_ctx = h.get();
  h->managed.deleter = &delete_holder<DLManagedTensor>;
  return &h.release()->managed;
}

Tensor import_versioned(DLManagedTensorVersioned* m, std::string layout, bool* read_only) {
  if (!m) raise(ErrorKind::Value, "null DLPack managed tensor");
  // From here on the owner calls the producer's deleter exactly once, on success or failure.
  std::shared_ptr<void> owner(m, [](void* p) {
    auto* mt = static_cast<DLManagedTensorVersioned*>(p);
    if (mt->deleter) mt->deleter(mt);
  });
  if (m->version.major != kMajorVersion)
    raise(ErrorKind::Value, "DLPack producer uses major version " + std::to_string(m->version.major) +
                                "; pysm understands version 1.x");
  if (read_only) *read_only = (m->flags & kFlagReadOnly) != 0;
  return view_of(m->dl_tensor, std::move(owner), std::move(layout));
}

Tensor import_legacy(DLManagedTensor* m, std::string layout) {
  if (!m) raise(ErrorKind::Value, "null DLPack managed tensor");
  std::shared_ptr<void> owner(m, [](void* p) {
    auto* mt = static_cast<DLManagedTensor*>(p);
    if (mt->deleter) mt->deleter(mt);
  });
  return view_of(m->dl_tensor, std::move(owner), std::move(layout));
}

void wait_for_consumer(const Tensor& t, intptr_t stream) {
  if (!t.device().is_cuda()) return;
  if (stream == -1) return;
  if (stream == 0)
    raise(ErrorKind::Value,
          "stream=0 is ambiguous for CUDA under DLPack; pass 1 (legacy default stream), 2 (per-thread "
          "default stream), -1 (no synchronisation) or a cudaStream_t");
  if (!t.ready_event()) return;
#if PYSM_WITH_CUDA
  // The special handles 1 and 2 name the current device's default streams, so make the tensor's
  // device current while enqueuing the wait.
  cuda::DeviceScope scope(t.device().id);
  t.wait_ready(reinterpret_cast<cuda::StreamHandle>(stream));
#endif
}

}  // namespace pysm::dlpack
