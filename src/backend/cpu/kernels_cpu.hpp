// CPU compute kernels (AVX2/FMA/F16C where the build enables them, portable C++ otherwise).
// Single-threaded building blocks; cpu_backend.cpp splits work across the thread pool. Each file is
// named after its CUDA twin in kernels/: norm_cpu.cpp ↔ norm.cu, rotary_cpu.cpp ↔ rotary.cu,
// elementwise_cpu.cpp ↔ elementwise.cu, matmul_cpu.cpp ↔ gemv.cu (and cuBLAS), retention_cpu.cpp ↔
// retention_chunk.cu / retention_step.cu, weights_cpu.hpp ↔ weights.cuh.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu/quant_gemv.hpp"
#include "common/dtype.hpp"

namespace retnet::cpu {

// The activations, as kernels/device.cuh computes them.
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float gelu(float x) { return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f)); }

// ---- norm_cpu.cpp
// y = x · rsqrt(mean(x²) + eps) (· w)                          x, y [D] (may alias), w [D] or null
void rms_norm_row(const float* x, int64_t D, const float* w, float eps, float* y);
// o = rmsnorm(o) (· w) (· silu(g))                             o, g [dv], w [dv] or null, g or null
void group_norm_gate_row(float* o, const float* g, int64_t dv, const float* w, float eps);

// ---- rotary_cpu.cpp
// Rotates one token's q and k rows [H*dk] at position pos (Backend::theta_shift's contract for one t).
// cs: scratch of dk floats (the cos and sin of the dk/2 angles).
void theta_shift_row(float* q, float* k, int64_t H, int64_t dk, int64_t pos, const float* theta32,
                     const double* theta64, Pairing pairing, AngleMode angles, float q_scale, float k_scale, float* cs);

// ---- elementwise_cpu.cpp
// Widens n elements of a weight row to fp32 (a block type: n a multiple of its block, dequantized).
void widen_row(const void* src, DType t, int64_t n, float* dst);
// out [D] = scale · table[id, :]                              table [V, D]
void embed_row(const WeightRef& table, int32_t id, float scale, float* out);
// out[i] = act(a[i]) · b[i] for i in [begin, end)
void glu_range(const float* a, const float* b, float* out, int64_t begin, int64_t end, Activation act);
// x = x·alpha + y                                              x, y [n]
void residual(float* x, const float* y, float alpha, size_t n);

// ---- matmul_cpu.cpp

// y[t, r - r0] (row stride ldy) = Σ_i x[t, i] · W[r, i] for r in [r0, r1), t < T.
// T small (decode, batch decode): weights streamed once, widened on the fly; scratch holds the
// activations de-interleaved for the BF16 kernel (T·in floats).
void gemv_rows(const float* x, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
               int64_t ldy, std::vector<float>& scratch);
// The same for block-typed weights (q8_0, q4_0, q4_k), on activations [a.T, in] quantized once per
// matmul by quantize_acts (quant_gemv.hpp): one kernel per block type, bit-identical on every path.
// gemv_rows refuses block types (they need the quantized activations).
void gemv_rows_quant(const QuantActs& a, const WeightRef& w, int64_t r0, int64_t r1, float* y, int64_t ldy);
// gemv_rows_quant's contract for many activation rows (prefill): the integer GEMM of quant_gemm.hpp,
// the panel repacked into pack (grown to quant_pack_bytes(r1 − r0, in) + 64). Throws for a type
// without one.
void gemm_rows_quant(const QuantActs& a, const WeightRef& w, int64_t r0, int64_t r1, float* y, int64_t ldy,
                     std::vector<uint8_t>& pack);
// Same contract for large T: panels of W widened to fp32 into scratch, then sgemm (single-threaded).
void gemm_rows(const float* x, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
               int64_t ldy, std::vector<float>& scratch);

