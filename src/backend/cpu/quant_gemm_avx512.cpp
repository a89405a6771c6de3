// Quantized prefill GEMM, AVX-512 VNNI path: tiles of 16 packed weight rows (the lanes) × up to kNT
// activation rows. Per block the eight 64-byte code registers are loaded once for all kNT rows;
// per activation row eight dpbusd (its four codes broadcast against four codes of 16 rows) give the
// block's exact int32 sum per weight row, then one convert, one scale product and one fma: the
// order of group_scalar (quant_gemm.hpp), so the results are bit-identical to it.
//
// Only these functions carry AVX-512 target attributes; they run only when quant_path_supported
// says the CPU (and OS) has AVX-512 VNNI.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/quant_gemm_impl.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RETNET_QGEMM_AVX512 1
#define RETNET_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

namespace retnet::cpu::qgemm {

#ifdef RETNET_QGEMM_AVX512
// GCC 12's unmasked AVX-512 intrinsics pass a self-initialised _mm512_undefined_*() as the unused
// merge source, which -Wmaybe-uninitialized reports once inlined: a false positive (as in
// quant_gemv_avx512.cpp), silenced for these kernels only.
#pragma GCC diagnostic push
#ifndef __clang__  // clang has no such warning group and would warn about the pragma
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace {

// Activation rows per tile: kNT accumulators (q4_k: twice) and the eight code registers.
constexpr int kNT = 8;

RETNET_VNNI inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int kType, int NT>
RETNET_VNNI void tile(const uint8_t* g, const QuantActs& a, int64_t t0, float* y, int64_t ldy, __mmask16 lanes) {
  const int64_t nb = a.nb;
  __m512 acc[NT], accm[NT];
#pragma GCC unroll 8
  for (int i = 0; i < NT; ++i) acc[i] = accm[i] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* pb = g + size_t(b) * kPackBlock;
    __m512i w[8];
#pragma GCC unroll 8
    for (int k = 0; k < 8; ++k) w[k] = _mm512_load_si512(pb + 64 * k);
    const __m512 sw = _mm512_load_ps(reinterpret_cast<const float*>(pb + kPackScale));
#pragma GCC unroll 8
    for (int i = 0; i < NT; ++i) {
      const int64_t x = (t0 + i) * nb + b;
      const int8_t* q = a.q + x * 32;
      __m512i L = kType == kQ4K ? _mm512_setzero_si512() : _mm512_set1_epi32(init_mul(kType) * a.o[x]);
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) L = _mm512_dpbusd_epi32(L, w[k], _mm512_set1_epi32(load_i32(q + 4 * k)));
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(L), _mm512_mul_ps(sw, _mm512_set1_ps(a.d[x])), acc[i]);
      if constexpr (kType == kQ4K)
        accm[i] = _mm512_fmadd_ps(_mm512_load_ps(reinterpret_cast<const float*>(pb + kPackMin)), _mm512_set1_ps(a.s[x]),
                                  accm[i]);
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < NT; ++i)
    _mm512_mask_storeu_ps(y + (t0 + i) * ldy, lanes, kType == kQ4K ? _mm512_sub_ps(acc[i], accm[i]) : acc[i]);
}

template <int kType>
RETNET_VNNI void group(const uint8_t* g, const QuantActs& a, float* y, int64_t ldy, int lanes) {
  const __mmask16 m = __mmask16((1u << lanes) - 1);
  int64_t t = 0;
  for (; t + kNT <= a.T; t += kNT) tile<kType, kNT>(g, a, t, y, ldy, m);
  switch (a.T - t) {
    case 7:
      return tile<kType, 7>(g, a, t, y, ldy, m);
    case 6:
      return tile<kType, 6>(g, a, t, y, ldy, m);
    case 5:
      return tile<kType, 5>(g, a, t, y, ldy, m);
    case 4:
      return tile<kType, 4>(g, a, t, y, ldy, m);
    case 3:
      return tile<kType, 3>(g, a, t, y, ldy, m);
    case 2:
      return tile<kType, 2>(g, a, t, y, ldy, m);
    case 1:
      return tile<kType, 1>(g, a, t, y, ldy, m);
    default:
      return;
  }
}

void group_avx512(int type, const uint8_t* g, const QuantActs& a, float* y, int64_t ldy, int lanes) {
  if (type == kQ8_0) group<kQ8_0>(g, a, y, ldy, lanes);
  else if (type == kQ4_0) group<kQ4_0>(g, a, y, ldy, lanes);
  else group<kQ4K>(g, a, y, ldy, lanes);
}

}  // namespace

const GroupFn kGroupAvx512 = group_avx512;
#pragma GCC diagnostic pop
#else
const GroupFn kGroupAvx512 = nullptr;
#endif

}  // namespace retnet::cpu::qgemm
