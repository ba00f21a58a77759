#include "pysm/annexb.hpp"

#include <cstring>

#include "pysm/error.hpp"
#include "pysm/rbsp_reader.hpp"

namespace pysm::codec {
namespace {

const uint8_t kStartCode[4] = {0, 0, 0, 1};

bool starts_with_start_code(const uint8_t* p, size_t n) {
  return (n >= 3 && p[0] == 0 && p[1] == 0 && p[2] == 1) ||
         (n >= 4 && p[0] == 0 && p[1] == 0 && p[2] == 0 && p[3] == 1);
}

void append_nal(std::vector<uint8_t>& out, const uint8_t* p, size_t n) {
  out.insert(out.end(), kStartCode, kStartCode + 4);
  out.insert(out.end(), p, p + n);
}

// Bytes of the Annex-B NAL unit at `nal` (after its start code), up to the next start code or
// `max`; a zero byte just before the next start code belongs to a 4-byte start code.
size_t annexb_nal_size(const uint8_t* nal, size_t max) {
  for (size_t i = 0; i + 2 < max; ++i)
    if (nal[i] == 0 && nal[i + 1] == 0 && nal[i + 2] == 1) return i > 0 && nal[i - 1] == 0 ? i - 1 : i;
  return max;
}

uint16_t rd16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// Calls fn(nal, len) on each NAL unit of Annex-B data (the byte after each 00 00 01 start code;
// `len` runs to the data's end) until fn returns true; true when it did.
template <typename Fn>
bool for_each_annexb_nal(const uint8_t* d, size_t n, Fn fn) {
  for (size_t i = 0; i + 3 < n; ++i)
    if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1 && fn(d + i + 3, n - i - 3)) return true;
  return false;
}

// Calls fn(nal, len) for each NAL unit of a packet of `ls`-byte length-prefixed NAL units until fn
// returns true. Returns 1 when fn stopped the walk, 0 at the packet's end, -1 when a length runs
// past the end (truncated or corrupt input; the NAL units before it were visited). With
// `visit_cut`, fn also sees the bytes there are of the NAL unit whose length runs past the end,
// and -2 says that fn stopped the walk on it.
template <typename Fn>
int for_each_nal(const uint8_t* d, size_t n, size_t ls, Fn fn, bool visit_cut = false) {
  size_t pos = 0;
  while (pos + ls <= n) {
    size_t len = 0;
    for (size_t i = 0; i < ls; ++i) len = (len << 8) | d[pos + i];
    pos += ls;
    if (len > n - pos) return visit_cut && fn(d + pos, n - pos) ? -2 : -1;
    if (fn(d + pos, len)) return 1;
    pos += len;
  }
  return pos == n ? 0 : -1;
}

// `count` parameter-set records {u16 len, NAL} starting at d[*pos], appended as Annex-B NAL units;
// false when a record runs past the end of the configuration record.
bool read_nal_records(const uint8_t* d, size_t n, size_t* pos, int count, std::vector<uint8_t>& headers) {
  for (int i = 0; i < count; ++i) {
    if (*pos + 2 > n) return false;
    size_t len = rd16(d + *pos);
    *pos += 2;
    if (*pos + len > n) return false;
    append_nal(headers, d + *pos, len);
    *pos += len;
  }
  return true;
}

// avcC (ISO/IEC 14496-15 5.3.3.1): version, profile, compat, level, 0xFC|lengthSizeMinusOne,
// 0xE0|numSPS, {u16 len, SPS}*, numPPS, {u16 len, PPS}*, [high-profile extension ignored].
bool parse_avcc(const uint8_t* d, size_t n, int* length_size, std::vector<uint8_t>& headers) {
  if (n < 7 || d[0] != 1) return false;
  *length_size = (d[4] & 3) + 1;
  size_t pos = 5;
  for (int list = 0; list < 2; ++list) {
    if (pos >= n) return list == 1;  // a record without PPS is tolerated
    int count = list == 0 ? (d[pos] & 0x1F) : d[pos];
    ++pos;
    if (!read_nal_records(d, n, &pos, count, headers)) return false;
  }
  return true;
}

// hvcC (ISO/IEC 14496-15 8.3.3.1): 22 bytes of profile/tier/level fields with
// lengthSizeMinusOne in the low bits of byte 21, then numOfArrays, each
// {type, u16 numNalus, {u16 len, NAL}*}.
bool parse_hvcc(const uint8_t* d, size_t n, int* length_size, std::vector<uint8_t>& headers) {
  if (n < 23 || d[0] != 1) return false;
  *length_size = (d[21] & 3) + 1;
  int arrays = d[22];
  size_t pos = 23;
  for (int a = 0; a < arrays; ++a) {
    if (pos + 3 > n) return false;
    int count = rd16(d + pos + 1);
    pos += 3;
    if (!read_nal_records(d, n, &pos, count, headers)) return false;
  }
  return true;
}

}  // namespace

