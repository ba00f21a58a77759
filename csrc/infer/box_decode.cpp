// Shape checks shared by the box decoder twins: which output is which, and the grid geometry.
#include <string>

#include "pysm/error.hpp"
#include "box_decode_math.hpp"

namespace pysm::infer::detail {

namespace {

std::string shape_str(const Tensor& t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim(); ++i) s += (i ? ", " : "") + std::to_string(t.shape()[i]);
  return s + "]";
}

[[noreturn]] void fail(const std::string& decoder, const std::string& msg) {
  raise(ErrorKind::Inference, "box decoder '" + decoder + "': " + msg);
}

// View of a 2-D..4-D tensor with a leading batch dim (2-D tensors get batch 1 in front).
TensorView view(const Tensor& t, const std::string& decoder) {
  if (t.dtype() != DType::f32() && t.dtype() != DType::f16())
    fail(decoder, "output dtype " + t.dtype().str() + " is not supported; the model must output float32 or float16");
  TensorView v{};
  v.data = t.data();
  v.half = t.dtype() == DType::f16();
  const auto& st = t.strides();
  const int off = t.ndim() == 2 ? 1 : 0;  // [N, K] -> batch stride 0
  for (int i = 0; i < t.ndim() && i + off < 4; ++i) v.s[i + off] = st[i];
  return v;
}

int64_t dim(const Tensor& t, int i) {  // with a batch of 1 in front of 2-D tensors
  if (t.ndim() == 2) return i == 0 ? 1 : t.shape()[i - 1];
  return t.shape()[i];
}

}  // namespace

