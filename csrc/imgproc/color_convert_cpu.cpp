// CPU twin of color_convert_cuda.cu: the reference implementation the GPU kernel is tested against.
#include <cmath>
#include <cstring>

#include "pysm/color_convert.hpp"
#include "pysm/error.hpp"

namespace pysm::imgproc {
namespace {

inline uint8_t to_u8(float x) {
  x = std::floor(x + 0.5f);
  return static_cast<uint8_t>(x < 0.f ? 0.f : (x > 255.f ? 255.f : x));
}

// Channel positions of R, G, B (and alpha, -1 if none) per output format.
struct Layout {
  int r, g, b, a, n;
};
Layout layout_of(ColorFormat f) {
  switch (f) {
    case ColorFormat::RGB: return {0, 1, 2, -1, 3};
    case ColorFormat::BGR: return {2, 1, 0, -1, 3};
    case ColorFormat::RGBA: return {0, 1, 2, 3, 4};
    default: return {2, 1, 0, 3, 4};  // BGRA
  }
}

template <typename T>
void convert(const Surface& src, Surface& dst, const YuvToRgb& c) {
  const Layout L = layout_of(dst.format);
  const uint8_t* base = src.data;
  const uint8_t* chroma = base + src.pitch * src.height;
  for (int y = 0; y < src.height; ++y) {
    const T* yr = reinterpret_cast<const T*>(base + src.pitch * y);
    const T* cr = reinterpret_cast<const T*>(chroma + src.pitch * (y / 2));
    uint8_t* o = dst.data + dst.pitch * y;
    for (int x = 0; x < src.width; ++x, o += L.n) {
      const float Y = static_cast<float>(yr[x]);
      const float U = static_cast<float>(cr[(x / 2) * 2]);
      const float V = static_cast<float>(cr[(x / 2) * 2 + 1]);
      o[L.r] = to_u8(c.m[0][0] * Y + c.m[0][1] * U + c.m[0][2] * V + c.m[0][3]);
      o[L.g] = to_u8(c.m[1][0] * Y + c.m[1][1] * U + c.m[1][2] * V + c.m[1][3]);
      o[L.b] = to_u8(c.m[2][0] * Y + c.m[2][1] * U + c.m[2][2] * V + c.m[2][3]);
      if (L.a >= 0) o[L.a] = 255;
    }
  }
}

}  // namespace

void convert_yuv_to_rgb_cpu(const Surface& src, Surface& dst, ColorMatrix matrix, ColorRange range) {
  if (!src.device.host_accessible() || !dst.device.host_accessible())
    raise(ErrorKind::Value, "convert_yuv_to_rgb_cpu needs host surfaces");
  if (src.width != dst.width || src.height != dst.height)
    raise(ErrorKind::Value, "colour conversion source and destination sizes differ");
  if (src.ready) src.ready->synchronize();
  const bool p16 = src.format == ColorFormat::P016;
  const YuvToRgb c = yuv_to_rgb_coefficients(matrix, range, p16);
  if (p16)
    convert<uint16_t>(src, dst, c);
  else
    convert<uint8_t>(src, dst, c);
}

Surface pack_yuv420_cpu(const uint8_t* y, int64_t ys, const uint8_t* u, int64_t us, const uint8_t* v,
                        int64_t vs, int width, int height, int bit_depth) {
  if (bit_depth < 8 || bit_depth > 16) raise(ErrorKind::Value, "bit depth must be 8..16");
  const bool wide = bit_depth > 8;
  Surface s = Surface::allocate(wide ? ColorFormat::P016 : ColorFormat::NV12, width, height,
                                Device{DeviceType::CPU, 0});
  const int cw = (width + 1) / 2, ch = (height + 1) / 2;
  uint8_t* dst_c = s.data + s.pitch * height;
  if (!wide) {
    for (int r = 0; r < height; ++r) std::memcpy(s.data + s.pitch * r, y + ys * r, static_cast<size_t>(width));
    for (int r = 0; r < ch; ++r) {
      uint8_t* o = dst_c + s.pitch * r;
      if (!v) {
        std::memcpy(o, u + us * r, static_cast<size_t>(cw) * 2);
        continue;
      }
      const uint8_t* ur = u + us * r;
      const uint8_t* vr = v + vs * r;
      for (int x = 0; x < cw; ++x) {
        o[2 * x] = ur[x];
        o[2 * x + 1] = vr[x];
      }
    }
    return s;
  }
  // 16-bit containers: LSB-aligned yuv420pNN samples move to the MSBs (as NVDEC's P016 has them);
  // semi-planar P010-style input is already MSB-aligned.
  const int shift = v ? 16 - bit_depth : 0;
  for (int r = 0; r < height; ++r) {
    const uint16_t* in = reinterpret_cast<const uint16_t*>(y + ys * r);
    uint16_t* o = reinterpret_cast<uint16_t*>(s.data + s.pitch * r);
    for (int x = 0; x < width; ++x) o[x] = static_cast<uint16_t>(in[x] << shift);
  }
  for (int r = 0; r < ch; ++r) {
    uint16_t* o = reinterpret_cast<uint16_t*>(dst_c + s.pitch * r);
    if (!v) {
      std::memcpy(o, u + us * r, static_cast<size_t>(cw) * 4);
      continue;
    }
    const uint16_t* ur = reinterpret_cast<const uint16_t*>(u + us * r);
    const uint16_t* vr = reinterpret_cast<const uint16_t*>(v + vs * r);
    for (int x = 0; x < cw; ++x) {
      o[2 * x] = static_cast<uint16_t>(ur[x] << shift);
      o[2 * x + 1] = static_cast<uint16_t>(vr[x] << shift);
    }
  }
  return s;
}

}  // namespace pysm::imgproc
