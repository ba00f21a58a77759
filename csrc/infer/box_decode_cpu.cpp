// CPU twin of the box decoders (the reference for the CUDA kernels).
#include <algorithm>

#include "pysm/error.hpp"
#include "box_decode_math.hpp"

namespace pysm::infer {

std::vector<std::vector<Detection>> decode_boxes_cpu(const std::vector<Tensor>& outputs, const DecodeParams& p) {
  for (const auto& t : outputs)
    if (t.device().is_cuda()) raise(ErrorKind::Value, "decode_boxes_cpu: outputs must be in host memory");
  std::vector<float> thr;
  const detail::DecodeView v = detail::make_decode_view(outputs, p, &thr);
  std::vector<std::vector<Detection>> out(static_cast<size_t>(v.batch));
  for (int b = 0; b < v.batch; ++b) {
    auto& dets = out[b];
    Detection d;
    for (int64_t s = 0; s < v.slots; ++s)
      if (detail::decode_slot(v, b, s, &d)) dets.push_back(d);
    // Best first; stable, so equal scores keep output order (as the GPU's stable radix sort).
    std::stable_sort(dets.begin(), dets.end(), [](const Detection& a, const Detection& c) { return a.score > c.score; });
    if (p.max_candidates >= 0 && dets.size() > static_cast<size_t>(p.max_candidates)) dets.resize(p.max_candidates);
  }
  return out;
}

#if !PYSM_WITH_CUDA
// CPU-only build: the kernels do not exist; callers get a clear error instead of a link failure.
DeviceCandidates decode_boxes_cuda(const std::vector<Tensor>&, const DecodeParams&, cuda::StreamHandle) {
  raise(ErrorKind::Cuda, "box decoder: pysm was built without CUDA; give host outputs");
}
#endif

}  // namespace pysm::infer
