// Quantized prefill GEMM, AVX2 path (the build's own -mavx2 -mfma -mf16c): each 16-row packed group
// as two halves of 8 weight rows (ymm lanes) × up to kNT activation rows. A block's sum per weight
// row: per quad of codes, _mm256_maddubs_epi16 (unsigned × signed pairs) and _mm256_madd_epi16
// (pairs → quads) against the activation's four codes broadcast; q8_0 moves w's sign onto q first
// (maddubs saturates above 2^15: |w|·|q| pairs stay below it, (w + 128)·q pairs would not). Then the
// fp32 order of group_scalar: bit-identical results.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/quant_gemm_impl.hpp"
#include "backend/cpu/weights_cpu.hpp"  // RETNET_AVX2

namespace retnet::cpu::qgemm {

#ifdef RETNET_AVX2
namespace {

constexpr int kNT = 4;  // activation rows per tile: kNT int32 sums, kNT (q4_k: 2·kNT) fp32 accumulators

inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Lanes [8h, 8h + 8) of a group against activation rows t0..t0 + NT; y at lane 8h, the first n
// lanes stored.
template <int kType, int NT>
void tile(const uint8_t* g, const QuantActs& a, int64_t t0, int h, float* y, int64_t ldy, __m256i store) {
  const int64_t nb = a.nb;
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 acc[NT], accm[NT];
  for (int i = 0; i < NT; ++i) acc[i] = accm[i] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pb = g + size_t(b) * kPackBlock;
    __m256i L[NT];
    for (int i = 0; i < NT; ++i) {
      const int64_t x = (t0 + i) * nb + b;
      // q8_0 sums w·q directly (sign trick below); q4_0 starts at −8·Σq for its codes' offset.
      L[i] = kType == kQ4_0 ? _mm256_set1_epi32(a.o[x]) : _mm256_setzero_si256();
    }
    for (int k = 0; k < 8; ++k) {
      const __m256i u = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb + 64 * k + 32 * h));
      const __m256i ws = _mm256_xor_si256(u, _mm256_set1_epi8(char(0x80)));  // q8_0: w itself
      const __m256i aw = _mm256_sign_epi8(ws, ws);
      for (int i = 0; i < NT; ++i) {
        const __m256i qb = _mm256_set1_epi32(load_i32(a.q + ((t0 + i) * nb + b) * 32 + 4 * k));
        const __m256i p =
            kType == kQ8_0 ? _mm256_maddubs_epi16(aw, _mm256_sign_epi8(qb, ws)) : _mm256_maddubs_epi16(u, qb);
        L[i] = _mm256_add_epi32(L[i], _mm256_madd_epi16(p, ones));
      }
    }
    const __m256 sw = _mm256_load_ps(reinterpret_cast<const float*>(pb + kPackScale + 32 * h));
    for (int i = 0; i < NT; ++i) {
      const int64_t x = (t0 + i) * nb + b;
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(L[i]), _mm256_mul_ps(sw, _mm256_set1_ps(a.d[x])), acc[i]);
      if constexpr (kType == kQ4K)
        accm[i] = _mm256_fmadd_ps(_mm256_load_ps(reinterpret_cast<const float*>(pb + kPackMin + 32 * h)),
                                  _mm256_set1_ps(a.s[x]), accm[i]);
    }
  }
  for (int i = 0; i < NT; ++i)
    _mm256_maskstore_ps(y + (t0 + i) * ldy + 8 * h, store, kType == kQ4K ? _mm256_sub_ps(acc[i], accm[i]) : acc[i]);
}

template <int kType>
void group(const uint8_t* g, const QuantActs& a, float* y, int64_t ldy, int lanes) {
  for (int h = 0; h < 2 && 8 * h < lanes; ++h) {
    const __m256i store =
        _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes - 8 * h), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    int64_t t = 0;
    for (; t + kNT <= a.T; t += kNT) tile<kType, kNT>(g, a, t, h, y, ldy, store);
    switch (a.T - t) {
      case 3:
        tile<kType, 3>(g, a, t, h, y, ldy, store);
        break;
      case 2:
        tile<kType, 2>(g, a, t, h, y, ldy, store);
        break;
      case 1:
        tile<kType, 1>(g, a, t, h, y, ldy, store);
        break;
      default:
        break;
    }
  }
}

void group_avx2(int type, const uint8_t* g, const QuantActs& a, float* y, int64_t ldy, int lanes) {
  if (type == kQ8_0) group<kQ8_0>(g, a, y, ldy, lanes);
  else if (type == kQ4_0) group<kQ4_0>(g, a, y, ldy, lanes);
  else group<kQ4K>(g, a, y, ldy, lanes);
}

}  // namespace

const GroupFn kGroupAvx2 = group_avx2;
#endif

}  // namespace retnet::cpu::qgemm