AnnexBConverter::AnnexBConverter(const std::string& codec, const uint8_t* ed, size_t n) {
  if (codec == "h264") family_ = Family::H264;
  else if (codec == "hevc") family_ = Family::HEVC;
  else if (codec == "vp8" || codec == "vp9" || codec == "av1" || codec == "mjpeg") family_ = Family::KeyFrameCodec;
  if (n == 0 || ed == nullptr) return;
  if (codec == "h264" || codec == "hevc") {
    if (starts_with_start_code(ed, n)) {  // e.g. raw .h264 or some MKV muxers: already Annex-B
      headers_.assign(ed, ed + n);
    } else {
      int ls = 0;
      std::vector<uint8_t> h;
      bool ok = codec == "h264" ? parse_avcc(ed, n, &ls, h) : parse_hvcc(ed, n, &ls, h);
      if (!ok || ls == 3)  // 3-byte lengths are not allowed by the spec; never seen in practice
        raise(ErrorKind::Decode, "the " + codec + " codec configuration record (" + std::to_string(n) +
                                     " bytes of extradata) is malformed; the file is corrupt or not " + codec);
      nal_length_size_ = ls;
      headers_ = std::move(h);
    }
  } else if (codec == "av1") {
    // av1C: 4 bytes (marker/version, profile/level, flags, delay) then configOBUs, normally the
    // sequence header; the parser accepts them in-band ahead of the first temporal unit.
    if (n > 4 && (ed[0] & 0x80)) headers_.assign(ed + 4, ed + n);
  } else if (codec == "mpeg4" || codec == "mpeg2video" || codec == "mpeg1video" || codec == "vc1") {
    headers_.assign(ed, ed + n);  // raw VOL / sequence headers
  }
  if (family_ == Family::H264)  // the headers are Annex-B whatever the packets' framing
    for_each_annexb_nal(headers_.data(), headers_.size(), [&](const uint8_t* nal, size_t len) {
      h264_sets_.add(nal, annexb_nal_size(nal, len));
      return false;
    });
}

bool AnnexBConverter::convert(const uint8_t* d, size_t n, std::vector<uint8_t>& out) const {
  if (nal_length_size_ == 0) {
    out.insert(out.end(), d, d + n);
    return true;
  }
  out.reserve(out.size() + n + 16);
  return for_each_nal(d, n, static_cast<size_t>(nal_length_size_), [&](const uint8_t* nal, size_t len) {
           if (len) append_nal(out, nal, len);
           return false;
         }) == 0;
}

template <typename Fn>
int AnnexBConverter::find_nal(const uint8_t* d, size_t n, Fn fn, bool visit_cut) const {
  if (d == nullptr) return 0;
  if (nal_length_size_ > 0) return for_each_nal(d, n, static_cast<size_t>(nal_length_size_), fn, visit_cut);
  return for_each_annexb_nal(d, n, fn) ? 1 : 0;
}

