// CUDA NMS, the bitmask scheme: one kernel computes, for every pair of candidates of an image,
// whether the better one suppresses the other (64 pairs per word); one warp per image then walks
// the candidates in order, keeping each one not yet suppressed and OR-ing its row into the
// suppressed set, and applies the top-k limits exactly as the CPU twin does.
#include <cuda_runtime.h>

#include <algorithm>

#include "pysm/error.hpp"
#include "pysm/memory.hpp"
#include "pysm/nms.hpp"
#include "nms_math.hpp"

namespace pysm::infer {

namespace {

constexpr int kWord = 64;

__global__ void mask_kernel(const Detection* dets, const int* counts, int capacity, int words, const float* thr,
                            int nthr, float default_thr, int agnostic, unsigned long long* mask) {
  const int b = blockIdx.z;
  const int row_block = blockIdx.y, col_block = blockIdx.x;
  const int n = counts[b];
  if (row_block * kWord >= n || col_block < row_block || col_block * kWord >= n) return;
  __shared__ Detection cols[kWord];
  const Detection* base = dets + int64_t(b) * capacity;
  const int cj = col_block * kWord + threadIdx.x;
  if (cj < n) cols[threadIdx.x] = base[cj];
  __syncthreads();
  const int i = row_block * kWord + threadIdx.x;
  if (i >= n) return;
  const Detection me = base[i];
  const float t = me.class_id >= 0 && me.class_id < nthr ? thr[me.class_id] : default_thr;
  unsigned long long bits = 0;
  const int ncols = min(kWord, n - col_block * kWord);
  for (int k = 0; k < ncols; ++k) {
    const int j = col_block * kWord + k;
    if (j <= i) continue;
    if (!agnostic && cols[k].class_id != me.class_id) continue;
    if (detail::iou(me, cols[k]) > t) bits |= 1ull << k;
  }
  mask[(int64_t(b) * capacity + i) * words + col_block] = bits;
}

// One warp per image. `scratch` holds num_classes ints per image (per-class kept counts).
__global__ void reduce_kernel(const Detection* dets, const int* counts, int capacity, int words,
                              const unsigned long long* mask, const int* topk, int ntopk, int default_topk,
                              int topk_total,
                              int num_classes, int* scratch, Detection* out, int* out_counts) {
  extern __shared__ unsigned long long removed[];
  const int b = blockIdx.x;
  const int lane = threadIdx.x;
  const int n = counts[b];
  for (int w = lane; w < words; w += 32) removed[w] = 0;
  __syncwarp();
  const Detection* base = dets + int64_t(b) * capacity;
  int* per_class = scratch + int64_t(b) * num_classes;
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    const bool gone = (removed[i / kWord] >> (i % kWord)) & 1ull;
    __syncwarp();
    if (gone) continue;
    const unsigned long long* row = mask + (int64_t(b) * capacity + i) * words;
    for (int w = i / kWord + lane; w < words; w += 32) removed[w] |= row[w];
    if (lane == 0 && (topk_total < 0 || kept < topk_total)) {
      const Detection d = base[i];
      const int c = d.class_id;
      const int k = c >= 0 && c < ntopk ? topk[c] : default_topk;
      // Class ids are < num_classes (the decoder's class count); others are never limited.
      const bool counted = c >= 0 && c < num_classes;
      if (k < 0 || !counted || per_class[c] < k) {
        if (counted) ++per_class[c];
        out[int64_t(b) * capacity + kept] = d;
        ++kept;
      }
    }
    __syncwarp();
  }
  if (lane == 0) out_counts[b] = kept;
}

}  // namespace

void nms_cuda(const Detection* dets, const int* counts, int batch, int capacity, int num_classes, const NmsParams& p,
              Detection* out, int* out_counts, int dev, cuda::StreamHandle stream) {
  if (batch <= 0) return;
  cuda::DeviceScope scope(dev);
  cudaStream_t s = static_cast<cudaStream_t>(stream ? stream : cuda::default_stream(dev));
  const int words = (capacity + kWord - 1) / kWord;
  num_classes = std::max(num_classes, 1);
  // Per-class top-k needs a class id bound: classes beyond num_classes are counted as unlimited.
  num_classes = std::max(num_classes, static_cast<int>(p.topk.size()));
  auto& pool = MemoryPool::device(dev);
  std::vector<BlockPtr> blocks;
  auto alloc = [&](size_t bytes) {
    blocks.push_back(pool.allocate(std::max<size_t>(bytes, 16)));
    return blocks.back()->data();
  };
  // Parameters: pinned staging -> device.
  const size_t nthr = p.iou_threshold.size(), ntopk = p.topk.size();
  BlockPtr stage = MemoryPool::host().allocate(nthr * sizeof(float) + ntopk * sizeof(int) + 16);
  auto* sthr = static_cast<float*>(stage->data());
  auto* stopk = reinterpret_cast<int*>(sthr + nthr);
  for (size_t i = 0; i < nthr; ++i) sthr[i] = p.iou_threshold[i];
  for (size_t i = 0; i < ntopk; ++i) stopk[i] = p.topk[i];
  void* params = alloc(nthr * sizeof(float) + ntopk * sizeof(int));
  cuda::check(cudaMemcpyAsync(params, stage->data(), nthr * sizeof(float) + ntopk * sizeof(int),
                              cudaMemcpyHostToDevice, s),
              "nms: cudaMemcpyAsync");
  stage->record_use(s);
  const float* thr = static_cast<const float*>(params);
  const int* topk = reinterpret_cast<const int*>(thr + nthr);

  auto* mask = static_cast<unsigned long long*>(alloc(size_t(batch) * capacity * words * sizeof(unsigned long long)));
  auto* scratch = static_cast<int*>(alloc(size_t(batch) * num_classes * sizeof(int)));
  cuda::check(cudaMemsetAsync(scratch, 0, size_t(batch) * num_classes * sizeof(int), s), "nms: cudaMemsetAsync");
  const dim3 grid(words, words, batch);
  mask_kernel<<<grid, kWord, 0, s>>>(dets, counts, capacity, words, thr, static_cast<int>(nthr),
                                     p.default_iou_threshold, p.class_agnostic ? 1 : 0, mask);
  reduce_kernel<<<batch, 32, words * sizeof(unsigned long long), s>>>(dets, counts, capacity, words, mask, topk,
                                                                       static_cast<int>(ntopk), p.default_topk,
                                                                       p.topk_total,
                                                                       num_classes, scratch, out, out_counts);
  cuda::check(cudaGetLastError(), "nms kernels");
  for (auto& blk : blocks) blk->record_use(s);
}

}  // namespace pysm::infer
