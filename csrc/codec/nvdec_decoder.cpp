// NVDEC decoder: cuvid parser -> hardware decode -> copy-out into pooled device surfaces.
//
// Flow per packet (all on the caller's thread, inside cuvidParseVideoData):
//   sequence callback  -> take a parked hardware session from the decoder cache or create one,
//                         reconfigure it in place (size change within the reserved maximum), or
//                         retire it and take/create another (codec/bit depth/larger size)
//   decode callback    -> cuvidDecodePicture (asynchronous on the engine)
//   display callback   -> in display order (B-frames reordered by the parser): map the picture,
//                         enqueue its copy into a pool surface on this decoder's stream, record the
//                         surface's ready event, and unmap once that event has fired. Unmapping is
//                         deferred (up to `output_surfaces` mapped at once) so the host never waits
//                         for a copy unless the mapping slots run out.
// Per frame there is no driver object churn: ready events come from a small per-decoder ring (an
// event is re-recorded only once nothing references it any more) and the same event tells the
// memory pool when the surface's block may be reused.
// Errors inside callbacks are stashed and rethrown after the parser returns: C++ exceptions must
// not unwind through the driver's C code.
#include "pysm/nvdec.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>

#include "pysm/annexb.hpp"
#include "pysm/cuda.hpp"
#include "pysm/error.hpp"
#include "pysm/memory.hpp"

#if PYSM_WITH_NVDEC
#include "nvdec_api.hpp"
#include "nvdec_cache.hpp"
#endif

namespace pysm::codec {

#if PYSM_WITH_NVDEC

namespace {

ColorMatrix matrix_from_vui(int mc, int height) {
  switch (mc) {
    case 1: return ColorMatrix::BT709;
    case 5:
    case 6: return ColorMatrix::BT601;
    case 9:
    case 10: return ColorMatrix::BT2020;
    default: return height >= 720 ? ColorMatrix::BT709 : ColorMatrix::BT601;  // unspecified: by size
  }
}

constexpr int kMaxDecodeSurfaces = 32;  // NVDEC's limit on ulNumDecodeSurfaces
// Ready events kept per decoder for reuse. Frames a caller holds on to keep their event; past
// this many the decoder creates one-off events instead of growing the ring.
constexpr size_t kMaxRingEvents = 64;

}  // namespace

struct NvdecDecoder::Impl {
  NvdecConfig cfg;
  const CuvidApi* api = nullptr;
  std::shared_ptr<PrimaryContext> pctx;
  std::unique_ptr<cuda::Stream> stream;
  MemoryPool* pool = nullptr;
  CUvideoparser parser = nullptr;
  SessionPtr session;          // the hardware decoder and its context lock
  bool session_healthy = true;  // false after a driver failure: destroyed instead of parked
  // The session a sequence change replaced (a later SPS needing more decode surfaces, as where
  // two recordings are joined), kept until the next sequence change or flush: the parser shows
  // the earlier part's last pictures after the new sequence starts, and their picture indices
  // name surfaces of the session that decoded them (mapped from the new one, 4 frames of a
  // joined clip came out as the second part's pictures, H100).
  SessionPtr previous;
  bool previous_healthy = true;
  uint32_t generation = 0;  // of `session`, counted per session created; `previous` has an older one
  cudaVideoCodec codec = cudaVideoCodec_H264;
  AnnexBConverter annexb;
  std::vector<uint8_t> scratch;
  bool send_headers = true;
  std::mutex mu;

  // Damage that propagates: a picture predicted from a damaged one is damaged too, until a picture
  // that predicts from nothing before it (an IRAP for HEVC, an intra picture otherwise). NVDEC
  // flags only the pictures whose own bitstream was bad (a bit-flipped 1080p H.264 clip: 23
  // flagged, 157 more frames off by over 10 dB from the clean decode and unflagged, H100).
  bool damaged = false;  // a damaged picture was shown since the last restart

