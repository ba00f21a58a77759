// Bitstream framing for the NVDEC parser. MP4/MKV carry H.264/HEVC as length-prefixed NAL units
// (AVCC/HVCC) with the parameter sets in the container's extradata; the cuvid parser wants Annex-B
// (start codes) with the parameter sets in-band. This converter does that natively: one memcpy per
// NAL into a reused buffer, which is cheaper than a round trip through FFmpeg's bitstream filters.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pysm/h264_order.hpp"

namespace pysm::codec {

// What a picture means for starting to decode at it (AnnexBConverter::picture_role).
enum class PictureRole : int {
  Other = 0,
  // Decoding can start here and give the frames of a decoder that saw everything before it
  // (AnnexBConverter::starts_sequence).
  CleanRestart = 1,
  // Decoding can start here, and gives the same frames from it on in output order, but not its
  // leading pictures (those after it in decoding order shown before it, which may predict from
  // pictures before it), which a decoder starting here skips (AnnexBConverter::leads). An HEVC
  // CRA; an H.264 I picture with an exact recovery point SEI (x264's open GOPs).
  OpenRestart = 2,
  // An HEVC RADL or RASL picture: a leading picture of the last IRAP picture. No trailing
  // picture predicts from one, and all of them precede the first trailing picture. (H.264 has
  // no such NAL type: AnnexBConverter::leads compares picture order counts.)
  Leading = 3,
};

class AnnexBConverter {
 public:
  // `codec` is an FFmpeg codec name ("h264", "hevc", "av1", "mpeg4", ...). `extradata` is the
  // container's codec private data (avcC/hvcC records, or raw headers); it may be empty.
  AnnexBConverter(const std::string& codec, const uint8_t* extradata, size_t extradata_size);
  AnnexBConverter() = default;

  // True when packets are length-prefixed (AVCC/HVCC) and must be rewritten.
  bool length_prefixed() const { return nal_length_size_ > 0; }
  int nal_length_size() const { return nal_length_size_; }
  // In-band headers the parser needs before the first picture (Annex-B SPS/PPS/VPS for
  // H.264/HEVC, the sequence header OBU for AV1, the raw extradata for MPEG-2/4). May be empty.
  const std::vector<uint8_t>& headers() const { return headers_; }

  // Appends the Annex-B form of one packet to `out`. Returns false when a NAL length runs past
  // the end of the packet (truncated or corrupt input); the complete NAL units before it are kept.
  bool convert(const uint8_t* data, size_t size, std::vector<uint8_t>& out) const;

  // True when decoding can restart at this packet without any picture before it: an H.264 IDR,
  // an HEVC IDR or BLA picture, or a key frame (`keyframe`, the container's flag) of an
  // intra-refreshing codec (VP8, VP9, AV1, MJPEG). A looped file that starts this way continues
  // into its next pass without draining the decoder. False for everything else (an HEVC CRA
  // would decode its leading pictures from the previous pass's references).
  // With `no_leading`, also no picture after it in decoding order may be shown before it: an HEVC
  // IDR_N_LP or BLA_N_LP (an IDR_W_RADL may be followed by decodable leading pictures).
  bool starts_sequence(const uint8_t* data, size_t size, bool keyframe, bool no_leading = false) const;

  // The role of this packet's picture, from its first slice's NAL type (H.264/HEVC) or the key
  // frame flag (VP8, VP9, AV1, MJPEG). Other codecs and malformed packets: Other, except that a
  // leading picture whose slice is cut short (a NAL length past the packet's end) stays Leading.
  PictureRole picture_role(const uint8_t* data, size_t size, bool keyframe) const;

  // A parameter-set NAL unit a packet carries in band: where it is in the packet (header byte
  // included, framing not), its NAL type and its id (-1 where it cannot be read: malformed), plus
  // 256 times its HEVC nuh_layer_id (MV-HEVC's second view has sets of its own).
  struct ParameterSet {
    size_t offset = 0, size = 0;
    int type = 0, id = -1;
  };
  // The parameter sets this packet carries in band (H.264 SPS/PPS, HEVC VPS/SPS/PPS, whole NAL
  // units before its first slice), in order. A decoder that starts at a later restart point needs
  // the last of each type and id the stream carried before it (pysm/codec/parameter_sets.py).
  std::vector<ParameterSet> parameter_sets(const uint8_t* data, size_t size) const;

  // Whether this packet is a leading picture of the open restart point `restart` before it in
  // decoding order: 1 if so, 0 if not. HEVC: its NAL type says (picture_role is Leading). H.264:
  // its picture order count is below the restart point's (pic_order_cnt_type 0; the slice headers
  // of both read with the parameter sets of the extradata and of `restart`); a slice cut short
  // counts by what there is of its header, and -1 says that the packet's order cannot be read
  // (no readable slice header): the caller may go by the container's timestamps.
  int leads(const uint8_t* data, size_t size, const uint8_t* restart, size_t restart_size) const;

 private:
  // Calls fn(nal, len) on each NAL unit of the packet (length-prefixed or Annex-B) until it
  // returns true: 1 when it did, -2 when it did on a length-prefixed NAL unit cut short (shown to
  // fn, with what there is of it, only with `visit_cut`), 0 or -1 otherwise (see for_each_nal).
  template <typename Fn>
  int find_nal(const uint8_t* data, size_t size, Fn fn, bool visit_cut = false) const;

  // The first slice header of an H.264 packet, read with `sets` and the packet's own parameter
  // sets (added to `sets`): false when there is no readable one (slice->nal_type is still that of
  // the first slice, 0 for none). `recovery`: an exact recovery
  // point SEI came before it. A slice cut short (a NAL length past the packet's end) is read as
  // far as it goes, and sets `cut`.
  bool h264_first_slice(const uint8_t* data, size_t size, H264ParameterSets& sets, H264Slice* slice,
                        bool* recovery, bool* cut = nullptr) const;

  enum class Family { Other, H264, HEVC, KeyFrameCodec };
  Family family_ = Family::Other;
  H264ParameterSets h264_sets_;  // those of the extradata
  int nal_length_size_ = 0;  // 0: input is already Annex-B (or not a NAL codec)
  std::vector<uint8_t> headers_;
};

}  // namespace pysm::codec
