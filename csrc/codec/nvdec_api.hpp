// Private to csrc/codec: the cuvid + CUDA driver entry points NVDEC needs, resolved with dlsym from
// the libraries pysm::driver loaded, and a guard that makes the device's primary context current.
// Only NVDEC translation units include this: the ffnvcodec headers declare their own CUDA driver
// types, so <cuda.h> and the CUDA runtime headers must stay out of these files.
#pragma once
#if PYSM_WITH_NVDEC

#include <ffnvcodec/dynlink_cuda.h>
#include <ffnvcodec/dynlink_nvcuvid.h>

#include <string>

namespace pysm::codec {

struct CuvidApi {
  // libcuda
  tcuInit* cuInit = nullptr;
  tcuDeviceGet* cuDeviceGet = nullptr;
  tcuDeviceGetName* cuDeviceGetName = nullptr;
  tcuDevicePrimaryCtxRetain* cuDevicePrimaryCtxRetain = nullptr;
  tcuDevicePrimaryCtxRelease* cuDevicePrimaryCtxRelease = nullptr;
  tcuCtxPushCurrent_v2* cuCtxPushCurrent = nullptr;
  tcuCtxPopCurrent_v2* cuCtxPopCurrent = nullptr;
  tcuMemcpy2DAsync_v2* cuMemcpy2DAsync = nullptr;
  // libnvcuvid
  tcuvidGetDecoderCaps* cuvidGetDecoderCaps = nullptr;
  tcuvidCreateDecoder* cuvidCreateDecoder = nullptr;
  tcuvidDestroyDecoder* cuvidDestroyDecoder = nullptr;
  tcuvidDecodePicture* cuvidDecodePicture = nullptr;
  tcuvidGetDecodeStatus* cuvidGetDecodeStatus = nullptr;  // may be null on very old drivers
  tcuvidReconfigureDecoder* cuvidReconfigureDecoder = nullptr;  // may be null on very old drivers
  tcuvidMapVideoFrame64* cuvidMapVideoFrame = nullptr;
  tcuvidUnmapVideoFrame64* cuvidUnmapVideoFrame = nullptr;
  tcuvidCtxLockCreate* cuvidCtxLockCreate = nullptr;
  tcuvidCtxLockDestroy* cuvidCtxLockDestroy = nullptr;
  tcuvidCreateVideoParser* cuvidCreateVideoParser = nullptr;
  tcuvidParseVideoData* cuvidParseVideoData = nullptr;
  tcuvidDestroyVideoParser* cuvidDestroyVideoParser = nullptr;
};

// Loaded once; throws Error(Driver) naming the library/symbol that is missing.
const CuvidApi& cuvid_api();

// "CUDA_ERROR_X" for a CUresult.
std::string cu_result_name(CUresult r);
// Throws Error(kind) "what: CUDA_ERROR_X; hint" when r != CUDA_SUCCESS.
void cu_check(CUresult r, const char* what, const std::string& context = "");

// Retains the primary context of a device for the lifetime of the object.
class PrimaryContext {
 public:
  explicit PrimaryContext(int device);
  ~PrimaryContext();
  PrimaryContext(const PrimaryContext&) = delete;
  PrimaryContext& operator=(const PrimaryContext&) = delete;
  CUcontext get() const { return ctx_; }
  int device() const { return device_; }
  const std::string& gpu_name() const { return name_; }

 private:
  int device_ = 0;
  CUdevice cudev_ = 0;
  CUcontext ctx_ = nullptr;
  std::string name_;
};

// Pushes a context on this thread for the scope (cheap; nests with the runtime's own binding).
class ContextScope {
 public:
  explicit ContextScope(CUcontext ctx);
  ~ContextScope();
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  bool pushed_ = false;
};

// cudaVideoCodec for an FFmpeg codec name; returns false when NVDEC has no such codec.
bool cuvid_codec(const std::string& name, cudaVideoCodec* out);
const char* chroma_name(cudaVideoChromaFormat c);

}  // namespace pysm::codec

#endif  // PYSM_WITH_NVDEC
