// YUV -> RGB colour conversion of decoded surfaces (NV12 8-bit, P016 16-bit MSB-aligned) into
// packed RGB/BGR/RGBA/BGRA 8-bit, with the BT.601/BT.709/BT.2020 matrices in limited or full range.
// CPU and CUDA twins share the coefficients below, so they agree to within one rounding step.
//
// Definition (per pixel, chroma upsampled by nearest neighbour: the 2x2 block shares one sample):
//   limited: y = (Y - 16*s) / (219*s),  u = (Cb - 128*s) / (224*s),  v = (Cr - 128*s) / (224*s)
//   full:    y = Y / (255*s),           u = (Cb - 128*s) / (255*s),  v = (Cr - 128*s) / (255*s)
//   (s = 1 for 8-bit NV12, s = 256 for P016, whose samples are MSB-aligned 16-bit)
//   R = y + 2(1-Kr) v;  G = y - (2 Kb (1-Kb) u + 2 Kr (1-Kr) v) / Kg;  B = y + 2(1-Kb) u
//   out = clamp(round(255 * X), 0, 255)
#pragma once
#include "pysm/cuda.hpp"
#include "pysm/surface.hpp"

namespace pysm::imgproc {

// Affine map from raw samples to 0..255 RGB: X = c[X][0] * Y + c[X][1] * Cb + c[X][2] * Cr + c[X][3].
struct YuvToRgb {
  float m[3][4];
};

YuvToRgb yuv_to_rgb_coefficients(ColorMatrix matrix, ColorRange range, bool sixteen_bit);

// Whether `f` is a packed RGB-family output format.
bool is_rgb_format(ColorFormat f);

// Convert `src` (NV12 or P016) into `dst` (RGB/BGR/RGBA/BGRA, same width/height, same device).
void convert_yuv_to_rgb_cpu(const Surface& src, Surface& dst, ColorMatrix matrix, ColorRange range);
void convert_yuv_to_rgb_cuda(const Surface& src, Surface& dst, ColorMatrix matrix, ColorRange range,
                             cuda::StreamHandle stream);

// Allocate the output on src's device and convert there (waits on src.ready, sets dst.ready).
Surface convert_color(const Surface& src, ColorFormat format, ColorMatrix matrix, ColorRange range,
                      cuda::StreamHandle stream = nullptr);

// Pack planar 4:2:0 (I420 / yuv420pNN) or semi-planar input into a new host NV12 (bit_depth 8)
// or P016 (bit_depth > 8: samples shifted to the MSBs) surface. `v` == nullptr means `u` holds
// interleaved CbCr (NV12 / P010 input). 16-bit inputs are little-endian uint16 samples.
Surface pack_yuv420_cpu(const uint8_t* y, int64_t y_stride, const uint8_t* u, int64_t u_stride,
                        const uint8_t* v, int64_t v_stride, int width, int height, int bit_depth);

}  // namespace pysm::imgproc
