// NVDEC hardware decoding through the cuvid parser and decoder. libnvcuvid and libcuda are loaded
// at runtime (pysm::driver); every call runs on the device's primary context. The header is free of
// NVIDIA types so that it compiles everywhere; builds without NVDEC throw Error(Driver) on use.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pysm/surface.hpp"

namespace pysm::codec {

// One row of cuvidGetDecoderCaps for a (codec, bit depth, chroma) combination.
struct NvdecCaps {
  std::string codec;   // FFmpeg name: h264, hevc, av1, vp9, vp8, mpeg1video, mpeg2video, mpeg4, mjpeg, vc1
  int bit_depth = 8;
  std::string chroma;  // "420", "422", "444", "400"
  bool supported = false;
  int max_width = 0, max_height = 0;
  int min_width = 0, min_height = 0;
  int64_t max_mb_count = 0;
  int num_engines = 0;  // NVDECs that support this combination
};

// Whether this build has NVDEC support compiled in.
bool nvdec_built() noexcept;
// The capability table of `device` (throws Error(Driver) when libnvcuvid is missing).
std::vector<NvdecCaps> nvdec_capabilities(int device);
// One row of the table, queried once per process and cached (throws Error(Driver) like the table).
NvdecCaps nvdec_caps(int device, const std::string& codec, int bit_depth, const std::string& chroma);
// Throws Error(Unsupported) naming codec, profile (when given), bit depth, chroma, size and GPU
// when the hardware cannot decode this stream; Error(Driver) when NVDEC is unavailable. Sizes of 0
// skip the size check.
void nvdec_check_support(int device, const std::string& codec, int bit_depth, const std::string& chroma,
                         int width, int height, const std::string& profile = "");

struct NvdecConfig {
  int device = 0;
  std::string codec;               // FFmpeg codec name
  std::vector<uint8_t> extradata;  // container codec private data (avcC/hvcC/av1C/raw headers)
  bool low_latency = false;        // display frames in decode order as soon as decoded
  int max_width = 0, max_height = 0;        // reserve for later in-place reconfiguration
  int target_width = 0, target_height = 0;  // NVDEC post-processing scaler; 0 = display size
  // Pictures parsed (so queued on NVDEC) ahead of the one displayed, 0 with low_latency, and the
  // decode surfaces beyond the stream's DPB minimum that hold them. 12 and 12 were tried: no gain
  // in the decode benchmark at 7 H.264 streams, 33 MiB more per decoder (the stall there is the
  // reader waiting for the GIL; see pysm/gil.py).
  int display_delay = 4;
  // The cuvid parser's ulErrorThreshold: how much of a picture's bitstream (%) may be corrupt for
  // the parser still to hand it to NVDEC (100: always). 0, 50 and 100 gave the same frames on
  // bit-flipped 1080p H.264 (H100, driver 580): every picture decoded, the damaged ones flagged.
  int error_threshold = 0;
  int extra_decode_surfaces = 4;
  int output_surfaces = 4;         // NVDEC frames mapped at once (copy-out pipelining)
  int matrix = -1;                 // ColorMatrix override; -1 = from the bitstream
  int range = -1;                  // ColorRange override; -1 = from the bitstream
  std::string source;              // names the stream in error messages
  std::string profile;             // the container's profile name, for error messages
};

struct NvdecStats {
  int64_t packets = 0;
  int64_t sessions_reused = 0;  // hardware sessions taken over from the decoder cache
  int64_t decoded = 0;     // pictures sent to the hardware
  int64_t displayed = 0;   // frames handed out
  int64_t errors = 0;      // frames flagged with decode errors (concealed or not)
  int64_t damaged = 0;     // frames flagged because a picture they were predicted from had errors
  int64_t dropped = 0;     // frames that could not be mapped/copied
  int64_t discarded = 0;   // frames of packets marked discard, decoded and not handed out
  int64_t reconfigures = 0;
  int64_t recreates = 0;
  int coded_width = 0, coded_height = 0;
  int width = 0, height = 0;  // output size
  int bit_depth = 0;
  int decode_surfaces = 0;
  std::string last_error;
};

// Whether a packet's pts is a time: below 0 it is unknown, except on a discard packet, whose
// pre-roll is timed before the stream's start (-1 stays unknown there too).
inline bool packet_time_known(int64_t pts, bool discard) { return pts >= 0 || (discard && pts != -1); }

// One compressed packet for NvdecDecoder::decode_many (the caller keeps `data` alive for the call).
struct NvdecPacket {
  const uint8_t* data = nullptr;
  size_t size = 0;
  int64_t pts = -1;  // ns, -1 unknown
  bool discard = false;  // decoded (later pictures may predict from it) but not shown: the
                         // pre-roll an MP4 edit list hides (FFmpeg's AV_PKT_FLAG_DISCARD)
};

// The cache of idle hardware sessions (CUvideodecoder + its context lock). cuvidDestroyDecoder
// takes ~230 ms in the driver and cuvidCreateDecoder tens of ms, so a closed decoder parks its
// session and the next stream with the same codec, chroma, bit depth, coded/max/target size,
// display area and surface counts takes it over. Bounded (default 4 per key, 16 in total; the
// least recently parked are destroyed first); PYSM_NVDEC_CACHE=0 in the environment disables it.
// Parked sessions are left to the driver at process exit (never destroyed by static destructors).
struct NvdecCacheInfo {
  bool enabled = false;
  int max_per_key = 0, max_total = 0;
  int parked = 0;
  int64_t hits = 0, misses = 0, parks = 0, evictions = 0;
};
NvdecCacheInfo nvdec_cache_info();
// Enables/disables the cache and sets its bounds (a negative bound keeps the current one).
// Disabling or shrinking destroys the parked sessions beyond the new bounds (on this thread).
void nvdec_cache_configure(bool enabled, int max_per_key = -1, int max_total = -1);
// Destroys every parked session now (slow: ~230 ms each); returns how many there were.
int nvdec_cache_clear();
// Whether a parked session was made for this device, codec (FFmpeg name), bit depth, display size
// and queue depth (NvdecConfig's extra_decode_surfaces and output_surfaces; -1: the defaults): a
// stream like that most likely starts without creating one (the rest of the key, the DPB minimum
// and coded size, is known only once its headers are parsed). Never blocks on the driver.
bool nvdec_cache_has(int device, const std::string& codec, int bit_depth, int width, int height,
                     int extra_decode_surfaces = -1, int output_surfaces = -1);

class NvdecDecoder {
 public:
  explicit NvdecDecoder(const NvdecConfig& config);
  ~NvdecDecoder();
  NvdecDecoder(const NvdecDecoder&) = delete;
  NvdecDecoder& operator=(const NvdecDecoder&) = delete;

