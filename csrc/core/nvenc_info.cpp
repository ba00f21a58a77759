#include "pysm/nvenc_info.hpp"

#include "pysm/driver.hpp"

namespace pysm::nvenc {

Info probe() noexcept {
  Info info;
  try {
    const driver::Library& lib = driver::libnvidia_encode();
    info.loaded = lib.loaded();
    info.library = lib.name;
    info.report = lib.report;
    if (!info.loaded) {
      info.error = "libnvidia-encode is not loadable";
      return info;
    }
    // NVENCSTATUS NvEncodeAPIGetMaxSupportedVersion(uint32_t* version); 0 is NV_ENC_SUCCESS.
    using Fn = int (*)(uint32_t*);
    auto fn = reinterpret_cast<Fn>(lib.symbol("NvEncodeAPIGetMaxSupportedVersion"));
    if (!fn) {
      info.error = "NvEncodeAPIGetMaxSupportedVersion not found in " + lib.name;
      return info;
    }
    uint32_t v = 0;
    const int status = fn(&v);
    if (status != 0) {
      info.error = "NvEncodeAPIGetMaxSupportedVersion returned NVENCSTATUS " + std::to_string(status);
      return info;
    }
    info.max_api_version = v;
  } catch (const std::exception& e) {
    info.error = e.what();
  } catch (...) {
    info.error = "unknown error while probing NVENC";
  }
  return info;
}

}  // namespace pysm::nvenc
