// Structural operations on the metadata tree: lookups, appends and removals under BatchMeta::mu.
#include <string>

#include "pysm/error.hpp"
#include "pysm/meta.hpp"

namespace pysm {
namespace meta {

namespace detail {
void not_acquired(const char* what) {
  raise(ErrorKind::Value, std::string(what) +
                              " was not acquired from this batch or is already appended; acquire a new one "
                              "from the BatchMetadata you append it to (batch_meta.acquire_*_meta())");
}
void not_found(const char* what, const char* where) {
  raise(ErrorKind::Value, std::string(what) + " is not attached to this " + where + " (already removed?)");
}
}  // namespace detail

std::shared_ptr<UserMeta> next_user_meta(BatchMeta& b, const std::vector<std::shared_ptr<UserMeta>>& list,
                                         size_t* pos, int meta_type) {
  std::lock_guard<std::mutex> lock(b.mu);
  for (size_t i = *pos; i < list.size(); ++i) {
    if (meta_type < 0 || list[i]->meta_type == meta_type) {
      *pos = i + 1;
      return list[i];
    }
  }
  *pos = list.size();
  return nullptr;
}

void add_label(BatchMeta& b, ClassifierMeta& c, LabelInfo label) {
  std::lock_guard<std::mutex> lock(b.mu);
  if (label.label_id < 0) label.label_id = static_cast<int>(c.labels.size());
  c.labels.push_back(std::move(label));
}

std::shared_ptr<FrameMeta> add_frame(BatchMeta& b) {
  auto f = std::make_shared<FrameMeta>();
  std::lock_guard<std::mutex> lock(b.mu);
  f->batch_id = static_cast<uint32_t>(b.frames.size());
  b.frames.push_back(f);
  return f;
}

std::shared_ptr<ObjectMeta> add_object(BatchMeta& b, FrameMeta& f) {
  auto o = std::make_shared<ObjectMeta>();
  std::lock_guard<std::mutex> lock(b.mu);
  f.objects.push_back(o);
  return o;
}

}  // namespace meta
}  // namespace pysm
