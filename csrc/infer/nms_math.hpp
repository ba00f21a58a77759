// IoU as both NMS twins compute it. Device code uses round-to-nearest intrinsics so that no
// multiply-add is fused: the CPU and GPU then agree bit for bit on every comparison.
#pragma once
#include <vector>

#include "pysm/box_decode.hpp"
#include "pysm/host_device.hpp"

namespace pysm::infer::detail {

PYSM_HD float iou(const Detection& a, const Detection& b) {
  using pysm::detail::add_rn;
  using pysm::detail::mul_rn;
  using pysm::detail::sub_rn;
  const float ix1 = a.x1 > b.x1 ? a.x1 : b.x1, iy1 = a.y1 > b.y1 ? a.y1 : b.y1;
  const float ix2 = a.x2 < b.x2 ? a.x2 : b.x2, iy2 = a.y2 < b.y2 ? a.y2 : b.y2;
  const float iw = sub_rn(ix2, ix1), ih = sub_rn(iy2, iy1);
  if (!(iw > 0.f) || !(ih > 0.f)) return 0.f;
  const float inter = mul_rn(iw, ih);
  const float area_a = mul_rn(sub_rn(a.x2, a.x1), sub_rn(a.y2, a.y1));
  const float area_b = mul_rn(sub_rn(b.x2, b.x1), sub_rn(b.y2, b.y1));
  const float uni = sub_rn(add_rn(area_a, area_b), inter);
  return uni > 0.f ? inter / uni : 0.f;
}

// Per-class lookups of NmsParams vectors, falling back to the default for other classes.
template <typename T>
inline T class_value(const std::vector<T>& v, int c, T dflt) {
  return c >= 0 && c < static_cast<int>(v.size()) ? v[c] : dflt;
}

}  // namespace pysm::infer::detail
