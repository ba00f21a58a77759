// Batch preprocessing for inference: frames (NV12, P016, RGB, BGR, RGBA, BGRA, GRAY8, each at its
// own size and pitch) -> one network input tensor (NCHW or NHWC, fp32 or fp16), in one pass:
// crop (secondary mode), bilinear scaling, letterbox (top-left or symmetric, with a pad value),
// channel order, and y = net_scale_factor * (x - offset[c]). The CPU twin is the reference; the CUDA
// version runs the whole batch in one kernel launch.
#pragma once
#include <vector>

#include "pysm/surface.hpp"
#include "pysm/tensor.hpp"

namespace pysm::infer {

enum class NetworkColor : int { RGB = 0, BGR = 1, GRAY = 2 };  // model-color-format
enum class TensorOrder : int { NCHW = 0, NHWC = 1 };            // network-input-order
// Nearest; bilinear at pixel centres (OpenCV INTER_LINEAR); antialiased bilinear: a tent filter
// whose radius grows with the downscale factor (as swscale's / PIL's bilinear), for accuracy when
// shrinking a lot.
enum class ScalingFilter : int { Nearest = 0, Bilinear = 1, Antialias = 2 };

struct PreprocessParams {
  int width = 0, height = 0;  // network input size
  NetworkColor color = NetworkColor::RGB;
  TensorOrder order = TensorOrder::NCHW;
  ScalingFilter filter = ScalingFilter::Bilinear;
  float scale = 1.f;              // net-scale-factor
  float offsets[3] = {0, 0, 0};   // per output channel, pixel units (0..255)
  bool maintain_aspect_ratio = false;
  bool symmetric_padding = false;
  float pad_value[3] = {0, 0, 0};  // letterbox fill per output channel, pixel units (before scaling)

  int channels() const { return color == NetworkColor::GRAY ? 1 : 3; }
};

// One network input item: the region (x, y, width, height) of frame `frame`; width/height 0 means
// the whole frame. Regions are clipped to the frame.
struct CropRegion {
  int frame = 0;
  int x = 0, y = 0, width = 0, height = 0;
};

// How one item was placed in the network input; maps network pixels back to frame pixels:
//   frame_x = crop_x + (net_x - pad_x) * sx,   frame_y = crop_y + (net_y - pad_y) * sy
struct InputTransform {
  int crop_x = 0, crop_y = 0, crop_w = 0, crop_h = 0;  // clipped region in the frame
  int pad_x = 0, pad_y = 0;                            // where the scaled image starts in the input
  int scaled_w = 0, scaled_h = 0;                      // size of the scaled image in the input
  float sx = 1.f, sy = 1.f;                            // frame pixels per network pixel
  bool valid = false;                                  // false: empty region (item filled with pad)
};

// Clip `region` to `frame` and compute the placement (letterbox size and padding).
InputTransform plan_transform(const Surface& frame, const CropRegion& region, const PreprocessParams& p);

// Fill items 0..regions.size()-1 of `out` (shape (N, C, H, W) or (N, H, W, C), float32/float16,
// contiguous, N >= regions.size()). Runs on the CPU when `out` is host memory, else as one CUDA
// kernel on `stream` (frames in host memory are uploaded first; frame `ready` events are waited
// on, and `out` is marked written on `stream`). Returns one transform per region.
std::vector<InputTransform> preprocess(const std::vector<Surface>& frames, const std::vector<CropRegion>& regions,
                                       const PreprocessParams& p, Tensor& out, cuda::StreamHandle stream = nullptr);

// Set a frame's colour description (ColorMatrix, ColorRange as ints), for bindings.
inline void set_color_description(Surface& s, int matrix, int range) {
  s.matrix = static_cast<ColorMatrix>(matrix);
  s.range = static_cast<ColorRange>(range);
}

// The twins, with transforms already planned (frames must be on the output's device).
void preprocess_cpu(const std::vector<Surface>& frames, const std::vector<CropRegion>& regions,
                    const std::vector<InputTransform>& transforms, const PreprocessParams& p, Tensor& out);
void preprocess_cuda(const std::vector<Surface>& frames, const std::vector<CropRegion>& regions,
                     const std::vector<InputTransform>& transforms, const PreprocessParams& p, Tensor& out,
                     cuda::StreamHandle stream);

}  // namespace pysm::infer
