// Byte layouts of the block-quantized weight types (q8_0, q4_0, q4_k), shared by the quantizer, the
// loader, the CPU kernels and the CUDA kernels. Dependency-free and C++17 (nvcc includes it).
//
// The semantics follow the llama.cpp/GGML types of the same names, so that what users know of their
// quality carries over: the same block sizes, the same rounding of a value to its code and the same
// packing. All multi-byte fields are little-endian; scales are IEEE fp16 bit patterns.
//
//   q8_0  32 values:  d (fp16), q[32] (int8).               x_i = d · q_i
//   q4_0  32 values:  d (fp16), qs[16] (two 4-bit codes      x_i = d · (c_i − 8), c_i in [0, 15]
//                     per byte: value j in the low nibble of qs[j], value j+16 in the high nibble).
//   q4_k  256 values: d, dmin (fp16), scales[12] (eight 6-bit sub-block scales sc_s and eight 6-bit
//                     mins m_s, packed as kq4k_scale_min() reads them), qs[128] (4-bit codes c_i:
//                     sub-blocks 2p and 2p+1 share bytes qs[32p .. 32p+31], the even sub-block in
//                     the low nibbles, the odd one in the high nibbles).
//                     x_i = d · sc_s · c_i − dmin · m_s for i in sub-block s = i / 32.
#pragma once

#include <cstdint>

namespace retnet {

inline constexpr int kQ8_0Block = 32;
inline constexpr int kQ4_0Block = 32;
inline constexpr int kQ4KBlock = 256;
inline constexpr int kQ4KSub = 32;  // values per q4_k sub-block (8 per super-block)

struct BlockQ8_0 {
  uint16_t d;
  int8_t q[kQ8_0Block];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQ4_0Block / 2];
};
struct BlockQ4K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQ4KBlock / 2];
};

static_assert(sizeof(BlockQ8_0) == 34 && alignof(BlockQ8_0) == 2, "q8_0 block: 34 bytes");
static_assert(sizeof(BlockQ4_0) == 18 && alignof(BlockQ4_0) == 2, "q4_0 block: 18 bytes");
static_assert(sizeof(BlockQ4K) == 144 && alignof(BlockQ4K) == 2, "q4_k block: 144 bytes");

// Sub-block s (0..7) of a q4_k block: its 6-bit scale and min. Sub-blocks 0..3 keep theirs in the low
// six bits of scales[s] and scales[s+4]; sub-blocks 4..7 keep their low four bits in the nibbles of
// scales[s+4] (scale low, min high) and their top two bits in the spare top bits of scales[s-4]
// (scale) and scales[s] (min).
struct Q4KScaleMin {
  uint8_t scale;
  uint8_t min;
};
constexpr Q4KScaleMin kq4k_scale_min(const uint8_t* scales, int s) {
  if (s < 4) return {uint8_t(scales[s] & 63), uint8_t(scales[s + 4] & 63)};
  return {uint8_t((scales[s + 4] & 0x0F) | ((scales[s - 4] >> 6) << 4)),
          uint8_t((scales[s + 4] >> 4) | ((scales[s] >> 6) << 4))};
}

}  // namespace retnet
