// Quantized decode GEMV, AVX-512 VNNI path: _mm512_dpbusd_epi32 sums four unsigned × signed byte
// products per int32 lane, two blocks of 32 per register: blocks 4k, 4k+1 in the halves of one
// accumulator, 4k+2, 4k+3 in another — exactly the four accumulators of quant_gemv.hpp's order, so
// the results are bit-identical to the AVX2 and scalar kernels. Activation rows go in groups of up
// to kGroup, two zmm accumulators each.
//
// The rest of the build targets AVX2; only the functions below carry AVX-512 target attributes, and
// they run only when cpu_has_avx512_vnni() says the CPU (and OS) has it (quant_path_default).
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "backend/cpu/quant_gemv_impl.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RETNET_QGEMV_AVX512 1
#define RETNET_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

namespace retnet::cpu::qgemv {

bool cpu_has_avx512_vnni() {
#ifdef RETNET_QGEMV_AVX512
  // libgcc sets the AVX-512 bits only when XCR0 shows the OS saves the zmm/opmask state.
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return ok;
#else
  return false;
#endif
}

#ifdef RETNET_QGEMV_AVX512
// GCC 12's unmasked AVX-512 intrinsics pass a self-initialised _mm512_undefined_*() as the unused
// merge source, which -Wmaybe-uninitialized reports once inlined: a false positive (as in
// gemm_bf16_avx512.cpp), silenced for these kernels only.
#pragma GCC diagnostic push
#ifndef __clang__  // clang has no such warning group and would warn about the pragma
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace {

// Activation rows per pass over a weight row: two zmm accumulators each (16 registers in all).
constexpr int kGroup = 8;

RETNET_VNNI inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
RETNET_VNNI inline __m256 lo_half(__m512 v) { return _mm512_castps512_ps256(v); }
RETNET_VNNI inline __m256 hi_half(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
// quant_gemv.hpp's R((acc0 + acc2) + (acc1 + acc3)) from its halves: A = (acc0 | acc1), B = (acc2 | acc3).
RETNET_VNNI inline float finish(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  return hsum8(_mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3)));
}

RETNET_VNNI inline void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
RETNET_VNNI inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
RETNET_VNNI inline __m512i join(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
RETNET_VNNI inline __m512i pair_index(int p) {
  return _mm512_set_epi32(2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p,
                          2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p);
}
// acc = fma(float(L), S, acc) for a pair of blocks, S = s_w · d of the group's eight (low 256 bits of
// S8) spread by sidx (pair_index).
RETNET_VNNI inline __m512 accumulate(__m512 acc, __m512i L, __m512 S8, __m512i sidx) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(L), _mm512_permutexvar_ps(sidx, S8), acc);
}
// The products S = s_w · d of up to eight blocks (weights at blk) for NT activation rows from block x:
// the fp32 product of the scalar kernels, formed once per group and row. With kOffset (q4_0) also
// acc_off = fma(float(−8·Σq), S, acc_off) for the group (lanes past n: 0·0, which changes nothing).
// A full group of eight q4_0 blocks (144 bytes) takes its scales from two 64-byte loads and one
// word permute (block k's scale is word 9k), eight q8_0 blocks (272 bytes) from four loads, two
// permutes and a blend (word 17k): a few vector operations instead of gather_f16x8's two dozen
// scalar ones (q4_0 ran 1.25x as fast in L2 with this and the broadcast unpack below).
template <int NT, bool kFull, bool kOffset>
RETNET_VNNI inline void scale_group(const uint8_t* blk, size_t block_bytes, int n, const QuantActs& a, int64_t x,
                                    __m512 (&S)[NT], __m256 (&acc_off)[NT]) {
  __m256 sw;
  if (kFull && block_bytes == sizeof(BlockQ4_0)) {
    const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 63, 54,
                                         45, 36, 27, 18, 9, 0);
    const __m512i h = _mm512_permutex2var_epi16(_mm512_loadu_si512(blk), idx, _mm512_loadu_si512(blk + 64));
    sw = _mm256_cvtph_ps(_mm512_castsi512_si128(h));
  } else if (kFull && block_bytes == sizeof(BlockQ8_0)) {
    const __m512i i01 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         0, 0, 51, 34, 17, 0);
    const __m512i i23 = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 55, 38,
                                         21, 4, 0, 0, 0, 0);
    const __m512i h01 = _mm512_permutex2var_epi16(_mm512_loadu_si512(blk), i01, _mm512_loadu_si512(blk + 64));
    const __m512i h23 = _mm512_permutex2var_epi16(_mm512_loadu_si512(blk + 128), i23, _mm512_loadu_si512(blk + 192));
    sw =
        _mm256_cvtph_ps(_mm_mask_blend_epi16(__mmask8(0xF0), _mm512_castsi512_si128(h01), _mm512_castsi512_si128(h23)));
  } else {
    uint64_t lo, hi;
    gather_f16x8<kFull>(blk, block_bytes, n, lo, hi);
    sw = _mm256_cvtph_ps(_mm_set_epi64x(int64_t(hi), int64_t(lo)));
  }
  const __mmask8 m = kFull ? __mmask8(0xFF) : __mmask8((1u << n) - 1);
