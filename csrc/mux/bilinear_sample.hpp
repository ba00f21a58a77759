// The mux scaler's sample, shared by its CPU and CUDA twins (the interpolation itself is
// pysm/bilinear.hpp, shared with the inference preprocessing).
#pragma once
#include <cstdint>

#include "pysm/bilinear.hpp"

namespace pysm::detail {

// Source coordinate of output index `d` when `src_n` samples map onto `dst_n` (pixel centres
// aligned), clamped to the valid range; returns the low index and the weight of the high one.
PYSM_HD void source_pos(int d, int dst_n, int src_n, int* i0, int* i1, float* w) {
  const float scale = static_cast<float>(src_n) / static_cast<float>(dst_n);
  clamp_taps(sub_rn(mul_rn(add_rn(static_cast<float>(d), 0.5f), scale), 0.5f), 0, src_n - 1, i0, i1, w);
}

PYSM_HD uint8_t blend(uint8_t p00, uint8_t p01, uint8_t p10, uint8_t p11, float wx, float wy) {
  float v = add_rn(lerp2(p00, p01, p10, p11, wx, wy), 0.5f);
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
