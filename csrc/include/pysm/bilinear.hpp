// The bilinear interpolation shared by the mux scaler (csrc/mux) and the inference preprocessing
// (csrc/infer), on the CPU and in their CUDA kernels: the two taps around a source coordinate and
// the blend of four samples, with rounded arithmetic so that every twin computes the same value.
#pragma once
#include "pysm/host_device.hpp"

namespace pysm::detail {

// Source coordinate `f` (pixel centres at integers) clamped to [lo, hi]: the low tap, the high
// tap (the low one again at the upper edge) and the weight of the high one.
PYSM_HD void clamp_taps(float f, int lo, int hi, int* i0, int* i1, float* w) {
  if (f < static_cast<float>(lo)) f = static_cast<float>(lo);
  if (f > static_cast<float>(hi)) f = static_cast<float>(hi);
  int t = static_cast<int>(f);  // f >= lo >= 0 in every caller: truncation is floor
  if (t > hi) t = hi;
  *i0 = t;
  *i1 = t + 1 <= hi ? t + 1 : hi;
  *w = sub_rn(f, static_cast<float>(t));
}

// Bilinear blend of p00 (top-left), p01 (top-right), p10, p11 with the high taps' weights.
PYSM_HD float lerp2(float p00, float p01, float p10, float p11, float wx, float wy) {
  const float top = add_rn(mul_rn(p00, sub_rn(1.f, wx)), mul_rn(p01, wx));
  const float bot = add_rn(mul_rn(p10, sub_rn(1.f, wx)), mul_rn(p11, wx));
  return add_rn(mul_rn(top, sub_rn(1.f, wy)), mul_rn(bot, wy));
}

}  // namespace pysm::detail