  // Feed one compressed packet (container framing as configured; pts in ns, -1 unknown; a
  // `discard` packet's picture is decoded, for the pictures that predict from it, but not shown).
  // A frame carries the pts of the packet its picture came in (VP9/AV1: of the packet that shows
  // it), -1 when that packet had none; a discard packet may be timed below 0. With
  // `end_of_picture` false the parser may decode a picture while parsing the next packet, whose
  // pts it then gets.
  // `end_of_picture`: the packet holds exactly one picture (true for demuxed packets), which lets
  // the parser decode it without waiting for the next start code. Returns the frames that became
  // displayable, in display order, each copied into a pooled device surface (NV12, or P016 for
  // >8-bit) whose `ready` event fires when the copy is done. Thread-safe per decoder.
  std::vector<Surface> decode(const uint8_t* data, size_t size, int64_t pts, bool end_of_picture = true,
                              bool discard = false);
  // Several packets in one call (one lock, one context push; bindings release the GIL once per
  // batch instead of once per packet). Returns the frames of all of them, in display order. A
  // packet the parser rejects is counted (stats().errors, last_error) and skipped; Error(Decode)
  // is thrown only when every packet of the batch was rejected and no frame came out. Other
  // errors (unsupported format, CUDA, memory) are thrown at once.
  std::vector<Surface> decode_many(const NvdecPacket* packets, size_t count, bool end_of_picture = true);
  // End of stream: returns every frame still held by the parser. Decoding may continue after it
  // (the stream is treated as a new one, e.g. when a file loops).
  std::vector<Surface> flush();

  // Whether `data` (one packet) can follow the pictures decoded so far without flush(): it starts
  // a new coded sequence (AnnexBConverter::starts_sequence), so a looped file's next pass goes on
  // without draining the hardware and its frames keep their own timestamps.
  bool continues_at(const uint8_t* data, size_t size, bool keyframe) const;

  int device() const;
  NvdecStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pysm::codec
