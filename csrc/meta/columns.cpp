// Vectorised reads of a frame's objects: every requested column in one pass under one lock, so a
// probe costs one call per frame instead of one Python call per object and field.
#include "pysm/meta.hpp"

namespace pysm {
namespace meta {

size_t fill_object_columns(BatchMeta& b, const FrameMeta& f, const ObjectColumns& out, size_t capacity) {
  std::lock_guard<std::mutex> lock(b.mu);
  const size_t n = f.objects.size();
  const size_t m = n < capacity ? n : capacity;
  for (size_t i = 0; i < m; ++i) {
    const ObjectMeta& o = *f.objects[i];
    if (out.boxes) {
      float* r = out.boxes + 4 * i;
      const RectParams& p = o.rect_params;
      r[0] = p.left;
      r[1] = p.top;
      r[2] = out.xyxy ? p.left + p.width : p.width;
      r[3] = out.xyxy ? p.top + p.height : p.height;
    }
    if (out.class_ids) out.class_ids[i] = o.class_id;
    if (out.confidences) out.confidences[i] = o.confidence;
    if (out.tracker_confidences) out.tracker_confidences[i] = o.tracker_confidence;
    if (out.object_ids) out.object_ids[i] = o.object_id;
    if (out.component_ids) out.component_ids[i] = o.unique_component_id;
  }
  return n;
}

}  // namespace meta
}  // namespace pysm
