#include "pysm/memory.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "pysm/error.hpp"

#if PYSM_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace pysm {

namespace {
std::mutex g_registry_mu;
std::vector<MemoryPool*>& registry() {
  static std::vector<MemoryPool*> r;
  return r;
}

// Deleter of every pool Block. record_stream_use recognises a type-erased owner as a pool block
// through std::get_deleter, which needs no process-wide registry (and no lock on every frame).
struct BlockDeleter {
  Block* block;
  void operator()(Block* b) const { delete b; }
};

// At most this many queued-work events are queried per allocation (each is a driver call made
// under the pool lock); past them a new block is allocated instead.
constexpr int kMaxReuseQueries = 8;
}  // namespace

Block::~Block() {
  if (pool_) pool_->release(this);
}

void Block::record_use(cuda::StreamHandle stream, int stream_device) {
#if PYSM_WITH_CUDA
  if (kind_ == MemoryKind::Host || stream == nullptr) return;
  int dev = stream_device >= 0 ? stream_device : kind_ == MemoryKind::Device ? device_ : cuda::current_device();
  auto ev = std::make_shared<cuda::Event>(dev);
  ev->record(stream);
  record_use(std::move(ev));
#else
  (void)stream;
  (void)stream_device;
#endif
}

void Block::record_use(std::shared_ptr<cuda::Event> recorded) {
  if (kind_ == MemoryKind::Host || !recorded) return;
  {
    std::lock_guard<std::mutex> lock(use_mu_);
    last_use_.swap(recorded);
  }
  // `recorded` now holds the previous event: released outside the lock.
}

void record_stream_use(const std::shared_ptr<void>& owner, cuda::StreamHandle stream, int stream_device) {
  if (!owner || stream == nullptr) return;
  // `owner` keeps the block alive for the duration of this call.
  if (auto* d = std::get_deleter<BlockDeleter>(owner)) d->block->record_use(stream, stream_device);
}

MemoryPool::MemoryPool(MemoryKind kind, int device)
    : kind_(kind), device_(device), cache_limit_(kind == MemoryKind::Device ? (size_t(8) << 30) : (size_t(2) << 30)) {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  registry().push_back(this);
}

MemoryPool::~MemoryPool() {
  // Pools are process-lifetime singletons; at exit the driver may already be gone, so cached
  // device memory is left to the driver's teardown rather than freed here.
}

MemoryPool& MemoryPool::host() {
  static MemoryPool* pool = new MemoryPool(cuda::is_available() ? MemoryKind::PinnedHost : MemoryKind::Host, -1);
  return *pool;
}

MemoryPool& MemoryPool::device(int device) {
  static std::mutex mu;
  static std::map<int, MemoryPool*> pools;
  std::lock_guard<std::mutex> lock(mu);
  auto it = pools.find(device);
  if (it != pools.end()) return *it->second;
  if (!cuda::is_available())
    raise(ErrorKind::Cuda, "device memory requested but no CUDA device is available (" +
                               cuda::unavailable_reason() + "); use device='cpu'");
  if (device < 0 || device >= cuda::device_count())
    raise(ErrorKind::Value, "CUDA device " + std::to_string(device) + " does not exist");
  auto* p = new MemoryPool(MemoryKind::Device, device);
  // Frames held ahead by readers can reach an eighth of the GPU's memory (pysm.codec.parallel's
  // automatic lookahead), and a block returned to a full cache is a cudaFree that stalls every
  // stream (4 HEVC streams with 2.2 GiB ahead each freed 2,000 blocks in 3 s under a fixed 8 GiB):
  // keep up to a quarter of the device, never less than 8 GiB.
  p->cache_limit_ = std::max(p->cache_limit_, cuda::device_info(device).total_memory / 4);
  pools[device] = p;
  return *p;
}

std::vector<MemoryPool*> MemoryPool::all() {
  std::lock_guard<std::mutex> lock(g_registry_mu);
  return registry();
}

size_t MemoryPool::round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  // Small blocks: next power of two (>= 512 B). Large: multiple of 2 MiB, which bounds waste
  // to 2 MiB per frame-sized block and keeps frame sizes of one resolution in one class.
  if (bytes <= (size_t(1) << 20)) {
    size_t s = 512;
    while (s < bytes) s <<= 1;
    return s;
  }
  const size_t g = size_t(2) << 20;
  return (bytes + g - 1) / g * g;
}