DecodeView make_decode_view(const std::vector<Tensor>& outs, const DecodeParams& p, std::vector<float>* thr) {
  DecodeView v{};
  v.kind = static_cast<int>(p.kind);
  v.net_w = static_cast<float>(p.net_width);
  v.net_h = static_cast<float>(p.net_height);
  v.normalized = p.normalized;
  v.xyxy = p.yolo_xyxy;
  v.background = p.background_class;
  v.box_norm = p.box_norm;
  if (p.net_width <= 0 || p.net_height <= 0) raise(ErrorKind::Inference, "box decoder: network size is not set");
  if (outs.empty()) raise(ErrorKind::Inference, "box decoder: the model gave no outputs");
  const char* names[] = {"yolox", "yolo", "detectnet_v2", "ssd"};
  const std::string name = names[v.kind];
  for (const auto& t : outs)
    if (t.ndim() < 2 || t.ndim() > 4) fail(name, "output of shape " + shape_str(t) + " has an unexpected rank");
  switch (p.kind) {
    case BoxDecoder::Yolox:
    case BoxDecoder::Yolo: {
      const Tensor& t = outs[0];
      if (t.ndim() > 3) fail(name, "expected one output [batch, anchors, 5+classes], got " + shape_str(t));
      const int64_t d1 = dim(t, 1), d2 = dim(t, 2);
      v.batch = static_cast<int>(dim(t, 0));
      v.a = view(t, name);
      if (p.kind == BoxDecoder::Yolox) {
        v.classes = static_cast<int>(d2 - 5);
        v.has_obj = 1;
        v.slots = d1;
        if (v.classes <= 0) fail(name, "output " + shape_str(t) + " has fewer than 6 values per row");
        if (p.num_classes > 0 && p.num_classes != v.classes)
          fail(name, "output " + shape_str(t) + " has " + std::to_string(v.classes) +
                         " classes but num-detected-classes is " + std::to_string(p.num_classes));
        if (p.strides.empty() || p.strides.size() > size_t(kMaxLevels)) fail(name, "1 to 8 strides are needed");
        v.levels = static_cast<int>(p.strides.size());
        int64_t total = 0;
        std::string grids;
        for (int l = 0; l < v.levels; ++l) {
          const int s = p.strides[l];
          if (s <= 0 || p.net_width % s || p.net_height % s)
            fail(name, "network size " + std::to_string(p.net_width) + "x" + std::to_string(p.net_height) +
                           " is not a multiple of stride " + std::to_string(s));
          v.stride[l] = s;
          v.grid_w[l] = p.net_width / s;
          v.level_start[l] = total;
          total += int64_t(p.net_width / s) * (p.net_height / s);
        }
        v.level_start[v.levels] = total;
        if (total != d1)
          fail(name, "output " + shape_str(t) + " has " + std::to_string(d1) + " rows but a " +
                         std::to_string(p.net_width) + "x" + std::to_string(p.net_height) +
                         " input on the stride grids gives " + std::to_string(total) +
                         "; check infer-dims against the model");
      } else {
        const int C = p.num_classes;
        if (C <= 0) fail(name, "set num-detected-classes: the [N, 4+C] and [N, 5+C] layouts are ambiguous without it");
        auto fits = [&](int64_t k) { return k == 4 + C || k == 5 + C; };
        if (fits(d2)) {
          v.transposed = 0; v.slots = d1; v.has_obj = d2 == 5 + C;
        } else if (fits(d1)) {
          v.transposed = 1; v.slots = d2; v.has_obj = d1 == 5 + C;
        } else {
          fail(name, "output " + shape_str(t) + " has neither 4+" + std::to_string(C) + " nor 5+" +
                         std::to_string(C) + " values per box (num-detected-classes=" + std::to_string(C) + ")");
        }
        v.classes = C;
      }
      break;
    }
    case BoxDecoder::DetectNetV2: {
      if (outs.size() < 2) fail(name, "needs two outputs, coverage [B, C, H, W] and bbox [B, 4C, H, W]");
      const Tensor *cov = &outs[0], *box = &outs[1];
      if (cov->ndim() != 4 || box->ndim() != 4)
        fail(name, "outputs must be 4-D, got " + shape_str(*cov) + " and " + shape_str(*box));
      if (cov->shape()[1] * 4 == box->shape()[1]) {
      } else if (box->shape()[1] * 4 == cov->shape()[1]) {
        std::swap(cov, box);
      } else {
        fail(name, "no output pair with C and 4C channels: " + shape_str(*cov) + ", " + shape_str(*box));
      }
      v.classes = static_cast<int>(cov->shape()[1]);
      if (p.num_classes > 0 && p.num_classes != v.classes)
        fail(name, "coverage " + shape_str(*cov) + " has " + std::to_string(v.classes) +
                       " classes but num-detected-classes is " + std::to_string(p.num_classes));
      if (cov->shape()[2] != box->shape()[2] || cov->shape()[3] != box->shape()[3] || cov->shape()[0] != box->shape()[0])
        fail(name, "coverage " + shape_str(*cov) + " and bbox " + shape_str(*box) + " grids differ");
      v.batch = static_cast<int>(cov->shape()[0]);
      v.gh = static_cast<int>(cov->shape()[2]);
      v.gw = static_cast<int>(cov->shape()[3]);
      v.stride_x = float(p.net_width) / v.gw;
      v.stride_y = float(p.net_height) / v.gh;
      v.slots = int64_t(v.classes) * v.gw * v.gh;
      v.a = view(*cov, name);
      v.b = view(*box, name);
      break;
    }
    case BoxDecoder::Ssd: {
      if (outs.size() < 2) fail(name, "needs two outputs, boxes [B, N, 4] and scores [B, N, C]");
      const Tensor *box = &outs[0], *sc = &outs[1];
      if (dim(*box, 2) != 4 && dim(*sc, 2) == 4) std::swap(box, sc);
      if (box->ndim() > 3 || sc->ndim() > 3 || dim(*box, 2) != 4)
        fail(name, "expected boxes [B, N, 4] and scores [B, N, C], got " + shape_str(outs[0]) + " and " + shape_str(outs[1]));
      if (dim(*box, 1) != dim(*sc, 1) || dim(*box, 0) != dim(*sc, 0))
        fail(name, "boxes " + shape_str(*box) + " and scores " + shape_str(*sc) + " disagree on batch or anchors");
      v.batch = static_cast<int>(dim(*box, 0));
      v.classes = static_cast<int>(dim(*sc, 2));
      if (p.num_classes > 0 && p.num_classes != v.classes)
        fail(name, "scores " + shape_str(*sc) + " have " + std::to_string(v.classes) +
                       " classes but num-detected-classes is " + std::to_string(p.num_classes));
      v.slots = dim(*box, 1) * v.classes;
      v.a = view(*box, name);
      v.b = view(*sc, name);
      break;
    }
  }
  thr->assign(static_cast<size_t>(v.classes), p.default_threshold);
  for (size_t c = 0; c < thr->size() && c < p.thresholds.size(); ++c) (*thr)[c] = p.thresholds[c];
  v.thr = thr->data();
  return v;
}

}  // namespace pysm::infer::detail
