// Device code of chunkwise retention (prefill), the contract of RetentionChunkArgs and of the CPU
// reference retention_chunk_head (src/backend/cpu/retention_cpu.cpp), per head h with γ = exp(ld):
//
//   chunks of C rows (the last may be shorter, L rows); Z = state before the chunk [dk, dv]
//   U_i   = Σ_{j≤i} (q_i·k_j)·γ^(i−j)·v_j  +  γ^(i+1)·(q_i·Z)            (i, j chunk-local)
//   Z'    = γ^L·Z + Σ_j k_j ⊗ (v_j·γ^(L−1−j))
//   out_i = U_i                                     (RetentionNorm::None, fla)
//   out_i = U_i / ρ_i, ρ_i = r_i·max(clamp(Σ_j|A_ij| / r_i, 1, max), cross)   (torchscale)
//           r_i = sqrt(Σ_{j≤i} γ^(i−j)), cross = max(max_col Σ_row |Z| / Σ_{t<C} γ^t, 1),
//           max = 5e4 for the parallel form, ∞ for the chunkwise one.
//
// Because the state recursion is linear, the chunks do not have to wait for each other:
//   1. chunk_kv:    KV_c = Σ_j k_j ⊗ (v_j·γ^(L−1−j)) for every chunk in parallel → workspace
//   2. chunk_scan:  per state element, Z_0 = state, Z_{c+1} = γ^L_c·Z_c + KV_c, leaving Z_c (the state
//                   before chunk c) in the workspace and the final state in `state`
//   3. chunk_rsq, chunk_cross (torchscale only): the row scalars r_i and the per-chunk cross scale
//   4. chunk_out:   a tiled kernel per (64 rows, 64 dv columns, chunk, head): γ^(i+1)·Q·Z_c, then the
//                   masked, decayed Q·Kᵀ tiles times V, then the row normalisation.
// All arithmetic is fp32 (SIMT FMAs), with the exponentials computed exactly as the CPU does
// (expf(float(Δ)·ld)), so any chunk size works and ragged dk/dv/L only cost masked lanes.
#pragma once

#include "launchers.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace dev {

struct ChunkParams {
  const float* q;   // [T, H*dk]
  const float* k;   // [T, H*dk]
  const float* v;   // [T, H*dv]
  float* state;     // [H, dk, dv]
  float* out;       // [T, H*dv]
  int64_t T, H, dk, dv, C, nch;
  const float* log_decay;  // [H]
  float* zs;        // [nch, H, dk, dv] workspace: KV_c, then (after the scan) the state before chunk c
  float* rsq;       // [H, C]   r_i (torchscale)
  float* cross;     // [nch, H] cross scale of chunk c (torchscale)
  float* sC;        // [H]      Σ_{t<C} γ^t (torchscale)
  float inner_max;  // clamp of the inner scale
  bool ts;          // torchscale normalisation
};

__device__ __forceinline__ int64_t chunk_len(const ChunkParams& p, int64_t c) { return imin64(p.C, p.T - c * p.C); }

// ---- 1. KV_c[r, col] = Σ_{j<L} K[j, r]·(V[j, col]·w_j), w_j = γ^(L−1−j) --------------------------------
constexpr int kKvTile = 64;   // 64 dk rows × 64 dv columns per block
constexpr int kKvSteps = 16;  // tokens per shared-memory stage

