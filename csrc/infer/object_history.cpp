#include "pysm/object_history.hpp"

namespace pysm::infer {

ObjectHistory::Decision ObjectHistory::admit(const FrameMeta& f, const ObjectMeta& o) {
  Decision d;
  if (o.object_id == UNTRACKED_OBJECT_ID) return d;
  const uint64_t frame = f.frame_number;
  const float area = o.rect_params.width * o.rect_params.height;
  std::lock_guard<std::mutex> lock(mu_);
  Source& src = sources_[f.pad_index];
  if (frame < src.last_frame) src = Source{};  // the stream restarted: its track ids mean nothing now
  src.last_frame = frame;
  if (frame - src.last_cleanup > kForgetAfterFrames) {
    for (auto it = src.objects.begin(); it != src.objects.end();)
      it = frame - it->second->last_accessed_frame > kForgetAfterFrames ? src.objects.erase(it) : std::next(it);
    src.last_cleanup = frame;
  }
  auto found = src.objects.find(o.object_id);
  if (found != src.objects.end()) {
    Entry& e = *found->second;
    const bool interval_passed = static_cast<int64_t>(frame - e.last_inferred_frame) > interval_;
    const bool reinfer = classifier_ ? interval_passed || area > e.last_area * (1.f + kReinferAreaGrowth)
                                     : interval_passed || interval_ == kDefaultInterval;
    if (!reinfer) {
      e.last_accessed_frame = frame;
      d.infer = false;
      d.cached = e.result;
      return d;
    }
    d.entry = found->second;
  } else {
    d.entry = src.objects.emplace(o.object_id, std::make_shared<Entry>()).first->second;
  }
  d.entry->last_inferred_frame = d.entry->last_accessed_frame = frame;
  d.entry->last_area = area;
  return d;
}

void ObjectHistory::remember(Entry& e, std::shared_ptr<const ClassifierMeta> result) {
  std::lock_guard<std::mutex> lock(mu_);
  e.result = std::move(result);
}

size_t ObjectHistory::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [pad, src] : sources_) n += src.objects.size();
  return n;
}

}  // namespace pysm::infer
