// Decode GEMV on block-quantized weights (q8_0, q4_0, q4_k; layouts in common/quant_blocks.hpp):
// y[t, r − r0] = Σ_i x[t, i] · W[r, i] for rows [r0, r1) of W and T activation rows, with integer
// dot products. The CPU twin of what gemv_rows (matmul_cpu.cpp) does for F32/F16/BF16 weights.
//
// Design
// - Activations are quantized once per matmul (quantize_acts), shared read-only by every thread and
//   every job of a fused matmul: per block of 32 values, int8 codes q = round(x / d) (nearest, ties
//   to even) with an fp32 scale d = max|x| / 127 (fp32: more exact than llama.cpp's fp16, and free),
//   d·Σq (q4_k's min term) and −8·Σq (q4_0's offset, summed apart like q4_k's mins, so that its
//   4-bit codes stay the unsigned operand of maddubs/dpbusd and the offset costs one fma per eight
//   blocks: signed codes c − 8 would cost the sign trick per block and row, measured 25–50% slower):
//   44 bytes a block, so that eight rows of a 4096-wide input stay near L1 (an earlier format with d
//   and the offset per lane took 104 bytes and made batches of 8 slower per row than batches of 4).
// - Block dot: for weight block b and activation row t, eight int32 lanes L_j = Σ of the four exact
//   products w_i·q_i, i in [4j, 4j + 4) — what _mm256_maddubs_epi16 + _mm256_madd_epi16 (AVX2) and
//   _mm512_dpbusd_epi32 (AVX-512 VNNI, two blocks per register) both produce (q8_0: |w| the unsigned
//   operand, w's sign moved onto q; q4_0: the codes c). Then, in fp32, acc[b mod 4][j] =
//   fma(float(L_j), s_w(b) · d(t, b), acc[b mod 4][j]), where s_w is the block's scale widened from
//   fp16 (q4_k: d · sc_s, exact). q4_k also keeps acc_min[s] = fma(dmin · m_s, d·Σq of sub-block s,
//   acc_min[s]) per sub-block s of its super-blocks; q4_0 keeps acc_off[b mod 8] = fma(float(−8·Σq),
//   s_w · d, acc_off[b mod 8]). Four accumulators, not one or two: a single row (T = 1) would
//   otherwise wait on the fma latency chain (measured ~25%).
// - y = R((acc[0] + acc[2]) + (acc[1] + acc[3])) (− R(acc_min) for q4_k, + R(acc_off) for q4_0),
//   with R(v) = ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)). The integers are exact and every
//   fp32 operation above happens in that order on every path, so the scalar, AVX2 and AVX-512
//   kernels give BIT-IDENTICAL results (a model's output does not depend on the machine), and an
//   activation row's result does not depend on T or on which rows it is batched with
//   (quant_gemv_test checks all three). The vector paths form the products s_w · d once per eight
//   blocks (or per q4_k super-block) and row where that measured faster: the same fp32 products.
// - Batches: one weight row at a time, read to its end, as in gemv_rows: each thread's weights are
//   one sequential stream, prefetched ahead. The row is unpacked once per group of activation rows
//   (all their accumulators in registers: AVX2 2, AVX-512 8 rows) and re-read from L1 by later
//   groups, so weights come from memory once for all T rows.
// - Dispatch at run time (quant_path_default, decided once): AVX-512 VNNI when the CPU and OS have
//   avx512f/bw/vl/vnni (quant_gemv_avx512.cpp carries the target attributes; the build stays -mavx2),
//   else AVX2 when the build has it (RETNET_AVX2), else the portable scalar code. RETNET_NO_AVX512=1
//   in the environment forces the AVX2 path, so that both are tested on machines that have AVX-512.
//
// Threading: every function here is pure on its outputs: disjoint [r0, r1) ranges may run
// concurrently on one QuantActs, which nothing modifies after quantize_acts. No allocation, no
// exceptions (preconditions are the caller's: the loader refuses a width that a type does not fit).
// Alignment: none required of W (rows are read with unaligned loads and memcpy); the activation
// buffer 4 at least, 64 for speed (quantize_acts).
#pragma once
#include <cstddef>
#include <cstdint>

