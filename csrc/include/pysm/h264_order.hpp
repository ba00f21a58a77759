// What an H.264 bitstream says about output order around an open GOP's restart point: an I picture
// with a recovery point SEI, from which a decoder gives the frames of a decoder that saw everything
// before it, except for its leading pictures (after it in decoding order, shown before it).
// H.264 has no NAL type for those (HEVC has RASL/RADL): their picture order count tells them.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace pysm::codec {

// The first slice header of an H.264 picture, as far as output order needs it.
struct H264Slice {
  int nal_type = 0;     // 1 (non-IDR) or 5 (IDR)
  int slice_type = 0;   // 0..9 (P, B, I, SP, SI; +5: every slice of the picture has this type)
  int poc_type = 0;     // the SPS's pic_order_cnt_type
  bool frame_mbs_only = true;
  int poc_lsb = 0;      // pic_order_cnt_lsb (poc_type 0)
  int max_poc_lsb = 0;  // MaxPicOrderCntLsb (poc_type 0)

  bool intra() const { return slice_type % 5 == 2 || slice_type % 5 == 4; }  // I or SI
};

// The parameter sets' fields a slice header needs. A value: copy it to add a packet's in-band
// sets without changing what other packets see.
class H264ParameterSets {
 public:
  // Learns an SPS (NAL type 7) or PPS (8) from its NAL unit (header byte included); a malformed
  // or unsupported one is forgotten, so that the slices using it are not read.
  void add(const uint8_t* nal, size_t len);
  // Reads the header of the slice NAL unit `nal` (type 1 or 5, header byte included). False when
  // it is malformed or its parameter sets are unknown.
  bool slice(const uint8_t* nal, size_t len, H264Slice* out) const;

 private:
  struct Sps {
    bool known = false;
    bool separate_colour_planes = false;
    bool frame_mbs_only = true;
    int log2_max_frame_num = 0;
    int poc_type = 0;
    int log2_max_poc_lsb = 0;
  };
  std::array<Sps, 32> sps_{};
  std::array<int16_t, 256> pps_sps_ = make_unknown();  // PPS id -> SPS id, -1 unknown

  static std::array<int16_t, 256> make_unknown() {
    std::array<int16_t, 256> a{};
    a.fill(-1);
    return a;
  }
};

// True when the SEI NAL unit `nal` (type 6, header byte included) holds a recovery point with
// recovery_frame_cnt 0, an exact match and no broken link: decoding from this access unit gives
// exactly the pictures from it on in output order.
bool h264_exact_recovery_point(const uint8_t* nal, size_t len);

}  // namespace pysm::codec
