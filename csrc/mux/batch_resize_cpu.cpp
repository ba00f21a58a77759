// CPU twin of the batched scaler: the reference for the CUDA kernel (same sample function).
#include <algorithm>

#include "bilinear_sample.hpp"
#include "pysm/host_device.hpp"
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
        j.roi_x < 0 || j.roi_y < 0 || int64_t(j.roi_x) + j.roi_w > j.dst_w || int64_t(j.roi_y) + j.roi_h > j.dst_h)
      raise(ErrorKind::Value, "batch resize: invalid job (empty frame or ROI outside the output surface)");
    if (format == ColorFormat::NV12 &&
        ((j.roi_x | j.roi_y | j.roi_w | j.roi_h | j.dst_w | j.dst_h) & 1))
      raise(ErrorKind::Value, "batch resize: NV12 output size and ROI must be even");
  }
}

// The two source taps and the high tap's weight of each output index of a ROI of `n` samples:
// they depend on the column alone (or the row alone), so they are computed once per plane rather
// than for every pixel, with the same function as the CUDA kernel's per-pixel sample_plane.
struct Taps {
  std::vector<int> lo, hi;
  std::vector<float> w;
  Taps(int n, int src_n) : lo(n), hi(n), w(n) {
    for (int d = 0; d < n; ++d) detail::source_pos(d, n, src_n, &lo[d], &hi[d], &w[d]);
  }
};

// One plane of `C` interleaved samples: what detail::sample_plane gives for every output pixel.
template <int C>
PYSM_SIMD_CLONES void scale_plane(const uint8_t* src, int64_t src_pitch, int src_w, int src_h, uint8_t* dst,
                                   int64_t dst_pitch, int dst_w, int dst_h, int roi_x, int roi_y, int roi_w,
                                   int roi_h, const uint8_t* fill) {
  const Taps tx(roi_w, src_w), ty(roi_h, src_h);
  auto fill_span = [&](uint8_t* o, int from, int to) {
    for (int x = from; x < to; ++x)
      for (int c = 0; c < C; ++c) o[x * C + c] = fill[c];
  };
  for (int y = 0; y < dst_h; ++y) {
    uint8_t* o = dst + y * dst_pitch;
    if (y < roi_y || y >= roi_y + roi_h) {
      fill_span(o, 0, dst_w);
      continue;
    }
    const int ry = y - roi_y;
    const uint8_t* r0 = src + ty.lo[ry] * src_pitch;
    const uint8_t* r1 = src + ty.hi[ry] * src_pitch;
    const float wy = ty.w[ry];
    fill_span(o, 0, roi_x);
    uint8_t* out = o + static_cast<int64_t>(roi_x) * C;
    for (int x = 0; x < roi_w; ++x) {
      const int x0 = tx.lo[x] * C, x1 = tx.hi[x] * C;
      const float wx = tx.w[x];
      for (int c = 0; c < C; ++c)
        out[x * C + c] = detail::blend(r0[x0 + c], r0[x1 + c], r1[x0 + c], r1[x1 + c], wx, wy);
    }
    fill_span(o, roi_x + roi_w, dst_w);
  }
}

void scale_plane(int channels, const uint8_t* src, int64_t src_pitch, int src_w, int src_h, uint8_t* dst,
                 int64_t dst_pitch, int dst_w, int dst_h, int roi_x, int roi_y, int roi_w, int roi_h,
                 const uint8_t* fill) {
  switch (channels) {
    case 1: return scale_plane<1>(src, src_pitch, src_w, src_h, dst, dst_pitch, dst_w, dst_h, roi_x, roi_y, roi_w, roi_h, fill);
    case 2: return scale_plane<2>(src, src_pitch, src_w, src_h, dst, dst_pitch, dst_w, dst_h, roi_x, roi_y, roi_w, roi_h, fill);
    case 3: return scale_plane<3>(src, src_pitch, src_w, src_h, dst, dst_pitch, dst_w, dst_h, roi_x, roi_y, roi_w, roi_h, fill);
    default: return scale_plane<4>(src, src_pitch, src_w, src_h, dst, dst_pitch, dst_w, dst_h, roi_x, roi_y, roi_w, roi_h, fill);
  }
}

}  // namespace

void batch_resize_cpu(ColorFormat format, const std::vector<ResizeJob>& jobs) {
  check_jobs(format, jobs);
  const int ch = packed_channels(format);
  for (const auto& j : jobs) {
    uint8_t fill[4] = {0, 0, 0, 255};
    if (format == ColorFormat::NV12 || format == ColorFormat::GRAY8) fill[0] = j.black_luma;
    scale_plane(ch, j.src, j.src_pitch, j.src_w, j.src_h, j.dst, j.dst_pitch, j.dst_w, j.dst_h, j.roi_x, j.roi_y,
                j.roi_w, j.roi_h, fill);
    if (format == ColorFormat::NV12) {
      // Interleaved UV at half resolution, right after the luma plane.
      const uint8_t uvfill[2] = {128, 128};
      scale_plane(2, j.src + j.src_pitch * j.src_h, j.src_pitch, (j.src_w + 1) / 2, (j.src_h + 1) / 2,
                  j.dst + j.dst_pitch * j.dst_h, j.dst_pitch, j.dst_w / 2, j.dst_h / 2, j.roi_x / 2, j.roi_y / 2,
                  j.roi_w / 2, j.roi_h / 2, uvfill);
    }
  }
}

#if !PYSM_WITH_CUDA
void batch_resize_cuda(ColorFormat, const std::vector<ResizeJob>&, int, cuda::StreamHandle) {
  raise(ErrorKind::Cuda, "pysm was built without CUDA: the mux cannot scale device frames");
}
#endif

}  // namespace pysm
