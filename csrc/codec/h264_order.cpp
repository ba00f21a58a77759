#include "pysm/h264_order.hpp"

#include "pysm/rbsp_reader.hpp"

namespace pysm::codec {
namespace {

// Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices (7.3.2.1.1).
bool high_profile(uint32_t p) {
  switch (p) {
    case 100: case 110: case 122: case 244: case 44: case 83: case 86: case 118: case 128:
    case 138: case 139: case 134: case 135:
      return true;
    default:
      return false;
  }
}

// False when a delta_scale is out of its range (-128..127): a malformed SPS.
bool skip_scaling_list(RbspReader& r, int size) {
  int last = 8, next = 8;
  for (int j = 0; j < size && r.ok(); ++j) {
    if (next != 0) {
      const int32_t delta = r.se();
      if (delta < -128 || delta > 127) return false;
      next = (last + delta + 256) % 256;
    }
    last = next == 0 ? last : next;
  }
  return true;
}

}  // namespace

void H264ParameterSets::add(const uint8_t* nal, size_t len) {
  if (nal == nullptr || len < 2) return;
  const int type = nal[0] & 0x1F;
  RbspReader r(nal + 1, len - 1);
  if (type == 8) {
    const uint32_t pps = r.ue(), sps = r.ue();
    if (r.ok() && pps < pps_sps_.size()) pps_sps_[pps] = sps < sps_.size() ? static_cast<int16_t>(sps) : -1;
    return;
  }
  if (type != 7) return;
  const uint32_t profile = r.bits(8);
  r.bits(16);  // constraint flags, level
  const uint32_t id = r.ue();
  if (!r.ok() || id >= sps_.size()) return;
  sps_[id] = Sps{};  // unknown until the whole of it reads
  Sps s;
  if (high_profile(profile)) {
    const uint32_t chroma = r.ue();
    if (chroma > 3) return;
    if (chroma == 3) s.separate_colour_planes = r.bit();
    r.ue();   // bit_depth_luma_minus8
    r.ue();   // bit_depth_chroma_minus8
    r.bit();  // qpprime_y_zero_transform_bypass_flag
    if (r.bit())  // seq_scaling_matrix_present_flag
      for (int i = 0; i < (chroma != 3 ? 8 : 12) && r.ok(); ++i)
        if (r.bit() && !skip_scaling_list(r, i < 6 ? 16 : 64)) return;
  }
  const uint32_t log2_frame_num = r.ue() + 4;
  const uint32_t poc_type = r.ue();
  uint32_t log2_lsb = 0;
  if (poc_type == 0) {
    log2_lsb = r.ue() + 4;
  } else if (poc_type == 1) {
    r.bit();  // delta_pic_order_always_zero_flag
    r.se();   // offset_for_non_ref_pic
    r.se();   // offset_for_top_to_bottom_field
    const uint32_t cycle = r.ue();
    if (cycle > 255) return;
    for (uint32_t i = 0; i < cycle && r.ok(); ++i) r.se();
  }
  r.ue();   // max_num_ref_frames
  r.bit();  // gaps_in_frame_num_value_allowed_flag
  r.ue();   // pic_width_in_mbs_minus1
  r.ue();   // pic_height_in_map_units_minus1
  s.frame_mbs_only = r.bit();
  if (!r.ok() || log2_frame_num > 16 || poc_type > 2 || (poc_type == 0 && log2_lsb > 16)) return;
  s.log2_max_frame_num = static_cast<int>(log2_frame_num);
  s.poc_type = static_cast<int>(poc_type);
  s.log2_max_poc_lsb = static_cast<int>(log2_lsb);
  s.known = true;
  sps_[id] = s;
}

bool H264ParameterSets::slice(const uint8_t* nal, size_t len, H264Slice* out) const {
  if (nal == nullptr || len < 2) return false;
  const int type = nal[0] & 0x1F;
  if (type != 1 && type != 5) return false;
  RbspReader r(nal + 1, len - 1);
  r.ue();  // first_mb_in_slice
  const uint32_t slice_type = r.ue();
  const uint32_t pps = r.ue();
  if (!r.ok() || slice_type > 9 || pps >= pps_sps_.size() || pps_sps_[pps] < 0) return false;
  const Sps& s = sps_[pps_sps_[pps]];
  if (!s.known) return false;
  if (s.separate_colour_planes) r.bits(2);  // colour_plane_id
  r.bits(s.log2_max_frame_num);             // frame_num
  if (!s.frame_mbs_only && r.bit()) r.bit();  // field_pic_flag, bottom_field_flag
  if (type == 5) r.ue();                    // idr_pic_id
  H264Slice sl;
  sl.nal_type = type;
  sl.slice_type = static_cast<int>(slice_type);
  sl.poc_type = s.poc_type;
  sl.frame_mbs_only = s.frame_mbs_only;
  if (s.poc_type == 0) {
    sl.poc_lsb = static_cast<int>(r.bits(s.log2_max_poc_lsb));
    sl.max_poc_lsb = 1 << s.log2_max_poc_lsb;
  }
  if (!r.ok()) return false;
  *out = sl;
  return true;
}

bool h264_exact_recovery_point(const uint8_t* nal, size_t len) {
  if (nal == nullptr || len < 2 || (nal[0] & 0x1F) != 6) return false;
  RbspReader r(nal + 1, len - 1);
  while (r.more_bytes()) {  // sei_message()s (7.3.2.3.1)
    uint32_t type = 0, size = 0, b = 0;
    while ((b = r.bits(8)) == 0xFF && r.ok()) type += 255;
    type += b;
    while ((b = r.bits(8)) == 0xFF && r.ok()) size += 255;
    size += b;
    if (!r.ok()) return false;
    if (type == 6) {  // recovery_point (D.1.8)
      const uint32_t frames = r.ue();
      const uint32_t exact = r.bit(), broken = r.bit();
      return r.ok() && frames == 0 && exact == 1 && broken == 0;
    }
    for (uint32_t i = 0; i < size && r.ok(); ++i) r.bits(8);
  }
  return false;
}

}  // namespace pysm::codec
