// NVENC presence: whether libnvidia-encode loads (dlopen, never linked) and which NVENC API
// version the installed driver supports. Used by `pysm doctor`; never throws.
#pragma once
#include <cstdint>
#include <string>

namespace pysm::nvenc {

struct Info {
  bool loaded = false;         // libnvidia-encode could be dlopen'ed
  std::string library;         // the name that loaded
  std::string report;          // dlerror text of every failed attempt (when not loaded)
  uint32_t max_api_version = 0;  // NvEncodeAPIGetMaxSupportedVersion: (major << 4) | minor; 0 unknown
  std::string error;           // why the version query failed ("" when it succeeded)

  int major() const { return static_cast<int>(max_api_version >> 4); }
  int minor() const { return static_cast<int>(max_api_version & 0xF); }
};

Info probe() noexcept;

}  // namespace pysm::nvenc