#pragma GCC unroll 8
  for (int i = 0; i < NT; ++i) {
    const __m256 s = _mm256_mul_ps(sw, _mm256_maskz_loadu_ps(m, a.d + x + i * a.nb));
    S[i] = _mm512_castps256_ps512(s);
    if constexpr (kOffset)
      acc_off[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_maskz_loadu_epi32(m, a.o + x + i * a.nb)), s, acc_off[i]);
  }
}
RETNET_VNNI inline __m256 accumulate1(__m256 acc, __m256i L, float sw, const QuantActs& a, int64_t x) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(L), _mm256_mul_ps(_mm256_set1_ps(sw), _mm256_broadcast_ss(a.d + x)), acc);
}

// ---- q8_0: |w| × (q negated where w < 0), so that dpbusd gets an unsigned operand.
struct Q8_0 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  static constexpr bool kOffset = false;
  // Blocks x, x + 1 (weights at blk) into acc (block x in the low half).
  template <int NT>
  RETNET_VNNI static void pair(const uint8_t* blk, const QuantActs& a, int64_t x, const __m512 (&S)[NT], __m512i sidx,
                               __m512 (&acc)[NT]) {
    prefetch(blk + kPrefetchBytes);
    prefetch(blk + kPrefetchBytes + 64);
    const __m512i wq = join(load256(blk + 2), load256(blk + 2 + kBlockBytes));
    const __mmask64 neg = _mm512_movepi8_mask(wq);
    const __m512i aw = _mm512_abs_epi8(wq);
#pragma GCC unroll 8
    for (int i = 0; i < NT; ++i) {
      const int64_t xi = x + i * a.nb;
      const __m512i aq = _mm512_loadu_si512(a.q + xi * 32);
      const __m512i sq = _mm512_mask_sub_epi8(aq, neg, _mm512_setzero_si512(), aq);
      acc[i] = accumulate(acc[i], _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw, sq), S[i], sidx);
    }
  }
  // Block x alone (an odd block count's last) into acc, eight lanes.
  RETNET_VNNI static __m256 single(const uint8_t* blk, const QuantActs& a, int64_t x, __m256 acc) {
    const __m256i wq = load256(blk + 2);
    const __m256i L =
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wq), _mm256_sign_epi8(load256(a.q + x * 32), wq));
    return accumulate1(acc, L, _cvtsh_ss(load_u16(blk)), a, x);
  }
};

// ---- q4_0: codes c in [0, 15] unsigned; the offset −8·Σq apart (scale_group).
struct Q4_0 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  static constexpr bool kOffset = true;
  template <int NT>
  RETNET_VNNI static void pair(const uint8_t* blk, const QuantActs& a, int64_t x, const __m512 (&S)[NT], __m512i sidx,
                               __m512 (&acc)[NT]) {
    prefetch(blk + kPrefetchBytes);
    // Codes: each block's 16 bytes broadcast into two 128-bit lanes (qs0, qs0, qs1, qs1: loads, no
    // shuffle), the odd lanes shifted right by 4: values 0..15, 16..31 of block x, then of block
    // x + 1. (Joining and reordering the lanes instead took three shuffles per pair, the port this
    // loop is short of.)
    const __m512i both = _mm512_mask_broadcast_i32x4(
        _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2))), __mmask16(0xFF00),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kBlockBytes + 2)));
    const __m512i c =
        _mm512_and_si512(_mm512_mask_srli_epi16(both, __mmask32(0xFF00FF00u), both, 4), _mm512_set1_epi8(0x0F));
