// What every kernel file includes first: the switch between the real device build (nvcc) and the
// SIMT emulator (tests/simt, host C++), plus small device helpers shared by the kernels.
//
// Three ways this header is compiled:
//   * nvcc, kernels/*.cu in libretnet                       → CUDA runtime, real __shared__
//   * host C++ with RETNET_SIMT defined (tests/kernels)       → tests/simt/simt.hpp stand-ins
//   * host C++ in a CUDA build that only calls launchers      → cuda_runtime_api.h for cudaStream_t
// Launchers live in an inline namespace named after the build (cuda / emu), so the emulated and the
// real kernels can be linked into one test program without clashing; callers write retnet::launch_x.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(RETNET_SIMT)
#include "simt.hpp"
#define RETNET_KERNEL_ABI emu
// kernel<<<grid, block, smem, stream>>>(args...) in the emulator: synchronous, stream ignored.
#define RETNET_LAUNCH(kernel, grid, block, smem, stream, ...) \
  ((void)(stream), ::simt::launch((grid), (block), (smem), (kernel), __VA_ARGS__))
#elif defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#define RETNET_KERNEL_ABI cuda
#define RETNET_SHARED(type, name, count) __shared__ type name[count]
#define RETNET_DYNAMIC_SHARED(type, name) \
  extern __shared__ __align__(16) unsigned char name##_raw[]; \
  type* const name = reinterpret_cast<type*>(name##_raw)
// `kernel` is a pointer to a __global__ function (templates are taken by address first, so their
// commas never reach the macro).
#define RETNET_LAUNCH(kernel, grid, block, smem, stream, ...) kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__)
#else
#include <cuda_runtime_api.h>
#define RETNET_KERNEL_ABI cuda
#endif

#if defined(RETNET_SIMT) || defined(__CUDACC__)
namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float warp_sum(float v) {
  // Butterfly: every lane ends with the same total (needed when all lanes use it).
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Sum over the block; every thread gets the total. `red` is shared scratch of ≥ 32 floats that the
// caller does not touch until the next barrier. blockDim.x must be a multiple of 32.
__device__ __forceinline__ float block_sum(float v, float* red) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  if (lane == 0) red[warp] = v;
  __syncthreads();
  float t = lane < nwarps ? red[lane] : 0.f;
  t = warp_sum(t);
  __syncthreads();  // red may be reused by the caller after this
  return t;
}

__device__ __forceinline__ float silu(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

__device__ __forceinline__ float f16_bits_to_float(unsigned short b) { return __half2float(__ushort_as_half(b)); }
__device__ __forceinline__ float bf16_bits_to_float(unsigned short b) { return __uint_as_float(unsigned(b) << 16); }

__device__ __forceinline__ int64_t imin64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int imin(int a, int b) { return a < b ? a : b; }

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
#endif
