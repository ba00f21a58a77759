// CPU twin of the preprocessing kernel: the reference the CUDA kernel is tested against. The
// bilinear case (the default) runs as loops over rows and columns with the taps computed once per
// column and per row; every value is computed by the same functions as the kernel's per-pixel
// compute_pixel, so the results are the same bit for bit.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "pysm/preprocess.hpp"
#include "preprocess_math.hpp"

namespace pysm::infer {
namespace {

using namespace detail;

struct Output {
  const PreConst& k;
  float* f32;
  uint16_t* f16;
  void store(int n, int y, int x, const float* v) const {
    for (int c = 0; c < k.C; ++c) {
      const int64_t o = out_index(k, n, c, y, x);
      if (f16) f16[o] = float_to_half(v[c]);
      else f32[o] = v[c];
    }
  }
};

bool bilinear_item(const PreItem& it, const PreConst& k) {
  return it.valid && (k.filter == 1 || (k.filter == 2 && !(it.sx > 1.f || it.sy > 1.f)));
}

template <int Format>
PYSM_SIMD_CLONES void bilinear_rows(const PreItem& it, const PreConst& k, int n, const Output& out) {
  const bool gray = k.C == 1;
  const float xmax = static_cast<float>(it.crop_x + it.crop_w - 1);
  const float ymax = static_cast<float>(it.crop_y + it.crop_h - 1);
  // Columns of the scaled image that fall inside the network input (a transform may be given).
  const int sw = std::max(0, std::min(it.scaled_w, k.W - it.pad_x));
  std::vector<int> x0(sw), x1(sw);
  std::vector<float> ax(sw);
  for (int lx = 0; lx < sw; ++lx) bilinear_taps(it.crop_x, it.sx, xmax, lx, &x0[lx], &x1[lx], &ax[lx]);
  float pad[3];
  for (int c = 0; c < k.C; ++c) pad[c] = k.scale * (k.pad[c] - k.off[c]);
  for (int y = 0; y < k.H; ++y) {
    const int ly = y - it.pad_y;
    const bool inside = ly >= 0 && ly < it.scaled_h;
    int y0 = 0, y1 = 0;
    float ay = 0.f;
    if (inside) bilinear_taps(it.crop_y, it.sy, ymax, ly, &y0, &y1, &ay);
    for (int x = 0; x < k.W; ++x) {
      const int lx = x - it.pad_x;
      if (!inside || lx < 0 || lx >= sw) {
        out.store(n, y, x, pad);
        continue;
      }
      float v[3] = {0.f, 0.f, 0.f}, o[3];
      bilinear_blend<Format>(it, x0[lx], x1[lx], ax[lx], y0, y1, ay, gray, v);
      finish_pixel(k, v, o);
      out.store(n, y, x, o);
    }
  }
}

// The loops above with the source format fixed at compile time.
void bilinear_item_rows(const PreItem& it, const PreConst& k, int n, const Output& out) {
  switch (it.format) {
    case F_NV12: return bilinear_rows<F_NV12>(it, k, n, out);
    case F_P016: return bilinear_rows<F_P016>(it, k, n, out);
    case F_GRAY8: return bilinear_rows<F_GRAY8>(it, k, n, out);
    case F_RGB: return bilinear_rows<F_RGB>(it, k, n, out);
    case F_BGR: return bilinear_rows<F_BGR>(it, k, n, out);
    case F_RGBA: return bilinear_rows<F_RGBA>(it, k, n, out);
    case F_BGRA: return bilinear_rows<F_BGRA>(it, k, n, out);
    default: return bilinear_rows<-1>(it, k, n, out);
  }
}

}  // namespace

void preprocess_cpu(const std::vector<Surface>& frames, const std::vector<CropRegion>& regions,
                    const std::vector<InputTransform>& transforms, const PreprocessParams& p, Tensor& out) {
  const PreConst k = make_const(p);
  const bool half = out.dtype() == DType::f16();
  const Output o{k, half ? nullptr : static_cast<float*>(out.data()),
                 half ? static_cast<uint16_t*>(out.data()) : nullptr};
  for (size_t n = 0; n < regions.size(); ++n) {
    const PreItem it = make_item(frames[regions[n].frame], transforms[n]);
    if (bilinear_item(it, k)) {
      bilinear_item_rows(it, k, static_cast<int>(n), o);
      continue;
    }
    float v[3];
    for (int y = 0; y < k.H; ++y)
      for (int x = 0; x < k.W; ++x) {
        compute_pixel(it, k, x, y, v);
        o.store(static_cast<int>(n), y, x, v);
      }
  }
}

}  // namespace pysm::infer