  // What each picture's packet carried, per picture index, set when the picture is decoded (the
  // parse of the packet that holds it: demuxed packets are whole pictures). The parser's own
  // display timestamps follow display order, not the picture (packet sequence numbers given as
  // timestamps came out ascending with B-frames), and it invents some from the frame rate for
  // packets without one (a raw stream came out at 99999999 ns where the CPU gave 100000000), so
  // they cannot carry the discard mark or an unknown pts. This way a frame has exactly its
  // packet's pts, as FFmpeg's frames do.
  struct Picture {
    bool restart = false;  // from the parser's picture parameters (see damaged)
    int64_t pts = -1;
    bool discard = false;
    uint32_t generation = 0;  // of the session that decoded it
  };
  std::array<Picture, 64> pictures{};  // per picture index, set when the picture is decoded
  Picture* picture(int index) {
    return index >= 0 && index < static_cast<int>(pictures.size()) ? &pictures[index] : nullptr;
  }
  int64_t packet_pts = -1;     // the packet being parsed
  bool packet_discard = false;
  // VP9 and AV1 show a picture again, or one decoded hidden, from a later packet that decodes
  // nothing (show_existing_frame): the picture index names the packet it was decoded in, not the
  // one that shows it. Those codecs never reorder and show one frame per packet, so there the
  // parser's display timestamps are the packets' own; what each packet carried is found again
  // from the timestamp it was given, the oldest entry first and each once: a looped cut's next
  // pre-roll (discard) may share a time with the frames still to be shown of the pass before. A
  // packet without a time is given a key of its own far below any time (the parser would make one
  // up from the frame rate, and a discard packet without a time would then be shown).
  bool by_timestamp = false;
  struct Given {
    int64_t key = 0;  // the timestamp the parser was given: the pts, or an untimed key
    int64_t pts = -1;
    bool discard = false;
    bool pending = false;  // given and not shown yet
  };
  std::array<Given, 64> given{};
  size_t given_next = 0;
  static constexpr int64_t kUntimedKeys = INT64_MIN / 2;  // ~146 years before 0 in ns
  uint32_t untimed_next = 0;

  // Geometry of the live decoder.
  CUVIDEOFORMAT fmt{};
  unsigned max_w = 0, max_h = 0, surfaces = 0;
  int out_w = 0, out_h = 0;    // surfaces handed out
  int nv_w = 0, nv_h = 0;      // NVDEC target (even)
  ColorFormat out_format = ColorFormat::NV12;
  ColorMatrix matrix = ColorMatrix::BT709;
  ColorRange range = ColorRange::Limited;

  // Per-call state.
  std::vector<Surface>* out = nullptr;
  bool failed = false;
  ErrorKind fail_kind = ErrorKind::Decode;
  std::string fail_msg;

  struct Mapped {
    unsigned long long ptr;
    std::shared_ptr<cuda::Event> done;
    CUvideodecoder from;  // the session's decoder it was mapped from
  };
  std::deque<Mapped> mapped;
  std::vector<std::shared_ptr<cuda::Event>> events;  // the ready-event ring
  size_t event_next = 0;
  NvdecStats st;

  CUvideodecoder decoder() const { return session ? session->decoder : nullptr; }
  // Whether the session of `from` (the current one or `previous`) may be parked for reuse.
  bool& healthy(CUvideodecoder from) {
    return previous && from == previous->decoder ? previous_healthy : session_healthy;
  }
  // The decoder whose surface a picture index names: the one that decoded the picture.
  CUvideodecoder decoder_of(int index) const {
    const bool known = index >= 0 && index < static_cast<int>(pictures.size());
    if (previous && known && pictures[static_cast<size_t>(index)].generation != generation) return previous->decoder;
    return decoder();
  }

  std::string describe() const {
    std::string s = cfg.codec;
    if (fmt.coded_width)
      s += " " + std::to_string(fmt.coded_width) + "x" + std::to_string(fmt.coded_height) + " " +
           std::to_string(fmt.bit_depth_luma_minus8 + 8) + "-bit " + chroma_name(fmt.chroma_format);
    s += " on " + (pctx ? pctx->gpu_name() : std::string("GPU")) + " (device " + std::to_string(cfg.device) + ")";
    if (!cfg.source.empty()) s += " from " + cfg.source;
    return s;
  }

  void fail(ErrorKind kind, const std::string& msg) {
    if (!failed) {
      failed = true;
      fail_kind = kind;
      fail_msg = msg;
    }
  }

  void rethrow_failure() {
    if (!failed) return;
    failed = false;
    st.last_error = fail_msg;
    raise(fail_kind, fail_msg);
  }

