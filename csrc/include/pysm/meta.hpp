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

// Box coordinates without drawing attributes (NvBbox_Coords).
struct BBoxCoords {
  float left = 0, top = 0, width = 0, height = 0;
};

// ---- user metadata -------------------------------------------------------------------------
// meta_type values follow DeepStream's NvDsMetaType where one exists, so programs that filter
// user_meta_items(meta_type) with DeepStream's numbers keep working.
enum class UserMetaType : int {
  Custom = 0,
  Payload = 8,          // NVDS_PAYLOAD_META (message payload for a broker)
  EventMessage = 9,     // NVDS_EVENT_MSG_META
  TensorOutput = 12,    // NVDSINFER_TENSOR_OUTPUT_META
  Segmentation = 13,    // NVDSINFER_SEGMENTATION_META
  Json = 1001,          // pysm: JSON text set with UserMetadata.set_user_data_json
};

struct UserMeta {
  int meta_type = 0;
  virtual ~UserMeta() = default;
};

struct TensorOutputMeta : UserMeta {
  TensorOutputMeta() { meta_type = static_cast<int>(UserMetaType::TensorOutput); }
  int unique_id = 0;
  std::vector<std::string> names;  // layer order
  std::map<std::string, Tensor> layers;
};

struct SegmentationMeta : UserMeta {
  SegmentationMeta() { meta_type = static_cast<int>(UserMetaType::Segmentation); }
  int unique_id = 0;
  int classes = 0, width = 0, height = 0;
  std::vector<int32_t> class_map;            // height x width, row-major (-1: no class)
  std::vector<float> class_probabilities;    // height x width x classes, row-major (may be empty)
};

// DeepStream's NvDsEventType / NvDsObjectType numbering (nvdsmeta_schema.h).
enum class EventType : int { Entry = 0, Exit = 1, Moving = 2, Stopped = 3, Empty = 4, Parked = 5, Reset = 6, Reserved = 0x100, Custom = 0x101 };
enum class ObjectType : int {
  Vehicle = 0, Person = 1, Face = 2, Bag = 3, Bicycle = 4, RoadSign = 5, VehicleExt = 6, PersonExt = 7,
  FaceExt = 8, Product = 9, ProductExt = 10, Reserved = 0x100, Custom = 0x101, Unknown = 0x102,
};

struct EventMessageMeta : UserMeta {
  EventMessageMeta() { meta_type = static_cast<int>(UserMetaType::EventMessage); }
  // Filled by generate_event_message(); fields as DeepStream's NvDsEventMsgMeta.
  int event_type = 0, obj_type = static_cast<int>(ObjectType::Unknown), obj_class_id = 0;
  int sensor_id = 0, place_id = 0, module_id = 0, frame_id = 0;
  double confidence = 0;
  uint64_t tracking_id = UNTRACKED_OBJECT_ID;
  float left = 0, top = 0, width = 0, height = 0;  // in source (not pipeline) resolution
  std::string sensor_str, object_id, ts, uri;
  std::map<std::string, std::string> ext;  // vehicle attributes: type, color, make
};

// Generic user metadata (acquire_user_meta): an int tag plus JSON text.
struct JsonMeta : UserMeta {
  JsonMeta() { meta_type = static_cast<int>(UserMetaType::Custom); }
  std::string json;  // empty: no data set
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
  BBoxCoords nv_bbox;        // DeepStream 9's nv_bbox_info
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

  // A new node of type T, parked in `acquired` until it is appended somewhere.
  template <class T>
  std::shared_ptr<T> acquire() {
    auto node = std::make_shared<T>();
    std::lock_guard<std::mutex> lock(mu);
    acquired.push_back(node);
    return node;
  }
};

