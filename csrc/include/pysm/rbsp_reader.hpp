// Bit reading of H.264/HEVC NAL unit payloads (RBSP): fixed-width and Exp-Golomb fields, with
// the emulation prevention bytes dropped.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pysm::codec {

// Reads bits of a NAL unit's payload, dropping emulation prevention bytes (00 00 03 -> 00 00).
// Past the end it reads zeros and ok() turns false; callers check ok() once, at the end.
class RbspReader {
 public:
  RbspReader(const uint8_t* d, size_t n) : d_(d), n_(n) {}

  bool ok() const { return ok_; }

  uint32_t bit() {
    if (left_ == 0 && !load()) return 0;
    --left_;
    return (cur_ >> left_) & 1u;
  }

  uint32_t bits(int k) {
    uint32_t v = 0;
    while (k-- > 0) v = (v << 1) | bit();
    return v;
  }

  // ue(v): Exp-Golomb; more than 31 leading zeros is malformed.
  uint32_t ue() {
    int zeros = 0;
    while (ok_ && bit() == 0)
      if (++zeros > 31) {
        ok_ = false;
        return 0;
      }
    return ok_ ? ((1u << zeros) - 1) + bits(zeros) : 0;
  }

  int32_t se() {
    const uint32_t k = ue();
    return (k & 1) ? static_cast<int32_t>((k + 1) / 2) : -static_cast<int32_t>(k / 2);
  }

  // At a byte boundary: whether a byte other than the rbsp_trailing_bits (0x80) and zero
  // padding after them is left.
  bool more_bytes() const {
    if (!ok_ || left_ != 0) return false;
    for (size_t i = pos_; i < n_; ++i) {
      if (d_[i] == 0) continue;
      if (d_[i] != 0x80) return true;
      for (size_t j = i + 1; j < n_; ++j)
        if (d_[j] != 0) return true;
      return false;
    }
    return false;
  }

 private:
  bool load() {
    if (pos_ >= n_) return ok_ = false;
    uint8_t b = d_[pos_++];
    if (zeros_ >= 2 && b == 3) {
      if (pos_ >= n_) return ok_ = false;
      b = d_[pos_++];
      zeros_ = 0;
    }
    zeros_ = b == 0 ? zeros_ + 1 : 0;
    cur_ = b;
    left_ = 8;
    return true;
  }

  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0;
  int zeros_ = 0;
  uint32_t cur_ = 0;
  int left_ = 0;
  bool ok_ = true;
};

}  // namespace pysm::codec
