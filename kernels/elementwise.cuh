// Device code of the memory-bound elementwise kernels: embed (gather), widen (weight → fp32), glu,
// residual. Each mirrors its CPU twin's arithmetic order (src/backend/cpu/elementwise_cpu.cpp) so the
// emulator reproduces it exactly.
#pragma once

#include "weights.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

// One block per token: out[t, :] = scale · table[ids[t], :]          table [V, D], out [T, D]
template <DType W>
__global__ void embed_kernel(const void* __restrict__ table, const int32_t* __restrict__ ids, int64_t D, float scale,
                             float* __restrict__ out) {
  const int64_t t = blockIdx.x;
  const size_t row = size_t(ids[t]) * size_t(D);
  float* o = out + t * D;
  for (int64_t c = threadIdx.x; c < D; c += blockDim.x) {
    const float v = load_weight<W>(table, row + size_t(c));
    o[c] = scale != 1.0f ? v * scale : v;  // the CPU skips the multiply at 1: same bits either way
  }
}

template <DType W>
__global__ void widen_kernel(const void* __restrict__ src, size_t n, float* __restrict__ dst) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) dst[i] = load_weight<W>(src, i);
}

// out = act(a) ⊙ b, grid-stride. No __restrict__: out may alias a or b (each element is read then
// written by the same thread, so aliasing is safe).
template <Activation A>
__global__ void glu_kernel(const float* a, const float* b, float* out, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const float x = a[i];
    if constexpr (A == Activation::Silu) out[i] = silu(x) * b[i];
    else if constexpr (A == Activation::Gelu) out[i] = gelu(x) * b[i];
    else static_assert(kNoKernelFor<A>, "glu_kernel: no kernel for this activation");
  }
}

__global__ void residual_kernel(float* __restrict__ x, const float* __restrict__ y, float alpha, size_t n) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  if (alpha == 1.0f) {
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] += y[i];
  } else {
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) x[i] = x[i] * alpha + y[i];
  }
}

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than needed.
inline unsigned grid_for(size_t n, unsigned threads) {
  const size_t want = (n + threads - 1) / threads;
  return unsigned(want < 4096 ? (want > 0 ? want : 1) : 4096);
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