#pragma GCC unroll 8
    for (int i = 0; i < NT; ++i) {
      const int64_t xi = x + i * a.nb;
      const __m512i L = _mm512_dpbusd_epi32(_mm512_setzero_si512(), c, _mm512_loadu_si512(a.q + xi * 32));
      acc[i] = accumulate(acc[i], L, S[i], sidx);
    }
  }
  RETNET_VNNI static __m256 single(const uint8_t* blk, const QuantActs& a, int64_t x, __m256 acc) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i c = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
    const __m256i L = _mm256_dpbusd_epi32(_mm256_setzero_si256(), c, load256(a.q + x * 32));
    return accumulate1(acc, L, _cvtsh_ss(load_u16(blk)), a, x);
  }
};

// NT activation rows t0.. against weight rows [r0, r1) of 32-blocks: pairs of blocks 4k, 4k+1 into
// A, 4k+2, 4k+3 into B, the last one to three blocks as they fall.
template <class K, int NT>
RETNET_VNNI void rows32(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QuantActs& a, int64_t t0,
                        float* y, int64_t ldy) {
  const int64_t nb = a.nb, x0 = t0 * nb;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + size_t(r) * row_bytes;
    __m512 A[NT], B[NT];
#pragma GCC unroll 8
    for (int i = 0; i < NT; ++i) A[i] = B[i] = _mm512_setzero_ps();
    __m512 S[NT];
    __m256 off[NT];
#pragma GCC unroll 8
    for (int i = 0; i < NT; ++i) off[i] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
      const uint8_t* blk = row + size_t(b) * K::kBlockBytes;
      scale_group<NT, true, K::kOffset>(blk, K::kBlockBytes, 8, a, x0 + b, S, off);
      K::template pair<NT>(blk, a, x0 + b, S, pair_index(0), A);
      K::template pair<NT>(blk + 2 * K::kBlockBytes, a, x0 + b + 2, S, pair_index(1), B);
      K::template pair<NT>(blk + 4 * K::kBlockBytes, a, x0 + b + 4, S, pair_index(2), A);
      K::template pair<NT>(blk + 6 * K::kBlockBytes, a, x0 + b + 6, S, pair_index(3), B);
    }
    if (b < nb) {  // one to three more pairs (A, B, A), then maybe a single block
      const uint8_t* blk = row + size_t(b) * K::kBlockBytes;
      const int n = int(nb - b);
      scale_group<NT, false, K::kOffset>(blk, K::kBlockBytes, n, a, x0 + b, S, off);
      if (n >= 2) K::template pair<NT>(blk, a, x0 + b, S, pair_index(0), A);
      if (n >= 4) K::template pair<NT>(blk + 2 * K::kBlockBytes, a, x0 + b + 2, S, pair_index(1), B);
      if (n >= 6) K::template pair<NT>(blk + 4 * K::kBlockBytes, a, x0 + b + 4, S, pair_index(2), A);
      b += n & ~1;
    }
#pragma GCC unroll 8
    for (int i = 0; i < NT; ++i) {
      __m256 a0 = lo_half(A[i]), a2 = lo_half(B[i]);
      if (b < nb) {  // one block left: b mod 4 is 0 (into acc0) or 2 (into acc2)
        const uint8_t* blk = row + size_t(b) * K::kBlockBytes;
        if (b % 4 == 0) a0 = K::single(blk, a, x0 + b + i * nb, a0);
        else a2 = K::single(blk, a, x0 + b + i * nb, a2);
      }
      const float v = finish(a0, hi_half(A[i]), a2, hi_half(B[i]));
      y[(t0 + i) * ldy + (r - r0)] = K::kOffset ? v + hsum8(off[i]) : v;
    }
  }
}

