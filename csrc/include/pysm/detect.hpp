// Detector post-processing: decode the output tensors, then cluster (NMS) per image, on the
// outputs' device (CUDA kernels for device outputs, the CPU twins for host outputs).
#pragma once
#include <vector>

#include "pysm/box_decode.hpp"
#include "pysm/nms.hpp"

namespace pysm::infer {

// Detections per image in network-input pixels, best first. `cluster` false skips NMS (cluster-mode 4).
std::vector<std::vector<Detection>> detect(const std::vector<Tensor>& outputs, const DecodeParams& decode,
                                           const NmsParams& nms, bool cluster, cuda::StreamHandle stream = nullptr);

// Cluster host candidates (e.g. from a custom parser) with the CPU NMS; sorts them first.
std::vector<Detection> cluster_detections(std::vector<Detection> candidates, const NmsParams& nms, bool cluster);

}  // namespace pysm::infer
