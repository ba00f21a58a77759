// Coefficients and device dispatch for YUV -> RGB conversion (see pysm/color_convert.hpp).
#include "pysm/color_convert.hpp"

#include "pysm/error.hpp"
#include "pysm/memory.hpp"

namespace pysm::imgproc {
namespace {
// Owner of a converted device surface: its own block plus the input's owner, released only once
// the conversion kernel has finished with the input.
struct KeepInputAlive {
  std::shared_ptr<void> output;
  std::shared_ptr<void> input;
  std::shared_ptr<cuda::Event> done;
  ~KeepInputAlive() {
    try {
      if (done && input) done->synchronize();
    } catch (...) {
    }
  }
};
}  // namespace

YuvToRgb yuv_to_rgb_coefficients(ColorMatrix matrix, ColorRange range, bool sixteen_bit) {
  double kr = 0.2126, kb = 0.0722;  // BT.709
  if (matrix == ColorMatrix::BT601) {
    kr = 0.299;
    kb = 0.114;
  } else if (matrix == ColorMatrix::BT2020) {
    kr = 0.2627;
    kb = 0.0593;
  }
  const double kg = 1.0 - kr - kb;
  const double s = sixteen_bit ? 256.0 : 1.0;
  double yoff, ys, cs;
  if (range == ColorRange::Full) {
    yoff = 0.0;
    ys = 1.0 / (255.0 * s);
    cs = 1.0 / (255.0 * s);
  } else {
    yoff = 16.0 * s;
    ys = 1.0 / (219.0 * s);
    cs = 1.0 / (224.0 * s);
  }
  const double coff = 128.0 * s;
  // Per output channel: weights of (Y, Cb, Cr) on the normalised values, then scaled to 0..255.
  const double w[3][3] = {
      {1.0, 0.0, 2.0 * (1.0 - kr)},
      {1.0, -2.0 * kb * (1.0 - kb) / kg, -2.0 * kr * (1.0 - kr) / kg},
      {1.0, 2.0 * (1.0 - kb), 0.0},
  };
  YuvToRgb c{};
  for (int ch = 0; ch < 3; ++ch) {
    const double a = 255.0 * w[ch][0] * ys, b = 255.0 * w[ch][1] * cs, d = 255.0 * w[ch][2] * cs;
    c.m[ch][0] = static_cast<float>(a);
    c.m[ch][1] = static_cast<float>(b);
    c.m[ch][2] = static_cast<float>(d);
    c.m[ch][3] = static_cast<float>(-a * yoff - b * coff - d * coff);
  }
  return c;
}

bool is_rgb_format(ColorFormat f) {
  return f == ColorFormat::RGB || f == ColorFormat::BGR || f == ColorFormat::RGBA || f == ColorFormat::BGRA;
}

Surface convert_color(const Surface& src, ColorFormat format, ColorMatrix matrix, ColorRange range,
                      cuda::StreamHandle stream) {
  if (src.empty()) raise(ErrorKind::Value, "cannot convert an empty surface");
  if (src.format != ColorFormat::NV12 && src.format != ColorFormat::P016)
    raise(ErrorKind::Value, std::string("colour conversion takes NV12 or P016 input, got ") +
                                color_format_name(src.format));
  if (!is_rgb_format(format))
    raise(ErrorKind::Value, std::string("colour conversion outputs RGB, BGR, RGBA or BGRA, not ") +
                                color_format_name(format));
  Surface dst = Surface::allocate(format, src.width, src.height, src.device);
  dst.pts = src.pts;
  dst.error = src.error;
  dst.matrix = matrix;
  dst.range = ColorRange::Full;
  if (src.device.is_cuda()) {
    cuda::StreamHandle s = stream ? stream : cuda::default_stream(src.device.id);
    convert_yuv_to_rgb_cuda(src, dst, matrix, range, s);
    // Neither block may return to its pool while the kernel still reads/writes it: the output's
    // block waits on the stream; the input is kept alive by the output until the kernel is done.
    std::static_pointer_cast<Block>(dst.owner)->record_use(s);
    dst.owner = std::make_shared<KeepInputAlive>(KeepInputAlive{dst.owner, src.owner, dst.ready});
  } else {
    convert_yuv_to_rgb_cpu(src, dst, matrix, range);
  }
  return dst;
}

#if !PYSM_WITH_CUDA
void convert_yuv_to_rgb_cuda(const Surface&, Surface&, ColorMatrix, ColorRange, cuda::StreamHandle) {
  raise(ErrorKind::Cuda, "pysm was built without CUDA: convert host frames instead");
}
#endif

}  // namespace pysm::imgproc
