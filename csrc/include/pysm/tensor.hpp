// Tensor: the zero-copy exchange type of the core. It references memory it may not own
// (a pool Block, a DLPack producer, a decoder surface) through `owner`, which keeps that memory
// alive. Strides are in elements, as DLPack has them. A device tensor may carry `ready`: an event
// recorded after the write that produced it; consumers make their stream wait on it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pysm/cuda.hpp"
#include "pysm/memory.hpp"

namespace pysm {

// DLPack device type codes.
enum class DeviceType : int32_t { CPU = 1, CUDA = 2, CUDAHost = 3 };

struct Device {
  DeviceType type = DeviceType::CPU;
  int32_t id = 0;
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool host_accessible() const { return type != DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && id == o.id; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;
};

// DLPack data type (code: 0 int, 1 uint, 2 float, 4 bfloat, 6 bool).
struct DType {
  uint8_t code = 1;
  uint8_t bits = 8;
  uint16_t lanes = 1;
  size_t itemsize() const { return (size_t(bits) * lanes + 7) / 8; }
  bool operator==(const DType& o) const { return code == o.code && bits == o.bits && lanes == o.lanes; }
  bool operator!=(const DType& o) const { return !(*this == o); }
  std::string str() const;  // "uint8", "float32", ...
  static DType u8() { return {1, 8, 1}; }
  static DType u16() { return {1, 16, 1}; }
  static DType i32() { return {0, 32, 1}; }
  static DType i64() { return {0, 64, 1}; }
  static DType f16() { return {2, 16, 1}; }
  static DType f32() { return {2, 32, 1}; }
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(std::shared_ptr<void> owner, void* data, DType dtype, std::vector<int64_t> shape,
         std::vector<int64_t> strides, Device device, std::string layout = "");

  // A new contiguous tensor from the pool of `device` (pinned host pool for CPU when CUDA exists).
  static Tensor empty(const std::vector<int64_t>& shape, DType dtype, Device device, std::string layout = "");

  bool defined() const { return data_ != nullptr || (numel() == 0 && !shape_.empty()); }
  void* data() const { return data_; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  const std::vector<int64_t>& strides() const { return strides_; }
  int ndim() const { return static_cast<int>(shape_.size()); }
  Device device() const { return device_; }
  const std::string& layout() const { return layout_; }
  void set_layout(std::string l) { layout_ = std::move(l); }
  const std::shared_ptr<void>& owner() const { return owner_; }
  int64_t numel() const;
  size_t nbytes() const;  // numel * itemsize
  bool is_contiguous() const;
  // Byte span from data() to one past the last element (for pitched tensors: includes padding).
  size_t span_bytes() const;

  // Readiness: producers call mark_written(stream) after enqueueing the write;
  // consumers call wait_ready(their_stream) before reading. No-op for host tensors.
  void mark_written(cuda::StreamHandle stream);
  void wait_ready(cuda::StreamHandle stream) const;
  void synchronize() const;  // host waits for the producer's event
  const std::shared_ptr<cuda::Event>& ready_event() const { return ready_; }
  void set_ready_event(std::shared_ptr<cuda::Event> e) { ready_ = std::move(e); }

  // A contiguous deep copy on `device` (default: same device). Honors pitched strides.
  Tensor clone(cuda::StreamHandle stream = nullptr) const;
  Tensor to(Device device, cuda::StreamHandle stream = nullptr) const;

 private:
  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  DType dtype_;
  std::vector<int64_t> shape_;
  std::vector<int64_t> strides_;
  Device device_;
  std::string layout_;
  std::shared_ptr<cuda::Event> ready_;
};

// Contiguous strides (elements) for a shape.
std::vector<int64_t> contiguous_strides(const std::vector<int64_t>& shape);

// Copy between tensors of the same shape and dtype on any devices (2-D pitched copies where
// the layout allows; throws Error(Value) for strides it cannot express as a 2-D copy).
void copy_tensor(const Tensor& src, Tensor& dst, cuda::StreamHandle stream = nullptr);

}  // namespace pysm
