// A C++ program using pysm's core without Python: pooled tensors, pitched frame surfaces and a
// DLPack round trip. Exits non-zero with a message on the first failed check (it is a CTest test).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pysm/dlpack.hpp"
#include "pysm/memory.hpp"
#include "pysm/surface.hpp"
#include "pysm/tensor.hpp"

namespace {

int g_failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++g_failures;
  }
}

}  // namespace

int main() {
  using namespace pysm;
  const Device cpu{DeviceType::CPU, 0};

  // 1. A pooled host tensor: fill, clone, check the clone is equal and independent.
  Tensor t = Tensor::empty({4, 5, 3}, DType::f32(), cpu, "HWC");
  auto* p = static_cast<float*>(t.data());
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = 0.5f * static_cast<float>(i);
  Tensor c = t.clone();
  check(c.data() != t.data(), "clone has its own memory");
  check(c.shape() == t.shape() && c.dtype() == t.dtype(), "clone keeps shape and dtype");
  check(std::memcmp(c.data(), t.data(), t.nbytes()) == 0, "clone has the same values");
  p[7] = -1.0f;
  check(static_cast<float*>(c.data())[7] == 3.5f, "clone is independent of the original");

  // 2. The pool reuses a freed block of the same size instead of allocating again.
  MemoryPool& pool = MemoryPool::host();
  { Tensor warm = Tensor::empty({1 << 16}, DType::u8(), cpu); }
  const uint64_t before = pool.stats().system_allocs;
  for (int i = 0; i < 50; ++i) {
    Tensor tmp = Tensor::empty({1 << 16}, DType::u8(), cpu);
    static_cast<uint8_t*>(tmp.data())[0] = static_cast<uint8_t>(i);
  }
  check(pool.stats().system_allocs == before, "pool reuse: no new system allocations");

  // 3. A pitched RGB surface: its tensor view carries the pitch; a clone packs the rows.
  Surface s = Surface::allocate(ColorFormat::RGB, 10, 6, cpu, 64);
  check(s.pitch == 64, "RGB 10 px rows padded to 64 bytes");
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width * 3; ++x) s.data[y * s.pitch + x] = static_cast<uint8_t>(y * 31 + x);
  Tensor view = s.tensor();
  check(view.strides() == std::vector<int64_t>({64, 3, 1}), "surface tensor strides (pitch, 3, 1)");
  Tensor packed = view.clone();
  check(packed.is_contiguous(), "clone of a pitched view is contiguous");
  const auto* q = static_cast<const uint8_t*>(packed.data());
  bool same = true;
  for (int y = 0; y < s.height; ++y)
    for (int x = 0; x < s.width * 3; ++x) same &= q[y * s.width * 3 + x] == s.data[y * s.pitch + x];
  check(same, "clone of a pitched view keeps every pixel");
  Surface back = Surface::from_tensor(view, ColorFormat::RGB);
  check(back.pitch == s.pitch && back.width == 10 && back.height == 6, "from_tensor inverts tensor()");

  // 4. DLPack: export keeps the memory alive after the last Tensor goes; import calls the deleter.
  dlpack::DLManagedTensorVersioned* m = dlpack::export_versioned(view);
  view = Tensor();
  s = Surface();
  back = Surface();
  check(m->version.major == 1 && m->dl_tensor.strides[0] == 64, "versioned export with pitched strides");
  Tensor imported = dlpack::import_versioned(m, "HWC");
  check(static_cast<const uint8_t*>(imported.data())[64 + 2] == static_cast<uint8_t>(31 + 2),
        "imported view reads the exported memory");
  imported = Tensor();  // calls the exporter's deleter, which returns the block to the pool

  if (g_failures) {
    std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return 1;
  }
  std::printf("tensor_example: all checks passed\n");
  return 0;
}
