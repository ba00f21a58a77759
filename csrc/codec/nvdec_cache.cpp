// The process-wide cache of idle NVDEC sessions (see nvdec_cache.hpp for why it exists).
#include "pysm/nvdec.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "pysm/error.hpp"

#if PYSM_WITH_NVDEC
#include "nvdec_cache.hpp"
#endif

namespace pysm::codec {

#if PYSM_WITH_NVDEC

SessionKey session_key(int device, const CUVIDDECODECREATEINFO& ci) {
  return SessionKey{device,
                    static_cast<long long>(ci.CodecType),
                    static_cast<long long>(ci.ChromaFormat),
                    static_cast<long long>(ci.bitDepthMinus8),
                    static_cast<long long>(ci.OutputFormat),
                    static_cast<long long>(ci.DeinterlaceMode),
                    static_cast<long long>(ci.ulCreationFlags),
                    static_cast<long long>(ci.ulIntraDecodeOnly),
                    static_cast<long long>(ci.ulWidth),
                    static_cast<long long>(ci.ulHeight),
                    static_cast<long long>(ci.ulMaxWidth),
                    static_cast<long long>(ci.ulMaxHeight),
                    static_cast<long long>(ci.ulTargetWidth),
                    static_cast<long long>(ci.ulTargetHeight),
                    static_cast<long long>(ci.ulNumDecodeSurfaces),
                    static_cast<long long>(ci.ulNumOutputSurfaces),
                    ci.display_area.left,
                    ci.display_area.top,
                    ci.display_area.right,
                    ci.display_area.bottom};
}

NvdecSession::NvdecSession(std::shared_ptr<PrimaryContext> context, const CUVIDDECODECREATEINFO& create,
                           const std::string& what)
    : ctx(std::move(context)) {
  const CuvidApi& api = cuvid_api();
  ContextScope scope(ctx->get());
  cu_check(api.cuvidCtxLockCreate(&lock, ctx->get()), "cuvidCtxLockCreate", ctx->gpu_name());
  info = create;
  info.vidLock = lock;
  CUresult r = api.cuvidCreateDecoder(&decoder, &info);
  if (r != CUDA_SUCCESS) {
    decoder = nullptr;
    api.cuvidCtxLockDestroy(lock);
    lock = nullptr;
    cu_check(r, "cuvidCreateDecoder", what + ", " + std::to_string(info.ulNumDecodeSurfaces) + " surfaces");
  }
  key = session_key(ctx->device(), info);
}

void NvdecSession::set_geometry(const CUVIDRECONFIGUREDECODERINFO& rc) {
  info.ulWidth = rc.ulWidth;
  info.ulHeight = rc.ulHeight;
  info.ulTargetWidth = rc.ulTargetWidth;
  info.ulTargetHeight = rc.ulTargetHeight;
  info.ulNumDecodeSurfaces = rc.ulNumDecodeSurfaces;
  info.display_area.left = rc.display_area.left;
  info.display_area.top = rc.display_area.top;
  info.display_area.right = rc.display_area.right;
  info.display_area.bottom = rc.display_area.bottom;
  key = session_key(ctx->device(), info);
}

NvdecSession::~NvdecSession() {
  const CuvidApi& api = cuvid_api();  // loaded: this session was created through it
  ContextScope scope(ctx->get());
  if (decoder) api.cuvidDestroyDecoder(decoder);
  if (lock) api.cuvidCtxLockDestroy(lock);
}

namespace {

bool env_disabled() {
  const char* v = std::getenv("PYSM_NVDEC_CACHE");
  if (!v) return false;
  return !std::strcmp(v, "0") || !std::strcmp(v, "off") || !std::strcmp(v, "OFF") || !std::strcmp(v, "false") ||
         !std::strcmp(v, "False") || !std::strcmp(v, "no");
}

// Destroys sessions on a few threads at once: cuvidDestroyDecoder mostly waits in the driver, so
// clearing a cache of many sessions need not take ~230 ms times their number.
void destroy_all(std::vector<SessionPtr>& victims) {
  if (victims.size() > 1) {
    const size_t workers = std::min<size_t>(8, victims.size());
    std::atomic<size_t> next{0};
    std::vector<std::thread> threads;
    try {
      for (size_t w = 0; w < workers; ++w)
        threads.emplace_back([&] {
          for (;;) {
            const size_t i = next++;
            if (i >= victims.size()) break;
            victims[i].reset();
          }
        });
    } catch (const std::exception&) {
      // No thread for this one: the workers already started (or this thread) do the rest.
    }
    for (auto& t : threads) t.join();
  }
  victims.clear();  // whatever no worker reached
}

class SessionCache {
 public:
  SessionCache() : enabled_(!env_disabled()) {}

  SessionPtr take(const SessionKey& key) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!enabled_) return nullptr;
    for (auto it = parked_.begin(); it != parked_.end(); ++it) {  // most recently parked first
      if ((*it)->key == key) {
        SessionPtr s = std::move(*it);
        parked_.erase(it);
        hits_++;
        return s;
      }
    }
    misses_++;
    return nullptr;
  }

