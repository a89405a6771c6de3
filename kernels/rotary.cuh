// Device code of theta_shift: the xPos/RoPE rotation of q and k at absolute positions.
// The angle is THE definition of src/common/rotary.hpp: fp32 product float(n)·θ, then accurate
// sinf/cosf (never __sinf: the fast intrinsics lose ~1e-3 rad at n = 1e5, docs/reference.md §2.3).
// The CPU twin is src/backend/cpu/rotary_cpu.cpp.
#pragma once

#include "launchers.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

constexpr int kRotaryThreads = 128;

// One block per token t. The dk/2 (sin, cos) pairs of its position are computed once into shared
// memory and shared by the 2·H heads of q and k.
// q, k [T, H*dk]; pos [T]; theta32 [dk/2]; theta64 [dk/2] or null (reference angles).
__global__ void __launch_bounds__(kRotaryThreads)
    theta_shift_kernel(float* __restrict__ q, float* __restrict__ k, int64_t H, int64_t dk,
                       const int64_t* __restrict__ pos, const float* __restrict__ theta32,
                       const double* __restrict__ theta64, Pairing pairing, float q_scale, float k_scale) {
  RETNET_DYNAMIC_SHARED(float, sc);  // [2, dk/2]: sin | cos
  const int64_t t = blockIdx.x;
  const int64_t half = dk / 2;
  float* sinv = sc;
  float* cosv = sc + half;
  const int64_t n = pos[t];
  for (int64_t p = threadIdx.x; p < half; p += blockDim.x) {
    if (theta64) {
      const double ang = double(n) * theta64[p];  // rotary_sincos_exact
      sinv[p] = float(sin(ang));
      cosv[p] = float(cos(ang));
    } else {
      const float ang = float(n) * theta32[p];  // rotary_sincos_reference
      sinv[p] = sinf(ang);
      cosv[p] = cosf(ang);
    }
  }
  __syncthreads();
  const int64_t per_tensor = H * half;
  for (int64_t i = threadIdx.x; i < 2 * per_tensor; i += blockDim.x) {
    const bool is_k = i >= per_tensor;
    const int64_t j = is_k ? i - per_tensor : i;
    const int64_t h = j / half, p = j % half;
    float* xh = (is_k ? k : q) + t * H * dk + h * dk;
    const int64_t i0 = pairing == Pairing::Interleaved ? 2 * p : p;
    const int64_t i1 = pairing == Pairing::Interleaved ? 2 * p + 1 : p + half;
    float a = xh[i0], c = xh[i1];
    if (is_k && k_scale != 1.0f) {  // k scaled before the rotation (torchscale)
      a *= k_scale;
      c *= k_scale;
    }
    float r0 = a * cosv[p] - c * sinv[p];
    float r1 = c * cosv[p] + a * sinv[p];
    if (!is_k && q_scale != 1.0f) {  // q scaled after it (fla)
      r0 *= q_scale;
      r1 *= q_scale;
    }
    xh[i0] = r0;
    xh[i1] = r1;
  }
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
