// What the GPU's NVDEC engines can decode, from cuvidGetDecoderCaps.
#include "pysm/nvdec.hpp"

#include <map>
#include <mutex>
#include <tuple>

#include "nvdec_api.hpp"
#include "pysm/error.hpp"

namespace pysm::codec {

bool nvdec_built() noexcept { return PYSM_WITH_NVDEC != 0; }

#if PYSM_WITH_NVDEC

namespace {

struct Query {
  const char* codec;
  int bit_depth;
  cudaVideoChromaFormat chroma;
};

// The combinations worth reporting: every codec at 8-bit 4:2:0, plus the high-bit-depth and
// 4:2:2/4:4:4 variants that the codec defines.
const Query kQueries[] = {
    {"h264", 8, cudaVideoChromaFormat_420},        {"h264", 8, cudaVideoChromaFormat_422},
    {"h264", 10, cudaVideoChromaFormat_420},       {"h264", 8, cudaVideoChromaFormat_444},
    {"hevc", 8, cudaVideoChromaFormat_420},        {"hevc", 10, cudaVideoChromaFormat_420},
    {"hevc", 12, cudaVideoChromaFormat_420},       {"hevc", 8, cudaVideoChromaFormat_422},
    {"hevc", 10, cudaVideoChromaFormat_422},       {"hevc", 8, cudaVideoChromaFormat_444},
    {"hevc", 10, cudaVideoChromaFormat_444},       {"hevc", 12, cudaVideoChromaFormat_444},
    {"av1", 8, cudaVideoChromaFormat_420},         {"av1", 10, cudaVideoChromaFormat_420},
    {"av1", 8, cudaVideoChromaFormat_Monochrome},  {"vp9", 8, cudaVideoChromaFormat_420},
    {"vp9", 10, cudaVideoChromaFormat_420},        {"vp9", 12, cudaVideoChromaFormat_420},
    {"vp8", 8, cudaVideoChromaFormat_420},         {"mpeg1video", 8, cudaVideoChromaFormat_420},
    {"mpeg2video", 8, cudaVideoChromaFormat_420},  {"mpeg4", 8, cudaVideoChromaFormat_420},
    {"mjpeg", 8, cudaVideoChromaFormat_420},       {"mjpeg", 8, cudaVideoChromaFormat_422},
    {"mjpeg", 8, cudaVideoChromaFormat_444},       {"vc1", 8, cudaVideoChromaFormat_420},
};

cudaVideoChromaFormat parse_chroma(const std::string& c) {
  if (c == "400") return cudaVideoChromaFormat_Monochrome;
  if (c == "422") return cudaVideoChromaFormat_422;
  if (c == "444") return cudaVideoChromaFormat_444;
  return cudaVideoChromaFormat_420;
}

NvdecCaps query_one(const CuvidApi& a, const char* codec, int bit_depth, cudaVideoChromaFormat chroma) {
  NvdecCaps row;
  row.codec = codec;
  row.bit_depth = bit_depth;
  row.chroma = chroma_name(chroma);
  cudaVideoCodec cc;
  if (!cuvid_codec(codec, &cc)) return row;
  CUVIDDECODECAPS caps{};
  caps.eCodecType = cc;
  caps.eChromaFormat = chroma;
  caps.nBitDepthMinus8 = static_cast<unsigned>(bit_depth - 8);
  if (a.cuvidGetDecoderCaps(&caps) != CUDA_SUCCESS) return row;
  row.supported = caps.bIsSupported != 0;
  row.max_width = static_cast<int>(caps.nMaxWidth);
  row.max_height = static_cast<int>(caps.nMaxHeight);
  row.min_width = caps.nMinWidth;
  row.min_height = caps.nMinHeight;
  row.max_mb_count = caps.nMaxMBCount;
  row.num_engines = caps.nNumNVDECs;
  return row;
}

// Capability queries cost a driver round trip each; streams ask per decoder, so cache per device.
std::mutex g_cache_mu;
std::map<std::tuple<int, std::string, int, int>, NvdecCaps> g_cache;

}  // namespace

std::vector<NvdecCaps> nvdec_capabilities(int device) {
  const CuvidApi& a = cuvid_api();
  PrimaryContext ctx(device);
  ContextScope scope(ctx.get());
  std::vector<NvdecCaps> rows;
  for (const auto& q : kQueries) rows.push_back(query_one(a, q.codec, q.bit_depth, q.chroma));
  return rows;
}

NvdecCaps nvdec_caps(int device, const std::string& codec, int bit_depth, const std::string& chroma) {
  const cudaVideoChromaFormat cf = parse_chroma(chroma);
  const auto key = std::make_tuple(device, codec, bit_depth, static_cast<int>(cf));
  {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) return it->second;
  }
  const CuvidApi& a = cuvid_api();
  PrimaryContext ctx(device);
  ContextScope scope(ctx.get());
  NvdecCaps row = query_one(a, codec.c_str(), bit_depth, cf);
  std::lock_guard<std::mutex> lock(g_cache_mu);
  g_cache[key] = row;
  return row;
}

void nvdec_check_support(int device, const std::string& codec, int bit_depth, const std::string& chroma,
                         int width, int height, const std::string& profile) {
  cudaVideoCodec cc;
  if (!cuvid_codec(codec, &cc))
    raise(ErrorKind::Unsupported, "NVDEC has no decoder for codec '" + codec + "' on any GPU (device " +
                                      std::to_string(device) + "); decode it on the CPU (device='cpu')");
  const cudaVideoChromaFormat cf = parse_chroma(chroma);
  const NvdecCaps row = nvdec_caps(device, codec, bit_depth, chroma);
  auto gpu_name = [&] { return PrimaryContext(device).gpu_name(); };
  const std::string what = codec + (profile.empty() ? "" : " (" + profile + " profile)") + " " +
                           std::to_string(bit_depth) + "-bit " + chroma_name(cf);
  if (!row.supported)
    raise(ErrorKind::Unsupported, "NVDEC on " + gpu_name() + " (device " + std::to_string(device) +
                                      ") does not support " + what + "; decode it on the CPU (device='cpu')");
  if (width > 0 && height > 0) {
    const int64_t mbs = int64_t((width + 15) / 16) * ((height + 15) / 16);
    if (width > row.max_width || height > row.max_height || width < row.min_width || height < row.min_height ||
        (row.max_mb_count > 0 && mbs > row.max_mb_count))
      raise(ErrorKind::Unsupported,
            "NVDEC on " + gpu_name() + " cannot decode " + what + " at " + std::to_string(width) + "x" +
                std::to_string(height) + " (supported " + std::to_string(row.min_width) + "x" +
                std::to_string(row.min_height) + " to " + std::to_string(row.max_width) + "x" +
                std::to_string(row.max_height) + ", " + std::to_string(row.max_mb_count) +
                " macroblocks); decode it on the CPU (device='cpu')");
  }
}

#else  // !PYSM_WITH_NVDEC

std::vector<NvdecCaps> nvdec_capabilities(int) {
  raise(ErrorKind::Driver, "this pysm build has no NVDEC support (built without CUDA or nv-codec-headers); "
                           "install a CUDA build of pysm or decode on the CPU (device='cpu')");
}

NvdecCaps nvdec_caps(int, const std::string&, int, const std::string&) {
  nvdec_capabilities(0);
  return {};
}

void nvdec_check_support(int, const std::string&, int, const std::string&, int, int, const std::string&) {
  nvdec_capabilities(0);
}

#endif

}  // namespace pysm::codec
