// Pooled memory for frames and tensors. A Block returns to its pool when the last reference
// (a Tensor, a Python view, a DLPack consumer) drops it; the pool reuses it only after the
// work last enqueued on it (see Block::record_use) has completed, so reuse never races a kernel.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "pysm/cuda.hpp"

namespace pysm {

enum class MemoryKind : int { Host = 0, PinnedHost = 1, Device = 2 };

class MemoryPool;

class Block {
 public:
  ~Block();
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
  void* data() const { return data_; }
  size_t size() const { return size_; }         // usable bytes (>= requested)
  MemoryKind kind() const { return kind_; }
  int device() const { return device_; }
  // Mark that work on `stream` uses this block; reuse waits for it to finish. The event is made on
  // `stream_device`, the stream's device; -1 means the block's own device for device memory and
  // the current device for host memory (callers then hold a DeviceScope on the stream's device).
  // A stream of another device than a device block's (a cross-device copy) must pass its device.
  void record_use(cuda::StreamHandle stream, int stream_device = -1);
  // Same, with an event the caller has already recorded after its last use of the block (a
  // producer that records a ready event anyway shares it instead of creating a second one).
  void record_use(std::shared_ptr<cuda::Event> recorded);

 private:
  friend class MemoryPool;
  Block(MemoryPool* pool, void* data, size_t size, MemoryKind kind, int device)
      : pool_(pool), data_(data), size_(size), kind_(kind), device_(device) {}
  MemoryPool* pool_;
  void* data_;
  size_t size_;
  MemoryKind kind_;
  int device_;
  std::mutex use_mu_;  // guards last_use_ (consumers on several threads may record uses)
  std::shared_ptr<cuda::Event> last_use_;
};
using BlockPtr = std::shared_ptr<Block>;

// Record that queued work on `stream` uses the memory kept alive by `owner`. When `owner` is a
// pool Block, the pool will not hand that memory out again before the work completes. Owners that
// are not pool blocks (DLPack producers, foreign memory) are ignored: their producer orders reuse.
// `stream_device` as in Block::record_use.
void record_stream_use(const std::shared_ptr<void>& owner, cuda::StreamHandle stream, int stream_device = -1);

struct MemoryStats {
  size_t in_use_bytes = 0;   // held by live blocks
  size_t cached_bytes = 0;   // free blocks kept for reuse
  size_t peak_bytes = 0;     // max of in_use + cached
  uint64_t allocations = 0;  // allocate() calls
  uint64_t reuses = 0;       // served from the cache
  uint64_t system_allocs = 0;  // real cudaMalloc / cudaHostAlloc / aligned_alloc calls
  // Blocks given back to the system: returned while the cache was full, or by trim(). For device
  // memory each is a cudaFree, which waits for the whole device: a count that grows while streams
  // run means the working set swings by more than the cache limit (see set_cache_limit).
  uint64_t system_frees = 0;
  size_t cache_limit = 0;      // the bound on cached_bytes
};

class MemoryPool {
 public:
  // Host pool: pinned (cudaHostAlloc) when CUDA is available, else 64-byte-aligned pageable.
  static MemoryPool& host();
  static MemoryPool& device(int device);
  // Every pool created so far (for memory_stats()).
  static std::vector<MemoryPool*> all();

  BlockPtr allocate(size_t bytes);
  MemoryStats stats() const;
  void trim();  // release every cached block to the system
  MemoryKind kind() const { return kind_; }
  int device_index() const { return device_; }
  // Upper bound on cached bytes; blocks returned beyond it are freed at once (default: a quarter
  // of the GPU's memory and at least 8 GiB for device pools, 2 GiB for the host pool).
  void set_cache_limit(size_t bytes);

  ~MemoryPool();

 private:
  MemoryPool(MemoryKind kind, int device);
  friend class Block;
  void release(Block* b);  // called from ~Block
  static size_t round_size(size_t bytes);
  void* system_alloc(size_t bytes);
  void system_free(void* p);

  MemoryKind kind_;
  int device_;
  mutable std::mutex mu_;
  struct Cached {
    void* data;
    std::shared_ptr<cuda::Event> last_use;  // null once known to be complete
  };
  std::multimap<size_t, Cached> free_;
  MemoryStats stats_;
  size_t cache_limit_;
};

}  // namespace pysm
