// Non-maximum suppression over score-sorted candidates, class-wise (a box suppresses only boxes of
// its class) or class-agnostic, with per-class IoU thresholds and top-k limits. Greedy: walk the
// candidates best first; keep a box unless a kept box overlaps it with IoU > threshold (of the
// kept box's class); then keep at most topk per class and topk_total overall, best first.
#pragma once
#include <vector>

#include "pysm/box_decode.hpp"

namespace pysm::infer {

struct NmsParams {
  float default_iou_threshold = 0.3f;      // classes without their own value
  int default_topk = -1;                   // classes without their own value (-1: no limit)
  std::vector<float> iou_threshold;        // per class (index = class id); may be short
  std::vector<int> topk;                   // per class (-1: no limit); may be short
  int topk_total = -1;                     // over all classes (-1: no limit)
  bool class_agnostic = false;
};

// Kept indices into `sorted[0..n)`, in order.
std::vector<int> nms_cpu(const Detection* sorted, int n, const NmsParams& p);

// The entries of `order` (indices into d, best first) within the per-class and total top-k limits.
std::vector<int> topk_filter(const Detection* d, const std::vector<int>& order, const NmsParams& p);

// Device: image b has counts[b] sorted candidates at dets[b*capacity]; the kept ones are written
// compacted to out[b*capacity] and their number to out_counts[b]. All pointers are device memory
// on CUDA device `device`, and `stream` (null: the device's default stream) belongs to it.
void nms_cuda(const Detection* dets, const int* counts, int batch, int capacity, int num_classes,
              const NmsParams& p, Detection* out, int* out_counts, int device, cuda::StreamHandle stream);

}  // namespace pysm::infer
