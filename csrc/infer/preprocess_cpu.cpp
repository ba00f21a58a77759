// CPU twin of the preprocessing kernel: the reference the CUDA kernel is tested against.
#include <cstdint>

#include "pysm/preprocess.hpp"
#include "preprocess_math.hpp"

namespace pysm::infer {

void preprocess_cpu(const std::vector<Surface>& frames, const std::vector<CropRegion>& regions,
                    const std::vector<InputTransform>& transforms, const PreprocessParams& p, Tensor& out) {
  using namespace detail;
  const PreConst k = make_const(p);
  const bool half = out.dtype() == DType::f16();
  auto* f32 = static_cast<float*>(out.data());
  auto* f16 = static_cast<uint16_t*>(out.data());
  for (size_t n = 0; n < regions.size(); ++n) {
    const PreItem it = make_item(frames[regions[n].frame], transforms[n]);
    float v[3];
    for (int y = 0; y < k.H; ++y) {
      for (int x = 0; x < k.W; ++x) {
        compute_pixel(it, k, x, y, v);
        for (int c = 0; c < k.C; ++c) {
          const int64_t o = out_index(k, static_cast<int>(n), c, y, x);
          if (half) f16[o] = float_to_half(v[c]);
          else f32[o] = v[c];
        }
      }
    }
  }
}

}  // namespace pysm::infer
