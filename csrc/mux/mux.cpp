#include "pysm/mux.hpp"

#include <map>
#include <tuple>

#include "pysm/batch_resize.hpp"
#include "pysm/error.hpp"

namespace pysm {

Muxer::Muxer(MuxConfig config) : config_(config) {
  if ((config_.width > 0) != (config_.height > 0))
    raise(ErrorKind::Config, "nvstreammux: set both 'width' and 'height' (or neither, to batch frames at their native size)");
  if (config_.width < 0 || config_.height < 0)
    raise(ErrorKind::Config, "nvstreammux: 'width' and 'height' must not be negative");
}

Muxer::~Muxer() {
  for (auto& f : in_flight_) {
    try {
      f.done->synchronize();
    } catch (...) {
      // A failed device cannot be waited on; dropping the references is all that is left.
    }
  }
}

void Muxer::release_finished_inputs() {
  size_t keep = 0;
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    if (!in_flight_[i].done->query()) in_flight_[keep++] = std::move(in_flight_[i]);
  }
  in_flight_.resize(keep);
}

void Muxer::scale_group(const std::vector<MuxFrame>& frames, const std::vector<size_t>& idx,
                        std::vector<Surface>& out) {
  const MuxFrame& first = frames[idx.front()];
  const ColorFormat fmt = first.surface.format;
  const Device dev = first.surface.device;
  int W = config_.width, H = config_.height;
  if (fmt == ColorFormat::NV12) {
    W &= ~1;
    H &= ~1;
    if (W == 0 || H == 0) raise(ErrorKind::Config, "nvstreammux: NV12 output needs width and height >= 2");
  }
  // One pooled allocation for the whole group: uniform surfaces back to back.
  Surface proto;
  proto.format = fmt;
  proto.width = W;
  proto.height = H;
  const int64_t row = int64_t(W) * bytes_per_pixel(fmt);
  proto.pitch = (row + 255) / 256 * 256;
  const size_t frame_bytes = proto.bytes();
  BlockPtr block = dev.is_cuda() ? MemoryPool::device(dev.id).allocate(frame_bytes * idx.size())
                                 : MemoryPool::host().allocate(frame_bytes * idx.size());
  auto owner = std::static_pointer_cast<void>(block);
  std::vector<ResizeJob> jobs;
  jobs.reserve(idx.size());
  for (size_t k = 0; k < idx.size(); ++k) {
    const Surface& s = frames[idx[k]].surface;
    Surface d = proto;
    d.device = dev.is_cuda() ? dev : Device{DeviceType::CPU, 0};
    d.owner = owner;
    d.data = static_cast<uint8_t*>(block->data()) + k * frame_bytes;
    d.pts = s.pts;
    d.matrix = s.matrix;
    d.range = s.range;
    d.error = s.error;
    ResizeJob j;
    j.src = s.data;
    j.src_pitch = s.pitch;
    j.src_w = s.width;
    j.src_h = s.height;
    j.dst = d.data;
    j.dst_pitch = d.pitch;
    j.dst_w = W;
    j.dst_h = H;
    j.black_luma = s.range == ColorRange::Full ? 0 : 16;
    fit_rect(s.width, s.height, W, H, config_.enable_padding, fmt, &j.roi_x, &j.roi_y, &j.roi_w, &j.roi_h);
    jobs.push_back(j);
    out[idx[k]] = d;
  }
  if (dev.is_cuda()) {
    if (!stream_) stream_ = std::make_unique<cuda::Stream>(dev.id);
    for (size_t i : idx)
      if (frames[i].surface.ready) frames[i].surface.ready->wait(stream_->handle());
    batch_resize_cuda(fmt, jobs, dev.id, stream_->handle());
    auto ev = std::make_shared<cuda::Event>(dev.id);
    ev->record(stream_->handle());
    block->record_use(ev);  // the batch's ready event also guards the block's reuse
    for (size_t i : idx) out[i].ready = ev;
    InFlight f{ev, {}};
    for (size_t i : idx) f.inputs.push_back(frames[i].surface.owner);
    in_flight_.push_back(std::move(f));
  } else {
    batch_resize_cpu(fmt, jobs);
  }
}

