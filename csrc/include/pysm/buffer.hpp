// Buffer = one batch: batch_size frame surfaces (each at its own resolution and format, or a
// uniform mux output) and one BatchMeta. Shared by shared_ptr between pipeline stages.
#pragma once
#include <memory>
#include <vector>

#include "pysm/meta.hpp"
#include "pysm/surface.hpp"

namespace pysm {

struct Buffer {
  std::vector<Surface> surfaces;
  std::shared_ptr<BatchMeta> meta = std::make_shared<BatchMeta>();
  int64_t pts = -1;  // ns; pts of the first frame
  bool eos = false;  // an empty Buffer returned by a provider means end of stream
  // surfaces[0] holds opaque bytes (Buffer(data) from Python): a GRAY8 surface of 1 row whose
  // width is the byte count. An appsrc reinterprets them with its caps (format, width, height).
  bool raw = false;

  int batch_size() const { return static_cast<int>(surfaces.size()); }
  // Frame i as a tensor (zero-copy). Throws Error(Index) when i is out of range.
  Tensor extract(int i) const;

  // A buffer holding a copy of `n` bytes in one host surface (see `raw`); n must be > 0.
  static std::shared_ptr<Buffer> from_bytes(const void* data, size_t n);
  // A batch of `surfaces` with one FrameMeta per surface (batch_id = pad_index = index,
  // source and pipeline size = the surface's size, buffer_pts = the surface's pts); for muxers,
  // which then set source ids, frame numbers and source sizes.
  static std::shared_ptr<Buffer> from_surfaces(std::vector<Surface> surfaces);
};
using BufferPtr = std::shared_ptr<Buffer>;

}  // namespace pysm
