// NVDEC throughput with no Python: N threads, one pysm::codec::NvdecDecoder each, decoding the same
// Annex-B elementary stream (looped) with frames left on the device.
//
//   pysm_decode_bench <file.h264|file.hevc> [--codec h264|hevc] [--streams 1,4,7,16,32,64]
//                     [--seconds 5] [--warmup 1] [--chunk 65536] [--device 0]
//                     [--delay D] [--extra S] [--outputs K]
// --delay/--extra/--outputs set NvdecConfig's display_delay, extra_decode_surfaces and
// output_surfaces (default: the library's), to measure how deep a queue one session needs.
// Prints one line per stream count: streams, aggregate fps, fps per stream, frames.
// The decoder cache is opened wide, so that the sessions of one point are reused by the next
// (cuvidDestroyDecoder costs ~230 ms each; the parked sessions are left to the driver at exit).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "pysm/annexb.hpp"
#include "pysm/error.hpp"
#include "pysm/nvdec.hpp"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::atoi(item.c_str()));
  return out;
}

std::string guess_codec(const std::string& path) {
  auto ends = [&](const char* e) {
    size_t n = std::strlen(e);
    return path.size() >= n && path.compare(path.size() - n, n, e) == 0;
  };
  if (ends(".hevc") || ends(".h265") || ends(".265")) return "hevc";
  return "h264";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <annexb file> [--codec C] [--streams 1,4,...] [--seconds S] [--warmup S] "
                         "[--chunk BYTES] [--device D]\n", argv[0]);
    return 2;
  }
  std::string path = argv[1], codec = guess_codec(path);
  std::vector<int> streams = {1, 4, 7, 16, 32, 56, 64};
  double seconds = 5.0, warmup = 1.0;
  size_t chunk = 65536;
  int device = 0, delay = -1, extra = -1, outputs = -1;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--codec") codec = v;
    else if (k == "--streams") streams = parse_list(v);
    else if (k == "--seconds") seconds = std::atof(v.c_str());
    else if (k == "--warmup") warmup = std::atof(v.c_str());
    else if (k == "--chunk") chunk = static_cast<size_t>(std::atol(v.c_str()));
    else if (k == "--device") device = std::atoi(v.c_str());
    else if (k == "--delay") delay = std::atoi(v.c_str());
    else if (k == "--extra") extra = std::atoi(v.c_str());
    else if (k == "--outputs") outputs = std::atoi(v.c_str());
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::printf("# %s (%s, %zu bytes), chunks of %zu bytes, %.1f s per point, delay %d extra %d outputs %d\n",
              path.c_str(), codec.c_str(), data.size(), chunk, seconds, delay, extra, outputs);
  std::printf("%8s %12s %12s %10s\n", "streams", "fps", "fps/stream", "frames");
  pysm::codec::nvdec_cache_configure(true, 256, 256);
  for (int n : streams) {
    std::atomic<bool> stop{false};
    std::vector<std::atomic<long long>> counts(static_cast<size_t>(n));
    for (auto& c : counts) c = 0;
    std::atomic<int> failures{0};
    std::atomic<int> started{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < n; ++t) {
      threads.emplace_back([&, t] {
        try {
          pysm::codec::NvdecConfig cfg;
          cfg.device = device;
          cfg.codec = codec;
          if (delay >= 0) cfg.display_delay = delay;
          if (extra >= 0) cfg.extra_decode_surfaces = extra;
          if (outputs >= 0) cfg.output_surfaces = outputs;
          pysm::codec::NvdecDecoder dec(cfg);
          // As VideoReader does: a file starting at an IDR loops without draining the decoder.
          const bool seamless = pysm::codec::AnnexBConverter(codec, nullptr, 0)
                                    .starts_sequence(data.data(), std::min(chunk, data.size()), false);
          while (!stop.load(std::memory_order_relaxed)) {
            // Raw Annex-B chunks carry no picture boundaries: the parser finds them itself.
            for (size_t off = 0; off < data.size() && !stop.load(std::memory_order_relaxed); off += chunk) {
              size_t len = std::min(chunk, data.size() - off);
              const auto got = static_cast<long long>(dec.decode(data.data() + off, len, -1, false).size());
              if (got && counts[t].load(std::memory_order_relaxed) == 0) started++;
              counts[t] += got;
            }
            if (!seamless) counts[t] += static_cast<long long>(dec.flush().size());
          }
        } catch (const std::exception& e) {
          if (failures++ == 0) std::fprintf(stderr, "stream %d failed: %s\n", t, e.what());
        }
      });
    }
    // Warm-up starts once every stream has decoded a frame (creating many sessions takes a while).
    const auto wait_end = Clock::now() + std::chrono::seconds(60);
    while (started.load() + failures.load() < n && Clock::now() < wait_end)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::this_thread::sleep_for(std::chrono::duration<double>(warmup));
    long long c0 = 0;
    for (auto& c : counts) c0 += c.load();
    auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    long long c1 = 0;
    for (auto& c : counts) c1 += c.load();
    double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    stop = true;
    for (auto& th : threads) th.join();
    const double fps = (c1 - c0) / dt;
    std::printf("%8d %12.1f %12.1f %10lld%s\n", n, fps, fps / n, c1 - c0,
                failures ? "  (some streams failed)" : "");
    std::fflush(stdout);
  }
  return 0;
}