BufferPtr Muxer::batch(const std::vector<MuxFrame>& frames) {
  if (!in_flight_.empty()) release_finished_inputs();
  auto buf = std::make_shared<Buffer>();
  buf->meta->max_frames = config_.batch_size ? config_.batch_size : static_cast<uint32_t>(frames.size());
  buf->surfaces.resize(frames.size());
  if (scaling()) {
    // Group frames that need scaling by (device, format): one batched launch per group. Frames
    // already at the output size are forwarded without a copy.
    std::map<std::tuple<int, int, int>, std::vector<size_t>> groups;
    for (size_t i = 0; i < frames.size(); ++i) {
      const Surface& s = frames[i].surface;
      if (s.empty()) raise(ErrorKind::Value, "nvstreammux: frame of source " + std::to_string(frames[i].source_id) + " is empty");
      if (s.width == config_.width && s.height == config_.height) {
        buf->surfaces[i] = s;
        continue;
      }
      groups[{static_cast<int>(s.device.type), s.device.id, static_cast<int>(s.format)}].push_back(i);
    }
    for (auto& g : groups) scale_group(frames, g.second, buf->surfaces);
  } else {
    for (size_t i = 0; i < frames.size(); ++i) buf->surfaces[i] = frames[i].surface;
  }
  buf->meta->frames.reserve(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    const MuxFrame& f = frames[i];
    auto fm = std::make_shared<FrameMeta>();
    fm->frame_number = f.frame_number;
    fm->pad_index = f.pad_index;
    fm->batch_id = static_cast<uint32_t>(i);
    fm->source_id = f.source_id;
    fm->source_width = static_cast<uint32_t>(f.surface.width);
    fm->source_height = static_cast<uint32_t>(f.surface.height);
    fm->pipeline_width = static_cast<uint32_t>(buf->surfaces[i].width);
    fm->pipeline_height = static_cast<uint32_t>(buf->surfaces[i].height);
    fm->buffer_pts = f.pts;
    fm->ntp_timestamp = f.ntp_timestamp;
    buf->surfaces[i].pts = f.pts;
    buf->meta->frames.push_back(std::move(fm));
  }
  buf->pts = frames.empty() ? -1 : frames.front().pts;
  return buf;
}

Surface upload_frame(const Tensor& src, ColorFormat format, int width, int height, Device device, int64_t pts) {
  Surface::from_tensor(src, format);  // the source must be a valid frame of `format` (e.g. even 4:2:0 width)
  Surface s = Surface::allocate(format, width, height, device);
  Tensor dst = s.tensor();
  copy_tensor(src, dst, nullptr);
  s.ready = dst.ready_event();
  s.pts = pts;
  return s;
}

std::vector<FrameInfo> frame_infos(const Buffer& b) {
  std::vector<FrameInfo> out;
  std::lock_guard<std::mutex> lock(b.meta->mu);
  out.reserve(b.meta->frames.size());
  for (const auto& f : b.meta->frames) {
    if (!f) continue;
    FrameInfo i;
    i.source_id = f->source_id;
    i.pad_index = f->pad_index;
    i.batch_id = f->batch_id;
    i.frame_number = f->frame_number;
    i.pts = f->buffer_pts;
    i.ntp_timestamp = f->ntp_timestamp;
    i.source_width = f->source_width;
    i.source_height = f->source_height;
    i.pipeline_width = f->pipeline_width;
    i.pipeline_height = f->pipeline_height;
    i.num_objects = static_cast<uint32_t>(f->objects.size());
    out.push_back(i);
  }
  return out;
}

BufferPtr select_frames(const Buffer& src, const std::vector<int>& indices) {
  auto out = std::make_shared<Buffer>();
  out->pts = src.pts;
  out->eos = src.eos;
  out->meta->max_frames = static_cast<uint32_t>(indices.size());
  for (int i : indices) {
    if (i < 0 || i >= src.batch_size())
      raise(ErrorKind::Index, "select_frames: index " + std::to_string(i) + " out of a batch of " +
                                  std::to_string(src.batch_size()));
    out->surfaces.push_back(src.surfaces[static_cast<size_t>(i)]);
    std::shared_ptr<FrameMeta> fm;
    if (static_cast<size_t>(i) < src.meta->frames.size() && src.meta->frames[static_cast<size_t>(i)]) {
      fm = std::make_shared<FrameMeta>(*src.meta->frames[static_cast<size_t>(i)]);  // objects shared
    } else {
      fm = std::make_shared<FrameMeta>();
    }
    fm->batch_id = static_cast<uint32_t>(out->meta->frames.size());
    out->meta->frames.push_back(std::move(fm));
  }
  if (!out->surfaces.empty()) out->pts = out->surfaces.front().pts >= 0 ? out->surfaces.front().pts : src.pts;
  return out;
}

}  // namespace pysm
