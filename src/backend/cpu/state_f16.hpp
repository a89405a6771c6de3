// f16 storage of the recurrent state (LoadOptions::state_dtype = "f16"), CPU side: conversions for
// prefill blocks and snapshots, and the recurrent step on an f16 state (half the state memory, and
// half the bytes a decode step reads and writes: 2 × 9 instead of 2 × 18 MiB at the 125m shape; on
// one thread the step alone ran 1.7× as fast at the 1.3b shape). Values are stepped in fp32 and only
// stored as f16 (round to nearest even, F16C's vcvtps2ph; beyond ±65504 they become infinite, so an
// out-of-range state shows as non-finite logits instead of a silently clipped one).
#pragma once
#include <cstddef>
#include <cstdint>

#include "backend/backend.hpp"

namespace retnet::cpu {

// dst[i] = float(src[i]) (exact), n values.
void widen_f16(const uint16_t* src, float* dst, size_t n);
// dst[i] = f16(src[i]), nearest even; |x| >= 65520 gives ±infinity, NaN stays NaN.
void narrow_f16(const float* src, uint16_t* dst, size_t n);
// retention_step_rows (kernels_cpu.hpp) on a state of f16 bits: for rows j in [j0, j1) of head h of
// batch row b, z = fma(γ, widen(Z_j[c]), k_j·v[c]) in fp32, Z_j[c] = narrow(z), and the partial
// read-out part[c] = Σ_j q_j·z with the fp32 z (the value this step computed, before its rounding).
void retention_step_rows_f16(const RetentionStepArgs& a, int64_t b, int64_t h, int64_t j0, int64_t j1, float* part);

}  // namespace retnet::cpu
