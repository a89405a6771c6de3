// RMS norms on the CPU, one row per call. The twin of kernels/norm.cu.
#include <cmath>

#include "backend/cpu/kernels_cpu.hpp"

namespace retnet::cpu {

void rms_norm_row(const float* x, int64_t D, const float* w, float eps, float* y) {
  float ss = 0.f;
  for (int64_t i = 0; i < D; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / float(D) + eps);
  if (w) {
    for (int64_t i = 0; i < D; ++i) y[i] = (x[i] * inv) * w[i];
  } else {
    for (int64_t i = 0; i < D; ++i) y[i] = x[i] * inv;
  }
}

void group_norm_gate_row(float* o, const float* g, int64_t dv, const float* w, float eps) {
  rms_norm_row(o, dv, w, eps, o);
  if (g)
    for (int64_t c = 0; c < dv; ++c) o[c] = silu(g[c]) * o[c];
}

}  // namespace retnet::cpu
