// Device code of the decode matrix-vector product y[t, r] = Σ_i x[t, i]·W[r, i] for a few rows t
// (batch decode): bandwidth-bound on W, so every weight byte is loaded once with 128-bit loads and
// all T rows of x are applied to it; fp32 accumulation whatever the weight type.
#pragma once

#include "weights.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

constexpr int kGemvWarps = 8;  // one output row r per warp

// The 128-bit body of one weight row: chunk ch covers elements ch·E .. ch·E+E-1 of x (offset by the
// row's head). XVec: the x rows are 16-byte aligned there, so x is read as float4 too.
template <DType W, int T, bool XVec>
__device__ __forceinline__ void gemv_body(const uint4* __restrict__ body, int64_t nchunks, const float* __restrict__ x,
                                          int64_t in, int lane, float* acc) {
  constexpr int E = int(16 / DTypeConst<W>::block_bytes);
  // Unrolled so that several 128-bit loads per lane are in flight (decode is latency × bandwidth
  // bound), as far as the T accumulators leave registers: more unrolling at T > 4 spills.
  [[maybe_unused]] constexpr int kUnroll = T <= 2 ? 4 : T <= 4 ? 2 : 1;  // unused by host compilers
#pragma unroll(kUnroll)
  for (int64_t ch = lane; ch < nchunks; ch += 32) {
    float wv[E];
    unpack16<W>(body[ch], wv);
#pragma unroll
    for (int t = 0; t < T; ++t) {
      const float* xt = x + t * in + ch * E;
      if constexpr (XVec) {
#pragma unroll
        for (int e = 0; e < E; e += 4) {
          const float4 xv = *reinterpret_cast<const float4*>(xt + e);
          acc[t] += wv[e] * xv.x;
          acc[t] += wv[e + 1] * xv.y;
          acc[t] += wv[e + 2] * xv.z;
          acc[t] += wv[e + 3] * xv.w;
        }
      } else {
#pragma unroll
        for (int e = 0; e < E; ++e) acc[t] += wv[e] * xt[e];
      }
    }
  }
}

// grid ceil(rows / 8), block 256. x [T, in]; W [rows, in]; y[t·ldy + r].
// Each row is split into a scalar head (up to the first 16-byte boundary: rows whose byte length is
// not a multiple of 16, e.g. in % 8 != 0 for 2-byte types, start misaligned), a 128-bit body and a
// scalar tail, so any `in` streams at full width.
template <DType W, int T>
__global__ void __launch_bounds__(kGemvWarps * 32, 2)
    gemv_kernel(const float* __restrict__ x, int64_t in, const void* __restrict__ w, int64_t rows,
                float* __restrict__ y, int64_t ldy) {
  // Element types only: a block type (quantized rows) needs a body of its own.
  static_assert(DTypeConst<W>::block_elems == 1, "gemv_kernel: no row kernel for this weight type");
  constexpr int64_t es = DTypeConst<W>::block_bytes;
  constexpr int E = int(16 / es);
  const int lane = int(threadIdx.x & 31u);
  const int64_t r = int64_t(blockIdx.x) * kGemvWarps + (threadIdx.x >> 5);
  if (r >= rows) return;  // whole warp leaves together: no collective is split
  const unsigned char* wr = static_cast<const unsigned char*>(w) + r * in * es;

  const int64_t mis = int64_t(reinterpret_cast<uintptr_t>(wr) & 15u);
  const int64_t head = imin64(mis ? (16 - mis) / es : 0, in);
  const int64_t nchunks = (in - head) / E;
  const int64_t body_end = head + nchunks * E;
  const uint4* body = reinterpret_cast<const uint4*>(wr + head * es);
  const bool xvec = (in & 3) == 0 && (reinterpret_cast<uintptr_t>(x + head) & 15u) == 0;

  float acc[T];
#pragma unroll
  for (int t = 0; t < T; ++t) acc[t] = 0.f;

  for (int64_t i = lane; i < head; i += 32) {
    const float wv = load_weight<W>(wr, size_t(i));
#pragma unroll
    for (int t = 0; t < T; ++t) acc[t] += wv * x[t * in + i];
  }
  if (xvec) gemv_body<W, T, true>(body, nchunks, x + head, in, lane, acc);
  else gemv_body<W, T, false>(body, nchunks, x + head, in, lane, acc);
  for (int64_t i = body_end + lane; i < in; i += 32) {
    const float wv = load_weight<W>(wr, size_t(i));
#pragma unroll
    for (int t = 0; t < T; ++t) acc[t] += wv * x[t * in + i];
  }
#pragma unroll
  for (int t = 0; t < T; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0) y[t * ldy + r] = s;
  }
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
