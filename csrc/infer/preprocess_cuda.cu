// The preprocessing kernel: the whole batch (every item its own frame, size, format and crop) in
// one launch; one thread per network pixel computes all channels.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "pysm/error.hpp"
#include "pysm/memory.hpp"
#include "pysm/preprocess.hpp"
#include "preprocess_math.hpp"

namespace pysm::infer {

namespace {

template <bool Half>
__global__ void preprocess_kernel(const detail::PreItem* items, detail::PreConst k, void* out, int first) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const int n = first + static_cast<int>(blockIdx.z);
  if (x >= k.W || y >= k.H) return;
  const detail::PreItem it = items[n];
  float v[3];
  detail::compute_pixel(it, k, x, y, v);
  for (int c = 0; c < k.C; ++c) {
    const int64_t o = detail::out_index(k, n, c, y, x);
    if (Half) static_cast<__half*>(out)[o] = __float2half_rn(v[c]);
    else static_cast<float*>(out)[o] = v[c];
  }
}

}  // namespace

void preprocess_cuda(const std::vector<Surface>& frames, const std::vector<CropRegion>& regions,
                     const std::vector<InputTransform>& transforms, const PreprocessParams& p, Tensor& out,
                     cuda::StreamHandle stream) {
  using namespace detail;
  const int dev = out.device().id;
  cuda::DeviceScope scope(dev);
  cudaStream_t s = static_cast<cudaStream_t>(stream ? stream : cuda::default_stream(dev));
  const size_t n = regions.size();
  // Descriptors: pinned staging -> device, both blocks kept from reuse until the stream passes.
  const size_t bytes = n * sizeof(PreItem);
  BlockPtr host = MemoryPool::host().allocate(bytes);
  BlockPtr devb = MemoryPool::device(dev).allocate(bytes);
  auto* items = static_cast<PreItem*>(host->data());
  for (size_t i = 0; i < n; ++i) {
    const Surface& f = frames[regions[i].frame];
    if (f.ready) f.ready->wait(s);  // decoder/converter output not yet written
    items[i] = make_item(f, transforms[i]);
  }
  cuda::check(cudaMemcpyAsync(devb->data(), host->data(), bytes, cudaMemcpyHostToDevice, s), "preprocess: cudaMemcpyAsync");
  host->record_use(s);
  out.wait_ready(s);  // a previous reader/writer of the output tensor
  const PreConst k = make_const(p);
  const dim3 block(32, 8);
  for (size_t first = 0; first < n; first += 65535) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(65535, n - first));
    const dim3 grid((k.W + block.x - 1) / block.x, (k.H + block.y - 1) / block.y, chunk);
    if (out.dtype() == DType::f16())
      preprocess_kernel<true><<<grid, block, 0, s>>>(static_cast<const PreItem*>(devb->data()), k, out.data(),
                                                     static_cast<int>(first));
    else
      preprocess_kernel<false><<<grid, block, 0, s>>>(static_cast<const PreItem*>(devb->data()), k, out.data(),
                                                      static_cast<int>(first));
    cuda::check(cudaGetLastError(), "preprocess kernel launch");
  }
  devb->record_use(s);
  out.mark_written(s);
}

}  // namespace pysm::infer
