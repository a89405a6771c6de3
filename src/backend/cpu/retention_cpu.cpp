// Retention cores on the CPU, one head per call. State layout [dk, dv] key-first, so the decay/update
// and the read-out of a step are both contiguous axpy sweeps over dv.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "backend/cpu/kernels_cpu.hpp"

namespace retnet::cpu {

void retention_chunk_head(const RetentionChunkArgs& a, int64_t h, std::vector<float>& scratch) {
  const int64_t H = a.H, dk = a.dk, dv = a.dv, C = std::max<int64_t>(1, std::min(a.chunk, a.T));
  const int64_t ldq = H * dk, ldv = H * dv;
  const float ld = a.log_decay[h];
  const bool ts = a.norm != RetentionNorm::None;
  const float inner_max = a.norm == RetentionNorm::TorchscaleParallel ? 5e4f : INFINITY;
  float* Z = a.state + h * dk * dv;  // [dk, dv]

  // scratch: A [C, C] | QZ or V' [C, dv] | rho [C]
  const size_t need = size_t(C * C + C * dv + C);
  if (scratch.size() < need) scratch.resize(need);
  float* A = scratch.data();
  float* tmp = A + C * C;
  float* rho = tmp + C * dv;

  // Σ_{t<C} γ^t of the nominal chunk: torchscale divides its carried state by it (value_inner_decay).
  float sC = 0.f;
  if (ts)
    for (int64_t t = 0; t < C; ++t) sC += std::exp(float(t) * ld);

  for (int64_t s = 0; s < a.T; s += C) {
    const int64_t L = std::min(C, a.T - s);
    const float* Qc = a.q + s * ldq + h * dk;
    const float* Kc = a.k + s * ldq + h * dk;
    const float* Vc = a.v + s * ldv + h * dv;
    float* Oc = a.out + s * ldv + h * dv;

    // A = Qc·Kcᵀ ⊙ D, D[i,j] = exp((i-j)·ln γ) for j <= i, else 0                  [L, L]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(L), int(L), int(dk), 1.0f, Qc, int(ldq), Kc, int(ldq),
                0.0f, A, int(L));
    for (int64_t i = 0; i < L; ++i) {
      float* Ai = A + i * L;
      float rsum = 0.f, asum = 0.f;
      for (int64_t j = 0; j <= i; ++j) {
        const float m = std::exp(float(i - j) * ld);
        rsum += m;
        Ai[j] *= m;
        asum += std::fabs(Ai[j]);
      }
      std::fill(Ai + i + 1, Ai + L, 0.f);
      if (ts) {
        // torchscale: row-normalised mask (÷ r_i) then clamp(Σ|A|) — the product r_i·scale is ρ.
        const float r = std::sqrt(rsum);
        rho[i] = r;
        tmp[i] = std::clamp(asum / r, 1.0f, inner_max);  // inner scale, stored temporarily in tmp
      }
    }
    float cross = 1.f;
    if (ts) {
      // Cross scale: clamp(max over dv of Σ over dk |Z| / sC, min 1), from the state before this chunk.
      float mx = 0.f;
      for (int64_t c = 0; c < dv; ++c) {
        float col = 0.f;
        for (int64_t r = 0; r < dk; ++r) col += std::fabs(Z[r * dv + c]);
        mx = std::max(mx, col);
      }
      cross = std::max(mx / sC, 1.0f);
      for (int64_t i = 0; i < L; ++i) rho[i] *= std::max(tmp[i], cross);
    }
    // Oc = A·Vc (intra-chunk)                                                         [L, dv]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(L), int(dv), int(L), 1.0f, A, int(L), Vc, int(ldv),
                0.0f, Oc, int(ldv));
    // Oc[i] += γ^(i+1) · Qc[i]·Z (inter-chunk, state before the chunk)                [L, dv]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(L), int(dv), int(dk), 1.0f, Qc, int(ldq), Z, int(dv),
                0.0f, tmp, int(dv));
    for (int64_t i = 0; i < L; ++i) {
      const float di = std::exp(float(i + 1) * ld);
      float* o = Oc + i * ldv;
      const float* qz = tmp + i * dv;
      if (ts) {
        const float inv = 1.0f / rho[i];
        for (int64_t c = 0; c < dv; ++c) o[c] = (o[c] + di * qz[c]) * inv;
      } else {
        for (int64_t c = 0; c < dv; ++c) o[c] += di * qz[c];
      }
    }
    // Z = γ^L·Z + Kcᵀ·(Vc ⊙ γ^(L-1-j))                                               [dk, dv]
    for (int64_t j = 0; j < L; ++j) {
      const float w = std::exp(float(L - 1 - j) * ld);
      const float* vj = Vc + j * ldv;
      float* t = tmp + j * dv;
      for (int64_t c = 0; c < dv; ++c) t[c] = vj[c] * w;
    }
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(dk), int(dv), int(L), 1.0f, Kc, int(ldq), tmp, int(dv),
                std::exp(float(L) * ld), Z, int(dv));
  }
}

void retention_step_cols(const RetentionStepArgs& a, int64_t b, int64_t h, int64_t c0, int64_t c1) {
  const int64_t H = a.H, dk = a.dk, dv = a.dv, n = c1 - c0;
  const float* __restrict q = a.q + b * H * dk + h * dk;
  const float* __restrict k = a.k + b * H * dk + h * dk;
  const float* __restrict v = a.v + b * H * dv + h * dv + c0;
  float* __restrict Z = a.states[b] + h * dk * dv + c0;
  float* __restrict o = a.out + b * H * dv + h * dv + c0;
  const float g = a.gamma[h];
  std::fill(o, o + n, 0.f);
  for (int64_t j = 0; j < dk; ++j) {
    float* __restrict zj = Z + j * dv;
    const float kj = k[j], qj = q[j];
    for (int64_t c = 0; c < n; ++c) {
      const float z = g * zj[c] + kj * v[c];
      zj[c] = z;
      o[c] += qj * z;
    }
  }
  const float sc = a.out_scale[b * H + h];
  if (sc != 1.0f)
    for (int64_t c = 0; c < n; ++c) o[c] *= sc;
}

}  // namespace retnet::cpu
