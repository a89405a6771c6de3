// CPU compute kernels (AVX2/FMA/F16C where the build enables them, portable C++ otherwise).
// Single-threaded building blocks; cpu_backend.cpp splits work across the thread pool.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/backend.hpp"

namespace retnet::cpu {

// y[t, r - r0] (row stride ldy) = Σ_i x[t, i] · W[r, i] for r in [r0, r1), t < T.
// T small (decode, batch decode): weights streamed once, widened on the fly.
void gemv_rows(const float* x, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
               int64_t ldy, std::vector<float>& scratch);
// Same contract for large T: panels of W widened to fp32 into scratch, then sgemm (single-threaded).
void gemm_rows(const float* x, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
               int64_t ldy, std::vector<float>& scratch);

// Widens n elements of a weight row to fp32.
void widen_row(const void* src, DType t, int64_t n, float* dst);

// Chunkwise/parallel retention for one head h (see RetentionChunkArgs). scratch grows as needed.
void retention_chunk_head(const RetentionChunkArgs& a, int64_t h, std::vector<float>& scratch);
// One recurrent step for row b, head h, value columns [c0, c1) of its state and output: the
// columns are independent (decay, update and read-out all run along dk per column), so a step
// splits across threads by column blocks with every column computed exactly as a whole head would.
void retention_step_cols(const RetentionStepArgs& a, int64_t b, int64_t h, int64_t c0, int64_t c1);

}  // namespace retnet::cpu
