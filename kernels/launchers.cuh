// Launcher declarations of every retnet kernel: plain C++ functions over raw device pointers, sizes
// and a stream. Included by the kernels (nvcc), by the CUDA backend (host C++) and by the emulated
// kernel tests (host C++ with RETNET_SIMT). All pointers are device pointers unless named *_host;
// every launcher is asynchronous on `stream` and returns cudaGetLastError() after its launches
// (cudaSuccess when there was nothing to do).
#pragma once

#include "common/types.hpp"  // DType, Activation, Pairing, RetentionNorm: the library's own enums
#include "device.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

// out[t, :] = scale · table[ids[t], :]                        table [V, D] (type t), ids [T], out [T, D]
// Block types (q8_0, q4_0, q4_k): rows dequantized; D a multiple of the block (else cudaErrorInvalidValue).
cudaError_t launch_embed(const void* table, DType t, const int32_t* ids, int64_t T, int64_t D, float scale, float* out,
                         cudaStream_t stream);

// dst[i] = float(src[i])                                      src [n] (type t), dst [n]
// Block types: src at a block start, n whole blocks (else cudaErrorInvalidValue), dequantized.
cudaError_t launch_widen(const void* src, DType t, size_t n, float* dst, cudaStream_t stream);

// y[t, :] = x[t, :] · 1/sqrt(mean(x[t, :]²) + eps) (· w)     x, y [T, D] (may alias), w [D] or null
cudaError_t launch_rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y,
                            cudaStream_t stream);

// Per row (t, h) of dv values: o = rmsnorm(o) (· w) (· silu(g))   o, g [T, H*dv], w [dv] or null, g or null
cudaError_t launch_group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                                   float eps, cudaStream_t stream);

// out = act(a) ⊙ b                                            a, b, out [n] (out may alias a or b)
cudaError_t launch_glu(const float* a, const float* b, float* out, size_t n, Activation act, cudaStream_t stream);

// x = x·alpha + y (x += y when alpha == 1)                    x, y [n]
cudaError_t launch_residual(float* x, const float* y, float alpha, size_t n, cudaStream_t stream);

// Rotates q and k [T, H*dk] in place at absolute positions pos[t] (device int64 [T]). k is multiplied by
// k_scale before the rotation, q by q_scale after it (as the CPU backend). theta64 == null: reference
// angles float(n)·theta32[p] with accurate sinf/cosf (src/common/rotary.hpp); otherwise the float64
// angles n·theta64[p] rounded once. theta32, theta64: device [dk/2]. dk even.
cudaError_t launch_theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos,
                               const float* theta32, const double* theta64, Pairing pairing, float q_scale,
                               float k_scale, cudaStream_t stream);

// One recurrent step for B rows. For row b, head h (state S = states[b] + h·dk·dv, [dk, dv] key-first):
//   S = gamma[h]·S + k_bh ⊗ v_bh ;  out_bh = (q_bh · S) · out_scale[b·H + h]
// q, k [B, H*dk]; v, out [B, H*dv]; states: device array [B] of device pointers; gamma [H];
// out_scale [B*H] or null (= 1).
cudaError_t launch_retention_step(const float* q, const float* k, const float* v, float* const* states, float* out,
                                  int64_t B, int64_t H, int64_t dk, int64_t dv, const float* gamma,
                                  const float* out_scale, cudaStream_t stream);

// Chunkwise retention over T tokens with chunks of C = max(1, min(chunk, T)), exactly the contract of
// RetentionChunkArgs (src/backend/backend.hpp) and the CPU reference (retention_cpu.cpp):
// q, k [T, H*dk]; v, out [T, H*dv]; state [H, dk, dv] in/out; log_decay [H] (device).
// workspace: retention_chunk_workspace_bytes(...) bytes of device memory (256-byte aligned).
size_t retention_chunk_workspace_bytes(int64_t T, int64_t H, int64_t dk, int64_t dv, int64_t chunk, RetentionNorm norm);
cudaError_t launch_retention_chunk(const float* q, const float* k, const float* v, float* state, float* out, int64_t T,
                                   int64_t H, int64_t dk, int64_t dv, int64_t chunk, const float* log_decay,
                                   RetentionNorm norm, void* workspace, cudaStream_t stream);

// Decode product: y[t, r] = Σ_i x[t, i] · W[r, i] for t < T ≤ kGemvMaxRows, r < rows.
// x [T, in] fp32; W [rows, in] (type wt, row-major, 2-byte aligned for F16/BF16, 4 for F32);
// y rows t at y + t·ldy. Weights stream once with 128-bit loads; fp32 accumulation.
// Block types (q8_0, q4_0, q4_k; 2-byte aligned rows of in / block whole blocks, else
// cudaErrorInvalidValue): each weight dequantized in registers and multiplied by the fp32 x, so the
// result differs from a GEMV on the dequantized fp32 matrix only by summation order.
constexpr int64_t kGemvMaxRows = 8;
cudaError_t launch_gemv(const float* x, int64_t T, int64_t in, const void* w, DType wt, int64_t rows, float* y,
                        int64_t ldy, cudaStream_t stream);

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
