// Internals of the quantized GEMV (quant_gemv.hpp): each path's kernels, and the scalar pieces
// every path computes the same way (the design and the summation order are in quant_gemv.hpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/cpu/quant_gemv.hpp"

namespace retnet::cpu::qgemv {

// Weight bytes ahead of the current block that the kernels prefetch (one sequential stream per thread,
// as gemv_rows does for T >= 2: the hardware prefetcher alone falls behind a fast row kernel).
inline constexpr size_t kPrefetchBytes = 1536;

// The final sum of eight fp32 lanes, in the order the vector paths reduce a register:
// ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)).
inline float reduce8(const float* v) {
  const float s0 = v[0] + v[4], s1 = v[1] + v[5], s2 = v[2] + v[6], s3 = v[3] + v[7];
  return (s0 + s2) + (s1 + s3);
}

// The eight 6-bit scales and mins of a q4_k block (kq4k_scale_min for s = 0..7), from its three
// 32-bit words at once: bytes 0..3 hold sc0..3 (low six bits) and the top bits of sc4..7, bytes
// 4..7 m0..3 and the top bits of m4..7, bytes 8..11 the low nibbles of sc4..7 | m4..7.
// sc (and m) as eight bytes of a uint64, little-endian: byte s is sub-block s's.
inline void q4k_scales_mins(const uint8_t* scales, uint64_t& sc, uint64_t& m) {
  uint32_t u0, u1, u2;
  std::memcpy(&u0, scales, 4);
  std::memcpy(&u1, scales + 4, 4);
  std::memcpy(&u2, scales + 8, 4);
  const uint32_t sc_lo = u0 & 0x3f3f3f3fu, m_lo = u1 & 0x3f3f3f3fu;
  const uint32_t sc_hi = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
  const uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
  sc = uint64_t(sc_lo) | uint64_t(sc_hi) << 32;
  m = uint64_t(m_lo) | uint64_t(m_hi) << 32;
}

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The fp16 scales (first two bytes) of up to eight blocks [0, n) at blk, block_bytes apart, as eight
// fp16 words of a 128-bit value (lo: blocks 0..3, hi: 4..7; zero beyond n), for one vcvtph2ps: eight
// integer loads instead of a conversion and a broadcast per block.
template <bool kFull>
inline void gather_f16x8(const uint8_t* blk, size_t block_bytes, int n, uint64_t& lo, uint64_t& hi) {
  lo = hi = 0;
  for (int k = 0; k < 4; ++k)
    if (kFull || k < n) lo |= uint64_t(load_u16(blk + k * block_bytes)) << (16 * k);
  for (int k = 0; k < 4; ++k)
    if (kFull || k + 4 < n) hi |= uint64_t(load_u16(blk + (k + 4) * block_bytes)) << (16 * k);
}

// One group kernel of a vector path: activation rows [t0, t0 + its group size) of a against weight
// rows [r0, r1) (row r at w + r·row_bytes), writing y[t·ldy + (r − r0)] for those rows t as gemv_q8_0 does.
using GroupFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QuantActs& a, int64_t t0,
                         float* y, int64_t ldy);

// The driver of every vector path; fns[g − 1] runs g activation rows at once, g <= group (the rows
// whose accumulators fit in registers). Up to `group` rows: every weight row once, in one call. More:
// one weight row at a time (one sequential stream), read from memory by the first group and from L1
// by the others.
inline void run_groups(const GroupFn* fns, int64_t group, const QuantActs& a, const uint8_t* w, size_t row_bytes,
                       int64_t r0, int64_t r1, float* y, int64_t ldy) {
  if (a.T <= group) return fns[a.T - 1](w, row_bytes, r0, r1, a, 0, y, ldy);
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t0 = 0; t0 < a.T; t0 += group)
      fns[std::min<int64_t>(group, a.T - t0) - 1](w, row_bytes, r, r + 1, a, t0, y + (r - r0), ldy);
}

// One path's kernel for one weight type: gemv_q8_0's contract with w as bytes.
using RowsFn = void (*)(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy);

// Portable C++ (quant_gemv.cpp): the definition of the results, which the vector paths reproduce bit
// for bit.
void q8_0_scalar(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy);
void q4_0_scalar(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy);
void q4_k_scalar(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy);
// Activation quantization without vector code (quantize_acts uses AVX2 when built with it; the two
// write identical bytes, which quant_gemv_test checks).
QuantActs quantize_acts_scalar(const float* x, int64_t T, int64_t in, void* buf);

// AVX2 (quant_gemv_avx2.cpp), when the build has RETNET_AVX2; null otherwise.
extern const RowsFn kAvx2[3];  // q8_0, q4_0, q4_k
// AVX-512 VNNI (quant_gemv_avx512.cpp), when the compiler can target it; null otherwise.
extern const RowsFn kAvx512[3];
// True when this CPU and OS run AVX-512 F/BW/VL/VNNI (the RETNET_NO_AVX512 switch aside).
bool cpu_has_avx512_vnni();

}  // namespace retnet::cpu::qgemv
