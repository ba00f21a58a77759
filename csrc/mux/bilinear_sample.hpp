// The bilinear sample shared by the CPU and CUDA scalers, so both compute the same value with the
// same float operations (explicitly rounded multiply/add on the device: no FMA contraction).
#pragma once
#include <cstdint>

#include "pysm/host_device.hpp"

namespace pysm::detail {

PYSM_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
PYSM_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// Source coordinate of output index `d` when `src_n` samples map onto `dst_n` (pixel centres
// aligned), clamped to the valid range; returns the low index and the weight of the high one.
PYSM_HD void source_pos(int d, int dst_n, int src_n, int* i0, int* i1, float* w) {
  const float scale = static_cast<float>(src_n) / static_cast<float>(dst_n);
  float f = add(mul(add(static_cast<float>(d), 0.5f), scale), -0.5f);
  if (f < 0.f) f = 0.f;
  const float maxf = static_cast<float>(src_n - 1);
  if (f > maxf) f = maxf;
  int lo = static_cast<int>(f);  // f >= 0: truncation is floor
  if (lo > src_n - 1) lo = src_n - 1;
  *i0 = lo;
  *i1 = lo + 1 < src_n ? lo + 1 : src_n - 1;
  *w = add(f, -static_cast<float>(lo));
}

PYSM_HD uint8_t blend(uint8_t p00, uint8_t p01, uint8_t p10, uint8_t p11, float wx, float wy) {
  const float top = add(mul(static_cast<float>(p00), add(1.f, -wx)), mul(static_cast<float>(p01), wx));
  const float bot = add(mul(static_cast<float>(p10), add(1.f, -wx)), mul(static_cast<float>(p11), wx));
  float v = add(add(mul(top, add(1.f, -wy)), mul(bot, wy)), 0.5f);
  if (v < 0.f) v = 0.f;
  if (v > 255.f) v = 255.f;
  return static_cast<uint8_t>(v);
}

// Scale one plane of `channels` interleaved 8-bit samples: writes output pixel (x, y) of the
// ROI (plane coordinates). `fill` is the value of pixels outside the ROI (per channel).
PYSM_HD void sample_plane(const uint8_t* src, int64_t src_pitch, int src_w, int src_h, uint8_t* dst,
                          int64_t dst_pitch, int x, int y, int roi_x, int roi_y, int roi_w, int roi_h,
                          int channels, const uint8_t* fill) {
  uint8_t* out = dst + y * dst_pitch + static_cast<int64_t>(x) * channels;
  if (x < roi_x || y < roi_y || x >= roi_x + roi_w || y >= roi_y + roi_h) {
    for (int c = 0; c < channels; ++c) out[c] = fill[c];
    return;
  }
  int x0, x1, y0, y1;
  float wx, wy;
  source_pos(x - roi_x, roi_w, src_w, &x0, &x1, &wx);
  source_pos(y - roi_y, roi_h, src_h, &y0, &y1, &wy);
  const uint8_t* r0 = src + y0 * src_pitch;
  const uint8_t* r1 = src + y1 * src_pitch;
  for (int c = 0; c < channels; ++c)
    out[c] = blend(r0[x0 * channels + c], r0[x1 * channels + c], r1[x0 * channels + c],
                   r1[x1 * channels + c], wx, wy);
}

}  // namespace pysm::detail
