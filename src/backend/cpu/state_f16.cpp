// f16 state storage on the CPU (state_f16.hpp). The library is built with F16C (cmake: -mf16c, the
// baseline with AVX2/FMA), so the conversions are vcvtph2ps / vcvtps2ph, eight values at a time; the
// scalar tails use the same instructions on one value, so every element gets the same rounding.
#include "backend/cpu/state_f16.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace retnet::cpu {

namespace {
constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
inline __m128i load8(const uint16_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline void store8(uint16_t* p, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
inline float widen1(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t narrow1(float x) { return uint16_t(_cvtss_sh(x, kRound)); }
}  // namespace

void widen_f16(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(load8(src + i)));
  for (; i < n; ++i) dst[i] = widen1(src[i]);
}

void narrow_f16(const float* src, uint16_t* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) store8(dst + i, _mm256_cvtps_ph(_mm256_loadu_ps(src + i), kRound));
  for (; i < n; ++i) dst[i] = narrow1(src[i]);
}

void retention_step_rows_f16(const RetentionStepArgs& a, int64_t b, int64_t h, int64_t j0, int64_t j1, float* part) {
  const int64_t H = a.H, dk = a.dk, dv = a.dv;
  const float* __restrict q = a.q + b * H * dk + h * dk;                            // [dk] of row b, head h
  const float* __restrict k = a.k + b * H * dk + h * dk;                            // [dk]
  const float* __restrict v = a.v + b * H * dv + h * dv;                            // [dv]
  uint16_t* __restrict Z = reinterpret_cast<uint16_t*>(a.states[b]) + h * dk * dv;  // [dk, dv] f16 bits
  float* __restrict o = part;  // [dv] partial read-out of rows [j0, j1)
  const float g = a.gamma[h];
  std::fill(o, o + dv, 0.f);
  const __m256 vg = _mm256_set1_ps(g);
  for (int64_t j = j0; j < j1; ++j) {
    uint16_t* __restrict zj = Z + j * dv;
    const float kj = k[j], qj = q[j];
    const __m256 vk = _mm256_set1_ps(kj), vq = _mm256_set1_ps(qj);
    int64_t c = 0;
    for (; c + 8 <= dv; c += 8) {
      const __m256 z = _mm256_fmadd_ps(vg, _mm256_cvtph_ps(load8(zj + c)), _mm256_mul_ps(vk, _mm256_loadu_ps(v + c)));
      store8(zj + c, _mm256_cvtps_ph(z, kRound));
      _mm256_storeu_ps(o + c, _mm256_fmadd_ps(vq, z, _mm256_loadu_ps(o + c)));
    }
    for (; c < dv; ++c) {  // the same operations on one value (fma, then a product rounded first)
      const float z = std::fma(g, widen1(zj[c]), kj * v[c]);
      zj[c] = narrow1(z);
      o[c] = std::fma(qj, z, o[c]);
    }
  }
}

}  // namespace retnet::cpu
