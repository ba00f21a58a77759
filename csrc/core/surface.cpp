#include "pysm/surface.hpp"

#include "pysm/error.hpp"

namespace pysm {

const char* color_format_name(ColorFormat f) {
  switch (f) {
    case ColorFormat::GRAY8: return "GRAY8";
    case ColorFormat::I420: return "I420";
    case ColorFormat::NV12: return "NV12";
    case ColorFormat::P016: return "P016";
    case ColorFormat::RGBA: return "RGBA";
    case ColorFormat::BGRA: return "BGRA";
    case ColorFormat::RGB: return "RGB";
    case ColorFormat::BGR: return "BGR";
    default: return "INVALID";
  }
}

ColorFormat color_format_from_name(const std::string& n) {
  for (ColorFormat f : {ColorFormat::GRAY8, ColorFormat::I420, ColorFormat::NV12, ColorFormat::P016,
                        ColorFormat::RGBA, ColorFormat::BGRA, ColorFormat::RGB, ColorFormat::BGR})
    if (n == color_format_name(f)) return f;
  if (n == "P010") return ColorFormat::P016;
  raise(ErrorKind::Value, "unknown colour format '" + n + "'; expected one of GRAY8, I420, NV12, P016, RGB, BGR, RGBA, BGRA");
}

int bytes_per_pixel(ColorFormat f) {
  switch (f) {
    case ColorFormat::P016: return 2;
    case ColorFormat::RGB:
    case ColorFormat::BGR: return 3;
    case ColorFormat::RGBA:
    case ColorFormat::BGRA: return 4;
    default: return 1;
  }
}

static int64_t plane_rows(ColorFormat f, int height) {
  switch (f) {
    case ColorFormat::NV12:
    case ColorFormat::P016:
    case ColorFormat::I420: return height + (height + 1) / 2;
    default: return height;
  }
}

size_t surface_bytes(ColorFormat f, int64_t pitch, int height) {
  return static_cast<size_t>(pitch * plane_rows(f, height));
}

Surface Surface::allocate(ColorFormat format, int width, int height, Device device, int align) {
  if (width <= 0 || height <= 0)
    raise(ErrorKind::Value, "surface size must be positive, got " + std::to_string(width) + "x" + std::to_string(height));
  if (format == ColorFormat::Invalid) raise(ErrorKind::Value, "surface format is invalid");
  Surface s;
  s.format = format;
  s.width = width;
  s.height = height;
  // 4:2:0 chroma rows hold ceil(W/2) sample pairs: W + 1 bytes when W is odd.
  const int64_t row = int64_t(is_yuv420(format) ? (width + 1) & ~1 : width) * bytes_per_pixel(format);
  s.pitch = (row + align - 1) / align * align;
  BlockPtr block = device.is_cuda() ? MemoryPool::device(device.id).allocate(s.bytes())
                                    : MemoryPool::host().allocate(s.bytes());
  s.device = device.is_cuda() ? device : Device{DeviceType::CPU, 0};
  s.data = static_cast<uint8_t*>(block->data());
  s.owner = std::static_pointer_cast<void>(block);
  return s;
}

Tensor Surface::tensor() const {
  if (empty()) raise(ErrorKind::Value, "the surface is empty");
  const int bpp = bytes_per_pixel(format);
  Tensor t;
  switch (format) {
    case ColorFormat::RGB:
    case ColorFormat::BGR:
    case ColorFormat::RGBA:
    case ColorFormat::BGRA:
      t = Tensor(owner, data, DType::u8(), {height, width, bpp}, {pitch, bpp, 1}, device, "HWC");
      break;
    case ColorFormat::GRAY8:
      t = Tensor(owner, data, DType::u8(), {height, width}, {pitch, 1}, device, "HW");
      break;
    case ColorFormat::NV12:
    case ColorFormat::I420:
      t = Tensor(owner, data, DType::u8(), {plane_rows(format, height), width}, {pitch, 1}, device,
                 color_format_name(format));
      break;
    case ColorFormat::P016:
      if (pitch % 2) raise(ErrorKind::Value, "P016 surface pitch must be even");
      t = Tensor(owner, data, DType::u16(), {plane_rows(format, height), width}, {pitch / 2, 1}, device, "P016");
      break;
    default:
      raise(ErrorKind::Value, "cannot view a surface of format INVALID as a tensor");
  }
  t.set_ready_event(ready);
  return t;
}

Surface Surface::from_tensor(const Tensor& t, ColorFormat format) {
  const auto& sh = t.shape();
  const auto& st = t.strides();
  const std::string fname = color_format_name(format);
  Surface s;
  s.format = format;
  s.device = t.device();
  s.owner = t.owner();
  s.data = static_cast<uint8_t*>(t.data());
  s.ready = t.ready_event();
  const int bpp = bytes_per_pixel(format);
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) raise(ErrorKind::Value, "cannot wrap tensor of shape/strides as " + fname + ": expected " + what);
  };
  switch (format) {
    case ColorFormat::RGB:
    case ColorFormat::BGR:
    case ColorFormat::RGBA:
    case ColorFormat::BGRA:
      expect(t.dtype() == DType::u8() && sh.size() == 3 && sh[2] == bpp && st[2] == 1 && st[1] == bpp,
             "uint8 HWC with " + std::to_string(bpp) + " channels and packed pixels");
      s.height = static_cast<int>(sh[0]);
      s.width = static_cast<int>(sh[1]);
      s.pitch = st[0];
      break;
    case ColorFormat::GRAY8:
      expect(t.dtype() == DType::u8() && sh.size() == 2 && st[1] == 1, "uint8 (H, W)");
      s.height = static_cast<int>(sh[0]);
      s.width = static_cast<int>(sh[1]);
      s.pitch = st[0];
      break;
    case ColorFormat::NV12:
    case ColorFormat::I420:
    case ColorFormat::P016: {
      const DType dt = format == ColorFormat::P016 ? DType::u16() : DType::u8();
      expect(t.dtype() == dt && sh.size() == 2 && st[1] == 1 && sh[0] % 3 == 0,
             std::string(format == ColorFormat::P016 ? "uint16" : "uint8") + " (H*3/2, W) with H even");
      // An odd-width view has no room for the last chroma pair: readers would sample the pitch
      // padding (uninitialised memory) at the right edge.
      expect(sh[1] % 2 == 0, "an even width, got odd width " + std::to_string(sh[1]) + " (pad the frame to an even width first)");
      s.height = static_cast<int>(sh[0] * 2 / 3);
      s.width = static_cast<int>(sh[1]);
      s.pitch = st[0] * static_cast<int64_t>(dt.itemsize());
      break;
    }
    default:
      raise(ErrorKind::Value, "cannot wrap a tensor as an INVALID surface");
  }
  expect(s.pitch >= int64_t(s.width) * bpp, "row stride >= width * bytes per pixel");
  return s;
}

}  // namespace pysm