bool AnnexBConverter::starts_sequence(const uint8_t* d, size_t n, bool keyframe, bool no_leading) const {
  if (family_ == Family::KeyFrameCodec) return keyframe;
  if (family_ == Family::Other) return false;
  return find_nal(d, n, [&](const uint8_t* nal, size_t len) {
    if (len == 0) return false;
    if (family_ == Family::H264) return (nal[0] & 0x1F) == 5;  // IDR slice
    const int type = (nal[0] >> 1) & 0x3F;
    if (no_leading) return type == 18 || type == 20;  // BLA_N_LP, IDR_N_LP
    return type >= 16 && type <= 20;                   // BLA_W_LP .. IDR_N_LP
  }) == 1;
}

bool AnnexBConverter::h264_first_slice(const uint8_t* d, size_t n, H264ParameterSets& sets, H264Slice* slice,
                                       bool* recovery, bool* cut) const {
  bool found = false;
  *recovery = false;
  const int walked = find_nal(d, n, [&](const uint8_t* nal, size_t len) {
    if (len == 0) return false;
    const int type = nal[0] & 0x1F;
    if (type == 7 || type == 8) {
      sets.add(nal, len);  // reads only its first fields: the length may run to the packet's end
    } else if (type == 6) {
      if (nal_length_size_ == 0) len = annexb_nal_size(nal, len);
      *recovery = *recovery || h264_exact_recovery_point(nal, len);
    } else if (type >= 1 && type <= 5) {  // the picture's first slice
      found = sets.slice(nal, len, slice);
      slice->nal_type = type;
      return true;
    }
    return false;  // delimiters, other NAL units: not the picture
  }, true);
  if (cut != nullptr) *cut = walked == -2;
  return found;
}

PictureRole AnnexBConverter::picture_role(const uint8_t* d, size_t n, bool keyframe) const {
  if (family_ == Family::KeyFrameCodec) return keyframe ? PictureRole::CleanRestart : PictureRole::Other;
  if (family_ == Family::Other) return PictureRole::Other;
  if (family_ == Family::H264) {
    H264ParameterSets sets = h264_sets_;
    H264Slice s;
    bool recovery = false, cut = false;
    const bool readable = h264_first_slice(d, n, sets, &s, &recovery, &cut);
    if (cut) return PictureRole::Other;  // a restart point must be whole
    if (s.nal_type == 5) return PictureRole::CleanRestart;
    if (!readable) return PictureRole::Other;
    // Where leading pictures can be told (pic_order_cnt_type 0, frames only) or cannot exist
    // (type 2: output order is decoding order).
    const bool order_known = s.poc_type == 2 || (s.poc_type == 0 && s.frame_mbs_only);
    return recovery && s.intra() && order_known ? PictureRole::OpenRestart : PictureRole::Other;
  }
  PictureRole role = PictureRole::Other;
  auto first_slice = [&](const uint8_t* nal, size_t len) {
    if (len == 0) return false;
    const int type = (nal[0] >> 1) & 0x3F;
    if (type >= 32) return false;  // VPS/SPS/PPS, delimiters, SEI: not the picture
    if (type >= 6 && type <= 9) role = PictureRole::Leading;             // RADL_N .. RASL_R
    else if (type >= 16 && type <= 20) role = PictureRole::CleanRestart;  // BLA_W_LP .. IDR_N_LP
    else if (type == 21) role = PictureRole::OpenRestart;                 // CRA
    return true;
  };
  // A damaged leading picture (its slice cut short) is still a leading picture: where it goes
  // decides which session decodes the pictures after it. A restart point must be whole.
  if (find_nal(d, n, first_slice, true) == -2 && role != PictureRole::Leading) return PictureRole::Other;
  return role;
}

