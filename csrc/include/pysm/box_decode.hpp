// Built-in box decoders for detector outputs: candidates (boxes in network-input pixels, score,
// class) above the per-class pre-cluster threshold, best first. Non-finite values are dropped.
//   yolox        [B, N, 5+C]: tx, ty, tw, th, obj, cls... on the stride-8/16/32 grids (exp boxes)
//   yolo         [B, N, 4+C] or [B, N, 5+C] (or transposed [B, 4+C, N]): cx, cy, w, h (or x1..y2)
//   detectnet_v2 coverage [B, C, gh, gw] + bbox [B, 4C, gh, gw] (DeepStream's resnet parser rule)
//   ssd          boxes [B, N, 4] (x1, y1, x2, y2) + scores [B, N, C], one candidate per class
#pragma once
#include <cstdint>
#include <vector>

#include "pysm/tensor.hpp"

namespace pysm::infer {

struct Detection {
  float x1, y1, x2, y2;  // network-input pixels
  float score;
  int32_t class_id;
};

enum class BoxDecoder : int { Yolox = 0, Yolo = 1, DetectNetV2 = 2, Ssd = 3 };

struct DecodeParams {
  BoxDecoder kind = BoxDecoder::Yolox;
  int num_classes = 0;               // 0: take it from the output shape (yolox, ssd, detectnet_v2)
  int net_width = 0, net_height = 0;
  float default_threshold = 0.2f;    // pre-cluster threshold of classes without their own
  std::vector<float> thresholds;     // per class (index = class id); may be shorter than the class count
  int max_candidates = 1024;         // per image, best first (the input of NMS)
  std::vector<int> strides{8, 16, 32};  // yolox grid strides
  bool yolo_xyxy = false;            // yolo boxes are x1, y1, x2, y2 rather than cx, cy, w, h
  bool normalized = false;           // yolo/ssd coordinates are in 0..1 of the network size
  float box_norm = 35.f;             // detectnet_v2 bbox normalisation
  int background_class = -1;         // ssd: class index that is never a detection
};

// Candidates per image (batch order), sorted by score descending with ties in output order,
// at most max_candidates each. Outputs must be host tensors of float32 or float16.
std::vector<std::vector<Detection>> decode_boxes_cpu(const std::vector<Tensor>& outputs, const DecodeParams& p);

// Device candidates: `dets` holds batch * capacity Detection records (capacity = max_candidates),
// `counts` the number valid per image; both in device memory, written on `stream`.
struct DeviceCandidates {
  Tensor dets;    // uint8 buffer of batch * capacity * sizeof(Detection)
  Tensor counts;  // int32 [batch]
  int batch = 0, capacity = 0;
  int classes = 0;  // class ids are < classes
};
DeviceCandidates decode_boxes_cuda(const std::vector<Tensor>& outputs, const DecodeParams& p,
                                   cuda::StreamHandle stream);

}  // namespace pysm::infer
