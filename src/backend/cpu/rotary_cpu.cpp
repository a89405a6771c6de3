// The rotary position embedding (theta shift) on the CPU, one token per call. The twin of
// kernels/rotary.cu.
#include "backend/cpu/kernels_cpu.hpp"
#include "common/rotary.hpp"

namespace retnet::cpu {

void theta_shift_row(float* q, float* k, int64_t H, int64_t dk, int64_t pos, const float* theta32,
                     const double* theta64, Pairing pairing, AngleMode angles, float q_scale, float k_scale,
                     float* cs) {
  const int64_t half = dk / 2;
  float* cosv = cs;
  float* sinv = cosv + half;
  for (int64_t p = 0; p < half; ++p) {
    if (angles == AngleMode::Reference) rotary_sincos_reference(pos, theta32[p], &sinv[p], &cosv[p]);
    else rotary_sincos_exact(pos, theta64[p], &sinv[p], &cosv[p]);
  }
  for (int which = 0; which < 2; ++which) {
    float* x = which == 0 ? q : k;
    const float pre = which == 1 ? k_scale : 1.0f;
    const float post = which == 0 ? q_scale : 1.0f;
    for (int64_t h = 0; h < H; ++h) {
      float* xh = x + h * dk;
      if (pre != 1.0f)
        for (int64_t i = 0; i < dk; ++i) xh[i] *= pre;
      for (int64_t p = 0; p < half; ++p) {
        const int64_t i0 = pairing == Pairing::Interleaved ? 2 * p : p;
        const int64_t i1 = pairing == Pairing::Interleaved ? 2 * p + 1 : p + half;
        const float a = xh[i0], c = xh[i1];
        xh[i0] = a * cosv[p] - c * sinv[p];
        xh[i1] = c * cosv[p] + a * sinv[p];
      }
      if (post != 1.0f)
        for (int64_t i = 0; i < dk; ++i) xh[i] *= post;
    }
  }
}

}  // namespace retnet::cpu
