// CUDA twin of color_convert_cpu.cpp: one thread per 2x2 pixel block, which shares one chroma pair.
#include <cuda_runtime.h>

#include "pysm/color_convert.hpp"
#include "pysm/error.hpp"

namespace pysm::imgproc {
namespace {

__device__ __forceinline__ uint8_t to_u8(float x) {
  x = floorf(x + 0.5f);
  return static_cast<uint8_t>(fminf(fmaxf(x, 0.f), 255.f));
}

template <typename T>
__global__ void yuv_to_rgb_kernel(const uint8_t* __restrict__ src, int64_t spitch, uint8_t* __restrict__ dst,
                                  int64_t dpitch, int width, int height, YuvToRgb c, int r_at, int g_at,
                                  int b_at, int a_at, int nch) {
  const int bx = blockIdx.x * blockDim.x + threadIdx.x;
  const int by = blockIdx.y * blockDim.y + threadIdx.y;
  const int x0 = bx * 2, y0 = by * 2;
  if (x0 >= width || y0 >= height) return;
  const T* cr = reinterpret_cast<const T*>(src + spitch * height + spitch * by);
  const float U = static_cast<float>(cr[x0]);
  const float V = static_cast<float>(cr[x0 + 1]);
  // The chroma terms are shared by the block; keep the same operation order as the CPU twin.
#pragma unroll
  for (int dy = 0; dy < 2; ++dy) {
    const int y = y0 + dy;
    if (y >= height) break;
    const T* yr = reinterpret_cast<const T*>(src + spitch * y);
    uint8_t* o = dst + dpitch * y;
#pragma unroll
    for (int dx = 0; dx < 2; ++dx) {
      const int x = x0 + dx;
      if (x >= width) break;
      const float Y = static_cast<float>(yr[x]);
      uint8_t* p = o + x * nch;
      p[r_at] = to_u8(__fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(c.m[0][0], Y), __fmul_rn(c.m[0][1], U)),
                                          __fmul_rn(c.m[0][2], V)), c.m[0][3]));
      p[g_at] = to_u8(__fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(c.m[1][0], Y), __fmul_rn(c.m[1][1], U)),
                                          __fmul_rn(c.m[1][2], V)), c.m[1][3]));
      p[b_at] = to_u8(__fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(c.m[2][0], Y), __fmul_rn(c.m[2][1], U)),
                                          __fmul_rn(c.m[2][2], V)), c.m[2][3]));
      if (a_at >= 0) p[a_at] = 255;
    }
  }
}

}  // namespace

void convert_yuv_to_rgb_cuda(const Surface& src, Surface& dst, ColorMatrix matrix, ColorRange range,
                             cuda::StreamHandle stream) {
  if (!src.device.is_cuda() || !dst.device.is_cuda() || src.device != dst.device)
    raise(ErrorKind::Value, "convert_yuv_to_rgb_cuda needs both surfaces on the same CUDA device");
  if (src.width != dst.width || src.height != dst.height)
    raise(ErrorKind::Value, "colour conversion source and destination sizes differ");
  const int dev = src.device.id;
  cuda::DeviceScope scope(dev);
  cuda::StreamHandle s = stream ? stream : cuda::default_stream(dev);
  if (src.ready) src.ready->wait(s);
  const bool p16 = src.format == ColorFormat::P016;
  const YuvToRgb c = yuv_to_rgb_coefficients(matrix, range, p16);
  int r_at = 0, g_at = 1, b_at = 2, a_at = -1, n = 3;
  switch (dst.format) {
    case ColorFormat::BGR: r_at = 2; b_at = 0; break;
    case ColorFormat::RGBA: a_at = 3; n = 4; break;
    case ColorFormat::BGRA: r_at = 2; b_at = 0; a_at = 3; n = 4; break;
    default: break;
  }
  const dim3 block(32, 8);
  const dim3 grid(((src.width + 1) / 2 + block.x - 1) / block.x, ((src.height + 1) / 2 + block.y - 1) / block.y);
  auto cs = static_cast<cudaStream_t>(s);
  if (p16)
    yuv_to_rgb_kernel<uint16_t><<<grid, block, 0, cs>>>(src.data, src.pitch, dst.data, dst.pitch, src.width,
                                                        src.height, c, r_at, g_at, b_at, a_at, n);
  else
    yuv_to_rgb_kernel<uint8_t><<<grid, block, 0, cs>>>(src.data, src.pitch, dst.data, dst.pitch, src.width,
                                                       src.height, c, r_at, g_at, b_at, a_at, n);
  cuda::check(cudaGetLastError(), "yuv_to_rgb_kernel launch");
  auto ev = std::make_shared<cuda::Event>(dev);
  ev->record(s);
  dst.ready = ev;
}

}  // namespace pysm::imgproc
