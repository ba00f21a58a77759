// Private to csrc/codec: an NVDEC hardware session (CUvideodecoder + the context lock it was
// created with) and the process-wide cache that parks idle sessions for reuse.
//
// cuvidDestroyDecoder costs ~230 ms in the driver (measured on an H200, the same through
// PyNvVideoCodec) and cuvidCreateDecoder tens of ms, so a program that opens and closes streams
// (clips of a dataset, reconnecting cameras, MediaExtractor chunks) would spend its time there.
// A closed decoder parks its session here instead; the next stream with identical creation
// parameters takes it over in its sequence callback. The cache is bounded (per key and in total,
// least recently parked destroyed first) and can be switched off (PYSM_NVDEC_CACHE=0 or
// nvdec_cache_configure). Parked sessions are never destroyed at process exit: the driver
// reclaims them with the process, which avoids both the delay and any teardown-order crash.
#pragma once
#if PYSM_WITH_NVDEC

#include <array>
#include <memory>
#include <string>

#include "nvdec_api.hpp"

namespace pysm::codec {

// Everything cuvidCreateDecoder was given that a new stream must match to reuse the session.
using SessionKey = std::array<long long, 20>;

SessionKey session_key(int device, const CUVIDDECODECREATEINFO& ci);

struct NvdecSession {
  // Creates the context lock and the decoder (`what` describes the stream in error messages).
  NvdecSession(std::shared_ptr<PrimaryContext> ctx, const CUVIDDECODECREATEINFO& ci, const std::string& what);
  ~NvdecSession();  // destroys the decoder and its lock (slow: see above)
  NvdecSession(const NvdecSession&) = delete;
  NvdecSession& operator=(const NvdecSession&) = delete;

  std::shared_ptr<PrimaryContext> ctx;  // keeps the primary context retained while the decoder lives
  CUvideoctxlock lock = nullptr;        // must outlive the decoder created with it
  CUvideodecoder decoder = nullptr;
  CUVIDDECODECREATEINFO info{};         // current geometry (updated by set_geometry after a reconfigure)
  SessionKey key{};                     // session_key(device, info)
  int extra_surfaces = 0;               // the decoder config's extra_decode_surfaces (for nvdec_cache_has)

  // Record an in-place cuvidReconfigureDecoder, so that the session is parked under its new key.
  void set_geometry(const CUVIDRECONFIGUREDECODERINFO& rc);
};
using SessionPtr = std::unique_ptr<NvdecSession>;

// A parked session with this key, or null. Never blocks on the driver.
SessionPtr take_session(const SessionKey& key);
// Parks an idle session (nothing mapped, no parser attached). Destroys it instead when the cache
// is disabled; evicts (destroys) the least recently parked ones beyond the bounds. Destruction
// happens on the calling thread, outside the cache lock.
void park_session(SessionPtr session);

}  // namespace pysm::codec

#endif  // PYSM_WITH_NVDEC
