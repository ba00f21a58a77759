// The metadata side of inference: which frames or objects of a Buffer are inferred (primary:
// whole frames; secondary: objects of the chosen producer and classes, size-gated), and how the
// results land in the native metadata: detections as ObjectMeta in frame coordinates (letterbox,
// crop and mux scaling undone; DeepStream's drawing defaults), classifications as ClassifierMeta
// on their object, raw outputs as TensorOutputMeta (frame user meta for primary, object user meta
// for secondary).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pysm/box_decode.hpp"
#include "pysm/buffer.hpp"
#include "pysm/object_history.hpp"
#include "pysm/preprocess.hpp"

namespace pysm::infer {

struct InferItem {
  std::shared_ptr<FrameMeta> frame;
  int surface = 0;                     // index into Buffer::surfaces
  std::shared_ptr<ObjectMeta> object;  // secondary mode: the object inferred on
  CropRegion region;                   // in surface pixels
  InputTransform transform;            // set by preprocess_items
  std::shared_ptr<ObjectHistory> history;             // secondary mode, tracked object: where its
  std::shared_ptr<ObjectHistory::Entry> history_entry;  // classification is remembered
};

struct SelectParams {
  bool secondary = false;
  int operate_on_gie_id = -1;          // -1: objects of any producer
  std::vector<int> operate_on_class_ids;  // empty: every class
  int min_width = 0, min_height = 0, max_width = 0, max_height = 0;  // 0: no gate
  std::shared_ptr<ObjectHistory> history;  // secondary mode: skip tracked objects inferred lately
};

// Items to infer, in frame order (primary) or frame then object order (secondary). A Buffer
// without FrameMeta gets one FrameMeta per surface first. Objects the history skips get the
// classifier result remembered for them attached again here.
std::vector<InferItem> plan_items(Buffer& buffer, const SelectParams& p);

// Preprocess items (their regions) of `buffer` into `out`; fills each item's transform.
void preprocess_items(const Buffer& buffer, std::vector<InferItem>& items, const PreprocessParams& p, Tensor& out,
                      cuda::StreamHandle stream);

struct ClassAttrs {
  bool has_border_color = false;
  Color border_color{1, 0, 0, 1};
  bool has_bg_color = false;
  Color bg_color{0, 0, 0, 0};
  float post_cluster_threshold = 0.f;
  float min_width = 0, min_height = 0, max_width = 0, max_height = 0;  // detected-min/max-w/h, 0 = off
  float roi_top_offset = 0, roi_bottom_offset = 0;                     // network pixels
};

struct DetectionOutput {
  int unique_id = 15;
  std::vector<std::string> labels;
  ClassAttrs all;
  std::map<int, ClassAttrs> per_class;
  std::vector<int> filter_out_class_ids;
  int net_width = 0, net_height = 0;
};

// Attach `dets[i]` (network pixels) of items[i]; returns the number of objects attached.
int attach_detections(Buffer& buffer, const std::vector<InferItem>& items,
                      const std::vector<std::vector<Detection>>& dets, const DetectionOutput& p);

struct ClassifierOutput {
  int unique_id = 15;
  float threshold = 0.5f;
  int classifier_type = 0;
  std::vector<std::vector<std::string>> labels;  // per output layer, per class
};

// `outputs`: one host tensor per output layer, [N, C] (or [N, C, 1, 1]) probabilities, N >= items.
// Each layer's best class at or above the threshold becomes a LabelInfo of one ClassifierMeta on
// the item's object (primary mode: a frame-sized object is added to carry it).
int attach_classifications(Buffer& buffer, const std::vector<InferItem>& items, const std::vector<Tensor>& outputs,
                           const ClassifierOutput& p);

// One TensorOutputMeta per item, each layer the item's slice of the batch output (kept alive by
// the output tensor). `outputs` should be owned copies (they outlive this batch).
void attach_tensor_output(Buffer& buffer, const std::vector<InferItem>& items, const std::vector<std::string>& names,
                          const std::vector<Tensor>& outputs, int unique_id);

// One SegmentationMeta per item from host probabilities `probs` [N, C, H, W] (or [N, H, W, C] with
// `nhwc`), N >= items: class_map = the best class per pixel, -1 where its probability is below
// `threshold` (DeepStream's rule); class_probabilities copied as H x W x C.
void attach_segmentation(Buffer& buffer, const std::vector<InferItem>& items, const Tensor& probs, bool nhwc,
                         float threshold, int unique_id);

}  // namespace pysm::infer