  // An event nothing else references (no surface, no pool block, no pending unmap), or a new one.
  std::shared_ptr<cuda::Event> acquire_event() {
    const size_t n = events.size();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (event_next + k) % n;
      if (events[i].use_count() == 1) {
        // Only this ring holds it, and only this decoder (under `mu`) copies from the ring: the
        // last other holder has released it, and its uses happen-before this reuse.
        std::atomic_thread_fence(std::memory_order_acquire);
        event_next = (i + 1) % n;
        return events[i];
      }
    }
    auto e = std::make_shared<cuda::Event>(cfg.device);
    if (n < kMaxRingEvents) events.push_back(e);
    return e;
  }

  // Park a hardware session for the next stream, or destroy it after a driver failure.
  void retire(SessionPtr& s, bool& healthy) {
    if (s) {
      if (healthy)
        park_session(std::move(s));
      else
        s.reset();
    }
    healthy = true;
  }
  void retire_session() { retire(session, session_healthy); }
  // The replaced session, once nothing is mapped from it (after reclaim(true)).
  void retire_previous() { retire(previous, previous_healthy); }

  // ---- mapped-frame bookkeeping --------------------------------------------------------------
  void unmap_front() {
    Mapped m = mapped.front();
    mapped.pop_front();
    if (api->cuvidUnmapVideoFrame(m.from, m.ptr) != CUDA_SUCCESS) healthy(m.from) = false;
  }
  // Unmap every frame whose copy has finished; with `all`, wait for the rest too.
  void reclaim(bool all) {
    while (!mapped.empty()) {
      if (!mapped.front().done->query()) {
        if (!all) break;
        mapped.front().done->synchronize();
      }
      unmap_front();
    }
  }

  // ---- parser ---------------------------------------------------------------------------------
  void create_parser() {
    CUVIDPARSERPARAMS p{};
    p.CodecType = codec;
    p.ulMaxNumDecodeSurfaces = 1;  // the sequence callback returns the real number
    p.ulClockRate = 1000000000u;   // timestamps are nanoseconds
    p.ulErrorThreshold = static_cast<unsigned>(std::clamp(cfg.error_threshold, 0, 100));
    p.ulMaxDisplayDelay = cfg.low_latency ? 0 : static_cast<unsigned>(std::clamp(cfg.display_delay, 0, 16));  // 0: decode order, no delay
    p.pUserData = this;
    p.pfnSequenceCallback = &Impl::sequence_cb;
    p.pfnDecodePicture = &Impl::decode_cb;
    p.pfnDisplayPicture = &Impl::display_cb;
    cu_check(api->cuvidCreateVideoParser(&parser, &p), "cuvidCreateVideoParser", describe());
    send_headers = true;
  }

  static int CUDAAPI sequence_cb(void* self, CUVIDEOFORMAT* f) {
    auto* d = static_cast<Impl*>(self);
    try {
      return d->on_sequence(f);
    } catch (const Error& e) {
      d->fail(e.kind(), e.what());
    } catch (const std::exception& e) {
      d->fail(ErrorKind::Decode, e.what());
    }
    return 0;
  }
  static int CUDAAPI decode_cb(void* self, CUVIDPICPARAMS* p) {
    auto* d = static_cast<Impl*>(self);
    if (!d->session) return 0;
    // Once per picture: the second field of a pair (an I/P pair, say) must not overwrite the first.
    if (Picture* pic = d->picture(p->CurrPicIdx); pic && !p->second_field) {
      pic->restart = d->codec == cudaVideoCodec_HEVC ? p->CodecSpecific.hevc.IrapPicFlag != 0 : p->intra_pic_flag != 0;
      pic->pts = d->packet_pts;
      pic->discard = d->packet_discard;
    }
    // Where it was decoded, whatever the field (an unpaired second field too).
    if (Picture* pic = d->picture(p->CurrPicIdx)) pic->generation = d->generation;
    CUresult r = d->api->cuvidDecodePicture(d->session->decoder, p);
    if (r != CUDA_SUCCESS) {
      // A picture the engine rejects (corrupt slice data): counted, displayed with its error
      // status. The session is not trusted for reuse by another stream afterwards.
      d->st.errors++;
      d->st.last_error = "cuvidDecodePicture: " + cu_result_name(r);
      d->session_healthy = false;
    } else {
      d->st.decoded++;
    }
    return 1;
  }
  static int CUDAAPI display_cb(void* self, CUVIDPARSERDISPINFO* di) {
    auto* d = static_cast<Impl*>(self);
    if (!di) return 1;  // end-of-stream notification
    try {
      d->on_display(di);
      return 1;
    } catch (const Error& e) {
      d->fail(e.kind(), e.what());
    } catch (const std::exception& e) {
      d->fail(ErrorKind::Decode, e.what());
    }
    return 0;
  }

