// Native metadata, as in DeepStream's NvDsBatchMeta tree: BatchMeta -> FrameMeta -> ObjectMeta,
// plus classifier, display and user metadata. Every node is held by shared_ptr from its parent;
// Python views hold weak_ptrs, so a view that outlives its Buffer (or a removed node) raises
// ReferenceError instead of reading freed memory.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pysm/tensor.hpp"

namespace pysm {

constexpr uint64_t UNTRACKED_OBJECT_ID = 0xFFFFFFFFFFFFFFFFull;
constexpr int MAX_ELEMENTS_IN_DISPLAY_META = 16;

// ---- OSD primitives (values, copied in and out) -------------------------------------------
struct Color {
  double r = 0, g = 0, b = 0, a = 0;
};
struct FontParams {
  std::string name = "Serif";
  int size = 12;
  Color color{1, 1, 1, 1};
};
struct RectParams {
  float left = 0, top = 0, width = 0, height = 0;
  float rotation_angle = 0;
  int border_width = 3;
  Color border_color{1, 0, 0, 1};
  bool has_bg_color = false;
  Color bg_color{0, 0, 0, 0};
};
struct TextParams {
  std::string display_text;
  int x_offset = 0, y_offset = 0;
  FontParams font;
  bool set_bg_clr = false;
  Color text_bg_clr{0, 0, 0, 1};
};
struct LineParams {
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0, width = 1;
  Color color{1, 1, 1, 1};
};
enum class ArrowHead : int { Start = 0, End = 1, Both = 2 };
struct ArrowParams {
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0, width = 1;
  ArrowHead head = ArrowHead::End;
  Color color{1, 1, 1, 1};
};
struct CircleParams {
  int xc = 0, yc = 0, radius = 0, width = 1;
  Color color{1, 1, 1, 1};
  bool has_bg_color = false;
  Color bg_color{0, 0, 0, 0};
};
struct MaskParams {
  std::vector<float> data;  // row-major height x width, bbox-local
  int width = 0, height = 0;
  float threshold = 0.5f;
};

// ---- user metadata -------------------------------------------------------------------------
enum class UserMetaType : int {
  Custom = 0,
  TensorOutput = 12,    // NVDSINFER_TENSOR_OUTPUT_META
  Segmentation = 13,    // NVDSINFER_SEGMENTATION_META
  EventMessage = 1000,  // NVDS_EVENT_MSG_META
  Json = 1001,
};

struct UserMeta {
  int meta_type = 0;
  virtual ~UserMeta() = default;
};

struct TensorOutputMeta : UserMeta {
  int unique_id = 0;
  std::vector<std::string> names;  // layer order
  std::map<std::string, Tensor> layers;
};

struct EventMessageMeta : UserMeta {
  // Filled by EventMessageUserMetadata.generate(); fields as DeepStream's NvDsEventMsgMeta.
  int event_type = 0, obj_type = 0, obj_class_id = 0;
  int sensor_id = 0, place_id = 0, module_id = 0, frame_id = 0;
  double confidence = 0;
  uint64_t tracking_id = UNTRACKED_OBJECT_ID;
  float left = 0, top = 0, width = 0, height = 0;
  std::string sensor_str, object_id, ts, uri;
  std::map<std::string, std::string> ext;  // vehicle/person attributes
};

struct JsonMeta : UserMeta {
  std::string json;
};

// ---- classifier / object / display / frame / batch ----------------------------------------
struct LabelInfo {
  std::string label;
  int class_id = 0;
  float prob = 0;
  int label_id = 0;
  int num_classes = 0;
};

struct ClassifierMeta {
  int unique_component_id = 0;
  int classifier_type = 0;
  std::vector<LabelInfo> labels;
};

struct ObjectMeta {
  int class_id = 0;
  uint64_t object_id = UNTRACKED_OBJECT_ID;
  int unique_component_id = 0;
  float confidence = 0;
  float tracker_confidence = 0;
  RectParams rect_params;
  RectParams detector_bbox;  // box as the detector gave it
  RectParams tracker_bbox;
  MaskParams mask_params;
  TextParams text_params;
  std::string label;
  std::weak_ptr<ObjectMeta> parent;
  std::vector<std::shared_ptr<ClassifierMeta>> classifiers;
  std::vector<std::shared_ptr<UserMeta>> user_meta;
};

struct DisplayMeta {
  std::vector<TextParams> texts;
  std::vector<RectParams> rects;
  std::vector<LineParams> lines;
  std::vector<ArrowParams> arrows;
  std::vector<CircleParams> circles;
};

struct FrameMeta {
  uint64_t frame_number = 0;
  uint32_t pad_index = 0;
  uint32_t batch_id = 0;
  uint32_t source_id = 0;
  uint32_t source_width = 0, source_height = 0;
  uint32_t pipeline_width = 0, pipeline_height = 0;
  int64_t buffer_pts = -1;     // ns
  uint64_t ntp_timestamp = 0;  // ns since the Unix epoch
  bool infer_done = false;
  std::vector<std::shared_ptr<ObjectMeta>> objects;
  std::vector<std::shared_ptr<DisplayMeta>> display_meta;
  std::vector<std::shared_ptr<UserMeta>> user_meta;
};

struct BatchMeta {
  uint32_t max_frames = 0;
  std::vector<std::shared_ptr<FrameMeta>> frames;
  std::vector<std::shared_ptr<UserMeta>> user_meta;
  // Nodes acquired (acquire_*_meta) but not yet appended: owned here so they live as long
  // as the batch, then moved into their parent by append.
  std::vector<std::shared_ptr<void>> acquired;
  std::mutex mu;  // guards structural changes (append/remove) across threads
};

}  // namespace pysm