// grid (nch·H, ceil(dk/64), ceil(dv/64)), block 256 (16×16 threads, 4×4 outputs each). The chunk
// count goes on x, the only grid dimension without the 65535 limit.
__global__ void __launch_bounds__(256) chunk_kv_kernel(ChunkParams p) {
  RETNET_SHARED(float, ks, kKvSteps * kKvTile);  // [16 tokens][64 dk rows]
  RETNET_SHARED(float, vs, kKvSteps * kKvTile);  // [16 tokens][64 dv cols], already × w_j
  const int64_t c = blockIdx.x / p.H, h = blockIdx.x % p.H;
  const int64_t r0 = int64_t(blockIdx.y) * kKvTile, c0 = int64_t(blockIdx.z) * kKvTile;
  const int64_t s = c * p.C, L = chunk_len(p, c);
  const float ld = p.log_decay[h];
  const int tx = int(threadIdx.x % 16), ty = int(threadIdx.x / 16);
  const int64_t ldq = p.H * p.dk, ldv = p.H * p.dv;
  float acc[4][4] = {};
  for (int64_t j0 = 0; j0 < L; j0 += kKvSteps) {
    for (int e = threadIdx.x; e < kKvSteps * kKvTile; e += blockDim.x) {
      const int jj = e / kKvTile, cc = e % kKvTile;
      const int64_t j = j0 + jj;
      const bool jok = j < L;
      ks[e] = jok && r0 + cc < p.dk ? p.k[(s + j) * ldq + h * p.dk + r0 + cc] : 0.f;
      vs[e] = jok && c0 + cc < p.dv ? p.v[(s + j) * ldv + h * p.dv + c0 + cc] * expf(float(L - 1 - j) * ld) : 0.f;
    }
    __syncthreads();
#pragma unroll 4
    for (int jj = 0; jj < kKvSteps; ++jj) {
      float kr[4], vc[4];
#pragma unroll
      for (int a = 0; a < 4; ++a) kr[a] = ks[jj * kKvTile + ty + 16 * a];
#pragma unroll
      for (int b = 0; b < 4; ++b) vc[b] = vs[jj * kKvTile + tx + 16 * b];
#pragma unroll
      for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) acc[a][b] += kr[a] * vc[b];
    }
    __syncthreads();
  }
  float* kv = p.zs + (c * p.H + h) * p.dk * p.dv;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int64_t r = r0 + ty + 16 * a;
    if (r >= p.dk) continue;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const int64_t col = c0 + tx + 16 * b;
      if (col < p.dv) kv[r * p.dv + col] = acc[a][b];
    }
  }
}

// ---- 2. the scan over chunks, one thread per state element ------------------------------------------------
__global__ void __launch_bounds__(256) chunk_scan_kernel(ChunkParams p) {
  const int64_t n = p.H * p.dk * p.dv;
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= n) return;
  const int64_t h = e / (p.dk * p.dv);
  const float ld = p.log_decay[h];
  const float full = expf(float(p.C) * ld);
  float z = p.state[e];
  for (int64_t c = 0; c < p.nch; ++c) {
    float* slot = p.zs + c * n + e;
    const float kv = *slot;
    *slot = z;
    const int64_t L = chunk_len(p, c);
    z = (L == p.C ? full : expf(float(L) * ld)) * z + kv;
  }
  p.state[e] = z;
}

// ---- 3a. r_i = sqrt(Σ_{j≤i} γ^(i−j)) and sC = Σ_{t<C} γ^t, summed in the CPU's order ----------------------
// grid (ceil(C/256), H), block 256.
__global__ void __launch_bounds__(256) chunk_rsq_kernel(ChunkParams p) {
  const int64_t h = blockIdx.y;
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const float ld = p.log_decay[h];
  if (i < p.C) {
    float rsum = 0.f;
    for (int64_t j = 0; j <= i; ++j) rsum += expf(float(i - j) * ld);
    p.rsq[h * p.C + i] = sqrtf(rsum);
  }
  if (blockIdx.x == 0 && threadIdx.x == 0) {
    float s = 0.f;
    for (int64_t t = 0; t < p.C; ++t) s += expf(float(t) * ld);
    p.sC[h] = s;
  }
}

// ---- 3b. cross_c = max(max_col Σ_row |Z_c| / sC, 1), grid (nch, H), block 256 ----------------------------
__global__ void __launch_bounds__(256) chunk_cross_kernel(ChunkParams p) {
  RETNET_SHARED(float, red, 32);
  const int64_t c = blockIdx.x, h = blockIdx.y;
  const float* Z = p.zs + (c * p.H + h) * p.dk * p.dv;
  float mx = 0.f;
  for (int64_t col = threadIdx.x; col < p.dv; col += blockDim.x) {
    float s = 0.f;
    for (int64_t r = 0; r < p.dk; ++r) s += fabsf(Z[r * p.dv + col]);
    mx = fmaxf(mx, s);
  }
  mx = warp_max(mx);
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  if (lane == 0) red[warp] = mx;
  __syncthreads();
  if (warp == 0) {
    float m = lane < (blockDim.x >> 5) ? red[lane] : 0.f;
    m = warp_max(m);
    if (lane == 0) p.cross[c * p.H + h] = fmaxf(m / p.sC[h], 1.0f);
  }
}

