// Prefill GEMM on block-quantized weights (q8_0, q4_0, q4_k): y[t, r − r0] = Σ_i x[t, i] · W[r, i]
// for many activation rows at once, with integer dot products on the activations quantize_acts
// (quant_gemv.hpp) produced once per matmul (the decode path's int8 blocks of 32, reused as they are).
//
// Design
// - The decode GEMV sums each block in eight int32 lanes and scales every lane in fp32: four vector
//   ops per 64 products, no better than sgemm once many rows share the weights (measured ~1.0–1.2×
//   sgemm). Here the lanes are 16 WEIGHT ROWS instead: a panel of W is first repacked (quant_pack)
//   so that one 64-byte load holds four codes of one block for 16 rows; dpbusd against the
//   activation's four codes broadcast sums a whole block per row in eight steps, and the fp32 work
//   (convert, scale, fma) is then one op per block for 16 outputs. Repacking costs one pass over
//   the panel, shared by every activation row.
// - Codes are packed unsigned: u = w + 128 (q8_0), the 4-bit codes c (q4_0: w = c − 8; q4_k), and
//   the int32 sum starts at −bias·Σq, which quantize_acts already has (o = −8·Σq): L = Σ w·q exactly
//   (q4_k: Σ c·q). Per packed block: scale s_w as fp32 (q4_k: d·sc_s, exact) and q4_k's min dmin·m_s.
// - Order (the definition of the result, which the scalar, AVX2 and AVX-512 kernels all follow, so
//   the three are BIT-IDENTICAL): per output (t, r), for blocks b = 0, 1, … in turn,
//   acc = fma(float(L_b), s_w(r, b) · d(t, b), acc); q4_k also accm = fma(dmin·m_s, d·Σq, accm) and
//   y = acc − accm. One fp32 rounding chain per output, as a dot product of block sums: not the
//   decode GEMV's lane order, so prefill and decode agree to fp32 rounding (a few ulps of the
//   summed terms; quant_gemm_test bounds both against a double reference), not bit for bit.
// - Tiles: AVX-512 VNNI 16 weight rows × up to 8 activation rows (the eight 64-byte code registers
//   of a block stay in registers for all of them); AVX2 the same with two 8-row halves and
//   maddubs/madd (q8_0 with w's sign moved onto q, as maddubs needs); scalar plain loops.
// - Cache blocking: the caller's panel of weight rows is packed once (a few KiB per row, in L2);
//   activation rows run in chunks of kGemmChunkBytes of codes against every 16-row group.
//
// Threading: pure on its outputs; disjoint [r0, r1) may run concurrently on one QuantActs, each with
// its own pack buffer. No allocation, no exceptions (preconditions are the caller's, as the GEMV's).
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/cpu/quant_gemv.hpp"

namespace retnet::cpu {

// Bytes of activation codes per cache-blocking chunk.
inline constexpr int64_t kGemmChunkBytes = 16 << 10;

// Bytes of the pack buffer the kernels need for rows weight rows of width in (a multiple of 32).
size_t quant_pack_bytes(int64_t rows, int64_t in);

// The kernels: gemv_q8_0's contract (quant_gemv.hpp: a = quantize_acts(x, T, in), w = W's row 0,
// y[t·ldy + (r − r0)]) plus pack, quant_pack_bytes(r1 − r0, in) bytes aligned to 64, which they
// overwrite. Any T >= 1.
void gemm_q8_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, void* pack,
               QuantPath path = quant_path_default());
void gemm_q4_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, void* pack,
               QuantPath path = quant_path_default());
void gemm_q4_k(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy, void* pack,
               QuantPath path = quant_path_default());

}  // namespace retnet::cpu
