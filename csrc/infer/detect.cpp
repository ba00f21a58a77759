// Decode + cluster on the outputs' device; device results come back in one copy and one
// stream synchronisation per batch.
#include "pysm/detect.hpp"

#include <algorithm>

#include "pysm/error.hpp"

#if PYSM_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace pysm::infer {

PendingDetections detect_async(const std::vector<Tensor>& outputs, const DecodeParams& decode,
                               const ClusterParams& cluster, cuda::StreamHandle stream) {
  if (outputs.empty()) raise(ErrorKind::Inference, "detect: the model gave no outputs");
  if (!outputs[0].device().is_cuda()) {
    auto cands = decode_boxes_cpu(outputs, decode);
    for (auto& c : cands) c = cluster_cpu(std::move(c), cluster);
    return PendingDetections(std::move(cands));
  }
#if PYSM_WITH_CUDA
  const int dev = outputs[0].device().id;
  cuda::DeviceScope scope(dev);
  cuda::StreamHandle s = stream ? stream : cuda::default_stream(dev);
  DeviceCandidates cand = decode_boxes_cuda(outputs, decode, s);
  const int B = cand.batch, K = cand.capacity;
  Tensor dets = cand.dets, counts = cand.counts;
  const bool device_nms = clusters_by_nms(cluster.mode);
  if (device_nms) {
    dets = Tensor::empty(cand.dets.shape(), DType::u8(), cand.dets.device());
    counts = Tensor::empty({B}, DType::i32(), cand.dets.device());
    nms_cuda(static_cast<const Detection*>(cand.dets.data()), static_cast<const int*>(cand.counts.data()), B, K,
             cand.classes, cluster.nms, static_cast<Detection*>(dets.data()), static_cast<int*>(counts.data()), dev, s);
  }
  // One pinned staging block for records + counts, one event to wait on.
  const size_t rec_bytes = size_t(B) * K * sizeof(Detection);
  BlockPtr host = MemoryPool::host().allocate(rec_bytes + B * sizeof(int));
  auto* hrec = static_cast<Detection*>(host->data());
  auto* hcnt = reinterpret_cast<int*>(static_cast<uint8_t*>(host->data()) + rec_bytes);
  cudaStream_t cs = static_cast<cudaStream_t>(s);
  cuda::check(cudaMemcpyAsync(hcnt, counts.data(), B * sizeof(int), cudaMemcpyDeviceToHost, cs), "detect: copy counts");
  cuda::check(cudaMemcpyAsync(hrec, dets.data(), rec_bytes, cudaMemcpyDeviceToHost, cs), "detect: copy detections");
  // The device scratch (candidates, NMS output) goes back to the pool stream-ordered.
  for (const Tensor* t : {&cand.dets, &cand.counts, &dets, &counts}) record_stream_use(t->owner(), s);
  auto done = std::make_shared<cuda::Event>(dev);
  done->record(s);
  // Results dropped before collect() must not let the pool hand out the staging block while the
  // copies above may still write into it.
  host->record_use(done);
  return PendingDetections(std::move(host), std::move(done), B, K,
                           device_nms ? nullptr : std::make_shared<const ClusterParams>(cluster));
#else
  (void)stream;
  (void)cluster;
  raise(ErrorKind::Cuda, "detect: pysm was built without CUDA but the outputs are in device memory");
#endif
}

std::vector<std::vector<Detection>> PendingDetections::collect() {
  if (done_flag_) return std::move(ready_);
  if (!done_) raise(ErrorKind::Value, "detect: these detections were already collected");
  done_->synchronize();
  const size_t rec_bytes = size_t(batch_) * capacity_ * sizeof(Detection);
  const auto* hrec = static_cast<const Detection*>(host_->data());
  const auto* hcnt = reinterpret_cast<const int*>(static_cast<const uint8_t*>(host_->data()) + rec_bytes);
  std::vector<std::vector<Detection>> out(batch_);
  for (int b = 0; b < batch_; ++b) {
    out[b].assign(hrec + size_t(b) * capacity_, hrec + size_t(b) * capacity_ + std::min(std::max(hcnt[b], 0), capacity_));
    if (host_cluster_) out[b] = cluster_cpu(std::move(out[b]), *host_cluster_);
  }
  done_.reset();
  host_.reset();
  return out;
}

std::vector<std::vector<Detection>> detect(const std::vector<Tensor>& outputs, const DecodeParams& decode,
                                           const ClusterParams& cluster, cuda::StreamHandle stream) {
  return detect_async(outputs, decode, cluster, stream).collect();
}

}  // namespace pysm::infer
