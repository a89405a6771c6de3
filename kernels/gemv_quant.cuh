// Device code of the decode GEMV on block-quantized weights (q8_0, q4_0, q4_k): y[t, r] = Σ_i x[t, i]·W[r, i]
// for T ≤ 8 rows of x. Launcher: gemv.cu (launch_gemv dispatches here for block types).
//
// Numerics (the decision): activations stay fp32. Each weight is dequantized in registers to exactly
// the value the CPU's dequantize_row gives (quant.cuh) and fma'd with the fp32 x into an fp32
// accumulator, so the result is that of a GEMV on the dequantized fp32 matrix up to summation order,
// what the CPU backend's prefill computes too (its decode quantizes x to int8 instead: faster on AVX,
// but another rounding). The summation order does not depend on T: row t of a batch gets the bits it
// gets alone (every lane walks its blocks in the same order, then the same butterfly).
//
// Memory access: one warp per output row r (8 per block of 256 threads), lane l takes blocks l, l+32, …
// of the row, whole, so no block's scale is needed by two lanes and nothing is exchanged but the final
// sum. Blocks are 34 / 18 / 144 bytes and only 2-byte aligned:
//   * q8_0, q4_0: read as 16-bit words (the widest load legal at every block start; a 32-bit load
//     would be aligned for every other block only, which would split the warp between two paths).
//     One load instruction of the warp touches the same word of 32 consecutive blocks, 34 (18) bytes
//     apart: 1088 (576) consecutive bytes, 9 (5) 128-byte lines, and the block's 17 (9) loads together
//     use every byte of those lines. The lines stay in L1 between those loads, so DRAM and L2 see each
//     weight byte once, at full sector efficiency; the price is more L1 wavefronts per byte than
//     128-bit loads need, which a bandwidth-bound GEMV has to spare at T ≤ 8.
//   * q4_k: 144 = 9 · 16 bytes, so in a 16-byte aligned row (cudaMalloc'd weights: every row, since
//     row bytes are a multiple of 144 = 9·16) every block is 9 aligned 128-bit chunks, read with
//     128-bit loads; the warp's load of chunk c of 32 blocks touches 32 sectors, and the 9 loads of a
//     block use all bytes of them (L1 again). A row that is not 16-byte aligned (only a caller's
//     offset pointer) takes 16-bit loads, decided once per row: uniform across the warp.
#pragma once

#include "gemv.cuh"  // kGemvWarps
#include "quant.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

// acc[t] += Σ_e wv[e] · x[t·in + e] for 8 consecutive values; XVec: x there is 16-byte aligned.
// Blocks are consumed 8 values at a time (not a whole 32-value sub-block): with T accumulators and T
// rows of x live, wider pieces spill registers at T ≥ 5.
template <int T, bool XVec>
__device__ __forceinline__ void dot8(const float* wv, const float* __restrict__ x, int64_t in, float* acc) {
#pragma unroll
  for (int t = 0; t < T; ++t) {
    const float* xt = x + t * in;
    if constexpr (XVec) {
#pragma unroll
      for (int e = 0; e < 8; e += 4) {
        const float4 xv = *reinterpret_cast<const float4*>(xt + e);
        acc[t] += wv[e] * xv.x;
        acc[t] += wv[e + 1] * xv.y;
        acc[t] += wv[e + 2] * xv.z;
        acc[t] += wv[e + 3] * xv.w;
      }
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[t] += wv[e] * xt[e];
    }
  }
}

