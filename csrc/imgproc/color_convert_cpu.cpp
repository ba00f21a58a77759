// CPU twin of color_convert_cuda.cu: the reference the GPU kernel is tested against, and the
// conversion of host frames (CPU decode). Both evaluate each channel as ((c0*Y + c1*Cb) + c2*Cr) + c3
// in float, in that order and with no fused multiply-add (CMake builds the core with
// -ffp-contract=off), then round half up and saturate.
#include <cstring>
#include <vector>

#include "pysm/color_convert.hpp"
#include "pysm/error.hpp"
#include "pysm/host_device.hpp"

// SIMD clones (PYSM_SIMD_CLONES): a 1080p frame to RGB took 4.4 ms with the x86-64 baseline (SSE2),
// 1.9 with AVX2 and 1.7 with AVX-512 on an EPYC (the pixel-at-a-time loop before them: 20 ms).

namespace pysm::imgproc {
namespace {

// floor(x + 0.5) clamped to 0..255, written so that it vectorises: floorf is a libm call before
// SSE4.1, and for v >= 0 truncation is the floor, so clamping first gives the same byte.
inline uint32_t to_u8(float x) {
  float v = x + 0.5f;
  v = v > 0.f ? v : 0.f;
  v = v < 255.f ? v : 255.f;
  return static_cast<uint32_t>(static_cast<int>(v));
}

// Shift that puts a byte at position `at` of a pixel held in a 32-bit word in memory order.
constexpr int byte_shift(int at) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return 8 * (3 - at);
#else
  return 8 * at;
#endif
}

// One row of pixels as 32-bit words (R, G, B and alpha at their byte positions), a pair of
// columns per step since they share a chroma sample: computing a word per pixel vectorises
// cleanly, where storing three or four interleaved bytes does not (3x slower).
template <typename T, int R, int G, int B>
PYSM_SIMD_CLONES void row_words(const T* __restrict yr, const T* __restrict cr, int width, const YuvToRgb& c,
                                uint32_t* __restrict out) {
  const float r0 = c.m[0][0], g0 = c.m[1][0], b0 = c.m[2][0];
  const float r1 = c.m[0][1], g1 = c.m[1][1], b1 = c.m[2][1];
  const float r2 = c.m[0][2], g2 = c.m[1][2], b2 = c.m[2][2];
  const float r3 = c.m[0][3], g3 = c.m[1][3], b3 = c.m[2][3];
  constexpr uint32_t alpha = 255u << byte_shift(3);  // a 3-byte layout drops the fourth byte
  auto word = [&](float Y, float ur, float ug, float ub, float vr, float vg, float vb) {
    return to_u8(((r0 * Y + ur) + vr) + r3) << byte_shift(R) | to_u8(((g0 * Y + ug) + vg) + g3) << byte_shift(G) |
           to_u8(((b0 * Y + ub) + vb) + b3) << byte_shift(B) | alpha;
  };
  const int pairs = width / 2;
  for (int i = 0; i < pairs; ++i) {
    const float U = static_cast<float>(cr[2 * i]), V = static_cast<float>(cr[2 * i + 1]);
    const float ur = r1 * U, ug = g1 * U, ub = b1 * U, vr = r2 * V, vg = g2 * V, vb = b2 * V;
    out[2 * i] = word(static_cast<float>(yr[2 * i]), ur, ug, ub, vr, vg, vb);
    out[2 * i + 1] = word(static_cast<float>(yr[2 * i + 1]), ur, ug, ub, vr, vg, vb);
  }
  if (width % 2) {
    const float U = static_cast<float>(cr[2 * pairs]), V = static_cast<float>(cr[2 * pairs + 1]);
    out[2 * pairs] = word(static_cast<float>(yr[2 * pairs]), r1 * U, g1 * U, b1 * U, r2 * V, g2 * V, b2 * V);
  }
}

// Three bytes of each word (vectorised as byte shuffles).
PYSM_SIMD_CLONES void pack_three(const uint8_t* __restrict words, int width, uint8_t* __restrict o) {
  for (int x = 0; x < width; ++x) {
    o[3 * x] = words[4 * x];
    o[3 * x + 1] = words[4 * x + 1];
    o[3 * x + 2] = words[4 * x + 2];
  }
}

template <typename T, int R, int G, int B, int N>
void convert(const Surface& src, Surface& dst, const YuvToRgb& c) {
  if (src.width <= 0 || src.height <= 0) return;
  std::vector<uint32_t> words(static_cast<size_t>(src.width));
  const uint8_t* chroma = src.data + src.pitch * src.height;
  for (int y = 0; y < src.height; ++y) {
    row_words<T, R, G, B>(reinterpret_cast<const T*>(src.data + src.pitch * y),
                          reinterpret_cast<const T*>(chroma + src.pitch * (y / 2)), src.width, c, words.data());
    uint8_t* o = dst.data + dst.pitch * y;
    if constexpr (N == 4)
      std::memcpy(o, words.data(), static_cast<size_t>(src.width) * 4);
    else
      pack_three(reinterpret_cast<const uint8_t*>(words.data()), src.width, o);
  }
}

template <typename T>
void convert_to(const Surface& src, Surface& dst, const YuvToRgb& c) {
  switch (dst.format) {
    case ColorFormat::RGB: return convert<T, 0, 1, 2, 3>(src, dst, c);
    case ColorFormat::BGR: return convert<T, 2, 1, 0, 3>(src, dst, c);
    case ColorFormat::RGBA: return convert<T, 0, 1, 2, 4>(src, dst, c);
    case ColorFormat::BGRA: return convert<T, 2, 1, 0, 4>(src, dst, c);
    default: raise(ErrorKind::Value, std::string("cannot convert to ") + color_format_name(dst.format));
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
    convert_to<uint16_t>(src, dst, c);
  else
    convert_to<uint8_t>(src, dst, c);
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