// ---- q4_k: a super-block's codes unpacked into four registers (sub-blocks 2p | 2p+1: p = 0, 2 into
// A, p = 1, 3 into B) and its scales spread per pair once, then every activation row.
struct Q4K {
  template <int NT>
  RETNET_VNNI static void rows(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QuantActs& a,
                               int64_t t0, float* y, int64_t ldy) {
    const int64_t nb = a.nb, nsb = nb / 8, x0 = t0 * nb;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w + size_t(r) * row_bytes;
      __m512 A[NT], B[NT];
      __m256 accm[NT];
#pragma GCC unroll 8
      for (int i = 0; i < NT; ++i) A[i] = B[i] = _mm512_setzero_ps(), accm[i] = _mm256_setzero_ps();
      for (int64_t k = 0; k < nsb; ++k) {
        const uint8_t* blk = row + size_t(k) * sizeof(BlockQ4K);
        prefetch(blk + kPrefetchBytes);
        prefetch(blk + kPrefetchBytes + 64);
        prefetch(blk + kPrefetchBytes + 128);
        uint64_t sc8, m8;
        q4k_scales_mins(blk + 4, sc8, m8);
        const __m256 scw = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(sc8)))),
                                         _mm256_set1_ps(_cvtsh_ss(load_u16(blk))));
        const __m256 mw = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(m8)))),
                                        _mm256_set1_ps(_cvtsh_ss(load_u16(blk + 2))));
        const int64_t x = x0 + k * 8;
        // S[i] = d·sc_s · d(i, s) for the eight sub-blocks s (the scalar kernel's fp32 product), spread
        // per pair of sub-blocks below.
        __m512 S[NT];
#pragma GCC unroll 8
        for (int i = 0; i < NT; ++i) {
          accm[i] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(a.s + x + i * nb), accm[i]);
          S[i] = _mm512_castps256_ps512(_mm256_mul_ps(scw, _mm256_loadu_ps(a.d + x + i * nb)));
        }
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {
          const __m256i raw = load256(blk + 16 + 32 * p);
          const __m512i z = join(_mm256_and_si256(raw, m4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
#pragma GCC unroll 8
          for (int i = 0; i < NT; ++i) {
            const int64_t xi = x + i * nb + 2 * p;
            const __m512i L = _mm512_dpbusd_epi32(_mm512_setzero_si512(), z, _mm512_loadu_si512(a.q + xi * 32));
            if (p % 2 == 0) A[i] = accumulate(A[i], L, S[i], pair_index(p));
            else B[i] = accumulate(B[i], L, S[i], pair_index(p));
          }
        }
      }
#pragma GCC unroll 8
      for (int i = 0; i < NT; ++i)
        y[(t0 + i) * ldy + (r - r0)] =
            finish(lo_half(A[i]), hi_half(A[i]), lo_half(B[i]), hi_half(B[i])) - hsum8(accm[i]);
    }
  }
};

template <class K, int NT>
RETNET_VNNI void group(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QuantActs& a, int64_t t0,
                       float* y, int64_t ldy) {
  if constexpr (std::is_same_v<K, Q4K>) K::template rows<NT>(w, row_bytes, r0, r1, a, t0, y, ldy);
  else rows32<K, NT>(w, row_bytes, r0, r1, a, t0, y, ldy);
}

// run_groups over this path's group kernels (kGroup activation rows at most).
template <class K>
void run(const QuantActs& a, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  static constexpr GroupFn kFns[kGroup] = {group<K, 1>, group<K, 2>, group<K, 3>, group<K, 4>,
                                           group<K, 5>, group<K, 6>, group<K, 7>, group<K, 8>};
  run_groups(kFns, kGroup, a, w, row_bytes, r0, r1, y, ldy);
}

void q8_0_avx512(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run<Q8_0>(a, w, q8_0_row_bytes(a.nb * 32), r0, r1, y, ldy);
}
void q4_0_avx512(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run<Q4_0>(a, w, q4_0_row_bytes(a.nb * 32), r0, r1, y, ldy);
}
void q4_k_avx512(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run<Q4K>(a, w, q4_k_row_bytes(a.nb * 32), r0, r1, y, ldy);
}

}  // namespace

const RowsFn kAvx512[3] = {q8_0_avx512, q4_0_avx512, q4_k_avx512};
#pragma GCC diagnostic pop
#else
const RowsFn kAvx512[3] = {nullptr, nullptr, nullptr};
#endif

}  // namespace retnet::cpu::qgemv
