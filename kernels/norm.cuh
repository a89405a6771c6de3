// Device code of the RMS norms: the block norm over D (one block per token) and the per-head group
// norm over dv with the output gate (one warp per (token, head) row). Same operation order as the
// CPU twin (src/backend/cpu/norm_cpu.cpp): y = (x · inv) · w, then silu(g) · y.
#pragma once

#include "launchers.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

constexpr int kNormThreads = 256;

// x, y [T, D] (may alias: every element is read by the thread that later writes it, and all reads of
// the sum happen before the barrier inside block_sum), w [D] or null.
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(const float* x, int64_t D, const float* w, float eps,
                                                               float* y) {
  RETNET_SHARED(float, red, 32);
  const float* xr = x + int64_t(blockIdx.x) * D;
  float* yr = y + int64_t(blockIdx.x) * D;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) ss += xr[i] * xr[i];
  ss = block_sum(ss, red);
  const float inv = 1.0f / sqrtf(ss / float(D) + eps);  // not rsqrtf: keep the CPU's rounding
  if (w) {
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = (xr[i] * inv) * w[i];
  } else {
    for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = xr[i] * inv;
  }
}

constexpr int kGroupNormWarps = 4;

// o, g [rows = T·H, dv]; one warp per row; w [dv] or null; g null = no gate.
__global__ void __launch_bounds__(kGroupNormWarps * 32)
    group_norm_gate_kernel(float* __restrict__ o, const float* __restrict__ g, int64_t rows, int64_t dv,
                           const float* __restrict__ w, float eps) {
  const int64_t row = int64_t(blockIdx.x) * kGroupNormWarps + (threadIdx.x >> 5);
  const int lane = int(threadIdx.x & 31u);
  // No early return: every lane of the warp must reach warp_sum. Rows past the end do no memory work.
  const bool active = row < rows;
  float* x = o + (active ? row : 0) * dv;
  float ss = 0.f;
  if (active)
    for (int64_t c = lane; c < dv; c += 32) ss += x[c] * x[c];
  ss = warp_sum(ss);
  if (!active) return;
  const float inv = 1.0f / sqrtf(ss / float(dv) + eps);
  const float* gr = g ? g + row * dv : nullptr;
  for (int64_t c = lane; c < dv; c += 32) {
    float y = x[c] * inv;
    if (w) y = y * w[c];
    if (gr) y = silu(gr[c]) * y;
    x[c] = y;
  }
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
