// Per-pixel math of batch preprocessing, shared verbatim by the CPU twin and the CUDA kernel so
// both compute the same thing: fetch a source pixel as RGB (or luma) in 0..255, bilinear
// interpolation at pixel centres (cv2 INTER_LINEAR convention), letterbox fill, normalisation.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "pysm/bilinear.hpp"
#include "pysm/host_device.hpp"

namespace pysm::infer::detail {

// Source formats understood by the kernel (values of pysm::ColorFormat).
enum : int { F_GRAY8 = 1, F_NV12 = 6, F_P016 = 7, F_RGBA = 19, F_BGRA = 20, F_RGB = 27, F_BGR = 28 };

// One item of the batch, a plain struct copied to the device as is.
struct PreItem {
  const uint8_t* data;
  int64_t pitch;
  int format, width, height;
  int matrix, range;  // ColorMatrix, ColorRange
  int crop_x, crop_y, crop_w, crop_h;
  int pad_x, pad_y, scaled_w, scaled_h;
  float sx, sy;
  int valid;
};

// Batch-wide constants (passed by value to the kernel).
struct PreConst {
  int W, H, C;
  int color;  // NetworkColor
  int order;  // TensorOrder
  int filter; // ScalingFilter
  float scale;
  float off[3];
  float pad[3];
};

PYSM_HD float fabsf_(float v) { return v < 0.f ? -v : v; }

PYSM_HD float ffloor(float v) {
#if defined(__CUDA_ARCH__)
  return floorf(v);
#else
  return std::floor(v);
#endif
}

PYSM_HD float clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

// YUV (0..255 scale) -> RGB with the frame's matrix and range; result clamped to 0..255.
PYSM_HD void yuv_to_rgb(float y, float u, float v, int matrix, int range, float* rgb) {
  float yy, cb, cr;
  if (range == 1) {  // full
    yy = y;
    cb = u - 128.f;
    cr = v - 128.f;
  } else {  // limited (studio) range
    yy = (y - 16.f) * (255.f / 219.f);
    cb = (u - 128.f) * (255.f / 224.f);
    cr = (v - 128.f) * (255.f / 224.f);
  }
  float kr_v, kg_u, kg_v, kb_u;
  if (matrix == 0) {  // BT.601
    kr_v = 1.402f; kg_u = 0.344136f; kg_v = 0.714136f; kb_u = 1.772f;
  } else if (matrix == 2) {  // BT.2020
    kr_v = 1.4746f; kg_u = 0.164553f; kg_v = 0.571353f; kb_u = 1.8814f;
  } else {  // BT.709
    kr_v = 1.5748f; kg_u = 0.187324f; kg_v = 0.468124f; kb_u = 1.8556f;
  }
  rgb[0] = clampf(yy + kr_v * cr, 0.f, 255.f);
  rgb[1] = clampf(yy - kg_u * cb - kg_v * cr, 0.f, 255.f);
  rgb[2] = clampf(yy + kb_u * cb, 0.f, 255.f);
}

// Source pixel (x, y) as RGB in 0..255; for GRAY output only px[0] (luma) is used.
// YUV luma for GRAY output is the raw Y sample, as DeepStream's GRAY8 conversion takes the Y plane.
// `Format`: the source format when the caller knows it at compile time (the CPU twin's loops, where
// the switch then folds away), or -1 to read it from the item.
template <int Format = -1>
PYSM_HD void fetch(const PreItem& it, int x, int y, bool gray, float* px) {
  const uint8_t* row = it.data + static_cast<int64_t>(y) * it.pitch;
  const int format = Format >= 0 ? Format : it.format;
  switch (format) {
    case F_NV12:
    case F_P016: {
      const bool wide = format == F_P016;
      const uint8_t* crow = it.data + (static_cast<int64_t>(it.height) + y / 2) * it.pitch;
      float Y, U, V;
      if (wide) {
        Y = reinterpret_cast<const uint16_t*>(row)[x] * (1.f / 256.f);
        U = reinterpret_cast<const uint16_t*>(crow)[(x / 2) * 2] * (1.f / 256.f);
        V = reinterpret_cast<const uint16_t*>(crow)[(x / 2) * 2 + 1] * (1.f / 256.f);
      } else {
        Y = row[x];
        U = crow[(x / 2) * 2];
        V = crow[(x / 2) * 2 + 1];
      }
      if (gray) {
        px[0] = Y;
        return;
      }
      yuv_to_rgb(Y, U, V, it.matrix, it.range, px);
      return;
    }
    case F_GRAY8:
      px[0] = px[1] = px[2] = row[x];
      return;
    default: {
      const int bpp = (format == F_RGBA || format == F_BGRA) ? 4 : 3;
      const uint8_t* p = row + static_cast<int64_t>(x) * bpp;
      const bool bgr = format == F_BGR || format == F_BGRA;
      px[0] = bgr ? p[2] : p[0];
      px[1] = p[1];
      px[2] = bgr ? p[0] : p[2];
      if (gray) px[0] = 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
      return;
    }
  }
}

PYSM_HD void bilinear(const PreItem& it, int lx, int ly, float xmax, float ymax, bool gray, float* v);

// Channel order and normalisation of an interpolated pixel `v` (RGB, or luma for GRAY).
PYSM_HD void finish_pixel(const PreConst& k, const float* v, float* out) {
  if (k.C == 1) {
    out[0] = k.scale * (v[0] - k.off[0]);
    return;
  }
  const bool bgr = k.color == 1;
  out[0] = k.scale * ((bgr ? v[2] : v[0]) - k.off[0]);
  out[1] = k.scale * (v[1] - k.off[1]);
  out[2] = k.scale * ((bgr ? v[0] : v[2]) - k.off[2]);
}

// The bilinear taps of network column `lx` (or row: pass crop_y, sy, ymax) at pixel centres, the
// coordinate clamped to the crop: they depend on the column (row) alone.
PYSM_HD void bilinear_taps(int crop_lo, float scale, float max, int l, int* i0, int* i1, float* w) {
  using pysm::detail::add_rn;
  using pysm::detail::mul_rn;
  using pysm::detail::sub_rn;
  pysm::detail::clamp_taps(sub_rn(add_rn(float(crop_lo), mul_rn(add_rn(float(l), 0.5f), scale)), 0.5f), crop_lo,
                           static_cast<int>(max), i0, i1, w);
}

// The bilinear blend of the four source pixels around a sample, from its taps.
template <int Format = -1>
PYSM_HD void bilinear_blend(const PreItem& it, int x0, int x1, float ax, int y0, int y1, float ay, bool gray,
                            float* v) {
  float p00[3], p01[3], p10[3], p11[3];
  fetch<Format>(it, x0, y0, gray, p00);
  fetch<Format>(it, x1, y0, gray, p01);
  fetch<Format>(it, x0, y1, gray, p10);
  fetch<Format>(it, x1, y1, gray, p11);
  const int n = gray ? 1 : 3;
  for (int c = 0; c < n; ++c) v[c] = pysm::detail::lerp2(p00[c], p01[c], p10[c], p11[c], ax, ay);
}

// Network pixel (nx, ny) of item `it`: C values, already normalised.
PYSM_HD void compute_pixel(const PreItem& it, const PreConst& k, int nx, int ny, float* out) {
  const bool gray = k.C == 1;
  float v[3] = {0.f, 0.f, 0.f};
  const int lx = nx - it.pad_x, ly = ny - it.pad_y;
  if (!it.valid || lx < 0 || ly < 0 || lx >= it.scaled_w || ly >= it.scaled_h) {
    for (int c = 0; c < k.C; ++c) out[c] = k.scale * (k.pad[c] - k.off[c]);
    return;
  }
  const float xmax = static_cast<float>(it.crop_x + it.crop_w - 1);
  const float ymax = static_cast<float>(it.crop_y + it.crop_h - 1);
  const int n = gray ? 1 : 3;
  if (k.filter == 0) {  // nearest: the source pixel under the network pixel's centre
    const int x = static_cast<int>(clampf(ffloor(it.crop_x + (lx + 0.5f) * it.sx), float(it.crop_x), xmax));
    const int y = static_cast<int>(clampf(ffloor(it.crop_y + (ly + 0.5f) * it.sy), float(it.crop_y), ymax));
    fetch(it, x, y, gray, v);
  } else if (k.filter == 2 && (it.sx > 1.f || it.sy > 1.f)) {
    // Tent filter of radius max(1, scale) around the sample centre; taps outside the crop are
    // clamped to its edge, weights normalised.
    const float rx = it.sx > 1.f ? it.sx : 1.f, ry = it.sy > 1.f ? it.sy : 1.f;
    const float cx = it.crop_x + (lx + 0.5f) * it.sx - 0.5f, cy = it.crop_y + (ly + 0.5f) * it.sy - 0.5f;
    const int x_lo = static_cast<int>(ffloor(cx - rx)) + 1, x_hi = static_cast<int>(ffloor(cx + rx));
    const int y_lo = static_cast<int>(ffloor(cy - ry)) + 1, y_hi = static_cast<int>(ffloor(cy + ry));
    float acc[3] = {0.f, 0.f, 0.f}, wsum = 0.f, px[3];
    for (int yy = y_lo; yy <= y_hi; ++yy) {
      const float wy = 1.f - fabsf_(static_cast<float>(yy) - cy) / ry;
      if (wy <= 0.f) continue;
      const int sy = static_cast<int>(clampf(static_cast<float>(yy), float(it.crop_y), ymax));
      for (int xx = x_lo; xx <= x_hi; ++xx) {
        const float wx = 1.f - fabsf_(static_cast<float>(xx) - cx) / rx;
        if (wx <= 0.f) continue;
        const int sx = static_cast<int>(clampf(static_cast<float>(xx), float(it.crop_x), xmax));
        fetch(it, sx, sy, gray, px);
        const float w = wx * wy;
        for (int c = 0; c < n; ++c) acc[c] += w * px[c];
        wsum += w;
      }
    }
    for (int c = 0; c < n; ++c) v[c] = acc[c] / wsum;
  } else {
    bilinear(it, lx, ly, xmax, ymax, gray, v);
  }
  finish_pixel(k, v, out);
}

// Bilinear at pixel centres (OpenCV INTER_LINEAR), the coordinate clamped to the crop.
PYSM_HD void bilinear(const PreItem& it, int lx, int ly, float xmax, float ymax, bool gray, float* v) {
  int x0, x1, y0, y1;
  float ax, ay;
  bilinear_taps(it.crop_x, it.sx, xmax, lx, &x0, &x1, &ax);
  bilinear_taps(it.crop_y, it.sy, ymax, ly, &y0, &y1, &ay);
  bilinear_blend(it, x0, x1, ax, y0, y1, ay, gray, v);
}

PYSM_HD int64_t out_index(const PreConst& k, int n, int c, int y, int x) {
  if (k.order == 0) return ((static_cast<int64_t>(n) * k.C + c) * k.H + y) * k.W + x;
  return ((static_cast<int64_t>(n) * k.H + y) * k.W + x) * k.C + c;
}

// IEEE binary16 from binary32, round to nearest even (host side; the kernel uses __float2half_rn).
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mant = x & 0x7fffffu;
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xffu);
  if (exp == 255) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u : 0u));
  const int32_t e = exp - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    const int shift = 14 - e;
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is correct
  return static_cast<uint16_t>(h);
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) { mant <<= 1; --exp; }
      mant &= 0x3ffu;
      x = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | (mant << 13);
  } else {
    x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

}  // namespace pysm::infer::detail

#include <vector>

#include "pysm/preprocess.hpp"

namespace pysm::infer::detail {
// Descriptors for the twins (defined in preprocess.cpp).
PreItem make_item(const Surface& frame, const InputTransform& t);
PreConst make_const(const PreprocessParams& p);
}  // namespace pysm::infer::detail
