// Per-candidate decode rules shared by the CPU twin and the CUDA kernels. A "slot" is one possible
// candidate: an anchor row (yolox, yolo), a (class, grid cell) pair (detectnet_v2) or an
// (anchor, class) pair (ssd); slots are numbered in output order, which breaks score ties.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "pysm/box_decode.hpp"
#include "preprocess_math.hpp"  // PYSM_HD, half_to_float

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#endif

namespace pysm::infer::detail {

constexpr int kMaxLevels = 8;

struct TensorView {
  const void* data;
  int half;        // 0 float32, 1 float16
  int64_t s[4];    // element strides
};

struct DecodeView {
  int kind;        // BoxDecoder
  int batch;
  int64_t slots;   // per image
  int classes;
  TensorView a, b; // yolox/yolo: a; detectnet: a coverage, b bbox; ssd: a boxes, b scores
  int has_obj, transposed, xyxy, normalized, background;
  float net_w, net_h;
  int levels;
  int stride[kMaxLevels], grid_w[kMaxLevels];
  int64_t level_start[kMaxLevels + 1];
  int gw, gh;
  float stride_x, stride_y, box_norm;
  const float* thr;  // per class threshold (host or device memory, like the outputs)
};

PYSM_HD float load(const TensorView& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3 = 0) {
  const int64_t o = i0 * t.s[0] + i1 * t.s[1] + i2 * t.s[2] + i3 * t.s[3];
  if (t.half) {
#if defined(__CUDA_ARCH__)
    return __half2float(static_cast<const __half*>(t.data)[o]);
#else
    return half_to_float(static_cast<const uint16_t*>(t.data)[o]);
#endif
  }
  return static_cast<const float*>(t.data)[o];
}

PYSM_HD bool finite(float v) {
#if defined(__CUDA_ARCH__)
  return isfinite(v);
#else
  return std::isfinite(v);
#endif
}

PYSM_HD float fexp(float v) {
#if defined(__CUDA_ARCH__)
  return expf(v);
#else
  return std::exp(v);
#endif
}

PYSM_HD float clip(float v, float hi) { return v < 0.f ? 0.f : (v > hi ? hi : v); }

// Decode slot `slot` of image `b`; true when it is a candidate (finite, above its class
// threshold, non-empty after clipping to the network input).
PYSM_HD bool decode_slot(const DecodeView& v, int b, int64_t slot, Detection* d) {
  float x1, y1, x2, y2, score;
  int cls;
  switch (v.kind) {
    case 0:    // yolox
    case 1: {  // yolo
      const bool tr = v.transposed;
      auto at = [&](int k) { return tr ? load(v.a, b, k, slot) : load(v.a, b, slot, k); };
      const int first = v.has_obj ? 5 : 4;
      float best = -3.402823466e38f;
      cls = -1;
      for (int c = 0; c < v.classes; ++c) {
        const float s = at(first + c);
        if (!(s <= best)) {  // also picks NaN so that the row is dropped below
          best = s;
          cls = c;
          if (!finite(s)) break;
        }
      }
      if (cls < 0) return false;
      score = v.has_obj ? at(4) * best : best;
      if (!finite(score) || score < v.thr[cls]) return false;
      const float t0 = at(0), t1 = at(1), t2 = at(2), t3 = at(3);
      if (v.kind == 0) {
        int l = 0;
        while (l + 1 < v.levels && slot >= v.level_start[l + 1]) ++l;
        const int64_t idx = slot - v.level_start[l];
        const float s = static_cast<float>(v.stride[l]);
        const float gx = static_cast<float>(idx % v.grid_w[l]), gy = static_cast<float>(idx / v.grid_w[l]);
        const float cx = (t0 + gx) * s, cy = (t1 + gy) * s;
        const float w = fexp(t2) * s, h = fexp(t3) * s;
        x1 = cx - 0.5f * w; y1 = cy - 0.5f * h; x2 = cx + 0.5f * w; y2 = cy + 0.5f * h;
      } else {
        const float kx = v.normalized ? v.net_w : 1.f, ky = v.normalized ? v.net_h : 1.f;
        if (v.xyxy) {
          x1 = t0 * kx; y1 = t1 * ky; x2 = t2 * kx; y2 = t3 * ky;
        } else {
          x1 = (t0 - 0.5f * t2) * kx; y1 = (t1 - 0.5f * t3) * ky;
          x2 = (t0 + 0.5f * t2) * kx; y2 = (t1 + 0.5f * t3) * ky;
        }
      }
      break;
    }
    case 2: {  // detectnet_v2: slot = class * cells + cell
      const int64_t cells = static_cast<int64_t>(v.gw) * v.gh;
      cls = static_cast<int>(slot / cells);
      const int64_t cell = slot % cells;
      const int gx = static_cast<int>(cell % v.gw), gy = static_cast<int>(cell / v.gw);
      score = load(v.a, b, cls, gy, gx);
      if (!finite(score) || score < v.thr[cls]) return false;
      const float cx = (gx * v.stride_x + 0.5f) / v.box_norm, cy = (gy * v.stride_y + 0.5f) / v.box_norm;
      x1 = (load(v.b, b, cls * 4 + 0, gy, gx) - cx) * -v.box_norm;
      y1 = (load(v.b, b, cls * 4 + 1, gy, gx) - cy) * -v.box_norm;
      x2 = (load(v.b, b, cls * 4 + 2, gy, gx) + cx) * v.box_norm;
      y2 = (load(v.b, b, cls * 4 + 3, gy, gx) + cy) * v.box_norm;
      break;
    }
    default: {  // ssd: slot = anchor * classes + class
      const int64_t anchor = slot / v.classes;
      cls = static_cast<int>(slot % v.classes);
      if (cls == v.background) return false;
      score = load(v.b, b, anchor, cls);
      if (!finite(score) || score < v.thr[cls]) return false;
      const float kx = v.normalized ? v.net_w : 1.f, ky = v.normalized ? v.net_h : 1.f;
      x1 = load(v.a, b, anchor, 0) * kx; y1 = load(v.a, b, anchor, 1) * ky;
      x2 = load(v.a, b, anchor, 2) * kx; y2 = load(v.a, b, anchor, 3) * ky;
      break;
    }
  }
  if (!finite(x1) || !finite(y1) || !finite(x2) || !finite(y2)) return false;
  x1 = clip(x1, v.net_w); x2 = clip(x2, v.net_w);
  y1 = clip(y1, v.net_h); y2 = clip(y2, v.net_h);
  if (!(x2 > x1) || !(y2 > y1)) return false;
  d->x1 = x1; d->y1 = y1; d->x2 = x2; d->y2 = y2;
  d->score = score;
  d->class_id = cls;
  return true;
}

// Shape checks and the view (defined in box_decode.cpp). `thr` must outlive the view.
DecodeView make_decode_view(const std::vector<Tensor>& outputs, const DecodeParams& p, std::vector<float>* thr);

}  // namespace pysm::infer::detail