  // ---- sequence: create / reconfigure / recreate ----------------------------------------------
  int on_sequence(CUVIDEOFORMAT* f) {
    const int bit_depth = f->bit_depth_luma_minus8 + 8;
    const char* chroma = chroma_name(f->chroma_format);
    if (f->chroma_format == cudaVideoChromaFormat_422 || f->chroma_format == cudaVideoChromaFormat_444)
      raise(ErrorKind::Unsupported, "pysm's NVDEC path outputs 4:2:0 surfaces only; " + describe_format(f) +
                                        " is 4:" + std::string(chroma + 1) + ": decode it on the CPU (device='cpu')");
    nvdec_check_support(cfg.device, cfg.codec, bit_depth, chroma, static_cast<int>(f->coded_width),
                        static_cast<int>(f->coded_height), cfg.profile);

    const unsigned want = static_cast<unsigned>(
        std::min(kMaxDecodeSurfaces, std::max<int>(f->min_num_decode_surfaces, 1) + cfg.extra_decode_surfaces));
    const int disp_w = f->display_area.right - f->display_area.left;
    const int disp_h = f->display_area.bottom - f->display_area.top;
    const int tw = cfg.target_width > 0 ? cfg.target_width : disp_w;
    const int th = cfg.target_height > 0 ? cfg.target_height : disp_h;

    if (session) {
      const bool same_kind = f->codec == fmt.codec && f->chroma_format == fmt.chroma_format &&
                             f->bit_depth_luma_minus8 == fmt.bit_depth_luma_minus8;
      // Frames of the same size and format (the surfaces' count aside).
      const bool same_frames = same_kind && f->coded_width == fmt.coded_width &&
                               f->coded_height == fmt.coded_height && tw == out_w && th == out_h &&
                               f->display_area.left == fmt.display_area.left &&
                               f->display_area.top == fmt.display_area.top &&
                               f->display_area.right == fmt.display_area.right &&
                               f->display_area.bottom == fmt.display_area.bottom;
      const bool same_geometry = same_frames && want <= surfaces;
      if (same_geometry) {
        set_color(f);
        return static_cast<int>(surfaces);
      }
      reclaim(true);  // no mapped frame may survive a reconfigure or a change of session
      // A session replaced at an earlier change has shown its pictures by now (a whole sequence
      // came between); kept through a reconfigure, its pictures would be copied with new sizes.
      retire_previous();
      if (same_kind && api->cuvidReconfigureDecoder && f->coded_width <= max_w && f->coded_height <= max_h &&
          want <= surfaces) {
        CUVIDRECONFIGUREDECODERINFO rc{};
        rc.ulWidth = f->coded_width;
        rc.ulHeight = f->coded_height;
        rc.ulTargetWidth = static_cast<unsigned>((tw + 1) & ~1);
        rc.ulTargetHeight = static_cast<unsigned>((th + 1) & ~1);
        rc.ulNumDecodeSurfaces = surfaces;
        rc.display_area.left = static_cast<short>(f->display_area.left);
        rc.display_area.top = static_cast<short>(f->display_area.top);
        rc.display_area.right = static_cast<short>(f->display_area.right);
        rc.display_area.bottom = static_cast<short>(f->display_area.bottom);
        CUresult r = api->cuvidReconfigureDecoder(session->decoder, &rc);
        if (r == CUDA_SUCCESS) {
          session->set_geometry(rc);
          st.reconfigures++;
          adopt(f, tw, th);
          return static_cast<int>(surfaces);
        }
        // Fall through: another session.
      }
      // Another session. Where only more surfaces are needed, this one stays for the pictures the
      // parser has yet to show (they are copied out as frames of the new geometry: a session of
      // another size or format is retired as before).
      if (same_frames) {
        previous = std::move(session);
        previous_healthy = session_healthy;
        session_healthy = true;
      } else {
        retire_session();
      }
      st.recreates++;
    }

    CUVIDDECODECREATEINFO ci{};
    ci.ulWidth = f->coded_width;
    ci.ulHeight = f->coded_height;
    ci.ulNumDecodeSurfaces = want;
    ci.CodecType = f->codec;
    ci.ChromaFormat = f->chroma_format == cudaVideoChromaFormat_Monochrome ? cudaVideoChromaFormat_420
                                                                           : f->chroma_format;
    ci.ulCreationFlags = cudaVideoCreate_PreferCUVID;
    ci.bitDepthMinus8 = f->bit_depth_luma_minus8;
    ci.ulMaxWidth = std::max<unsigned>(f->coded_width, static_cast<unsigned>(std::max(cfg.max_width, 0)));
    ci.ulMaxHeight = std::max<unsigned>(f->coded_height, static_cast<unsigned>(std::max(cfg.max_height, 0)));
    ci.display_area.left = static_cast<short>(f->display_area.left);
    ci.display_area.top = static_cast<short>(f->display_area.top);
    ci.display_area.right = static_cast<short>(f->display_area.right);
    ci.display_area.bottom = static_cast<short>(f->display_area.bottom);
    ci.OutputFormat = bit_depth > 8 ? cudaVideoSurfaceFormat_P016 : cudaVideoSurfaceFormat_NV12;
    ci.DeinterlaceMode = f->progressive_sequence ? cudaVideoDeinterlaceMode_Weave : cudaVideoDeinterlaceMode_Adaptive;
    ci.ulTargetWidth = static_cast<unsigned>((tw + 1) & ~1);
    ci.ulTargetHeight = static_cast<unsigned>((th + 1) & ~1);
    ci.ulNumOutputSurfaces = static_cast<unsigned>(std::max(cfg.output_surfaces, 1));
    // Counted before the creation, which may throw: the pictures decoded so far stay with
    // `previous` either way.
    generation++;
    session = take_session(session_key(cfg.device, ci));
    if (session)
      st.sessions_reused++;
    else
      session = std::make_unique<NvdecSession>(pctx, ci, describe_format(f));
    session->extra_surfaces = cfg.extra_decode_surfaces;
    session_healthy = true;
    max_w = static_cast<unsigned>(ci.ulMaxWidth);
    max_h = static_cast<unsigned>(ci.ulMaxHeight);
    surfaces = want;
    adopt(f, tw, th);
    return static_cast<int>(surfaces);
  }

