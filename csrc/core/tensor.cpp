#include "pysm/tensor.hpp"

#include <cstring>
#include <numeric>

#include "pysm/error.hpp"

#if PYSM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace pysm {

std::string Device::str() const {
  switch (type) {
    case DeviceType::CPU:
      return "cpu";
    case DeviceType::CUDA:
      return "cuda:" + std::to_string(id);
    case DeviceType::CUDAHost:
      return "cuda_host";
  }
  return "unknown";
}

std::string DType::str() const {
  std::string base;
  switch (code) {
    case 0: base = "int"; break;
    case 1: base = "uint"; break;
    case 2: base = "float"; break;
    case 4: base = "bfloat"; break;
    case 6: return "bool";
    default: base = "dtype" + std::to_string(code) + "_"; break;
  }
  std::string s = base + std::to_string(bits);
  if (lanes != 1) s += "x" + std::to_string(lanes);
  return s;
}

std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    st[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

Tensor::Tensor(std::shared_ptr<void> owner, void* data, DType dtype, std::vector<int64_t> shape,
               std::vector<int64_t> strides, Device device, std::string layout)
    : owner_(std::move(owner)), data_(data), dtype_(dtype), shape_(std::move(shape)),
      strides_(std::move(strides)), device_(device), layout_(std::move(layout)) {
  if (strides_.empty()) strides_ = contiguous_strides(shape_);
  if (strides_.size() != shape_.size())
    raise(ErrorKind::Value, "tensor strides have " + std::to_string(strides_.size()) + " entries for " +
                                std::to_string(shape_.size()) + " dimensions");
  for (auto d : shape_)
    if (d < 0) raise(ErrorKind::Value, "tensor shape has a negative dimension");
}

Tensor Tensor::empty(const std::vector<int64_t>& shape, DType dtype, Device device, std::string layout) {
  size_t n = dtype.itemsize();
  for (auto d : shape) {
    if (d < 0) raise(ErrorKind::Value, "tensor shape has a negative dimension");
    n *= static_cast<size_t>(d);
  }
  BlockPtr block = device.is_cuda() ? MemoryPool::device(device.id).allocate(n) : MemoryPool::host().allocate(n);
  // Pinned host memory is still host memory: report it as CPU so NumPy and torch accept it.
  Device actual = device.is_cuda() ? device : Device{DeviceType::CPU, 0};
  void* data = block->data();
  return Tensor(std::static_pointer_cast<void>(block), data, dtype, shape, contiguous_strides(shape), actual,
                std::move(layout));
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (auto d : shape_) n *= d;
  return n;
}

size_t Tensor::nbytes() const { return static_cast<size_t>(numel()) * dtype_.itemsize(); }

bool Tensor::is_contiguous() const { return strides_ == contiguous_strides(shape_); }

size_t Tensor::span_bytes() const {
  if (numel() == 0) return 0;
  int64_t last = 0;
  for (size_t i = 0; i < shape_.size(); ++i) last += (shape_[i] - 1) * strides_[i];
  return static_cast<size_t>(last + 1) * dtype_.itemsize();
}

void Tensor::mark_written(cuda::StreamHandle stream) {
  if (!device_.is_cuda() || stream == nullptr) return;
  auto ev = std::make_shared<cuda::Event>(device_.id);
  ev->record(stream);
  ready_ = std::move(ev);
  record_stream_use(owner_, stream);
}

void Tensor::wait_ready(cuda::StreamHandle stream) const {
  if (ready_) ready_->wait(stream);
}

void Tensor::synchronize() const {
  if (ready_) ready_->synchronize();
}

namespace {

// Describe a tensor as rows of contiguous bytes: (rows, row_bytes, pitch_bytes).
// Works when all dims but the outermost "row" dims are contiguous and rows are evenly strided.
bool as_2d(const Tensor& t, int64_t* rows, int64_t* row_bytes, int64_t* pitch) {
  const auto& sh = t.shape();
  const auto& st = t.strides();
  const int64_t item = static_cast<int64_t>(t.dtype().itemsize());
  if (sh.empty()) {
    *rows = 1; *row_bytes = item; *pitch = item;
    return true;
  }
  // Find the innermost run of contiguous dims.
  int k = static_cast<int>(sh.size()) - 1;
  int64_t expect = 1;
  while (k >= 0 && (st[k] == expect || sh[k] == 1)) {
    expect *= sh[k];
    --k;
  }
  if (k < 0) {
    *rows = 1; *row_bytes = expect * item; *pitch = *row_bytes;
    return true;
  }
  // Dims 0..k must collapse into one evenly strided row dimension.
  int64_t r = sh[k];
  int64_t p = st[k];
  for (int i = k - 1; i >= 0; --i) {
    if (sh[i] == 1) continue;
    if (st[i] != st[i + 1] * sh[i + 1]) return false;
    r *= sh[i];
  }
  *rows = r;
  *row_bytes = expect * item;
  *pitch = p * item;
  return *pitch >= *row_bytes;
}

}  // namespace

void copy_tensor(const Tensor& src, Tensor& dst, cuda::StreamHandle stream) {
  if (src.shape() != dst.shape() || src.dtype() != dst.dtype())
    raise(ErrorKind::Value, "copy_tensor: shape/dtype mismatch");
  if (src.numel() == 0) return;
  int64_t sr, sb, sp, dr, db, dp;
  if (!as_2d(src, &sr, &sb, &sp) || !as_2d(dst, &dr, &db, &dp) || sr * sb != dr * db)
    raise(ErrorKind::Value,
          "unsupported strides for copy: only tensors whose inner dimensions are contiguous and whose "
          "rows are evenly pitched can be copied; make the source contiguous first");
  // Rows may be split differently (e.g. one contiguous block vs pitched rows): normalise to the
  // pitched side's row size.
  if (sb != db) {
    if (sp == sb) { sr = dr; sb = db; sp = db; }
    else if (dp == db) { dr = sr; db = sb; dp = sb; }
    else raise(ErrorKind::Value, "unsupported strides for copy between two differently pitched tensors");
  }
  const bool any_device = src.device().is_cuda() || dst.device().is_cuda();
  if (!any_device) {
    auto* s = static_cast<const uint8_t*>(src.data());
    auto* d = static_cast<uint8_t*>(dst.data());
    if (sp == sb && dp == db) {
      std::memcpy(d, s, static_cast<size_t>(sr * sb));
    } else {
      for (int64_t r = 0; r < sr; ++r) std::memcpy(d + r * dp, s + r * sp, static_cast<size_t>(sb));
    }
    return;
  }
#if PYSM_WITH_CUDA
  // Run on the destination's device when it is a GPU, so that its ready event and stream match.
  int dev = dst.device().is_cuda() ? dst.device().id : src.device().id;
  cuda::DeviceScope scope(dev);  // pinned blocks' events are made on the current device
  cuda::StreamHandle s = stream ? stream : cuda::default_stream(dev);
  src.wait_ready(s);
  record_stream_use(src.owner(), s, dev);  // the source must not be reused before the copy has read it
  cuda::check(cudaMemcpy2DAsync(dst.data(), static_cast<size_t>(dp), src.data(), static_cast<size_t>(sp),
                                static_cast<size_t>(sb), static_cast<size_t>(sr), cudaMemcpyDefault,
                                static_cast<cudaStream_t>(s)),
              "cudaMemcpy2DAsync");
  if (dst.device().is_cuda()) {
    dst.mark_written(s);
  } else {
    // The host reads right after: wait for this stream only (never the whole device).
    cuda::synchronize(s, dev);
  }
#else
  (void)stream;
  raise(ErrorKind::Cuda, "pysm was built without CUDA");
#endif
}

Tensor Tensor::clone(cuda::StreamHandle stream) const { return to(device_, stream); }

Tensor Tensor::to(Device device, cuda::StreamHandle stream) const {
  Device target = device;
  if (target.type == DeviceType::CUDAHost) target.type = DeviceType::CPU;
  Tensor out = Tensor::empty(shape_, dtype_, target, layout_);
  copy_tensor(*this, out, stream);
  return out;
}

}  // namespace pysm
