#include "nvdec_api.hpp"

#if PYSM_WITH_NVDEC

#include <mutex>

#include "pysm/cuda.hpp"
#include "pysm/driver.hpp"
#include "pysm/error.hpp"

namespace pysm::codec {
namespace {

template <typename T>
void load(const driver::Library& lib, T*& fn, const char* name, bool required = true) {
  fn = reinterpret_cast<T*>(required ? lib.require(name) : lib.symbol(name));
}

template <typename T>
void load_any(const driver::Library& lib, T*& fn, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    fn = reinterpret_cast<T*>(lib.symbol(n));
    if (fn) return;
  }
  fn = reinterpret_cast<T*>(lib.require(*names.begin()));
}

}  // namespace

const CuvidApi& cuvid_api() {
  static std::once_flag once;
  static CuvidApi api;
  static std::string failure;
  std::call_once(once, [] {
    try {
      const auto& cu = driver::require_libcuda();
      const auto& nv = driver::require_libnvcuvid();
      CuvidApi a;
      load(cu, a.cuInit, "cuInit");
      load(cu, a.cuDeviceGet, "cuDeviceGet");
      load(cu, a.cuDeviceGetName, "cuDeviceGetName");
      load(cu, a.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
      load_any(cu, a.cuDevicePrimaryCtxRelease, {"cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease"});
      load(cu, a.cuCtxPushCurrent, "cuCtxPushCurrent_v2");
      load(cu, a.cuCtxPopCurrent, "cuCtxPopCurrent_v2");
      load(cu, a.cuMemcpy2DAsync, "cuMemcpy2DAsync_v2");
      load(nv, a.cuvidGetDecoderCaps, "cuvidGetDecoderCaps");
      load(nv, a.cuvidCreateDecoder, "cuvidCreateDecoder");
      load(nv, a.cuvidDestroyDecoder, "cuvidDestroyDecoder");
      load(nv, a.cuvidDecodePicture, "cuvidDecodePicture");
      load(nv, a.cuvidGetDecodeStatus, "cuvidGetDecodeStatus", false);
      load(nv, a.cuvidReconfigureDecoder, "cuvidReconfigureDecoder", false);
      load(nv, a.cuvidMapVideoFrame, "cuvidMapVideoFrame64");
      load(nv, a.cuvidUnmapVideoFrame, "cuvidUnmapVideoFrame64");
      load(nv, a.cuvidCtxLockCreate, "cuvidCtxLockCreate");
      load(nv, a.cuvidCtxLockDestroy, "cuvidCtxLockDestroy");
      load(nv, a.cuvidCreateVideoParser, "cuvidCreateVideoParser");
      load(nv, a.cuvidParseVideoData, "cuvidParseVideoData");
      load(nv, a.cuvidDestroyVideoParser, "cuvidDestroyVideoParser");
      CUresult r = a.cuInit(0);
      if (r != CUDA_SUCCESS)
        raise(ErrorKind::Driver, "cuInit failed with " + driver::cu_error_name(r) +
                                     "; check nvidia-smi, or decode on the CPU (device='cpu')");
      api = a;
    } catch (const Error& e) {
      failure = e.what();
    }
  });
  if (!failure.empty()) raise(ErrorKind::Driver, failure);
  return api;
}

std::string cu_result_name(CUresult r) { return driver::cu_error_name(static_cast<int>(r)); }

void cu_check(CUresult r, const char* what, const std::string& context) {
  if (r == CUDA_SUCCESS) return;
  ErrorKind kind = ErrorKind::Cuda;
  std::string hint = "see `python -m pysm doctor`";
  // ffnvcodec's CUresult enum lists only a few names; the codes are the driver API's.
  switch (static_cast<int>(r)) {
    case 2:  // CUDA_ERROR_OUT_OF_MEMORY
      kind = ErrorKind::Memory;
      hint = "the GPU is out of memory: run fewer decoders or free other GPU users";
      break;
    case 801:  // CUDA_ERROR_NOT_SUPPORTED
      kind = ErrorKind::Unsupported;
      hint = "this GPU's NVDEC does not support the stream: decode on the CPU (device='cpu')";
      break;
    case 100:  // CUDA_ERROR_NO_DEVICE
    case 101:  // CUDA_ERROR_INVALID_DEVICE
      kind = ErrorKind::Cuda;
      hint = "check nvidia-smi and CUDA_VISIBLE_DEVICES";
      break;
    default:
      break;
  }
  raise(kind, std::string(what) + (context.empty() ? "" : " (" + context + ")") + " failed: " +
                  cu_result_name(r) + "; " + hint);
}

PrimaryContext::PrimaryContext(int device) : device_(device) {
  const CuvidApi& a = cuvid_api();
  // The runtime binds (and thereby initialises) the primary context; retaining it keeps it alive
  // for as long as the decoder needs it, even if every runtime user resets. The calling thread's
  // current device is put back afterwards (a decoder on GPU 1 must not move torch's tensors
  // there), unless that would create another GPU's context (see cuda::restore_device).
  cuda::DeviceScope scope(device);
  cu_check(a.cuDeviceGet(&cudev_, device), "cuDeviceGet", "device " + std::to_string(device));
  cu_check(a.cuDevicePrimaryCtxRetain(&ctx_, cudev_), "cuDevicePrimaryCtxRetain");
  char buf[256] = {0};
  if (a.cuDeviceGetName(buf, sizeof(buf) - 1, cudev_) == CUDA_SUCCESS) name_ = buf;
  if (name_.empty()) name_ = "GPU " + std::to_string(device);
}

PrimaryContext::~PrimaryContext() {
  if (ctx_) cuvid_api().cuDevicePrimaryCtxRelease(cudev_);
}

ContextScope::ContextScope(CUcontext ctx) {
  if (ctx && cuvid_api().cuCtxPushCurrent(ctx) == CUDA_SUCCESS) pushed_ = true;
}

ContextScope::~ContextScope() {
  if (pushed_) {
    CUcontext dummy = nullptr;
    cuvid_api().cuCtxPopCurrent(&dummy);
  }
}

bool cuvid_codec(const std::string& n, cudaVideoCodec* out) {
  struct Entry { const char* name; cudaVideoCodec codec; };
  static const Entry table[] = {
      {"h264", cudaVideoCodec_H264},        {"hevc", cudaVideoCodec_HEVC},
      {"av1", cudaVideoCodec_AV1},          {"vp9", cudaVideoCodec_VP9},
      {"vp8", cudaVideoCodec_VP8},          {"mpeg1video", cudaVideoCodec_MPEG1},
      {"mpeg2video", cudaVideoCodec_MPEG2}, {"mpeg4", cudaVideoCodec_MPEG4},
      {"mjpeg", cudaVideoCodec_JPEG},       {"vc1", cudaVideoCodec_VC1},
  };
  for (const auto& e : table)
    if (n == e.name) {
      *out = e.codec;
      return true;
    }
  return false;
}

const char* chroma_name(cudaVideoChromaFormat c) {
  switch (c) {
    case cudaVideoChromaFormat_Monochrome: return "400";
    case cudaVideoChromaFormat_420: return "420";
    case cudaVideoChromaFormat_422: return "422";
    case cudaVideoChromaFormat_444: return "444";
    default: return "?";
  }
}

}  // namespace pysm::codec

#endif  // PYSM_WITH_NVDEC
