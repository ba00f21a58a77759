// IoU as both NMS twins compute it. Device code uses round-to-nearest intrinsics so that no
// multiply-add is fused: the CPU and GPU then agree bit for bit on every comparison.
#pragma once
#include "pysm/box_decode.hpp"
#include "preprocess_math.hpp"  // PYSM_HD

namespace pysm::infer::detail {

#if defined(__CUDA_ARCH__)
#define PYSM_MUL(a, b) __fmul_rn(a, b)
#define PYSM_ADD(a, b) __fadd_rn(a, b)
#define PYSM_SUB(a, b) __fsub_rn(a, b)
#else
#define PYSM_MUL(a, b) ((a) * (b))
#define PYSM_ADD(a, b) ((a) + (b))
#define PYSM_SUB(a, b) ((a) - (b))
#endif

PYSM_HD float iou(const Detection& a, const Detection& b) {
  const float ix1 = a.x1 > b.x1 ? a.x1 : b.x1, iy1 = a.y1 > b.y1 ? a.y1 : b.y1;
  const float ix2 = a.x2 < b.x2 ? a.x2 : b.x2, iy2 = a.y2 < b.y2 ? a.y2 : b.y2;
  const float iw = PYSM_SUB(ix2, ix1), ih = PYSM_SUB(iy2, iy1);
  if (!(iw > 0.f) || !(ih > 0.f)) return 0.f;
  const float inter = PYSM_MUL(iw, ih);
  const float area_a = PYSM_MUL(PYSM_SUB(a.x2, a.x1), PYSM_SUB(a.y2, a.y1));
  const float area_b = PYSM_MUL(PYSM_SUB(b.x2, b.x1), PYSM_SUB(b.y2, b.y1));
  const float uni = PYSM_SUB(PYSM_ADD(area_a, area_b), inter);
  return uni > 0.f ? inter / uni : 0.f;
}

// Per-class lookups of NmsParams vectors, falling back to the default for other classes.
template <typename T>
inline T class_value(const std::vector<T>& v, int c, T dflt) {
  return c >= 0 && c < static_cast<int>(v.size()) ? v[c] : dflt;
}

}  // namespace pysm::infer::detail
