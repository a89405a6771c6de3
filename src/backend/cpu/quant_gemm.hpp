// Prefill GEMM on block-quantized weights (q8_0, q4_0, q4_k): y[t, r − r0] = Σ_i x[t, i] · W[r, i]
// for many activation rows at once, with integer dot products on the activations quantize_acts
// (quant_gemv.hpp) produced once per matmul. The prefill twin of gemv_q8_0 & co.
//
// Design
// - Same arithmetic, same order as the decode GEMV (quant_gemv.hpp: per block eight exact int32
//   lanes, fp32 fma into accumulator b mod 4, the fixed final reduction). So the result for an
//   activation row is BIT-IDENTICAL to what gemv_q8_0 & co. give for it: prefill and decode agree
//   exactly, and the scalar, AVX2 and AVX-512 paths agree exactly (quant_gemm_test checks both).
// - AVX-512 VNNI (quant_gemm_avx512.cpp): a register tile of 2 weight rows × kGemmTileT activation
//   rows (two zmm accumulators per pair, as the GEMV keeps per activation row), so that a weight
//   block is unpacked once for kGemmTileT activation rows and an activation block loaded once for 2
//   weight rows; q8_0 runs dpbusd with the activations as the unsigned operand (codes + 128, the
//   excess removed exactly by starting the int32 sum at −128·Σw) instead of moving w's sign onto
//   every activation row. Edge rows (an odd weight row, fewer than kGemmTileT activation rows) run
//   the GEMV kernel: the same results by construction.
// - AVX2 and scalar: the GEMV kernels of the path (the AVX2 one already keeps its 16 ymm registers
//   full with 1 weight row × 2 activation rows), under the same cache blocking.
// - Cache blocking: activation rows in chunks that fit L1 (kGemmChunkBytes of codes), each chunk
//   run against every weight row of the caller's panel (a few KiB a row, in L2), so activations
//   come from L2 once per panel rather than once per weight row.
//
// Threading: pure on its outputs, like the GEMV: disjoint [r0, r1) may run concurrently on one
// QuantActs. No allocation, no exceptions.
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/cpu/quant_gemv.hpp"

namespace retnet::cpu {

// Activation rows of the AVX-512 register tile.
inline constexpr int64_t kGemmTileT = 4;
// Bytes of activation codes per cache-blocking chunk (L1 is 32–48 KiB on current x86 cores; the
// weight rows of a tile and the scales need the rest).
inline constexpr int64_t kGemmChunkBytes = 16 << 10;

// The kernels: gemv_q8_0's contract (quant_gemv.hpp), built for many activation rows. Results are
// bit-identical to gemv_q8_0 & co. on the same arguments, on every path.
void gemm_q8_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy,
               QuantPath path = quant_path_default());
void gemm_q4_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy,
               QuantPath path = quant_path_default());
void gemm_q4_k(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy,
               QuantPath path = quant_path_default());

// Activation rows [t0, t0 + n) of a, as a view of the same buffer.
inline QuantActs quant_acts_rows(const QuantActs& a, int64_t t0, int64_t n) {
  QuantActs s = a;
  s.T = n;
  s.q = a.q + t0 * a.nb * kQActBlock;
  s.d = a.d + t0 * a.nb;
  s.s = a.s + t0 * a.nb;
  s.o = a.o + t0 * a.nb;
  return s;
}

}  // namespace retnet::cpu