// ---- structural operations ----------------------------------------------------------------
// All of them lock BatchMeta::mu. Field reads and writes of a node are not locked: a batch is
// processed by one pipeline stage at a time; the lock makes appends/removes from several
// threads (and readers that walk lists, like the column accessors) safe.
namespace meta {

namespace detail {
template <class A, class B>
bool same_node(const std::shared_ptr<A>& a, const std::shared_ptr<B>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}
// Take `node` out of b.acquired (caller holds b.mu). False when it is not there.
template <class T>
bool adopt(BatchMeta& b, const std::shared_ptr<T>& node) {
  for (size_t i = b.acquired.size(); i-- > 0;) {
    if (same_node(b.acquired[i], node)) {
      b.acquired[i] = std::move(b.acquired.back());
      b.acquired.pop_back();
      return true;
    }
  }
  return false;
}
[[noreturn]] void not_acquired(const char* what);
[[noreturn]] void not_found(const char* what, const char* where);
}  // namespace detail

// Move an acquired node into `list` (a child list of a node of batch `b`). Throws Error(Value)
// when the node was not acquired from `b` or is already appended.
template <class T, class U>
void append(BatchMeta& b, std::vector<std::shared_ptr<T>>& list, const std::shared_ptr<U>& node, const char* what) {
  std::lock_guard<std::mutex> lock(b.mu);
  if (!detail::adopt(b, node)) detail::not_acquired(what);
  list.push_back(node);
}

// Remove `node` from `list`; the node is destroyed unless someone else holds it, so views of it
// (and of its children) expire. Throws Error(Value) when it is not in the list.
template <class T, class U>
void remove(BatchMeta& b, std::vector<std::shared_ptr<T>>& list, const std::shared_ptr<U>& node, const char* what,
            const char* where) {
  std::shared_ptr<T> dropped;  // destroyed after the lock is released
  {
    std::lock_guard<std::mutex> lock(b.mu);
    for (size_t i = 0; i < list.size(); ++i) {
      if (detail::same_node(list[i], node)) {
        dropped = std::move(list[i]);
        list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  if (!dropped) detail::not_found(what, where);
}

// Element i of `list`, or null past the end (for single-pass iterators that tolerate appends).
template <class T>
std::shared_ptr<T> at(BatchMeta& b, const std::vector<std::shared_ptr<T>>& list, size_t i) {
  std::lock_guard<std::mutex> lock(b.mu);
  return i < list.size() ? list[i] : std::shared_ptr<T>();
}

// Next user meta of `list` at or after *pos whose meta_type equals `meta_type` (any type when
// meta_type < 0); advances *pos past it. Null at the end.
std::shared_ptr<UserMeta> next_user_meta(BatchMeta& b, const std::vector<std::shared_ptr<UserMeta>>& list,
                                         size_t* pos, int meta_type);

template <class T>
size_t size(BatchMeta& b, const std::vector<std::shared_ptr<T>>& list) {
  std::lock_guard<std::mutex> lock(b.mu);
  return list.size();
}

// Append a label to a classifier (label_id < 0: its index).
void add_label(BatchMeta& b, ClassifierMeta& c, LabelInfo label);

// Append a new frame (not through `acquired`) with batch_id = its index; for muxers.
std::shared_ptr<FrameMeta> add_frame(BatchMeta& b);
// Append a new object to a frame (not through `acquired`); for detectors.
std::shared_ptr<ObjectMeta> add_object(BatchMeta& b, FrameMeta& f);

// DisplayMeta elements, capped at MAX_ELEMENTS_IN_DISPLAY_META each as in DeepStream; past the
// cap they throw Error(Index) telling the caller to acquire another DisplayMeta.
void add_text(BatchMeta& b, DisplayMeta& d, const TextParams& v);
void add_rect(BatchMeta& b, DisplayMeta& d, const RectParams& v);
void add_line(BatchMeta& b, DisplayMeta& d, const LineParams& v);
void add_arrow(BatchMeta& b, DisplayMeta& d, const ArrowParams& v);
void add_circle(BatchMeta& b, DisplayMeta& d, const CircleParams& v);

// ---- vectorised reads of a frame's objects (one lock, one pass) ----------------------------
// Caller-owned outputs, each may be null; each holds `capacity` rows.
struct ObjectColumns {
  float* boxes = nullptr;  // capacity x 4: left, top, width, height (or x1, y1, x2, y2)
  bool xyxy = false;
  int32_t* class_ids = nullptr;
  float* confidences = nullptr;
  float* tracker_confidences = nullptr;
  uint64_t* object_ids = nullptr;
  int32_t* component_ids = nullptr;
};
// Fills min(n, capacity) rows and returns n, the frame's object count; the caller retries
// with a larger capacity when n > capacity (objects appended meanwhile).
size_t fill_object_columns(BatchMeta& b, const FrameMeta& f, const ObjectColumns& out, size_t capacity);

// ---- batch summary (BatchMetadata.extract) --------------------------------------------------
struct IntMap {
  int height = 0, width = 0;
  std::vector<int32_t> data;  // row-major
};
struct FrameSummary {
  uint32_t pad_index = 0;
  int shape[2] = {0, 0};  // height, width: pipeline size, or the segmentation map's size
  std::vector<int32_t> bboxes;  // n x 4: left, top, right, bottom (truncated to int)
  std::vector<float> probs;
  std::vector<std::vector<std::string>> labels;  // object label then classifier labels
  std::vector<int64_t> objects;  // object ids; -1 for untracked
  std::vector<IntMap> seg_maps;  // instance masks (as int) and segmentation class maps
  int64_t timestamp = 0;         // buffer pts (ns)
};
std::vector<FrameSummary> summarize(BatchMeta& b);

// ---- event messages ------------------------------------------------------------------------
// Fill `msg` from an object and its frame, with DeepStream's rules: bbox scaled from pipeline to
// source resolution, ids from the frame's source id, ts in RFC 3339 UTC (now; from buffer_pts for
// ipc:// URIs), and class rules from `labels` (default {"car": 0, "person": 2}).
void generate_event_message(BatchMeta& b, EventMessageMeta& msg, const ObjectMeta& obj, const FrameMeta& frame,
                            const std::string& sensor, const std::string& uri,
                            const std::vector<std::string>& labels);
// RFC 3339 UTC with milliseconds, e.g. 2025-01-31T12:00:00.123Z.
std::string rfc3339_utc(int64_t unix_ns);
int64_t unix_now_ns();

}  // namespace meta
}  // namespace pysm