  std::string describe_format(const CUVIDEOFORMAT* f) const {
    return cfg.codec + (cfg.profile.empty() ? "" : " (" + cfg.profile + " profile)") + " " +
           std::to_string(f->coded_width) + "x" + std::to_string(f->coded_height) + " " +
           std::to_string(f->bit_depth_luma_minus8 + 8) + "-bit on " + pctx->gpu_name() +
           (cfg.source.empty() ? "" : " from " + cfg.source);
  }

  void adopt(const CUVIDEOFORMAT* f, int tw, int th) {
    fmt = *f;
    out_w = tw;
    out_h = th;
    nv_w = (tw + 1) & ~1;
    nv_h = (th + 1) & ~1;
    out_format = f->bit_depth_luma_minus8 > 0 ? ColorFormat::P016 : ColorFormat::NV12;
    st.coded_width = static_cast<int>(f->coded_width);
    st.coded_height = static_cast<int>(f->coded_height);
    st.width = tw;
    st.height = th;
    st.bit_depth = f->bit_depth_luma_minus8 + 8;
    st.decode_surfaces = static_cast<int>(surfaces);
    set_color(f);
  }

  void set_color(const CUVIDEOFORMAT* f) {
    const auto& vsd = f->video_signal_description;
    const int disp_h = f->display_area.bottom - f->display_area.top;
    matrix = cfg.matrix >= 0 ? static_cast<ColorMatrix>(cfg.matrix) : matrix_from_vui(vsd.matrix_coefficients, disp_h);
    if (cfg.range >= 0)
      range = static_cast<ColorRange>(cfg.range);
    else if (f->codec == cudaVideoCodec_JPEG)
      range = ColorRange::Full;  // JFIF is full range by definition
    else
      range = vsd.video_full_range_flag ? ColorRange::Full : ColorRange::Limited;
  }

