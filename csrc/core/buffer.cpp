#include "pysm/buffer.hpp"

#include "pysm/error.hpp"

namespace pysm {

Tensor Buffer::extract(int i) const {
  if (i < 0 || i >= batch_size())
    raise(ErrorKind::Index, "Buffer.extract(" + std::to_string(i) + "): batch has " +
                                std::to_string(batch_size()) + " frame(s)");
  return surfaces[static_cast<size_t>(i)].tensor();
}

}  // namespace pysm
