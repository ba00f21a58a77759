// Preprocessing dispatch: validate, plan each item's letterbox, move frames to the output's
// device when needed, then run the CPU twin or the CUDA kernel.
#include "pysm/preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "pysm/error.hpp"
#include "preprocess_math.hpp"

namespace pysm::infer {

namespace detail {

PreItem make_item(const Surface& f, const InputTransform& t) {
  PreItem it{};
  it.data = f.data;
  it.pitch = f.pitch;
  it.format = static_cast<int>(f.format);
  it.width = f.width;
  it.height = f.height;
  it.matrix = static_cast<int>(f.matrix);
  it.range = static_cast<int>(f.range);
  it.crop_x = t.crop_x;
  it.crop_y = t.crop_y;
  it.crop_w = t.crop_w;
  it.crop_h = t.crop_h;
  it.pad_x = t.pad_x;
  it.pad_y = t.pad_y;
  it.scaled_w = t.scaled_w;
  it.scaled_h = t.scaled_h;
  it.sx = t.sx;
  it.sy = t.sy;
  it.valid = t.valid ? 1 : 0;
  return it;
}

PreConst make_const(const PreprocessParams& p) {
  PreConst k{};
  k.W = p.width;
  k.H = p.height;
  k.C = p.channels();
  k.color = static_cast<int>(p.color);
  k.order = static_cast<int>(p.order);
  k.filter = static_cast<int>(p.filter);
  k.scale = p.scale;
  for (int c = 0; c < 3; ++c) {
    k.off[c] = p.offsets[c];
    k.pad[c] = p.pad_value[c];
  }
  return k;
}

}  // namespace detail

InputTransform plan_transform(const Surface& frame, const CropRegion& r, const PreprocessParams& p) {
  InputTransform t;
  int x0 = r.x, y0 = r.y;
  int x1 = r.width > 0 ? r.x + r.width : frame.width;
  int y1 = r.height > 0 ? r.y + r.height : frame.height;
  if (r.width <= 0 && r.height <= 0) x0 = y0 = 0;
  x0 = std::clamp(x0, 0, frame.width);
  y0 = std::clamp(y0, 0, frame.height);
  x1 = std::clamp(x1, 0, frame.width);
  y1 = std::clamp(y1, 0, frame.height);
  t.crop_x = x0;
  t.crop_y = y0;
  t.crop_w = std::max(0, x1 - x0);
  t.crop_h = std::max(0, y1 - y0);
  t.valid = t.crop_w > 0 && t.crop_h > 0;
  if (!t.valid) return t;
  if (p.maintain_aspect_ratio) {
    // As YOLOX/OpenCV letterboxing: r = min(W/w, H/h), scaled size = floor(w*r), floor(h*r).
    const double ratio = std::min(double(p.width) / t.crop_w, double(p.height) / t.crop_h);
    t.scaled_w = std::clamp(static_cast<int>(std::floor(t.crop_w * ratio + 1e-6)), 1, p.width);
    t.scaled_h = std::clamp(static_cast<int>(std::floor(t.crop_h * ratio + 1e-6)), 1, p.height);
    if (p.symmetric_padding) {
      t.pad_x = (p.width - t.scaled_w) / 2;
      t.pad_y = (p.height - t.scaled_h) / 2;
    }
  } else {
    t.scaled_w = p.width;
    t.scaled_h = p.height;
  }
  t.sx = static_cast<float>(double(t.crop_w) / t.scaled_w);
  t.sy = static_cast<float>(double(t.crop_h) / t.scaled_h);
  return t;
}

static void check_frame(const Surface& f, size_t i) {
  switch (f.format) {
    case ColorFormat::NV12:
    case ColorFormat::P016:
    case ColorFormat::RGB:
    case ColorFormat::BGR:
    case ColorFormat::RGBA:
    case ColorFormat::BGRA:
    case ColorFormat::GRAY8:
      break;
    default:
      raise(ErrorKind::Value, "preprocess: frame " + std::to_string(i) + " has format " +
                                  color_format_name(f.format) +
                                  "; inference takes NV12, P016, RGB, BGR, RGBA, BGRA or GRAY8 frames "
                                  "(convert it first, e.g. with nvvideoconvert)");
  }
  if (f.empty() || f.width <= 0 || f.height <= 0)
    raise(ErrorKind::Value, "preprocess: frame " + std::to_string(i) + " is empty");
  if ((f.format == ColorFormat::NV12 || f.format == ColorFormat::P016) && (f.width % 2))
    raise(ErrorKind::Value, "preprocess: frame " + std::to_string(i) + " is " + color_format_name(f.format) +
                                " with an odd width (" + std::to_string(f.width) + "); 4:2:0 frames need an even width");
}

std::vector<InputTransform> preprocess(const std::vector<Surface>& frames, const std::vector<CropRegion>& regions,
                                       const PreprocessParams& p, Tensor& out, cuda::StreamHandle stream) {
  if (p.width <= 0 || p.height <= 0)
    raise(ErrorKind::Value, "preprocess: network input size must be positive (infer-dims)");
  const auto& sh = out.shape();
  const int C = p.channels();
  const std::vector<int64_t> want_chw = p.order == TensorOrder::NCHW
                                            ? std::vector<int64_t>{C, p.height, p.width}
                                            : std::vector<int64_t>{p.height, p.width, C};
  if (out.ndim() != 4 || std::vector<int64_t>(sh.begin() + 1, sh.end()) != want_chw ||
      sh[0] < static_cast<int64_t>(regions.size()))
    raise(ErrorKind::Value, "preprocess: output tensor has shape " + [&] {
      std::string s = "(";
      for (size_t i = 0; i < sh.size(); ++i) s += (i ? ", " : "") + std::to_string(sh[i]);
      return s + ")";
    }() + ", expected (>=" + std::to_string(regions.size()) + ", " + std::to_string(want_chw[0]) + ", " +
              std::to_string(want_chw[1]) + ", " + std::to_string(want_chw[2]) + ")");
  if (out.dtype() != DType::f32() && out.dtype() != DType::f16())
    raise(ErrorKind::Value, "preprocess: output dtype must be float32 or float16, got " + out.dtype().str());
  if (!out.is_contiguous()) raise(ErrorKind::Value, "preprocess: output tensor must be contiguous");
  for (size_t i = 0; i < frames.size(); ++i) check_frame(frames[i], i);

  std::vector<InputTransform> transforms(regions.size());
  for (size_t i = 0; i < regions.size(); ++i) {
    const auto& r = regions[i];
    if (r.frame < 0 || r.frame >= static_cast<int>(frames.size()))
      raise(ErrorKind::Index, "preprocess: region " + std::to_string(i) + " names frame " + std::to_string(r.frame) +
                                  " but the batch has " + std::to_string(frames.size()) + " frames");
    transforms[i] = plan_transform(frames[r.frame], r, p);
  }
  if (regions.empty()) return transforms;

  // Bring every frame onto the output's device (only frames some region uses).
  std::vector<bool> used(frames.size(), false);
  for (const auto& r : regions) used[r.frame] = true;
  std::vector<Surface> local(frames);
  std::vector<bool> uploaded(frames.size(), false);
  const Device dev = out.device();
  for (size_t i = 0; i < local.size(); ++i) {
    if (!used[i]) continue;
    Surface& f = local[i];
    const bool on_device = f.device.is_cuda();
    if (dev.is_cuda() && (!on_device || f.device.id != dev.id)) {
      if (on_device) raise(ErrorKind::Value, "preprocess: frame " + std::to_string(i) + " is on " + f.device.str() +
                                                 " but the network input is on " + dev.str());
      Surface moved = Surface::from_tensor(f.tensor().to(dev, stream), f.format);
      moved.matrix = f.matrix;
      moved.range = f.range;
      f = moved;
      uploaded[i] = true;
    } else if (!dev.is_cuda() && on_device) {
      Surface moved = Surface::from_tensor(f.tensor().to(Device{DeviceType::CPU, 0}, stream), f.format);
      moved.matrix = f.matrix;
      moved.range = f.range;
      f = moved;
    }
  }
  if (dev.is_cuda()) {
#if PYSM_WITH_CUDA
    preprocess_cuda(local, regions, transforms, p, out, stream);
    // Uploaded copies come from the device pool (Tensor::to): keep them from reuse until the
    // kernel that reads them has run.
    cuda::StreamHandle s = stream ? stream : cuda::default_stream(dev.id);
    for (size_t i = 0; i < local.size(); ++i)
      if (uploaded[i]) std::static_pointer_cast<Block>(local[i].owner)->record_use(s);
#else
    raise(ErrorKind::Cuda, "preprocess: pysm was built without CUDA; use a host output tensor");
#endif
  } else {
    preprocess_cpu(local, regions, transforms, p, out);
  }
  return transforms;
}

#if !PYSM_WITH_CUDA
// CPU-only build: the kernel does not exist; callers get a clear error instead of a link failure.
void preprocess_cuda(const std::vector<Surface>&, const std::vector<CropRegion>&, const std::vector<InputTransform>&,
                     const PreprocessParams&, Tensor&, cuda::StreamHandle) {
  raise(ErrorKind::Cuda, "preprocess: pysm was built without CUDA");
}
#endif

}  // namespace pysm::infer
