// BatchMetadata.extract(): a per-frame summary (boxes, scores, labels, ids, masks) built in one
// native pass, as DeepStream 9's batch extract gives it.
#include "pysm/meta.hpp"

namespace pysm {
namespace meta {

std::vector<FrameSummary> summarize(BatchMeta& b) {
  std::lock_guard<std::mutex> lock(b.mu);
  std::vector<FrameSummary> out;
  out.reserve(b.frames.size());
  for (const auto& fp : b.frames) {
    const FrameMeta& f = *fp;
    FrameSummary s;
    s.pad_index = f.pad_index;
    s.shape[0] = static_cast<int>(f.pipeline_height);
    s.shape[1] = static_cast<int>(f.pipeline_width);
    s.timestamp = f.buffer_pts;
    const size_t n = f.objects.size();
    s.bboxes.reserve(4 * n);
    s.probs.reserve(n);
    s.labels.reserve(n);
    s.objects.reserve(n);
    for (const auto& op : f.objects) {
      const ObjectMeta& o = *op;
      const RectParams& r = o.rect_params;
      const int l = static_cast<int>(r.left), t = static_cast<int>(r.top);
      s.bboxes.insert(s.bboxes.end(), {l, t, l + static_cast<int>(r.width), t + static_cast<int>(r.height)});
      s.probs.push_back(o.confidence);
      std::vector<std::string> labels;
      if (!o.label.empty()) labels.push_back(o.label);
      for (const auto& c : o.classifiers)
        for (const auto& li : c->labels) labels.push_back(li.label);
      s.labels.push_back(std::move(labels));
      s.objects.push_back(o.object_id == UNTRACKED_OBJECT_ID ? -1 : static_cast<int64_t>(o.object_id));
      const MaskParams& m = o.mask_params;
      if (!m.data.empty() && m.width > 0 && m.height > 0 &&
          m.data.size() >= static_cast<size_t>(m.width) * static_cast<size_t>(m.height)) {
        IntMap im;
        im.height = m.height;
        im.width = m.width;
        im.data.resize(static_cast<size_t>(m.width) * m.height);
        for (size_t k = 0; k < im.data.size(); ++k) im.data[k] = static_cast<int32_t>(m.data[k]);
        s.seg_maps.push_back(std::move(im));
      }
    }
    for (const auto& up : f.user_meta) {
      const auto* seg = dynamic_cast<const SegmentationMeta*>(up.get());
      if (!seg) continue;
      s.shape[0] = seg->height;
      s.shape[1] = seg->width;
      const size_t cells = static_cast<size_t>(seg->width) * static_cast<size_t>(seg->height);
      if (seg->width > 0 && seg->height > 0 && seg->class_map.size() >= cells) {
        IntMap im;
        im.height = seg->height;
        im.width = seg->width;
        im.data.assign(seg->class_map.begin(), seg->class_map.begin() + static_cast<std::ptrdiff_t>(cells));
        s.seg_maps.push_back(std::move(im));
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace meta
}  // namespace pysm
