#include "pysm/buffer.hpp"

#include <cstring>

#include "pysm/error.hpp"

namespace pysm {

Tensor Buffer::extract(int i) const {
  if (i < 0 || i >= batch_size())
    raise(ErrorKind::Index, "Buffer.extract(" + std::to_string(i) + "): batch has " +
                                std::to_string(batch_size()) + " frame(s)");
  return surfaces[static_cast<size_t>(i)].tensor();
}

BufferPtr Buffer::from_bytes(const void* data, size_t n) {
  if (n == 0) raise(ErrorKind::Value, "Buffer(data): data is empty; use Buffer() for end of stream");
  if (n > static_cast<size_t>(INT32_MAX))
    raise(ErrorKind::Value, "Buffer(data): " + std::to_string(n) + " bytes is more than one surface row holds (2^31-1)");
  auto b = std::make_shared<Buffer>();
  Surface s = Surface::allocate(ColorFormat::GRAY8, static_cast<int>(n), 1, Device{DeviceType::CPU, 0}, 1);
  std::memcpy(s.data, data, n);
  b->surfaces.push_back(std::move(s));
  b->raw = true;
  return b;
}

BufferPtr Buffer::from_surfaces(std::vector<Surface> surfaces) {
  auto b = std::make_shared<Buffer>();
  b->meta->max_frames = static_cast<uint32_t>(surfaces.size());
  for (size_t i = 0; i < surfaces.size(); ++i) {
    const Surface& s = surfaces[i];
    auto f = meta::add_frame(*b->meta);
    f->pad_index = static_cast<uint32_t>(i);
    f->source_width = f->pipeline_width = static_cast<uint32_t>(s.width);
    f->source_height = f->pipeline_height = static_cast<uint32_t>(s.height);
    f->buffer_pts = s.pts;
  }
  if (!surfaces.empty()) b->pts = surfaces.front().pts;
  b->surfaces = std::move(surfaces);
  return b;
}

}  // namespace pysm