  // ---- display: copy out ----------------------------------------------------------------------
  // (pts, discard) of the frame being shown (see pictures and by_timestamp).
  std::pair<int64_t, bool> shown_packet(const CUVIDPARSERDISPINFO* di) {
    if (by_timestamp) {
      for (size_t k = 0; k < given.size(); ++k) {  // oldest first
        Given& g = given[(given_next + k) % given.size()];
        if (g.pending && g.key == static_cast<int64_t>(di->timestamp)) {
          g.pending = false;
          return {g.pts, g.discard};
        }
      }
      return {-1, false};
    }
    if (const Picture* pic = picture(di->picture_index)) return {pic->pts, pic->discard};
    return {-1, false};
  }

  void on_display(CUVIDPARSERDISPINFO* di) {
    const auto [shown_pts, shown_discard] = shown_packet(di);
    reclaim(false);
    while (mapped.size() >= static_cast<size_t>(std::max(cfg.output_surfaces, 1))) {
      mapped.front().done->synchronize();
      unmap_front();
    }
    const CUvideodecoder from = decoder_of(di->picture_index);
    bool error = false;
    if (api->cuvidGetDecodeStatus) {
      CUVIDGETDECODESTATUS ds{};
      if (api->cuvidGetDecodeStatus(from, di->picture_index, &ds) == CUDA_SUCCESS &&
          (ds.decodeStatus == cuvidDecodeStatus_Error || ds.decodeStatus == cuvidDecodeStatus_Error_Concealed))
        error = true;
    }
    // In display order: leading pictures shown before their restart picture stay flagged.
    if (const Picture* pic = picture(di->picture_index); pic && pic->restart) damaged = false;
    if (error) damaged = true;
    if (shown_discard) {  // its damage counts above; the picture itself is never mapped
      st.discarded++;
      return;
    }
    CUVIDPROCPARAMS vpp{};
    vpp.progressive_frame = di->progressive_frame;
    vpp.second_field = di->repeat_first_field + 1;
    vpp.top_field_first = di->top_field_first;
    vpp.unpaired_field = di->repeat_first_field < 0;
    vpp.output_stream = static_cast<CUstream>(stream->handle());

    // Everything that can fail without a mapping comes first, so that a mapped picture is
    // always queued for unmapping.
    const int bpp = out_format == ColorFormat::P016 ? 2 : 1;
    Surface s;
    s.format = out_format;
    s.width = out_w;
    s.height = out_h;
    const int64_t row = int64_t(out_w) * bpp;
    s.pitch = (row + 255) / 256 * 256;
    BlockPtr block = pool->allocate(s.bytes());
    s.device = Device{DeviceType::CUDA, cfg.device};
    s.data = static_cast<uint8_t*>(block->data());
    std::shared_ptr<cuda::Event> done = acquire_event();

    unsigned long long src = 0;
    unsigned int spitch = 0;
    CUresult r = api->cuvidMapVideoFrame(from, di->picture_index, &src, &spitch, &vpp);
    if (r != CUDA_SUCCESS) {
      st.dropped++;
      st.last_error = "cuvidMapVideoFrame: " + cu_result_name(r) + " (" + describe() + ")";
      healthy(from) = false;
      return;  // the block goes back to the pool unused
    }
    // From here the picture is mapped: it is queued for unmapping whatever happens below.
    try {
      mapped.push_back({src, done, from});
    } catch (...) {
      api->cuvidUnmapVideoFrame(from, src);
      throw;
    }
    try {
      auto copy = [&](unsigned long long from, uint8_t* to, size_t width_bytes, size_t rows) {
        CUDA_MEMCPY2D m{};
        m.srcMemoryType = CU_MEMORYTYPE_DEVICE;
        m.srcDevice = static_cast<CUdeviceptr>(from);
        m.srcPitch = spitch;
        m.dstMemoryType = CU_MEMORYTYPE_DEVICE;
        m.dstDevice = reinterpret_cast<CUdeviceptr>(to);
        m.dstPitch = static_cast<size_t>(s.pitch);
        m.WidthInBytes = width_bytes;
        m.Height = rows;
        cu_check(api->cuMemcpy2DAsync(&m, static_cast<CUstream>(stream->handle())), "cuMemcpy2DAsync", describe());
      };
      copy(src, s.data, static_cast<size_t>(row), static_cast<size_t>(out_h));
      copy(src + static_cast<unsigned long long>(spitch) * static_cast<unsigned long long>(nv_h),
           s.data + s.pitch * out_h, static_cast<size_t>(((out_w + 1) & ~1) * bpp),
           static_cast<size_t>((out_h + 1) / 2));
      done->record(stream->handle());
      block->record_use(done);  // the pool must not hand the block out before the copy ends
      s.owner = std::static_pointer_cast<void>(std::move(block));
      s.ready = std::move(done);
      s.pts = shown_pts;
      s.error = damaged;
      s.matrix = matrix;
      s.range = range;
      if (error)
        st.errors++;
      else if (damaged)
        st.damaged++;
      st.displayed++;
      if (out) out->push_back(std::move(s));
    } catch (...) {
      healthy(from) = false;
      // Mark the point after whatever copy was enqueued: the unmap and the block's reuse wait for it.
      try {
        const auto& ev = mapped.back().done;
        ev->record(stream->handle());
        if (block) block->record_use(ev);
      } catch (...) {
      }
      throw;
    }
  }

