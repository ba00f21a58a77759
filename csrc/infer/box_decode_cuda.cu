// CUDA box decoders: one thread per slot writes (score or -inf, slot) for the whole batch, a
// segmented stable radix sort orders each image best first (ties in slot order, as the CPU
// twin), and a gather kernel decodes the best max_candidates slots into Detection records.
#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include "pysm/error.hpp"
#include "pysm/memory.hpp"
#include "box_decode_math.hpp"

namespace pysm::infer {

namespace {

__global__ void score_kernel(detail::DecodeView v, float* keys, int* vals, int* valid_counts) {
  const int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t total = v.slots * v.batch;
  if (i >= total) return;
  const int b = static_cast<int>(i / v.slots);
  const int64_t slot = i % v.slots;
  Detection d;
  const bool ok = detail::decode_slot(v, b, slot, &d);
  keys[i] = ok ? d.score : -INFINITY;
  vals[i] = static_cast<int>(slot);
  if (ok) atomicAdd(&valid_counts[b], 1);
}

__global__ void offsets_kernel(int* begin, int batch, int64_t slots) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= batch) begin[i] = static_cast<int>(i * slots);
}

__global__ void gather_kernel(detail::DecodeView v, const int* sorted_slots, const int* valid_counts, int capacity,
                              Detection* out, int* counts) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  const int b = blockIdx.y;
  const int n = min(valid_counts[b], capacity);
  if (k == 0) counts[b] = n;
  if (k >= n) return;
  Detection d;
  detail::decode_slot(v, b, sorted_slots[b * v.slots + k], &d);
  out[int64_t(b) * capacity + k] = d;
}

}  // namespace

DeviceCandidates decode_boxes_cuda(const std::vector<Tensor>& outputs, const DecodeParams& p, cuda::StreamHandle stream) {
  if (outputs.empty() || !outputs[0].device().is_cuda())
    raise(ErrorKind::Value, "decode_boxes_cuda: outputs must be in device memory");
  const Device dev = outputs[0].device();
  for (const auto& t : outputs)
    if (t.device() != dev) raise(ErrorKind::Value, "decode_boxes_cuda: all outputs must be on " + dev.str());
  cuda::DeviceScope scope(dev.id);
  cudaStream_t s = static_cast<cudaStream_t>(stream ? stream : cuda::default_stream(dev.id));
  for (const auto& t : outputs) t.wait_ready(s);

  std::vector<float> thr_host;
  detail::DecodeView v = detail::make_decode_view(outputs, p, &thr_host);
  const int64_t total = v.slots * v.batch;
  if (total >= (int64_t(1) << 31))
    raise(ErrorKind::Inference, "box decoder: batch x candidates exceeds 2^31; lower the batch size");
  const int capacity = std::max(1, p.max_candidates);

  auto& pool = MemoryPool::device(dev.id);
  std::vector<BlockPtr> scratch;
  auto alloc = [&](size_t bytes) {
    scratch.push_back(pool.allocate(std::max<size_t>(bytes, 16)));
    return scratch.back()->data();
  };
  // Thresholds: pinned staging -> device.
  BlockPtr thr_stage = MemoryPool::host().allocate(thr_host.size() * sizeof(float) + 16);
  std::copy(thr_host.begin(), thr_host.end(), static_cast<float*>(thr_stage->data()));
  auto* thr = static_cast<float*>(alloc(thr_host.size() * sizeof(float)));
  cuda::check(cudaMemcpyAsync(thr, thr_stage->data(), thr_host.size() * sizeof(float), cudaMemcpyHostToDevice, s),
              "box decode: cudaMemcpyAsync");
  thr_stage->record_use(s);
  v.thr = thr;

  auto* keys = static_cast<float*>(alloc(total * sizeof(float)));
  auto* keys_sorted = static_cast<float*>(alloc(total * sizeof(float)));
  auto* vals = static_cast<int*>(alloc(total * sizeof(int)));
  auto* vals_sorted = static_cast<int*>(alloc(total * sizeof(int)));
  auto* valid = static_cast<int*>(alloc(v.batch * sizeof(int)));
  auto* begin = static_cast<int*>(alloc((v.batch + 1) * sizeof(int)));
  cuda::check(cudaMemsetAsync(valid, 0, v.batch * sizeof(int), s), "box decode: cudaMemsetAsync");

  DeviceCandidates out;
  out.batch = v.batch;
  out.capacity = capacity;
  out.classes = v.classes;
  out.dets = Tensor::empty({int64_t(v.batch) * capacity * int64_t(sizeof(Detection))}, DType::u8(), dev);
  out.counts = Tensor::empty({v.batch}, DType::i32(), dev);
  if (total > 0) {
    score_kernel<<<static_cast<unsigned>((total + 255) / 256), 256, 0, s>>>(v, keys, vals, valid);
    offsets_kernel<<<(v.batch + 1 + 255) / 256, 256, 0, s>>>(begin, v.batch, v.slots);
    size_t temp_bytes = 0;
    cuda::check(cub::DeviceSegmentedRadixSort::SortPairsDescending(
                    nullptr, temp_bytes, keys, keys_sorted, vals, vals_sorted, static_cast<int>(total), v.batch,
                    begin, begin + 1, 0, 32, s),
                "box decode: sort (size query)");
    void* temp = alloc(temp_bytes);
    cuda::check(cub::DeviceSegmentedRadixSort::SortPairsDescending(temp, temp_bytes, keys, keys_sorted, vals,
                                                                     vals_sorted, static_cast<int>(total), v.batch,
                                                                     begin, begin + 1, 0, 32, s),
                "box decode: sort");
    const dim3 grid((capacity + 255) / 256, v.batch);
    gather_kernel<<<grid, 256, 0, s>>>(v, vals_sorted, valid, capacity, static_cast<Detection*>(out.dets.data()),
                                       static_cast<int*>(out.counts.data()));
    cuda::check(cudaGetLastError(), "box decode kernels");
  } else {
    cuda::check(cudaMemsetAsync(out.counts.data(), 0, v.batch * sizeof(int), s), "box decode: cudaMemsetAsync");
  }
  for (auto& blk : scratch) blk->record_use(s);
  out.dets.mark_written(s);
  out.counts.mark_written(s);
  return out;
}

}  // namespace pysm::infer
