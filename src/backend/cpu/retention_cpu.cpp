// Retention cores on the CPU, one head per call. State layout [dk, dv] key-first, so the decay/update
// and the read-out of a step are both contiguous axpy sweeps over dv.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/kernels_cpu.hpp"

namespace retnet::cpu {

namespace {

// Σ_{t<C} γ^t of the nominal chunk: torchscale divides its carried state by it (value_inner_decay).
float nominal_chunk_sum(float ld, int64_t C) {
  float sC = 0.f;
  for (int64_t t = 0; t < C; ++t) sC += std::exp(float(t) * ld);
  return sC;
}

int64_t chunk_len(const RetentionChunkArgs& a) { return std::max<int64_t>(1, std::min(a.chunk, a.T)); }

}  // namespace

void retention_chunk_cols(const RetentionChunkArgs& a, int64_t h, int64_t c0, int64_t c1, int64_t blk,
                          const ChunkNormParts& parts, std::vector<float>& scratch) {
  const int64_t H = a.H, dk = a.dk, dv = a.dv, C = chunk_len(a), n = c1 - c0;
  const int64_t ldq = H * dk, ldv = H * dv;
  const float ld = a.log_decay[h];
  const bool ts = a.norm != RetentionNorm::None;
  const float inner_max = a.norm == RetentionNorm::TorchscaleParallel ? 5e4f : INFINITY;
  float* Z = a.state + h * dk * dv + c0;  // [dk, n] of row stride dv

  // scratch: A [C, C] | QZ or V' [C, tile] | decay powers [C + 1] | column sums [n]
  const int64_t tile = std::min(n, kRetentionColTile);
  const size_t need = retention_chunk_scratch_floats(C, n);
  if (scratch.size() < need) scratch.resize(need);
  float* A = scratch.data();
  float* tmp = A + C * C;
  // pw[m] = exp(m·ln γ): every decay factor below is one of these, computed once per call from the
  // same float argument as before (so the same bits), not once per matrix element.
  float* pw = tmp + C * tile;
  for (int64_t m = 0; m <= C; ++m) pw[m] = std::exp(float(m) * ld);
  float* colsum = pw + C + 1;

  for (int64_t s = 0; s < a.T; s += C) {
    const int64_t L = std::min(C, a.T - s);
    const float* Qc = a.q + s * ldq + h * dk;
    const float* Kc = a.k + s * ldq + h * dk;
    const float* Vc = a.v + s * ldv + h * dv + c0;
    float* Oc = a.out + s * ldv + h * dv + c0;

    // A = Qc·Kcᵀ ⊙ D, D[i,j] = exp((i-j)·ln γ) for j <= i, else 0                  [L, L]
    // (every column block computes the same A: it costs L/n of the block's other products)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(L), int(L), int(dk), 1.0f, Qc, int(ldq), Kc, int(ldq),
                0.0f, A, int(L));
    for (int64_t i = 0; i < L; ++i) {
      float* Ai = A + i * L;
      float rsum = 0.f, asum = 0.f;
      for (int64_t j = 0; j <= i; ++j) {
        const float m = pw[i - j];
        rsum += m;
        Ai[j] *= m;
        asum += std::fabs(Ai[j]);
      }
      std::fill(Ai + i + 1, Ai + L, 0.f);
      if (ts && blk == 0) {
        // torchscale: row-normalised mask (÷ r_i) then clamp(Σ|A|) — the product r_i·scale is ρ.
        const float r = std::sqrt(rsum);
        parts.r[h * a.T + s + i] = r;
        parts.inner[h * a.T + s + i] = std::clamp(asum / r, 1.0f, inner_max);
      }
    }
    if (ts) {
      // This block's part of the cross scale: max over its columns of Σ over dk |Z|, from the state
      // before this chunk (retention_chunk_normalize takes the max over blocks, ÷ sC, clamps at 1).
      // Rows outer, so the sweep is contiguous (and vectorised); each column still sums in r order.
      std::fill(colsum, colsum + n, 0.f);
      for (int64_t r = 0; r < dk; ++r) {
        const float* zr = Z + r * dv;
        for (int64_t c = 0; c < n; ++c) colsum[c] += std::fabs(zr[c]);
      }
      float mx = 0.f;
      for (int64_t c = 0; c < n; ++c) mx = std::max(mx, colsum[c]);
      parts.colmax[(h * parts.blocks + blk) * parts.n_chunks + s / C] = mx;
    }
    // The value-column products run on tiles of kRetentionColTile columns fixed from column 0 of
    // the head, whatever [c0, c1) this call got: OpenBLAS's summation order depends on a product's
    // width (its micro-kernel tiling), so equal widths on every split keep results independent of
    // the thread count.
    for (int64_t u0 = c0; u0 < c1; u0 += kRetentionColTile) {
      const int64_t w = std::min(kRetentionColTile, c1 - u0), off = u0 - c0;
      const float* Vu = Vc + off;
      float* Ou = Oc + off;
      float* Zu = Z + off;
      // Ou = A·Vu (intra-chunk)                                                        [L, w]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(L), int(w), int(L), 1.0f, A, int(L), Vu, int(ldv),
                  0.0f, Ou, int(ldv));
      // Ou[i] += γ^(i+1) · Qc[i]·Zu (inter-chunk, state before the chunk)              [L, w]
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(L), int(w), int(dk), 1.0f, Qc, int(ldq), Zu,
                  int(dv), 0.0f, tmp, int(w));
      for (int64_t i = 0; i < L; ++i) {
        const float di = pw[i + 1];
        float* o = Ou + i * ldv;
        const float* qz = tmp + i * w;
        for (int64_t c = 0; c < w; ++c) o[c] += di * qz[c];
      }
      // Zu = γ^L·Zu + Kcᵀ·(Vu ⊙ γ^(L-1-j))                                            [dk, w]
      for (int64_t j = 0; j < L; ++j) {
        const float wj = pw[L - 1 - j];
        const float* vj = Vu + j * ldv;
        float* t = tmp + j * w;
        for (int64_t c = 0; c < w; ++c) t[c] = vj[c] * wj;
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(dk), int(w), int(L), 1.0f, Kc, int(ldq), tmp, int(w),
                  pw[L], Zu, int(dv));
    }
  }
}

