// Batched scaling of frames into uniform output surfaces (the mux's scaler). One call scales a
// whole batch: on the GPU it is ONE kernel launch over all frames; the CPU twin computes the same
// bilinear samples with the same float arithmetic and is the reference the GPU is tested against.
#pragma once
#include <cstdint>
#include <vector>

#include "pysm/cuda.hpp"
#include "pysm/surface.hpp"

namespace pysm {

// One frame of a batch: scale `src` (src_w x src_h) into the rectangle (roi_x, roi_y, roi_w,
// roi_h) of `dst` (dst_w x dst_h); the rest of dst is filled with black (letterbox bands).
// For NV12 the chroma plane follows the luma plane at `pitch * height`, and roi_x/roi_y/roi_w/
// roi_h must be even.
struct ResizeJob {
  const uint8_t* src = nullptr;
  int64_t src_pitch = 0;
  int src_w = 0, src_h = 0;
  uint8_t* dst = nullptr;
  int64_t dst_pitch = 0;
  int dst_w = 0, dst_h = 0;
  int roi_x = 0, roi_y = 0, roi_w = 0, roi_h = 0;
  uint8_t black_luma = 16;  // 16 for limited-range NV12, 0 for full range
};

// Formats the scaler supports: NV12, GRAY8 and packed 8-bit RGB/BGR/RGBA/BGRA.
bool batch_resize_supports(ColorFormat format);

// The rectangle a src_w x src_h frame occupies in a dst_w x dst_h surface: the whole surface,
// or (padding) the largest centred rectangle with the source's aspect ratio. Even-aligned for NV12.
void fit_rect(int src_w, int src_h, int dst_w, int dst_h, bool padding, ColorFormat format,
              int* x, int* y, int* w, int* h);

void batch_resize_cpu(ColorFormat format, const std::vector<ResizeJob>& jobs);
// All src/dst pointers are device memory of `device`; enqueued on `stream` (no host sync).
void batch_resize_cuda(ColorFormat format, const std::vector<ResizeJob>& jobs, int device,
                       cuda::StreamHandle stream);

}  // namespace pysm
