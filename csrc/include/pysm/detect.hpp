// Detector post-processing: decode the output tensors, then cluster per image. Decode and NMS run
// on the outputs' device (CUDA kernels for device outputs, the CPU twins for host outputs); DBSCAN,
// the hybrid and the top-k of unclustered output run on the host once the candidates are there.
#pragma once
#include <memory>
#include <vector>

#include "pysm/box_decode.hpp"
#include "pysm/cluster.hpp"
#include "pysm/cuda.hpp"
#include "pysm/memory.hpp"

namespace pysm::infer {

// Detections of one batch whose device work is queued but maybe not finished: an engine submits
// the next batch before it collects this one, so the GPU never waits for the host in between.
class PendingDetections {
 public:
  PendingDetections() = default;
  explicit PendingDetections(std::vector<std::vector<Detection>> ready) : ready_(std::move(ready)), done_flag_(true) {}
  // `host_cluster`: clustering still to run on the host in collect() (modes other than NMS).
  PendingDetections(BlockPtr host, std::shared_ptr<cuda::Event> done, int batch, int capacity,
                    std::shared_ptr<const ClusterParams> host_cluster)
      : host_(std::move(host)), done_(std::move(done)), batch_(batch), capacity_(capacity),
        host_cluster_(std::move(host_cluster)) {}

  bool valid() const { return done_flag_ || done_ != nullptr; }
  // Waits for the device (a sleeping wait, see cuda::blocking_waits) and unpacks; once only.
  std::vector<std::vector<Detection>> collect();

 private:
  std::vector<std::vector<Detection>> ready_;
  bool done_flag_ = false;
  BlockPtr host_;  // pinned: counts after batch_*capacity_ records
  std::shared_ptr<cuda::Event> done_;
  int batch_ = 0, capacity_ = 0;
  std::shared_ptr<const ClusterParams> host_cluster_;
};

// Queue decode (+ NMS) of a batch on `stream` and the copy of the results to pinned memory.
PendingDetections detect_async(const std::vector<Tensor>& outputs, const DecodeParams& decode,
                               const ClusterParams& cluster, cuda::StreamHandle stream = nullptr);

// Detections per image in network-input pixels, best first.
std::vector<std::vector<Detection>> detect(const std::vector<Tensor>& outputs, const DecodeParams& decode,
                                           const ClusterParams& cluster, cuda::StreamHandle stream = nullptr);

}  // namespace pysm::infer