// Opt-in bf16-activation GEMM (gemm_bf16_avx512.cpp; LoadOptions::bf16_activations), AVX512-BF16 only.
// True when this CPU and OS run AVX512-BF16 (checked once, at run time; the build stays AVX2).
bool bf16_gemm_supported();
// xb [T, (in+1)/2] = x [T, in] rounded to bf16 (nearest even), as pairs (low half = even k; odd in
// padded with a zero). Throws unless bf16_gemm_supported().
void round_rows_bf16(const float* x, int64_t T, int64_t in, uint32_t* xb);
// gemm_rows' contract with x given as round_rows_bf16(x) and BF16 weights: products of bf16 values,
// summed in fp32. pack grows to the packed panel (32·ceil((r1-r0)/32)·(in+1)/2 uint32).
void gemm_bf16_rows(const uint32_t* xb, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
                    int64_t ldy, std::vector<uint32_t>& pack);

// Torchscale's row scalar ρ_i = r_i · max(inner_i, cross_chunk) of chunkwise retention, where
// cross_chunk needs the maximum over ALL dv columns of the state's column sums: when a head is split
// into column blocks, each block records its part and retention_chunk_normalize divides afterwards.
struct ChunkNormParts {
  float* r = nullptr;        // [H, T] r_i = sqrt(Σ_j≤i γ^(i-j)) (written by column block 0)
  float* inner = nullptr;    // [H, T] clamp(Σ_j |A_ij| / r_i, 1, inner_max) (block 0)
  float* colmax = nullptr;   // [H, blocks, n_chunks] max over the block's columns of Σ_dk |Z| before the chunk
  int64_t blocks = 1, n_chunks = 0;
};
// Width of the value-column tiles that retention_chunk_cols multiplies (counted from column 0 of a
// head); a column block must start on a multiple of it (CpuBackend::retention_chunk checks its
// split before handing blocks to the workers, which must not throw).
inline constexpr int64_t kRetentionColTile = 128;
// Chunkwise/parallel retention for head h, value columns [c0, c1) (block `blk` of parts.blocks) of
// v, the state and out (see RetentionChunkArgs). The columns are independent but for torchscale's
// cross scale, so with a torchscale norm out receives the rows before the division by ρ and parts
// what retention_chunk_normalize needs. scratch grows as needed.
void retention_chunk_cols(const RetentionChunkArgs& a, int64_t h, int64_t c0, int64_t c1, int64_t blk,
                          const ChunkNormParts& parts, std::vector<float>& scratch);
// The scratch retention_chunk_cols grows to, in floats, for chunk length C and a block of n columns:
// A [C, C] | QZ or V' [C, tile] | decay powers [C + 1] | column sums [n].
inline size_t retention_chunk_scratch_floats(int64_t C, int64_t n) {
  return size_t(C * C + C * std::min(n, kRetentionColTile) + C + 1 + n);
}
// out[t, h] /= ρ for rows [t0, t1) of every head, once all column blocks are done (torchscale norms).
void retention_chunk_normalize(const RetentionChunkArgs& a, const ChunkNormParts& parts, int64_t t0, int64_t t1);
// One recurrent step, split by blocks of state rows (along dk): every block decays and updates its
// rows in place and writes its partial read-out part[c] = Σ_{j0<=j<j1} q_j·Z_j[c] over all dv
// columns; retention_step_reduce sums a head's parts in block order. Rows keep the state's
// contiguous layout: column blocks would read short pieces far apart, which the prefetchers stream
// far more slowly than whole rows (docs/benchmarks.md). The blocks are fixed (not per thread),
// so results do not depend on the thread count.
inline constexpr int64_t kRetentionStepRows = 64;
void retention_step_rows(const RetentionStepArgs& a, int64_t b, int64_t h, int64_t j0, int64_t j1, float* part);
// out[b, h, :] = (Σ_p parts[p, :]) · out_scale[b, h], parts [n_parts, dv] summed in order p = 0, 1, ...
void retention_step_reduce(const RetentionStepArgs& a, int64_t b, int64_t h, const float* parts, int64_t n_parts);

}  // namespace retnet::cpu
