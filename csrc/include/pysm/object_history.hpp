// nvinfer's object history for secondary mode: a tracked object (object_id set by a tracker) is
// inferred once and then only again when `secondary-reinfer-interval` frames have passed since,
// or - for classifiers - when its box grew by more than 20 %; between those, a classifier's last
// result is attached to the object again without running the model. Untracked objects are always
// inferred. With the default interval (INT_MAX) a classifier runs once per track, and a secondary
// detector on every frame (nvinfer's rule: the interval only skips detectors when it is set).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "pysm/meta.hpp"

namespace pysm::infer {

class ObjectHistory {
 public:
  static constexpr int64_t kDefaultInterval = 2147483647;  // INT_MAX, nvinfer's default
  static constexpr float kReinferAreaGrowth = 0.2f;       // classifiers: re-infer when the area grew by more
  static constexpr uint64_t kForgetAfterFrames = 150;      // entries unseen this long are dropped

  struct Entry {
    uint64_t last_inferred_frame = 0;
    uint64_t last_accessed_frame = 0;
    float last_area = 0.f;
    std::shared_ptr<const ClassifierMeta> result;  // a classifier's last result (labels may be empty)
  };

  struct Decision {
    bool infer = true;
    std::shared_ptr<Entry> entry;                  // infer: where the new result goes (null: untracked)
    std::shared_ptr<const ClassifierMeta> cached;  // skip: the result to attach again (may be null)
  };

  ObjectHistory(int64_t reinfer_interval, bool classifier) : interval_(reinfer_interval), classifier_(classifier) {}

  // Whether to infer object `o` of frame `f`; updates the history either way.
  Decision admit(const FrameMeta& f, const ObjectMeta& o);
  // Store the result of an admitted object's inference.
  void remember(Entry& e, std::shared_ptr<const ClassifierMeta> result);
  // Tracked objects remembered now (all sources).
  size_t size() const;

 private:
  struct Source {
    uint64_t last_frame = 0;
    uint64_t last_cleanup = 0;
    std::unordered_map<uint64_t, std::shared_ptr<Entry>> objects;
  };

  int64_t interval_;
  bool classifier_;
  mutable std::mutex mu_;
  std::unordered_map<uint32_t, Source> sources_;  // by pad_index
};

}  // namespace pysm::infer
