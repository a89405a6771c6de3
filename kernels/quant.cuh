// Reading block-quantized weights (q8_0, q4_0, q4_k; layouts in common/quant_blocks.hpp) on the
// device: one element (embed, widen), or one 32-value sub-block (the decode GEMV, gemv_quant.cuh).
// Values are those of the CPU's dequantize_row (common/quant.cpp): d·q (q8_0), d·(c − 8) (q4_0),
// (d·sc)·c − dmin·m (q4_k), in fp32, with the multiply rounded before the subtraction (__fmul_rn: nvcc
// would otherwise contract it into an FMA, one rounding fewer than the CPU).
//
// Blocks are 34, 18 and 144 bytes and only 2-byte aligned, so the readers take 16-bit words (the
// widest load every block start allows) except where a whole row is known to be 16-byte aligned:
// q4_k rows are then read as 128-bit chunks (144 = 9 · 16 bytes per block).
#pragma once

#include "common/quant_blocks.hpp"
#include "device.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

__device__ __forceinline__ unsigned load_u16(const unsigned char* p) {
  return __ldg(reinterpret_cast<const unsigned short*>(p));
}

// 16 bytes at p (2-byte aligned; 16-byte aligned when `aligned`), little endian: byte 0 in u.x's low bits.
__device__ __forceinline__ uint4 load_16b(const unsigned char* p, bool aligned) {
  if (aligned) return __ldg(reinterpret_cast<const uint4*>(p));
  uint4 u;
  u.x = load_u16(p) | (load_u16(p + 2) << 16);
  u.y = load_u16(p + 4) | (load_u16(p + 6) << 16);
  u.z = load_u16(p + 8) | (load_u16(p + 10) << 16);
  u.w = load_u16(p + 12) | (load_u16(p + 14) << 16);
  return u;
}

__device__ __forceinline__ unsigned word_of(const uint4& u, int i) {
  return i == 0 ? u.x : i == 1 ? u.y : i == 2 ? u.z : u.w;  // i a constant after unrolling: no local array
}
// Byte b (0..15) of a 16-byte chunk.
__device__ __forceinline__ unsigned byte_of(const uint4& u, int b) {
  return (word_of(u, b >> 2) >> (8 * (b & 3))) & 0xffu;
}

// q4_k sub-block s (0..7): d·sc and dmin·m from a block's first 16 bytes h (d, dmin, scales[12] = bytes
// 4..15 of h), unpacked as kq4k_scale_min() does.
__device__ __forceinline__ void q4k_scale_min(const uint4& h, int s, float& ds, float& ms) {
  const auto sc = [&](int i) { return byte_of(h, 4 + i); };
  unsigned scale, min;
  if (s < 4) {
    scale = sc(s) & 63u;
    min = sc(s + 4) & 63u;
  } else {
    scale = (sc(s + 4) & 0x0Fu) | ((sc(s - 4) >> 6) << 4);
    min = (sc(s + 4) >> 4) | ((sc(s) >> 6) << 4);
  }
  ds = __fmul_rn(f16_bits_to_float((unsigned short)(h.x & 0xffffu)), float(scale));
  ms = __fmul_rn(f16_bits_to_float((unsigned short)(h.x >> 16)), float(min));
}

// Element i of a row-major array of blocks of type W starting at base (i counts elements from there).
template <DType W>
__device__ __forceinline__ float load_block_elem(const void* base, size_t i) {
  constexpr size_t BE = size_t(DTypeConst<W>::block_elems), BB = size_t(DTypeConst<W>::block_bytes);
  const unsigned char* blk = static_cast<const unsigned char*>(base) + (i / BE) * BB;
  const unsigned j = unsigned(i % BE);
  if constexpr (W == DType::Q8_0) {
    const float d = f16_bits_to_float((unsigned short)load_u16(blk));
    return __fmul_rn(d, float(static_cast<signed char>(blk[2 + j])));
  } else if constexpr (W == DType::Q4_0) {
    const float d = f16_bits_to_float((unsigned short)load_u16(blk));
    const unsigned byte = blk[2 + (j & 15u)];
    return __fmul_rn(d, float(int(j < 16 ? byte & 0x0Fu : byte >> 4) - 8));
  } else if constexpr (W == DType::Q4_K) {
    const uint4 h = load_16b(blk, false);
    const int s = int(j / 32);
    float ds, ms;
    q4k_scale_min(h, s, ds, ms);
    const unsigned byte = blk[16 + 32 * (s / 2) + (j & 31u)];
    return __fmul_rn(ds, float(s % 2 ? byte >> 4 : byte & 0x0Fu)) - ms;
  } else {
    static_assert(kNoKernelFor<W>, "load_block_elem: no reader for this weight type");
  }
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
