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

  int batch_size() const { return static_cast<int>(surfaces.size()); }
  // Frame i as a tensor (zero-copy). Throws Error(Index) when i is out of range.
  Tensor extract(int i) const;
};
using BufferPtr = std::shared_ptr<Buffer>;

}  // namespace pysm
