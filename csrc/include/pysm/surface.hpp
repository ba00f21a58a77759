// A frame surface: one image at its native resolution and format, with a row pitch, in host or
// device memory. NV12/P016 keep the chroma plane directly after the luma plane (same pitch), so a
// surface exports as one tensor of (H*3/2, W) with strides (pitch, 1), as NVDEC and most tools expect.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "pysm/tensor.hpp"

namespace pysm {

enum class ColorFormat : int {
  Invalid = 0,
  GRAY8 = 1,
  I420 = 2,
  NV12 = 6,
  P016 = 7,  // 16-bit NV12 (10-bit content in the high bits), as NVDEC outputs for 10/12-bit
  RGBA = 19,
  BGRA = 20,
  RGB = 27,
  BGR = 28,
};

const char* color_format_name(ColorFormat f);
ColorFormat color_format_from_name(const std::string& name);  // throws Error(Value)
// Bytes per pixel of the first plane (1 for NV12/I420/GRAY8, 2 for P016, 3/4 for packed RGB).
int bytes_per_pixel(ColorFormat f);
// NV12, P016 and I420: chroma subsampled 2x2.
inline bool is_yuv420(ColorFormat f) {
  return f == ColorFormat::NV12 || f == ColorFormat::P016 || f == ColorFormat::I420;
}
// Total bytes of a surface of this format with the given pitch (bytes) and height.
size_t surface_bytes(ColorFormat f, int64_t pitch, int height);

// Colour description carried from the bitstream to colour conversion.
enum class ColorMatrix : int { BT601 = 0, BT709 = 1, BT2020 = 2 };
enum class ColorRange : int { Limited = 0, Full = 1 };

struct Surface {
  ColorFormat format = ColorFormat::Invalid;
  int width = 0;
  int height = 0;
  int64_t pitch = 0;       // bytes per row of the first plane
  Device device;
  std::shared_ptr<void> owner;  // keeps the memory alive (pool Block, decoder, DLPack producer)
  uint8_t* data = nullptr;
  int64_t pts = -1;        // presentation timestamp in ns (-1 unknown)
  ColorMatrix matrix = ColorMatrix::BT709;
  ColorRange range = ColorRange::Limited;
  std::shared_ptr<cuda::Event> ready;  // set when written asynchronously on a device stream
  bool error = false;      // decoded with errors (corrupt/missing slices): pixels may be damaged

  bool empty() const { return data == nullptr; }
  size_t bytes() const { return surface_bytes(format, pitch, height); }

  // Allocate from the pool of `device`; pitch is rounded up to `align` bytes.
  static Surface allocate(ColorFormat format, int width, int height, Device device, int align = 256);
  // The canonical tensor view (zero-copy): RGB/BGR (H,W,3), RGBA/BGRA (H,W,4), GRAY8 (H,W),
  // NV12/I420 (H*3/2, W) uint8, P016 (H*3/2, W) uint16; strides carry the pitch.
  Tensor tensor() const;
  // Wrap a tensor as a surface of `format` (inverse of tensor()); throws Error(Value) when the
  // tensor's shape/dtype/strides do not match the format.
  static Surface from_tensor(const Tensor& t, ColorFormat format);
};

}  // namespace pysm