  // Whether a parked session was created for this device, codec, bit depth, display size and
  // queue depth (the DPB minimum and coded size that complete its key are known only once the
  // stream is parsed). Two depths whose surface totals meet at the 32-surface cap could share a
  // session yet answer no here: the fast start then races for nothing, which costs nothing.
  bool has(int device, cudaVideoCodec codec, int bit_depth, int width, int height, int extra_surfaces,
           int output_surfaces) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!enabled_) return false;
    for (const auto& s : parked_) {
      const CUVIDDECODECREATEINFO& i = s->info;
      if (s->ctx->device() == device && i.CodecType == codec && static_cast<int>(i.bitDepthMinus8) + 8 == bit_depth &&
          i.display_area.right - i.display_area.left == width && i.display_area.bottom - i.display_area.top == height &&
          s->extra_surfaces == extra_surfaces && static_cast<int>(i.ulNumOutputSurfaces) == output_surfaces)
        return true;
    }
    return false;
  }

  void park(SessionPtr s) {
    std::vector<SessionPtr> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!enabled_ || max_total_ <= 0 || max_per_key_ <= 0) {
        victims.push_back(std::move(s));
      } else {
        parks_++;
        const SessionKey key = s->key;
        parked_.push_front(std::move(s));
        evict_locked(&key, victims);
      }
    }
    // ~NvdecSession runs here, outside the lock: other streams keep parking and taking meanwhile.
  }

  void configure(bool enabled, int per_key, int total) {
    std::vector<SessionPtr> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      enabled_ = enabled;
      if (per_key >= 0) max_per_key_ = per_key;
      if (total >= 0) max_total_ = total;
      if (!enabled_) {
        for (auto& s : parked_) victims.push_back(std::move(s));
        parked_.clear();
      } else {
        evict_locked(nullptr, victims);
      }
    }
    destroy_all(victims);
  }

  int clear() {
    std::vector<SessionPtr> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& s : parked_) victims.push_back(std::move(s));
      parked_.clear();
    }
    const int n = static_cast<int>(victims.size());
    destroy_all(victims);
    return n;
  }

  NvdecCacheInfo info() {
    std::lock_guard<std::mutex> lock(mu_);
    NvdecCacheInfo i;
    i.enabled = enabled_;
    i.max_per_key = max_per_key_;
    i.max_total = max_total_;
    i.parked = static_cast<int>(parked_.size());
    i.hits = hits_;
    i.misses = misses_;
    i.parks = parks_;
    i.evictions = evictions_;
    return i;
  }

 private:
  // Least recently parked sessions beyond the bounds move to `victims` (destroyed by the caller).
  void evict_locked(const SessionKey* key, std::vector<SessionPtr>& victims) {
    if (key) {
      int same = 0;
      for (auto it = parked_.begin(); it != parked_.end();) {
        if ((*it)->key == *key && ++same > max_per_key_) {
          victims.push_back(std::move(*it));
          it = parked_.erase(it);
          evictions_++;
        } else {
          ++it;
        }
      }
    } else {
      // Bounds changed: enforce the per-key bound for every key.
      std::vector<SessionKey> seen;
      std::vector<int> counts;
      for (auto it = parked_.begin(); it != parked_.end();) {
        size_t k = 0;
        while (k < seen.size() && seen[k] != (*it)->key) k++;
        if (k == seen.size()) {
          seen.push_back((*it)->key);
          counts.push_back(0);
        }
        if (++counts[k] > max_per_key_) {
          victims.push_back(std::move(*it));
          it = parked_.erase(it);
          evictions_++;
        } else {
          ++it;
        }
      }
    }
    while (static_cast<int>(parked_.size()) > max_total_) {
      victims.push_back(std::move(parked_.back()));
      parked_.pop_back();
      evictions_++;
    }
  }

  std::mutex mu_;
  bool enabled_;
  int max_per_key_ = 4;
  int max_total_ = 16;
  std::list<SessionPtr> parked_;  // front: most recently parked
  int64_t hits_ = 0, misses_ = 0, parks_ = 0, evictions_ = 0;
};

// Leaked on purpose: parked sessions must not be destroyed by static destructors at exit, when
// the driver libraries may already be finalising.
SessionCache& cache() {
  static SessionCache* c = new SessionCache();
  return *c;
}

}  // namespace

SessionPtr take_session(const SessionKey& key) { return cache().take(key); }
void park_session(SessionPtr session) {
  if (session) cache().park(std::move(session));
}

NvdecCacheInfo nvdec_cache_info() { return cache().info(); }
void nvdec_cache_configure(bool enabled, int max_per_key, int max_total) {
  cache().configure(enabled, max_per_key, max_total);
}
int nvdec_cache_clear() { return cache().clear(); }
bool nvdec_cache_has(int device, const std::string& codec, int bit_depth, int width, int height,
                     int extra_decode_surfaces, int output_surfaces) {
  const NvdecConfig defaults;
  if (extra_decode_surfaces < 0) extra_decode_surfaces = defaults.extra_decode_surfaces;
  if (output_surfaces < 0) output_surfaces = defaults.output_surfaces;
  cudaVideoCodec cc;
  return cuvid_codec(codec, &cc) &&
         cache().has(device, cc, bit_depth, width, height, extra_decode_surfaces, std::max(output_surfaces, 1));
}

#else  // !PYSM_WITH_NVDEC

NvdecCacheInfo nvdec_cache_info() { return {}; }
void nvdec_cache_configure(bool, int, int) {}
int nvdec_cache_clear() { return 0; }
bool nvdec_cache_has(int, const std::string&, int, int, int, int, int) { return false; }

#endif

}  // namespace pysm::codec