  // ---- one packet -----------------------------------------------------------------------------
  // Parses one packet; frames that become displayable are appended to `frames`. Throws
  // Error(Decode) when the parser rejects the packet and it produced no frame.
  void decode_one(const uint8_t* data, size_t size, int64_t pts, bool discard, bool end_of_picture,
                  std::vector<Surface>& frames) {
    if (!parser) create_parser();
    st.packets++;
    const uint8_t* payload = data;
    size_t n = size;
    const bool prepend = send_headers && !annexb.headers().empty();
    if (prepend || annexb.length_prefixed()) {
      scratch.clear();
      if (prepend) scratch = annexb.headers();
      if (!annexb.convert(data, size, scratch)) {
        st.errors++;
        st.last_error = "a NAL unit length runs past the end of the packet (truncated or corrupt " + cfg.codec + ")";
      }
      payload = scratch.data();
      n = scratch.size();
    }
    send_headers = false;
    if (n == 0) return;
    CUVIDSOURCEDATAPACKET pkt{};
    pkt.payload = payload;
    pkt.payload_size = static_cast<tcu_ulong>(n);
    const bool timed = packet_time_known(pts, discard);
    packet_pts = timed ? pts : -1;
    packet_discard = discard;
    int64_t key = timed ? pts : 0;
    if (by_timestamp) {
      if (!timed) key = kUntimedKeys + static_cast<int64_t>(untimed_next++);
      given[given_next] = Given{key, packet_pts, discard, true};
      given_next = (given_next + 1) % given.size();
    }
    pkt.flags = (timed || by_timestamp ? CUVID_PKT_TIMESTAMP : 0) | (end_of_picture ? CUVID_PKT_ENDOFPICTURE : 0);
    pkt.timestamp = key;
    const size_t before = frames.size();
    out = &frames;
    CUresult r = api->cuvidParseVideoData(parser, &pkt);
    out = nullptr;
    rethrow_failure();
    if (r != CUDA_SUCCESS) {
      st.errors++;
      st.last_error = "cuvidParseVideoData: " + cu_result_name(r);
      if (frames.size() == before)
        raise(ErrorKind::Decode, "NVDEC could not parse a packet of " + describe() + ": " + cu_result_name(r) +
                                     "; the bitstream is corrupt or not " + cfg.codec);
    }
  }
};

NvdecDecoder::NvdecDecoder(const NvdecConfig& config) : impl_(std::make_unique<Impl>()) {
  Impl& d = *impl_;
  d.cfg = config;
  d.api = &cuvid_api();
  if (!cuvid_codec(config.codec, &d.codec))
    raise(ErrorKind::Unsupported, "NVDEC has no decoder for codec '" + config.codec + "'" +
                                      (config.source.empty() ? "" : " (" + config.source + ")") +
                                      "; decode it on the CPU (device='cpu')");
  d.annexb = AnnexBConverter(config.codec, config.extradata.data(), config.extradata.size());
  d.by_timestamp = d.codec == cudaVideoCodec_VP9 || d.codec == cudaVideoCodec_AV1;
  d.pctx = std::make_shared<PrimaryContext>(config.device);
  ContextScope scope(d.pctx->get());
  d.stream = std::make_unique<cuda::Stream>(config.device);
  d.pool = &MemoryPool::device(config.device);
  // The hardware session (and its context lock) comes with the first sequence header.
  d.create_parser();
}

