// The batching mux (nvstreammux): builds one Buffer from N frames of N sources, fills every
// FrameMeta (source_id, pad_index, batch_id, frame_number, buf_pts, ntp_timestamp, source and
// pipeline size), and either passes frames through at native size (zero-copy) or scales them
// into uniform surfaces of one pooled allocation with one batched resize.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "pysm/buffer.hpp"
#include "pysm/cuda.hpp"

namespace pysm {

struct MuxFrame {
  Surface surface;
  uint32_t source_id = 0;
  uint32_t pad_index = 0;
  uint64_t frame_number = 0;
  int64_t pts = -1;            // ns
  uint64_t ntp_timestamp = 0;  // ns since the Unix epoch
};

struct MuxConfig {
  int width = 0;   // 0 (with height 0): pass frames through at their native size
  int height = 0;
  bool enable_padding = false;
  int gpu_id = 0;
  uint32_t batch_size = 0;  // BatchMeta.max_frames
};

class Muxer {
 public:
  explicit Muxer(MuxConfig config);
  ~Muxer();
  Muxer(const Muxer&) = delete;
  Muxer& operator=(const Muxer&) = delete;

  const MuxConfig& config() const { return config_; }
  // Builds the batch. Device frames are scaled on the GPU (on this muxer's stream; the output
  // carries a ready event, the host never waits); host frames by the CPU twin.
  BufferPtr batch(const std::vector<MuxFrame>& frames);

 private:
  bool scaling() const { return config_.width > 0 && config_.height > 0; }
  void scale_group(const std::vector<MuxFrame>& frames, const std::vector<size_t>& idx,
                   std::vector<Surface>& out);
  void release_finished_inputs();
  MuxConfig config_;
  std::unique_ptr<cuda::Stream> stream_;  // created on first GPU batch
  // Inputs read by in-flight kernels stay referenced until their batch's event completed, so
  // their memory is not reused (or handed back to the decoder) while the kernel still reads it.
  struct InFlight {
    std::shared_ptr<cuda::Event> done;
    std::vector<std::shared_ptr<void>> inputs;
  };
  std::vector<InFlight> in_flight_;
};

// A Buffer holding frames `indices` of `src` (surfaces and FrameMeta shared, batch_id renumbered
// in a new BatchMeta). Used by the demuxer to split a batch per source.
BufferPtr select_frames(const Buffer& src, const std::vector<int>& indices);

// Copy `src` (host memory, e.g. a NumPy image) into a new pooled surface on `device`. A device
// copy is asynchronous: the surface's ready event marks its completion for consumers (the mux).
Surface upload_frame(const Tensor& src, ColorFormat format, int width, int height, Device device, int64_t pts);

// A flat copy of the per-frame fields the runtime routes on (demux, EOS, fps), read under the
// batch's lock.
struct FrameInfo {
  uint32_t source_id = 0, pad_index = 0, batch_id = 0;
  uint64_t frame_number = 0;
  int64_t pts = -1;
  uint64_t ntp_timestamp = 0;
  uint32_t source_width = 0, source_height = 0, pipeline_width = 0, pipeline_height = 0;
  uint32_t num_objects = 0;
};
std::vector<FrameInfo> frame_infos(const Buffer& b);

}  // namespace pysm