#include "common/quant_blocks.hpp"

namespace retnet::cpu {

// Values per activation block (q4_k's 256-value super-blocks use eight of them).
inline constexpr int64_t kQActBlock = 32;

// The quantized activations: a view over the buffer quantize_acts filled.
struct QuantActs {
  int64_t T = 0;               // activation rows
  int64_t nb = 0;              // blocks of 32 per row (in = 32·nb)
  const int8_t* q = nullptr;   // [T, nb, 32] codes in [−127, 127]
  const float* d = nullptr;    // [T, nb] scale: x ≈ d·q (NaN when the block holds a NaN or an infinity)
  const float* s = nullptr;    // [T, nb] d · Σ q over the block
  const int32_t* o = nullptr;  // [T, nb] −8 · Σ q over the block
};

// Bytes of the buffer quantize_acts needs for x [T, in] (in a multiple of 32).
size_t quant_acts_bytes(int64_t T, int64_t in);
// Quantizes x [T, in] (in a multiple of 32) into buf (quant_acts_bytes(T, in) bytes, aligned to 4
// at least: its scale arrays are floats; give it 64, as a 16-byte-aligned buffer splits half the
// 32-byte code loads across cache lines, measured ~5–10% slower) and returns the view over it.
// Deterministic: the same codes on every path and machine. A block with a NaN or an infinity gets
// d = s = NaN, so that the outputs it feeds are NaN, as an fp32 product would be, rather than
// silently finite.
QuantActs quantize_acts(const float* x, int64_t T, int64_t in, void* buf);

enum class QuantPath : int { Scalar, Avx2, Avx512Vnni };
const char* quant_path_name(QuantPath p);
// True when the build has path p and this CPU (and OS) can run it.
bool quant_path_supported(QuantPath p);
// The path the entry points take by default: the best supported one, AVX-512 VNNI excluded when the
// environment has RETNET_NO_AVX512 set (to anything but "" or "0"). Decided once per process.
QuantPath quant_path_default();

// Bytes of one weight row of `in` values.
constexpr size_t q8_0_row_bytes(int64_t in) { return size_t(in / kQ8_0Block) * sizeof(BlockQ8_0); }
constexpr size_t q4_0_row_bytes(int64_t in) { return size_t(in / kQ4_0Block) * sizeof(BlockQ4_0); }
constexpr size_t q4_k_row_bytes(int64_t in) { return size_t(in / kQ4KBlock) * sizeof(BlockQ4K); }

// The kernels. a: quantize_acts(x, T, in) with in = 32·a.nb (q4_k: in a multiple of 256); w: W's
// row 0 (row r at w + r·row_bytes(in), blocks packed); y[t·ldy + (r − r0)] for t < a.T, r in
// [r0, r1). Any T >= 1; path must be supported (quant_path_supported).
void gemv_q8_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy,
               QuantPath path = quant_path_default());
void gemv_q4_0(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy,
               QuantPath path = quant_path_default());
void gemv_q4_k(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy,
               QuantPath path = quant_path_default());

// The same entry points as a template on the block struct, for a visit_dtype case each.
template <class Block>
struct QuantKernel;
template <>
struct QuantKernel<BlockQ8_0> {
  static constexpr size_t row_bytes(int64_t in) { return q8_0_row_bytes(in); }
  static void gemv(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    gemv_q8_0(a, w, r0, r1, y, ldy);
  }
};
template <>
struct QuantKernel<BlockQ4_0> {
  static constexpr size_t row_bytes(int64_t in) { return q4_0_row_bytes(in); }
  static void gemv(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    gemv_q4_0(a, w, r0, r1, y, ldy);
  }
};
template <>
struct QuantKernel<BlockQ4K> {
  static constexpr size_t row_bytes(int64_t in) { return q4_k_row_bytes(in); }
  static void gemv(const QuantActs& a, const void* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
    gemv_q4_k(a, w, r0, r1, y, ldy);
  }
};

}  // namespace retnet::cpu