NvdecDecoder::~NvdecDecoder() {
  if (!impl_) return;
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  ContextScope scope(d.pctx->get());
  try {
    d.reclaim(true);
  } catch (...) {
    // A failed context (e.g. after a sticky CUDA error): still release what we can.
    d.session_healthy = false;
    while (!d.mapped.empty()) d.unmap_front();
  }
  if (d.parser) d.api->cuvidDestroyVideoParser(d.parser);
  d.parser = nullptr;
  try {
    d.retire_previous();
    d.retire_session();  // parked for the next stream (fast) or destroyed (~230 ms in the driver)
  } catch (...) {
  }
  d.stream.reset();
}

std::vector<Surface> NvdecDecoder::decode(const uint8_t* data, size_t size, int64_t pts, bool end_of_picture,
                                          bool discard) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  std::vector<Surface> frames;
  if (size == 0 || data == nullptr) return frames;
  ContextScope scope(d.pctx->get());
  d.decode_one(data, size, pts, discard, end_of_picture, frames);
  return frames;
}

std::vector<Surface> NvdecDecoder::decode_many(const NvdecPacket* packets, size_t count, bool end_of_picture) {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  std::vector<Surface> frames;
  if (count == 0 || packets == nullptr) return frames;
  frames.reserve(count + 4);
  ContextScope scope(d.pctx->get());
  size_t tried = 0, rejected = 0;
  std::string reason;
  for (size_t i = 0; i < count; ++i) {
    const NvdecPacket& p = packets[i];
    if (p.size == 0 || p.data == nullptr) continue;
    ++tried;
    try {
      d.decode_one(p.data, p.size, p.pts, p.discard, end_of_picture, frames);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::Decode) throw;
      ++rejected;
      reason = e.what();
    }
  }
  if (rejected > 0 && rejected == tried && frames.empty()) raise(ErrorKind::Decode, reason);
  return frames;
}

std::vector<Surface> NvdecDecoder::flush() {
  Impl& d = *impl_;
  std::lock_guard<std::mutex> lock(d.mu);
  std::vector<Surface> frames;
  if (!d.parser) return frames;
  ContextScope scope(d.pctx->get());
  CUVIDSOURCEDATAPACKET pkt{};
  pkt.flags = CUVID_PKT_ENDOFSTREAM;
  d.out = &frames;
  d.api->cuvidParseVideoData(d.parser, &pkt);
  d.out = nullptr;
  // A fresh parser for whatever comes next (a looped file, a reconnected camera); the decoder and
  // its surfaces stay, so an identical stream restarts without reallocation.
  d.api->cuvidDestroyVideoParser(d.parser);
  d.parser = nullptr;
  d.send_headers = true;
  d.damaged = false;
  d.given.fill({});  // nothing given before the flush is shown after it
  if (d.previous) {  // every picture it decoded has been shown
    d.reclaim(true);
    d.retire_previous();
  }
  d.rethrow_failure();
  return frames;
}

bool NvdecDecoder::continues_at(const uint8_t* data, size_t size, bool keyframe) const {
  return impl_->annexb.starts_sequence(data, size, keyframe, false);  // const, set once at construction
}

int NvdecDecoder::device() const { return impl_->cfg.device; }

NvdecStats NvdecDecoder::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->st;
}

#else  // !PYSM_WITH_NVDEC

struct NvdecDecoder::Impl {
  NvdecConfig cfg;
};

NvdecDecoder::NvdecDecoder(const NvdecConfig&) {
  raise(ErrorKind::Driver, "this pysm build has no NVDEC support (built without CUDA or nv-codec-headers); "
                           "install a CUDA build of pysm or decode on the CPU (device='cpu')");
}
NvdecDecoder::~NvdecDecoder() = default;
std::vector<Surface> NvdecDecoder::decode(const uint8_t*, size_t, int64_t, bool, bool) { return {}; }
std::vector<Surface> NvdecDecoder::decode_many(const NvdecPacket*, size_t, bool) { return {}; }
std::vector<Surface> NvdecDecoder::flush() { return {}; }
bool NvdecDecoder::continues_at(const uint8_t*, size_t, bool) const { return false; }
int NvdecDecoder::device() const { return 0; }
NvdecStats NvdecDecoder::stats() const { return {}; }

#endif

}  // namespace pysm::codec
