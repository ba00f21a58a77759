// CPU twin of the batched scaler: the reference for the CUDA kernel (same sample function).
#include <algorithm>

#include "bilinear_sample.hpp"
#include "pysm/batch_resize.hpp"
#include "pysm/error.hpp"

namespace pysm {

bool batch_resize_supports(ColorFormat f) {
  switch (f) {
    case ColorFormat::NV12:
    case ColorFormat::GRAY8:
    case ColorFormat::RGB:
    case ColorFormat::BGR:
    case ColorFormat::RGBA:
    case ColorFormat::BGRA:
      return true;
    default:
      return false;
  }
}

void fit_rect(int src_w, int src_h, int dst_w, int dst_h, bool padding, ColorFormat format, int* x,
              int* y, int* w, int* h) {
  int rw = dst_w, rh = dst_h;
  if (padding && src_w > 0 && src_h > 0) {
    // Largest rectangle with the source's aspect ratio that fits (integer arithmetic: exact).
    if (int64_t(src_w) * dst_h > int64_t(src_h) * dst_w) {
      rw = dst_w;
      rh = static_cast<int>(int64_t(src_h) * dst_w / src_w);
    } else {
      rh = dst_h;
      rw = static_cast<int>(int64_t(src_w) * dst_h / src_h);
    }
  }
  const bool even = format == ColorFormat::NV12;
  if (even) {
    rw &= ~1;
    rh &= ~1;
  }
  rw = std::max(rw, even ? 2 : 1);
  rh = std::max(rh, even ? 2 : 1);
  int ox = (dst_w - rw) / 2, oy = (dst_h - rh) / 2;
  if (even) {
    ox &= ~1;
    oy &= ~1;
  }
  *x = ox;
  *y = oy;
  *w = rw;
  *h = rh;
}

namespace {

int packed_channels(ColorFormat f) { return f == ColorFormat::NV12 ? 1 : bytes_per_pixel(f); }

void check_jobs(ColorFormat format, const std::vector<ResizeJob>& jobs) {
  if (!batch_resize_supports(format))
    raise(ErrorKind::Unsupported, std::string("mux scaling does not support colour format ") +
                                      color_format_name(format) + "; convert to NV12 or RGB before the mux");
  for (const auto& j : jobs) {
    if (!j.src || !j.dst || j.src_w <= 0 || j.src_h <= 0 || j.roi_w <= 0 || j.roi_h <= 0 ||
        j.roi_x < 0 || j.roi_y < 0 || j.roi_x + j.roi_w > j.dst_w || j.roi_y + j.roi_h > j.dst_h)
      raise(ErrorKind::Value, "batch resize: invalid job (empty frame or ROI outside the output surface)");
    if (format == ColorFormat::NV12 &&
        ((j.roi_x | j.roi_y | j.roi_w | j.roi_h | j.dst_w | j.dst_h) & 1))
      raise(ErrorKind::Value, "batch resize: NV12 output size and ROI must be even");
  }
}

}  // namespace

void batch_resize_cpu(ColorFormat format, const std::vector<ResizeJob>& jobs) {
  check_jobs(format, jobs);
  const int ch = packed_channels(format);
  for (const auto& j : jobs) {
    uint8_t fill[4] = {0, 0, 0, 255};
    if (format == ColorFormat::NV12 || format == ColorFormat::GRAY8) fill[0] = j.black_luma;
    for (int y = 0; y < j.dst_h; ++y)
      for (int x = 0; x < j.dst_w; ++x)
        detail::sample_plane(j.src, j.src_pitch, j.src_w, j.src_h, j.dst, j.dst_pitch, x, y, j.roi_x,
                             j.roi_y, j.roi_w, j.roi_h, ch, fill);
    if (format == ColorFormat::NV12) {
      // Interleaved UV at half resolution, right after the luma plane.
      const uint8_t* suv = j.src + j.src_pitch * j.src_h;
      uint8_t* duv = j.dst + j.dst_pitch * j.dst_h;
      const uint8_t uvfill[2] = {128, 128};
      const int sw = (j.src_w + 1) / 2, sh = (j.src_h + 1) / 2;
      for (int y = 0; y < j.dst_h / 2; ++y)
        for (int x = 0; x < j.dst_w / 2; ++x)
          detail::sample_plane(suv, j.src_pitch, sw, sh, duv, j.dst_pitch, x, y, j.roi_x / 2, j.roi_y / 2,
                               j.roi_w / 2, j.roi_h / 2, 2, uvfill);
    }
  }
}

#if !PYSM_WITH_CUDA
void batch_resize_cuda(ColorFormat, const std::vector<ResizeJob>&, int, cuda::StreamHandle) {
  raise(ErrorKind::Cuda, "pysm was built without CUDA: the mux cannot scale device frames");
}
#endif

}  // namespace pysm