void retention_chunk_normalize(const RetentionChunkArgs& a, const ChunkNormParts& parts, int64_t t0, int64_t t1) {
  const int64_t C = chunk_len(a), dv = a.dv;
  for (int64_t h = 0; h < a.H; ++h) {
    const float sC = nominal_chunk_sum(a.log_decay[h], C);
    const float* cm = parts.colmax + h * parts.blocks * parts.n_chunks;
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t s = t / C;
      float mx = 0.f;
      for (int64_t b = 0; b < parts.blocks; ++b) mx = std::max(mx, cm[b * parts.n_chunks + s]);
      const float cross = std::max(mx / sC, 1.0f);
      const float rho = parts.r[h * a.T + t] * std::max(parts.inner[h * a.T + t], cross);
      const float inv = 1.0f / rho;
      float* o = a.out + t * a.H * dv + h * dv;
      for (int64_t c = 0; c < dv; ++c) o[c] *= inv;
    }
  }
}

void retention_step_rows(const RetentionStepArgs& a, int64_t b, int64_t h, int64_t j0, int64_t j1, float* part) {
  const int64_t H = a.H, dk = a.dk, dv = a.dv;
  const float* __restrict q = a.q + b * H * dk + h * dk;       // [dk] of row b, head h
  const float* __restrict k = a.k + b * H * dk + h * dk;       // [dk]
  const float* __restrict v = a.v + b * H * dv + h * dv;       // [dv]
  float* __restrict Z = a.states[b] + h * dk * dv;             // [dk, dv] state of head h
  float* __restrict o = part;                                  // [dv] partial read-out of rows [j0, j1)
  const float g = a.gamma[h];
  std::fill(o, o + dv, 0.f);
  for (int64_t j = j0; j < j1; ++j) {
    float* __restrict zj = Z + j * dv;
    const float kj = k[j], qj = q[j];
    for (int64_t c = 0; c < dv; ++c) {
      const float z = g * zj[c] + kj * v[c];
      zj[c] = z;
      o[c] += qj * z;
    }
  }
}

void retention_step_reduce(const RetentionStepArgs& a, int64_t b, int64_t h, const float* parts, int64_t n_parts) {
  const int64_t dv = a.dv;
  float* __restrict o = a.out + b * a.H * dv + h * dv;  // [dv]
  std::copy(parts, parts + dv, o);
  for (int64_t p = 1; p < n_parts; ++p) {
    const float* __restrict pp = parts + p * dv;
    for (int64_t c = 0; c < dv; ++c) o[c] += pp[c];
  }
  const float sc = a.out_scale[b * a.H + h];
  if (sc != 1.0f)
    for (int64_t c = 0; c < dv; ++c) o[c] *= sc;
}

}  // namespace retnet::cpu