void* MemoryPool::system_alloc(size_t bytes) {
  void* p = nullptr;
  switch (kind_) {
    case MemoryKind::Host: {
      p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
      if (!p) raise(ErrorKind::Memory, "out of host memory allocating " + std::to_string(bytes) + " bytes");
      break;
    }
#if PYSM_WITH_CUDA
    case MemoryKind::PinnedHost:
      cuda::ensure_context();  // portable pinned memory: any device's context will do, but not a new one
      cuda::check(cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "cudaHostAlloc");
      break;
    case MemoryKind::Device: {
      cuda::DeviceScope scope(device_);
      cudaError_t e = cudaMalloc(&p, bytes);
      if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        // Free the cache and retry once before reporting out-of-memory.
        trim();
        e = cudaMalloc(&p, bytes);
      }
      cuda::check(e, ("cudaMalloc of " + std::to_string(bytes) + " bytes on device " + std::to_string(device_)).c_str());
      break;
    }
#else
    default:
      raise(ErrorKind::Cuda, "pysm was built without CUDA");
#endif
  }
  return p;
}

void MemoryPool::system_free(void* p) {
  switch (kind_) {
    case MemoryKind::Host:
      std::free(p);
      break;
#if PYSM_WITH_CUDA
    case MemoryKind::PinnedHost:
      cuda::ensure_context();
      cudaFreeHost(p);
      break;
    case MemoryKind::Device: {
      int prev = 0;
      cudaGetDevice(&prev);
      cudaSetDevice(device_);
      cudaFree(p);
      if (prev != device_) cuda::restore_device(prev);
      break;
    }
#endif
    default:
      break;
  }
}

BlockPtr MemoryPool::allocate(size_t bytes) {
  const size_t size = round_size(bytes);
  void* data = nullptr;
  std::shared_ptr<cuda::Event> finished;  // the reused block's last event, released after the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.allocations++;
    // Exact size class first, oldest first; a block still in use by queued GPU work is skipped.
    auto range = free_.equal_range(size);
    int queries = 0;
    for (auto it = range.first; it != range.second; ++it) {
      Cached& c = it->second;
      if (c.last_use) {
        if (queries >= kMaxReuseQueries) break;
        ++queries;
        if (!c.last_use->query()) continue;
      }
      data = c.data;
      finished = std::move(c.last_use);
      free_.erase(it);
      stats_.cached_bytes -= size;
      stats_.reuses++;
      stats_.in_use_bytes += size;
      break;
    }
  }
  if (!data) {
    data = system_alloc(size);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.system_allocs++;
    stats_.in_use_bytes += size;
    stats_.peak_bytes = std::max(stats_.peak_bytes, stats_.in_use_bytes + stats_.cached_bytes);
  }
  auto* block = new Block(this, data, size, kind_, device_);
  return BlockPtr(block, BlockDeleter{block});
}

void MemoryPool::release(Block* b) {
  // The block is being destroyed: nobody else can touch last_use_ any more.
  std::shared_ptr<cuda::Event> last = std::move(b->last_use_);
  std::unique_lock<std::mutex> lock(mu_);
  stats_.in_use_bytes -= b->size_;
  if (stats_.cached_bytes + b->size_ > cache_limit_) {
    stats_.system_frees++;
    lock.unlock();
    if (last) last->synchronize();
    system_free(b->data_);
    return;
  }
  free_.emplace(b->size_, Cached{b->data_, std::move(last)});
  stats_.cached_bytes += b->size_;
}

MemoryStats MemoryPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  MemoryStats s = stats_;
  s.cache_limit = cache_limit_;
  return s;
}

void MemoryPool::set_cache_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_limit_ = bytes;
}

void MemoryPool::trim() {
  std::multimap<size_t, Cached> victims;
  {
    std::lock_guard<std::mutex> lock(mu_);
    victims.swap(free_);
    stats_.cached_bytes = 0;
    stats_.system_frees += victims.size();
  }
  for (auto& kv : victims) {
    if (kv.second.last_use) kv.second.last_use->synchronize();
    system_free(kv.second.data);
  }
}

}  // namespace pysm