namespace {

// The id of an H.264 SPS (7.3.2.1.1) or PPS (7.3.2.2), or of an HEVC VPS, SPS or PPS
// (7.3.2.1-7.3.2.3 of H.265), plus 256 times its nuh_layer_id: -1 where it cannot be read.
int parameter_set_id(bool hevc, int type, const uint8_t* nal, size_t len) {
  const size_t header = hevc ? 2 : 1;
  if (len <= header) return -1;
  RbspReader r(nal + header, len - header);
  uint32_t id = 0;
  // A set of another layer (MV-HEVC's second view) may reuse a base-layer id: its own key.
  const uint32_t layer = hevc ? (nal[0] & 1u) << 5 | nal[1] >> 3 : 0;
  if (!hevc) {
    if (type == 7) r.bits(24);  // profile_idc, constraint flags, level_idc
    id = r.ue();
  } else if (type == 32) {
    id = r.bits(4);  // vps_video_parameter_set_id
  } else if (type == 33) {
    r.bits(4);  // sps_video_parameter_set_id
    // sps_max_sub_layers_minus1; in a layer above the base (MV-HEVC, F.7.3.2.2.1)
    // sps_ext_or_max_sub_layers_minus1, where 7 means no profile_tier_level follows.
    const uint32_t sub_layers = r.bits(3);
    if (layer > 0 && sub_layers == 7) {
      id = r.ue();
      return r.ok() && id < 16 ? static_cast<int>(layer << 8 | id) : -1;
    }
    r.bit();    // sps_temporal_id_nesting_flag
    // profile_tier_level(1, sps_max_sub_layers_minus1): the general part, then per sub-layer.
    for (int i = 0; i < 3; ++i) r.bits(32);  // 88 bits of general profile, then general_level_idc
    uint32_t profile = 0, level = 0;
    for (uint32_t i = 0; i < sub_layers; ++i) {
      profile |= r.bit() << i;
      level |= r.bit() << i;
    }
    if (sub_layers > 0)
      for (uint32_t i = sub_layers; i < 8; ++i) r.bits(2);  // reserved_zero_2bits
    for (uint32_t i = 0; i < sub_layers; ++i) {
      if (profile & (1u << i)) {  // 88 bits
        r.bits(32);
        r.bits(32);
        r.bits(24);
      }
      if (level & (1u << i)) r.bits(8);
    }
    id = r.ue();
  } else {
    id = r.ue();  // pps_pic_parameter_set_id
  }
  return r.ok() && id < 256 ? static_cast<int>(layer << 8 | id) : -1;
}

}  // namespace

std::vector<AnnexBConverter::ParameterSet> AnnexBConverter::parameter_sets(const uint8_t* d, size_t n) const {
  std::vector<ParameterSet> sets;
  if (family_ != Family::H264 && family_ != Family::HEVC) return sets;
  const bool hevc = family_ == Family::HEVC;
  find_nal(d, n, [&](const uint8_t* nal, size_t len) {
    if (len == 0) return false;
    const int type = hevc ? (nal[0] >> 1) & 0x3F : nal[0] & 0x1F;
    if (hevc ? type < 32 : type >= 1 && type <= 5) return true;  // parameter sets come before the slices
    if (hevc ? type >= 32 && type <= 34 : type == 7 || type == 8) {
      ParameterSet ps;
      ps.offset = static_cast<size_t>(nal - d);
      ps.size = nal_length_size_ ? len : annexb_nal_size(nal, len);
      ps.type = type;
      ps.id = parameter_set_id(hevc, type, nal, ps.size);
      sets.push_back(ps);
    }
    return false;
  });
  return sets;
}

int AnnexBConverter::leads(const uint8_t* d, size_t n, const uint8_t* rd, size_t rn) const {
  if (family_ == Family::HEVC) return picture_role(d, n, false) == PictureRole::Leading;
  if (family_ != Family::H264) return 0;
  H264ParameterSets sets = h264_sets_;
  H264Slice r, s;
  bool recovery = false;
  // An IDR has none: the order counts after it start from its own.
  if (!h264_first_slice(rd, rn, sets, &r, &recovery) || r.nal_type == 5 || r.poc_type != 0) return 0;
  if (!h264_first_slice(d, n, sets, &s, &recovery)) return s.nal_type == 5 ? 0 : -1;
  if (s.nal_type == 5 || s.poc_type != 0 || s.max_poc_lsb != r.max_poc_lsb) return 0;
  // Below the restart point's count, modulo MaxPicOrderCntLsb (8.2.1.1: counts of pictures this
  // close differ by less than half of it).
  const int ahead = (s.poc_lsb - r.poc_lsb + r.max_poc_lsb) % r.max_poc_lsb;
  return ahead > r.max_poc_lsb / 2;
}

}  // namespace pysm::codec
