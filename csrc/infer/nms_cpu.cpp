// CPU twin of NMS (the reference for the CUDA kernels).
#include <unordered_map>

#include "pysm/error.hpp"
#include "pysm/nms.hpp"
#include "nms_math.hpp"

namespace pysm::infer {

std::vector<int> nms_cpu(const Detection* d, int n, const NmsParams& p) {
  std::vector<char> removed(static_cast<size_t>(n), 0);
  std::vector<int> survivors;
  for (int i = 0; i < n; ++i) {
    if (removed[i]) continue;
    survivors.push_back(i);
    const float thr = detail::class_value(p.iou_threshold, d[i].class_id, p.default_iou_threshold);
    for (int j = i + 1; j < n; ++j) {
      if (removed[j]) continue;
      if (!p.class_agnostic && d[j].class_id != d[i].class_id) continue;
      if (detail::iou(d[i], d[j]) > thr) removed[j] = 1;
    }
  }
  return topk_filter(d, survivors, p);
}

std::vector<int> topk_filter(const Detection* d, const std::vector<int>& order, const NmsParams& p) {
  std::vector<int> kept;
  std::unordered_map<int, int> per_class;
  for (int i : order) {
    if (p.topk_total >= 0 && static_cast<int>(kept.size()) >= p.topk_total) break;
    const int k = detail::class_value(p.topk, d[i].class_id, p.default_topk);
    int& count = per_class[d[i].class_id];
    if (k >= 0 && count >= k) continue;
    ++count;
    kept.push_back(i);
  }
  return kept;
}

#if !PYSM_WITH_CUDA
// CPU-only build: the kernels do not exist; callers get a clear error instead of a link failure.
void nms_cuda(const Detection*, const int*, int, int, int, const NmsParams&, Detection*, int*, int, cuda::StreamHandle) {
  raise(ErrorKind::Cuda, "nms: pysm was built without CUDA");
}
#endif

}  // namespace pysm::infer
