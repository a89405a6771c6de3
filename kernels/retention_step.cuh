// Device code of the recurrent retention step (decode). Bandwidth-bound: the fp32 state [dk, dv] of
// every (row, head) is read and written once. Layout key-first ([dk, dv], as the CPU backend), so a
// warp reads 32 consecutive dv columns of one key row: coalesced for any dv, ragged ones included.
#pragma once

#include "launchers.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

constexpr int kStepWarps = 8;   // warps split the dk key rows
constexpr int kStepCols = 32;   // one dv column per lane

// grid (ceil(dv/32), H, B), block 256. For row b, head h, columns c0..c0+31:
//   S[j, c] = γ·S[j, c] + k[j]·v[c] ;  out[c] = Σ_j q[j]·S[j, c] · out_scale
// q, k [B, H*dk]; v, out [B, H*dv]; states [B] → [H, dk, dv]; gamma [H]; out_scale [B*H] or null.
__global__ void __launch_bounds__(kStepWarps * 32)
    retention_step_kernel(const float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                          float* const* __restrict__ states, float* __restrict__ out, int64_t H, int64_t dk,
                          int64_t dv, const float* __restrict__ gamma, const float* __restrict__ out_scale) {
  RETNET_DYNAMIC_SHARED(float, qk);         // [2, dk]: q | k of this (row, head)
  RETNET_SHARED(float, part, kStepWarps * kStepCols);  // per-warp partial sums of out
  const int64_t h = blockIdx.y, b = blockIdx.z;
  const int lane = int(threadIdx.x & 31u), warp = int(threadIdx.x >> 5);
  const int64_t c = int64_t(blockIdx.x) * kStepCols + lane;
  const bool col_ok = c < dv;

  const float* qh = q + (b * H + h) * dk;
  const float* kh = k + (b * H + h) * dk;
  for (int64_t j = threadIdx.x; j < dk; j += blockDim.x) {
    qk[j] = qh[j];
    qk[dk + j] = kh[j];
  }
  __syncthreads();

  const float g = gamma[h];
  const float vc = col_ok ? v[(b * H + h) * dv + c] : 0.f;
  float* S = states[b] + h * dk * dv + c;
  float acc = 0.f;
  if (col_ok) {
    // Independent rows: unrolling keeps several state loads in flight per thread.
#pragma unroll 4
    for (int64_t j = warp; j < dk; j += kStepWarps) {
      const float z = g * S[j * dv] + qk[dk + j] * vc;
      S[j * dv] = z;
      acc += qk[j] * z;
    }
  }
  part[warp * kStepCols + lane] = acc;
  __syncthreads();
  if (warp == 0 && col_ok) {
    float o = 0.f;
    for (int w = 0; w < kStepWarps; ++w) o += part[w * kStepCols + lane];
    if (out_scale) {
      const float sc = out_scale[b * H + h];
      if (sc != 1.0f) o *= sc;
    }
    out[(b * H + h) * dv + c] = o;
  }
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