// ---- 4. outputs ---------------------------------------------------------------------------------------------
constexpr int kOutRows = 64;  // query rows per block
constexpr int kOutCols = 64;  // dv columns per block
constexpr int kOutKeys = 32;  // keys per score tile
constexpr int kOutDk = 32;    // dk slice per shared-memory stage
constexpr int kPad = 1;       // row padding: conflict-free column reads

// Loads rows [row0, row0+64) ∩ [0, L) of the chunk's q (dk slice d0..d0+31) into qs [64][33].
__device__ __forceinline__ void load_q_slice(const ChunkParams& p, float* qs, int64_t s, int64_t L, int64_t i0,
                                             int64_t h, int64_t d0) {
  for (int e = threadIdx.x; e < kOutRows * kOutDk; e += blockDim.x) {
    const int rr = e / kOutDk, dd = e % kOutDk;
    const int64_t i = i0 + rr, d = d0 + dd;
    qs[rr * (kOutDk + kPad) + dd] = i < L && d < p.dk ? p.q[(s + i) * p.H * p.dk + h * p.dk + d] : 0.f;
  }
}

// grid (row tiles · nch, ceil(dv/64), H), block 256: thread (ty, tx) owns rows ty+16a, columns tx+16b.
__global__ void __launch_bounds__(256) chunk_out_kernel(ChunkParams p) {
  RETNET_SHARED(float, qs, kOutRows * (kOutDk + kPad));   // [64 rows][32 dk]
  RETNET_SHARED(float, ks, kOutKeys * (kOutDk + kPad));   // [32 keys][32 dk]
  RETNET_SHARED(float, as, kOutRows * (kOutKeys + kPad)); // [64 rows][32 keys] masked, decayed scores
  RETNET_SHARED(float, vs, kOutKeys * kOutCols);          // [32 keys or dk][64 cols]: V tile, or Z slice
  const int64_t row_tiles = (p.C + kOutRows - 1) / kOutRows;
  const int64_t c = blockIdx.x / row_tiles;
  const int64_t i0 = (blockIdx.x % row_tiles) * kOutRows;
  const int64_t c0 = int64_t(blockIdx.y) * kOutCols;
  const int64_t h = blockIdx.z;
  const int64_t s = c * p.C, L = chunk_len(p, c);
  if (i0 >= L) return;  // whole block: the last chunk is shorter (uniform, before any barrier)
  const float ld = p.log_decay[h];
  const int tx = int(threadIdx.x % 16), ty = int(threadIdx.x / 16);
  const int64_t ldv = p.H * p.dv;

  // (a) inter-chunk: acc = Q · Z_c[:, cols], later scaled by γ^(i+1)
  float acc[4][4] = {};
  const float* Z = p.zs + (c * p.H + h) * p.dk * p.dv;
  for (int64_t d0 = 0; d0 < p.dk; d0 += kOutDk) {
    load_q_slice(p, qs, s, L, i0, h, d0);
    for (int e = threadIdx.x; e < kOutDk * kOutCols; e += blockDim.x) {
      const int dd = e / kOutCols, cc = e % kOutCols;
      const int64_t d = d0 + dd, col = c0 + cc;
      vs[e] = d < p.dk && col < p.dv ? Z[d * p.dv + col] : 0.f;
    }
    __syncthreads();
#pragma unroll 4
    for (int dd = 0; dd < kOutDk; ++dd) {
      float qa[4], zb[4];
#pragma unroll
      for (int a = 0; a < 4; ++a) qa[a] = qs[(ty + 16 * a) * (kOutDk + kPad) + dd];
#pragma unroll
      for (int b = 0; b < 4; ++b) zb[b] = vs[dd * kOutCols + tx + 16 * b];
#pragma unroll
      for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) acc[a][b] += qa[a] * zb[b];
    }
    __syncthreads();
  }
  float qz[4][4];