// One block at blk against x (the block's first element of row 0 of x): acc[t] += its products, in a
// fixed order (element order but for q4_0's interleaved halves).
template <DType W, int T, bool XVec>
__device__ __forceinline__ void gemv_block(const unsigned char* blk, bool aligned, const float* __restrict__ x,
                                           int64_t in, float* acc) {
  // Pieces of 8 values unrolled: all of them at T ≤ 2, one at a time above (a fully unrolled block
  // keeps T·32 values of x live and needs all 255 registers from T = 5 on).
  [[maybe_unused]] constexpr int kU = T <= 2 ? 4 : 1;  // unused by host compilers
  float wv[8];
  if constexpr (W == DType::Q8_0) {
    const float d = f16_bits_to_float((unsigned short)load_u16(blk));
#pragma unroll(kU)
    for (int c = 0; c < 4; ++c) {
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const unsigned h = load_u16(blk + 2 + 8 * c + 2 * i);  // q[8c+2i] low byte, q[8c+2i+1] high byte
        wv[2 * i] = __fmul_rn(d, float(static_cast<signed char>(h & 0xffu)));
        wv[2 * i + 1] = __fmul_rn(d, float(static_cast<signed char>(h >> 8)));
      }
      dot8<T, XVec>(wv, x + 8 * c, in, acc);
    }
  } else if constexpr (W == DType::Q4_0) {
    const float d = f16_bits_to_float((unsigned short)load_u16(blk));
    // Values j < 16 in the low nibbles of qs[j], j + 16 in the high ones: each piece of 8 bytes is loaded
    // once and gives values 8c .. 8c+7 and 16+8c .. 16+8c+7.
#pragma unroll(kU)
    for (int c = 0; c < 2; ++c) {
      unsigned h[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) h[i] = load_u16(blk + 2 + 8 * c + 2 * i);  // qs[8c+2i], qs[8c+2i+1]
#pragma unroll(kU)
      for (int hi = 0; hi < 2; ++hi) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const unsigned v = h[i] >> (4 * hi);
          wv[2 * i] = __fmul_rn(d, float(int(v & 0x0Fu) - 8));
          wv[2 * i + 1] = __fmul_rn(d, float(int((v >> 8) & 0x0Fu) - 8));
        }
        dot8<T, XVec>(wv, x + 16 * hi + 8 * c, in, acc);
      }
    }
  } else if constexpr (W == DType::Q4_K) {
    const uint4 h = load_16b(blk, aligned);  // d, dmin, scales[12]
    // Sub-blocks 2p (low nibbles) and 2p+1 (high nibbles) share qs[32p .. 32p+31] (bytes 16 + 32p ..).
#pragma unroll 1
    for (int p = 0; p < 4; ++p) {
      const uint4 q0 = load_16b(blk + 16 + 32 * p, aligned), q1 = load_16b(blk + 32 + 32 * p, aligned);
#pragma unroll
      for (int hi = 0; hi < 2; ++hi) {
        float ds, ms;
        q4k_scale_min(h, 2 * p + hi, ds, ms);
#pragma unroll(kU)
        for (int c = 0; c < 4; ++c) {
          const unsigned lo4 = c < 2 ? word_of(q0, 2 * c) : word_of(q1, 2 * c - 4);  // bytes 8c .. 8c+3
          const unsigned hi4 = c < 2 ? word_of(q0, 2 * c + 1) : word_of(q1, 2 * c - 3);
#pragma unroll
          for (int e = 0; e < 8; ++e) {
            const unsigned byte = ((e < 4 ? lo4 : hi4) >> (8 * (e & 3))) & 0xffu;
            wv[e] = __fmul_rn(ds, float(hi ? byte >> 4 : byte & 0x0Fu)) - ms;
          }
          dot8<T, XVec>(wv, x + (2 * p + hi) * 32 + 8 * c, in, acc);
        }
      }
    }
  } else {
    static_assert(kNoKernelFor<W>, "gemv_block: no block reader for this weight type");
  }
}

// grid ceil(rows / 8), block 256. x [T, in]; W [rows, in / BE blocks]; y[t·ldy + r]. in % BE == 0.
template <DType W, int T>
__global__ void __launch_bounds__(kGemvWarps * 32, 2)
    gemv_quant_kernel(const float* __restrict__ x, int64_t in, const void* __restrict__ w, int64_t rows,
                      float* __restrict__ y, int64_t ldy) {
  constexpr int64_t BE = DTypeConst<W>::block_elems, BB = DTypeConst<W>::block_bytes;
  static_assert(BE % 32 == 0, "gemv_quant_kernel: blocks of whole 32-value sub-blocks");
  const int lane = int(threadIdx.x & 31u);
  const int64_t r = int64_t(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (r >= rows) return;  // whole warp leaves together: no collective is split
  const int64_t nb = in / BE;
  const unsigned char* wr = static_cast<const unsigned char*>(w) + r * nb * BB;
  const bool aligned = (reinterpret_cast<uintptr_t>(wr) & 15u) == 0;
  // in is a multiple of 32, so every block's x starts 16-byte aligned when x does.
  const bool xvec = (reinterpret_cast<uintptr_t>(x) & 15u) == 0;

  float acc[T];
#pragma unroll
  for (int t = 0; t < T; ++t) acc[t] = 0.f;
  if (xvec) {
    for (int64_t k = lane; k < nb; k += 32) gemv_block<W, T, true>(wr + k * BB, aligned, x + k * BE, in, acc);
  } else {
    for (int64_t k = lane; k < nb; k += 32) gemv_block<W, T, false>(wr + k * BB, aligned, x + k * BE, in, acc);
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0) y[t * ldy + r] = s;
  }
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
