// CUDA batched scaler: ONE kernel launch scales every frame of a batch (blockIdx.z = frame).
// The per-frame job table is copied to the device on the same stream; the sample arithmetic is
// shared with the CPU twin (bilinear_sample.hpp).
#include <cuda_runtime.h>

#include <algorithm>

#include "bilinear_sample.hpp"
#include "pysm/batch_resize.hpp"
#include "pysm/error.hpp"
#include "pysm/memory.hpp"

namespace pysm {
namespace {

constexpr int kBX = 32, kBY = 8;

// NV12: one thread per 2x2 luma block and its UV pair.
__global__ void resize_nv12_kernel(const ResizeJob* jobs) {
  const ResizeJob j = jobs[blockIdx.z];
  const int cx = blockIdx.x * kBX + threadIdx.x;
  const int cy = blockIdx.y * kBY + threadIdx.y;
  if (cx >= j.dst_w / 2 || cy >= j.dst_h / 2) return;
  const uint8_t yfill[1] = {j.black_luma};
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx)
      detail::sample_plane(j.src, j.src_pitch, j.src_w, j.src_h, j.dst, j.dst_pitch, cx * 2 + dx, cy * 2 + dy,
                           j.roi_x, j.roi_y, j.roi_w, j.roi_h, 1, yfill);
  const uint8_t uvfill[2] = {128, 128};
  detail::sample_plane(j.src + j.src_pitch * j.src_h, j.src_pitch, (j.src_w + 1) / 2, (j.src_h + 1) / 2,
                       j.dst + j.dst_pitch * j.dst_h, j.dst_pitch, cx, cy, j.roi_x / 2, j.roi_y / 2,
                       j.roi_w / 2, j.roi_h / 2, 2, uvfill);
}

// Packed formats (GRAY8, RGB/BGR, RGBA/BGRA): one thread per output pixel.
__global__ void resize_packed_kernel(const ResizeJob* jobs, int channels) {
  const ResizeJob j = jobs[blockIdx.z];
  const int x = blockIdx.x * kBX + threadIdx.x;
  const int y = blockIdx.y * kBY + threadIdx.y;
  if (x >= j.dst_w || y >= j.dst_h) return;
  uint8_t fill[4] = {0, 0, 0, 255};
  if (channels == 1) fill[0] = j.black_luma;
  detail::sample_plane(j.src, j.src_pitch, j.src_w, j.src_h, j.dst, j.dst_pitch, x, y, j.roi_x, j.roi_y,
                       j.roi_w, j.roi_h, channels, fill);
}

}  // namespace

void batch_resize_cuda(ColorFormat format, const std::vector<ResizeJob>& jobs, int device,
                       cuda::StreamHandle stream) {
  if (jobs.empty()) return;
  if (!batch_resize_supports(format))
    raise(ErrorKind::Unsupported, std::string("mux scaling does not support colour format ") +
                                      color_format_name(format) + "; convert to NV12 or RGB before the mux");
  int max_w = 0, max_h = 0;
  for (const auto& j : jobs) {
    if (!j.src || !j.dst || j.src_w <= 0 || j.src_h <= 0 || j.roi_w <= 0 || j.roi_h <= 0 ||
        j.roi_x < 0 || j.roi_y < 0 || j.roi_x + j.roi_w > j.dst_w || j.roi_y + j.roi_h > j.dst_h)
      raise(ErrorKind::Value, "batch resize: invalid job (empty frame or ROI outside the output surface)");
    if (format == ColorFormat::NV12 && ((j.roi_x | j.roi_y | j.roi_w | j.roi_h | j.dst_w | j.dst_h) & 1))
      raise(ErrorKind::Value, "batch resize: NV12 output size and ROI must be even");
    max_w = std::max(max_w, j.dst_w);
    max_h = std::max(max_h, j.dst_h);
  }
  if (jobs.size() > 65535) raise(ErrorKind::Value, "batch resize: at most 65535 frames per batch");
  cuda::DeviceScope scope(device);
  auto s = static_cast<cudaStream_t>(stream);
  const size_t bytes = jobs.size() * sizeof(ResizeJob);
  BlockPtr table = MemoryPool::device(device).allocate(bytes);
  // Pageable source: the runtime stages it before returning, so `jobs` may go away afterwards.
  cuda::check(cudaMemcpyAsync(table->data(), jobs.data(), bytes, cudaMemcpyHostToDevice, s),
              "cudaMemcpyAsync(resize jobs)");
  const auto* d_jobs = static_cast<const ResizeJob*>(table->data());
  dim3 block(kBX, kBY, 1);
  if (format == ColorFormat::NV12) {
    dim3 grid((max_w / 2 + kBX - 1) / kBX, (max_h / 2 + kBY - 1) / kBY, static_cast<unsigned>(jobs.size()));
    resize_nv12_kernel<<<grid, block, 0, s>>>(d_jobs);
  } else {
    dim3 grid((max_w + kBX - 1) / kBX, (max_h + kBY - 1) / kBY, static_cast<unsigned>(jobs.size()));
    resize_packed_kernel<<<grid, block, 0, s>>>(d_jobs, bytes_per_pixel(format));
  }
  cuda::check(cudaGetLastError(), "batch resize kernel launch");
  table->record_use(stream);  // the table returns to the pool only after the kernel ran
}

}  // namespace pysm