#pragma unroll
  for (int a = 0; a < 4; ++a)
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      qz[a][b] = acc[a][b];
      acc[a][b] = 0.f;
    }

  // (b) intra-chunk: acc = Σ_j (q_i·k_j ⊙ γ^(i−j), j ≤ i) v_j over key tiles up to the block's last row
  float asum[4] = {0.f, 0.f, 0.f, 0.f};
  const int64_t j_end = imin64(L, i0 + kOutRows);
  for (int64_t j0 = 0; j0 < j_end; j0 += kOutKeys) {
    float sc[4][2] = {};
    for (int64_t d0 = 0; d0 < p.dk; d0 += kOutDk) {
      load_q_slice(p, qs, s, L, i0, h, d0);
      for (int e = threadIdx.x; e < kOutKeys * kOutDk; e += blockDim.x) {
        const int jj = e / kOutDk, dd = e % kOutDk;
        const int64_t j = j0 + jj, d = d0 + dd;
        ks[jj * (kOutDk + kPad) + dd] = j < L && d < p.dk ? p.k[(s + j) * p.H * p.dk + h * p.dk + d] : 0.f;
      }
      __syncthreads();
#pragma unroll 4
      for (int dd = 0; dd < kOutDk; ++dd) {
        float qa[4], kb[2];
#pragma unroll
        for (int a = 0; a < 4; ++a) qa[a] = qs[(ty + 16 * a) * (kOutDk + kPad) + dd];
#pragma unroll
        for (int b = 0; b < 2; ++b) kb[b] = ks[(tx + 16 * b) * (kOutDk + kPad) + dd];
#pragma unroll
        for (int a = 0; a < 4; ++a)
#pragma unroll
          for (int b = 0; b < 2; ++b) sc[a][b] += qa[a] * kb[b];
      }
      __syncthreads();
    }
    // mask and decay, as the CPU: A_ij = (q_i·k_j)·exp(float(i−j)·ld) for j ≤ i, else 0
#pragma unroll
    for (int a = 0; a < 4; ++a) {
      const int64_t i = i0 + ty + 16 * a;
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        const int64_t j = j0 + tx + 16 * b;
        const float m = j <= i && i < L ? expf(float(i - j) * ld) : 0.f;
        const float A = sc[a][b] * m;
        asum[a] += fabsf(A);
        as[(ty + 16 * a) * (kOutKeys + kPad) + tx + 16 * b] = A;
      }
    }
    for (int e = threadIdx.x; e < kOutKeys * kOutCols; e += blockDim.x) {
      const int jj = e / kOutCols, cc = e % kOutCols;
      const int64_t j = j0 + jj, col = c0 + cc;
      vs[e] = j < L && col < p.dv ? p.v[(s + j) * ldv + h * p.dv + col] : 0.f;
    }
    __syncthreads();
#pragma unroll 4
    for (int jj = 0; jj < kOutKeys; ++jj) {
      float aa[4], vb[4];
#pragma unroll
      for (int a = 0; a < 4; ++a) aa[a] = as[(ty + 16 * a) * (kOutKeys + kPad) + jj];
#pragma unroll
      for (int b = 0; b < 4; ++b) vb[b] = vs[jj * kOutCols + tx + 16 * b];
#pragma unroll
      for (int a = 0; a < 4; ++a)
#pragma unroll
        for (int b = 0; b < 4; ++b) acc[a][b] += aa[a] * vb[b];
    }
    __syncthreads();
  }

  // (c) combine and normalise. The 16 threads of a row (same ty, tx = 0..15) are 16 consecutive lanes
  // of one warp: reduce their abs-sums with width-16 butterflies.
#pragma unroll
  for (int a = 0; a < 4; ++a)
    for (int o = 8; o > 0; o >>= 1) asum[a] += __shfl_xor_sync(kFullMask, asum[a], o, 16);
  const float cross = p.ts ? p.cross[c * p.H + h] : 1.f;
#pragma unroll
  for (int a = 0; a < 4; ++a) {
    const int64_t i = i0 + ty + 16 * a;
    if (i >= L) continue;
    const float di = expf(float(i + 1) * ld);
    float inv = 1.f;
    if (p.ts) {
      const float r = p.rsq[h * p.C + i];
      const float inner = fminf(fmaxf(asum[a] / r, 1.0f), p.inner_max);
      inv = 1.0f / (r * fmaxf(inner, cross));
    }
    float* o = p.out + (s + i) * ldv + h * p.dv;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      const int64_t col = c0 + tx + 16 * b;
      if (col >= p.dv) continue;
      const float u = acc[a][b] + di * qz[a][b];
      o[col] = p.ts ? u * inv : u;
    }
  }
}

}  // namespace dev
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
