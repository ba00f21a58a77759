#include "pysm/infer_meta.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "pysm/error.hpp"

namespace pysm::infer {

namespace {

// Surface pixels -> FrameMeta (pipeline) coordinates. The mux may carry a frame at a different
// size than it reports (e.g. a converter scaled it afterwards); metadata uses pipeline coordinates.
struct FrameScale {
  float kx = 1.f, ky = 1.f;
  float width = 0, height = 0;  // frame size in metadata coordinates
};

FrameScale frame_scale(const FrameMeta& f, const Surface& s) {
  FrameScale fs;
  fs.width = static_cast<float>(s.width);
  fs.height = static_cast<float>(s.height);
  if (f.pipeline_width > 0 && f.pipeline_height > 0 && s.width > 0 && s.height > 0) {
    fs.kx = float(f.pipeline_width) / s.width;
    fs.ky = float(f.pipeline_height) / s.height;
    fs.width = float(f.pipeline_width);
    fs.height = float(f.pipeline_height);
  }
  return fs;
}

const Surface& surface_of(const Buffer& b, const InferItem& it) {
  if (it.surface < 0 || it.surface >= b.batch_size())
    raise(ErrorKind::Value, "inference: frame batch_id " + std::to_string(it.surface) + " has no surface in a batch of " +
                                std::to_string(b.batch_size()));
  return b.surfaces[it.surface];
}

// Appends a classifier result to its object and its labels to the object's display text.
void add_classifier(ObjectMeta& obj, std::shared_ptr<ClassifierMeta> cm) {
  std::string text;
  for (const auto& li : cm->labels)
    if (!li.label.empty()) text += (text.empty() ? "" : " ") + li.label;
  if (!text.empty()) {
    auto& dt = obj.text_params.display_text;
    dt += (dt.empty() ? "" : " ") + text;
  }
  obj.classifiers.push_back(std::move(cm));
}

const ClassAttrs& attrs_for(const DetectionOutput& p, int c) {
  auto it = p.per_class.find(c);
  return it == p.per_class.end() ? p.all : it->second;
}

}  // namespace

std::vector<InferItem> plan_items(Buffer& buffer, const SelectParams& p) {
  auto& meta = buffer.meta;
  if (!meta) meta = std::make_shared<BatchMeta>();
  std::vector<std::shared_ptr<FrameMeta>> frames;
  {
    std::lock_guard<std::mutex> lock(meta->mu);
    if (meta->frames.empty()) {
      // A batch built by hand (e.g. Tensor.wrap) has surfaces but no frame metadata yet.
      for (int i = 0; i < buffer.batch_size(); ++i) {
        auto f = std::make_shared<FrameMeta>();
        f->batch_id = i;
        f->pad_index = i;
        f->source_id = i;
        f->source_width = f->pipeline_width = buffer.surfaces[i].width;
        f->source_height = f->pipeline_height = buffer.surfaces[i].height;
        f->buffer_pts = buffer.surfaces[i].pts;
        meta->frames.push_back(f);
      }
      meta->max_frames = std::max<uint32_t>(meta->max_frames, buffer.batch_size());
    }
    frames = meta->frames;
  }
  std::vector<InferItem> items;
  for (const auto& f : frames) {
    InferItem base;
    base.frame = f;
    base.surface = static_cast<int>(f->batch_id);
    const Surface& s = surface_of(buffer, base);
    if (!p.secondary) {
      items.push_back(base);
      continue;
    }
    const FrameScale fs = frame_scale(*f, s);
    std::vector<std::shared_ptr<ObjectMeta>> objects;
    {
      std::lock_guard<std::mutex> lock(meta->mu);
      objects = f->objects;
    }
    for (const auto& o : objects) {
      if (p.operate_on_gie_id >= 0 && o->unique_component_id != p.operate_on_gie_id) continue;
      if (!p.operate_on_class_ids.empty() &&
          std::find(p.operate_on_class_ids.begin(), p.operate_on_class_ids.end(), o->class_id) ==
              p.operate_on_class_ids.end())
        continue;
      const auto& r = o->rect_params;
      if (!(r.width > 0) || !(r.height > 0)) continue;
      if ((p.min_width > 0 && r.width < p.min_width) || (p.min_height > 0 && r.height < p.min_height)) continue;
      if ((p.max_width > 0 && r.width > p.max_width) || (p.max_height > 0 && r.height > p.max_height)) continue;
      InferItem it = base;
      it.object = o;
      // Metadata rect -> surface pixels (integer crop, rounded outwards).
      const float x0 = r.left / fs.kx, y0 = r.top / fs.ky;
      const float x1 = (r.left + r.width) / fs.kx, y1 = (r.top + r.height) / fs.ky;
      it.region.frame = it.surface;
      it.region.x = static_cast<int>(std::floor(x0));
      it.region.y = static_cast<int>(std::floor(y0));
      it.region.width = static_cast<int>(std::ceil(x1)) - it.region.x;
      it.region.height = static_cast<int>(std::ceil(y1)) - it.region.y;
      if (it.region.width <= 0 || it.region.height <= 0) continue;
      if (p.history) {
        ObjectHistory::Decision d = p.history->admit(*f, *o);
        if (!d.infer) {
          if (d.cached && !d.cached->labels.empty()) {
            std::lock_guard<std::mutex> lock(meta->mu);
            add_classifier(*o, std::make_shared<ClassifierMeta>(*d.cached));
          }
          continue;
        }
        it.history = p.history;
        it.history_entry = std::move(d.entry);
      }
      items.push_back(it);
    }
  }
  for (auto& it : items) it.region.frame = it.surface;
  return items;
}

void preprocess_items(const Buffer& buffer, std::vector<InferItem>& items, const PreprocessParams& p, Tensor& out,
                      cuda::StreamHandle stream) {
  std::vector<CropRegion> regions;
  regions.reserve(items.size());
  for (const auto& it : items) {
    surface_of(buffer, it);
    regions.push_back(it.region);
  }
  auto transforms = preprocess(buffer.surfaces, regions, p, out, stream);
  for (size_t i = 0; i < items.size(); ++i) items[i].transform = transforms[i];
}

int attach_detections(Buffer& buffer, const std::vector<InferItem>& items,
                      const std::vector<std::vector<Detection>>& dets, const DetectionOutput& p) {
  int attached = 0;
  auto& meta = *buffer.meta;
  for (size_t i = 0; i < items.size() && i < dets.size(); ++i) {
    const InferItem& it = items[i];
    const Surface& s = surface_of(buffer, it);
    const FrameScale fs = frame_scale(*it.frame, s);
    const InputTransform& t = it.transform;
    if (!t.valid) continue;
    std::vector<std::shared_ptr<ObjectMeta>> made;
    for (const Detection& d : dets[i]) {
      const int c = d.class_id;
      if (std::find(p.filter_out_class_ids.begin(), p.filter_out_class_ids.end(), c) != p.filter_out_class_ids.end())
        continue;
      const ClassAttrs& a = attrs_for(p, c);
      if (!std::isfinite(d.score) || d.score < a.post_cluster_threshold) continue;
      if (a.roi_top_offset > 0 && d.y1 < a.roi_top_offset) continue;
      if (a.roi_bottom_offset > 0 && d.y2 > p.net_height - a.roi_bottom_offset) continue;
      // Network pixels -> surface pixels (undo letterbox and crop), clipped to the crop.
      const float cx0 = float(t.crop_x), cy0 = float(t.crop_y);
      const float cx1 = float(t.crop_x + t.crop_w), cy1 = float(t.crop_y + t.crop_h);
      auto fx = [&](float x) { return std::clamp(cx0 + (x - t.pad_x) * t.sx, cx0, cx1); };
      auto fy = [&](float y) { return std::clamp(cy0 + (y - t.pad_y) * t.sy, cy0, cy1); };
      const float x1 = fx(d.x1) * fs.kx, y1 = fy(d.y1) * fs.ky, x2 = fx(d.x2) * fs.kx, y2 = fy(d.y2) * fs.ky;
      if (!std::isfinite(x1) || !std::isfinite(y1) || !std::isfinite(x2) || !std::isfinite(y2)) continue;
      const float w = x2 - x1, h = y2 - y1;
      if (!(w > 0) || !(h > 0)) continue;
      if ((a.min_width > 0 && w < a.min_width) || (a.min_height > 0 && h < a.min_height)) continue;
      if ((a.max_width > 0 && w > a.max_width) || (a.max_height > 0 && h > a.max_height)) continue;
      auto o = std::make_shared<ObjectMeta>();
      o->class_id = c;
      o->unique_component_id = p.unique_id;
      o->confidence = d.score;
      o->rect_params.left = x1;
      o->rect_params.top = y1;
      o->rect_params.width = w;
      o->rect_params.height = h;
      o->rect_params.border_width = 3;
      o->rect_params.border_color = a.has_border_color ? a.border_color : Color{1, 0, 0, 1};
      o->rect_params.has_bg_color = a.has_bg_color;
      o->rect_params.bg_color = a.bg_color;
      o->detector_bbox = o->rect_params;
      if (c >= 0 && c < static_cast<int>(p.labels.size())) o->label = p.labels[c];
      o->text_params.display_text = o->label;
      o->text_params.x_offset = static_cast<int>(x1);
      o->text_params.y_offset = std::max(0, static_cast<int>(y1) - 10);
      o->text_params.font.name = "Serif";
      o->text_params.font.size = 11;
      o->text_params.font.color = Color{1, 1, 1, 1};
      o->text_params.set_bg_clr = true;
      o->text_params.text_bg_clr = Color{0, 0, 0, 1};
      if (it.object) o->parent = it.object;
      made.push_back(std::move(o));
    }
    std::lock_guard<std::mutex> lock(meta.mu);
    for (auto& o : made) it.frame->objects.push_back(std::move(o));
    attached += static_cast<int>(made.size());
    if (!it.object) it.frame->infer_done = true;
  }
  return attached;
}

int attach_classifications(Buffer& buffer, const std::vector<InferItem>& items, const std::vector<Tensor>& outputs,
                           const ClassifierOutput& p) {
  int attached = 0;
  auto& meta = *buffer.meta;
  for (const auto& t : outputs) {
    if (t.device().is_cuda()) raise(ErrorKind::Value, "attach_classifications: outputs must be in host memory");
    if (t.dtype() != DType::f32()) raise(ErrorKind::Inference, "classifier output must be float32, got " + t.dtype().str());
    if (t.ndim() < 1 || t.shape()[0] < static_cast<int64_t>(items.size()))
      raise(ErrorKind::Inference, "classifier output has fewer rows than inferred objects");
  }
  for (size_t i = 0; i < items.size(); ++i) {
    auto cm = std::make_shared<ClassifierMeta>();
    cm->unique_component_id = p.unique_id;
    cm->classifier_type = p.classifier_type;
    for (size_t l = 0; l < outputs.size(); ++l) {
      const Tensor& t = outputs[l];
      int64_t C = 1;
      for (int d = 1; d < t.ndim(); ++d) C *= t.shape()[d];
      // Rows may be strided along the batch only; inner dims are contiguous for model outputs.
      const float* row = static_cast<const float*>(t.data()) + int64_t(i) * t.strides()[0];
      int best = -1;
      float prob = -1.f;
      for (int64_t c = 0; c < C; ++c)
        if (std::isfinite(row[c]) && row[c] > prob) {
          prob = row[c];
          best = static_cast<int>(c);
        }
      if (best < 0 || prob < p.threshold) continue;
      LabelInfo li;
      li.class_id = best;
      li.prob = prob;
      li.label_id = static_cast<int>(l);
      li.num_classes = static_cast<int>(C);
      if (l < p.labels.size() && best < static_cast<int>(p.labels[l].size())) li.label = p.labels[l][best];
      cm->labels.push_back(std::move(li));
    }
    // Remembered even when empty: a tracked object below the threshold is not classified again either.
    if (items[i].history_entry) items[i].history->remember(*items[i].history_entry, std::make_shared<ClassifierMeta>(*cm));
    if (cm->labels.empty()) continue;
    std::shared_ptr<ObjectMeta> obj = items[i].object;
    std::lock_guard<std::mutex> lock(meta.mu);
    if (!obj) {
      // Primary classifier: a frame-sized object carries the result (DeepStream attaches it the same way).
      const Surface& s = surface_of(buffer, items[i]);
      const FrameScale fs = frame_scale(*items[i].frame, s);
      obj = std::make_shared<ObjectMeta>();
      obj->unique_component_id = p.unique_id;
      obj->class_id = cm->labels[0].class_id;
      obj->confidence = cm->labels[0].prob;
      obj->rect_params.width = fs.width;
      obj->rect_params.height = fs.height;
      obj->rect_params.border_width = 0;
      obj->detector_bbox = obj->rect_params;
      obj->label = cm->labels[0].label;
      obj->text_params.font.name = "Serif";
      obj->text_params.font.size = 11;
      obj->text_params.set_bg_clr = true;
      items[i].frame->objects.push_back(obj);
      items[i].frame->infer_done = true;
    }
    add_classifier(*obj, std::move(cm));
    ++attached;
  }
  return attached;
}

void attach_tensor_output(Buffer& buffer, const std::vector<InferItem>& items, const std::vector<std::string>& names,
                          const std::vector<Tensor>& outputs, int unique_id) {
  if (names.size() != outputs.size()) raise(ErrorKind::Value, "attach_tensor_output: names and outputs differ in length");
  auto& meta = *buffer.meta;
  for (size_t i = 0; i < items.size(); ++i) {
    auto m = std::make_shared<TensorOutputMeta>();
    m->meta_type = static_cast<int>(UserMetaType::TensorOutput);
    m->unique_id = unique_id;
    m->names = names;
    for (size_t l = 0; l < outputs.size(); ++l) {
      const Tensor& t = outputs[l];
      if (t.ndim() < 1 || t.shape()[0] <= static_cast<int64_t>(i))
        raise(ErrorKind::Inference, "output '" + names[l] + "' has no row for item " + std::to_string(i));
      std::vector<int64_t> shape(t.shape().begin() + 1, t.shape().end());
      std::vector<int64_t> strides(t.strides().begin() + 1, t.strides().end());
      auto* data = static_cast<uint8_t*>(t.data()) + int64_t(i) * t.strides()[0] * int64_t(t.dtype().itemsize());
      Tensor slice(t.owner(), data, t.dtype(), shape, strides, t.device(), "");
      slice.set_ready_event(t.ready_event());
      m->layers[names[l]] = slice;
    }
    std::lock_guard<std::mutex> lock(meta.mu);
    if (items[i].object) items[i].object->user_meta.push_back(m);
    else items[i].frame->user_meta.push_back(m);
  }
}

void attach_segmentation(Buffer& buffer, const std::vector<InferItem>& items, const Tensor& probs, bool nhwc,
                         float threshold, int unique_id) {
  if (probs.device().is_cuda()) raise(ErrorKind::Value, "attach_segmentation: probabilities must be in host memory");
  if (probs.dtype() != DType::f32() || probs.ndim() != 4 || !probs.is_contiguous())
    raise(ErrorKind::Inference, "segmentation: the output must be a dense float32 [N, C, H, W] (or [N, H, W, C] with "
                                "segmentation-output-order=1) tensor, got " + probs.dtype().str() + " with " +
                                std::to_string(probs.ndim()) + " dimensions");
  const auto& sh = probs.shape();
  const int64_t n = sh[0];
  const int64_t C = nhwc ? sh[3] : sh[1], H = nhwc ? sh[1] : sh[2], W = nhwc ? sh[2] : sh[3];
  if (n < static_cast<int64_t>(items.size()))
    raise(ErrorKind::Inference, "segmentation: the output has " + std::to_string(n) + " rows for " +
                                    std::to_string(items.size()) + " items");
  const float* base = static_cast<const float*>(probs.data());
  auto& meta = *buffer.meta;
  for (size_t i = 0; i < items.size(); ++i) {
    const float* p = base + int64_t(i) * C * H * W;
    auto m = std::make_shared<SegmentationMeta>();
    m->unique_id = unique_id;
    m->classes = static_cast<int>(C);
    m->width = static_cast<int>(W);
    m->height = static_cast<int>(H);
    m->class_map.assign(size_t(H * W), -1);
    m->class_probabilities.resize(size_t(H * W * C));
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const int64_t px = y * W + x;
        float best = 0.f;
        int best_c = -1;
        for (int64_t c = 0; c < C; ++c) {
          const float v = nhwc ? p[px * C + c] : p[c * H * W + px];
          m->class_probabilities[size_t(px * C + c)] = v;
          if (v == v && (best_c < 0 || v > best)) {  // NaN never wins
            best = v;
            best_c = static_cast<int>(c);
          }
        }
        if (best_c >= 0 && best >= threshold) m->class_map[size_t(px)] = best_c;
      }
    }
    std::lock_guard<std::mutex> lock(meta.mu);
    if (items[i].object) items[i].object->user_meta.push_back(m);
    else items[i].frame->user_meta.push_back(m);
  }
}

}  // namespace pysm::infer
