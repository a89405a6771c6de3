// Quantized decode GEMV, AVX2 path (the build's own -mavx2 -mfma -mf16c): int8 products with
// _mm256_maddubs_epi16 (unsigned × signed pairs) and _mm256_madd_epi16 (pairs → quads), one block
// of 32 per step into accumulator b mod 4, activation rows in groups of up to kGroup with all
// accumulators in registers. Results bit-identical to the scalar kernels (order in quant_gemv.hpp).
#include <immintrin.h>

#include <type_traits>

#include "backend/cpu/quant_gemv_impl.hpp"
#include "backend/cpu/weights_cpu.hpp"

namespace retnet::cpu::qgemv {

#ifdef RETNET_AVX2
namespace {

// Activation rows per pass over a weight row: 4 accumulators each (16 ymm registers in all).
constexpr int kGroup = 2;

// R((a0 + a2) + (a1 + a3)) of quant_gemv.hpp, R(v) = ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)).
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
inline float finish(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  return hsum8(_mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3)));
}

inline void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Eight int32 quad sums Σ u_i·s_i of unsigned codes u and signed activations s (pairs stay < 2^15).
inline __m256i quads(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
// acc = fma(float(L), S, acc) with the product S = s_w · d computed beforehand, broadcast from memory
// (once per eight blocks and activation row: scale_group; q4_k: once per super-block and row).
inline __m256 accumulate(__m256 acc, __m256i L, const float* S) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(L), _mm256_broadcast_ss(S), acc);
}
// acc = fma(float(L), s_w · d, acc) for activation block x, the product formed here (q8_0).
inline __m256 accumulate(__m256 acc, __m256i L, __m256 sw, const QuantActs& a, int64_t x) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(L), _mm256_mul_ps(sw, _mm256_broadcast_ss(a.d + x)), acc);
}

// The products S = s_w · d of up to eight blocks [0, n) (weights at blk, block_bytes apart) for NT
// activation rows from block x: the fp32 products of the scalar kernels, formed once per group and
// row (one vcvtph2ps of gathered scales instead of a conversion and two broadcasts per block and
// row). With kOffset (q4_0) also acc_off = fma(float(−8·Σq), S, acc_off) for the group: quant_gemv.hpp's
// acc_off[b mod 8] (lanes past n: 0·0, which changes nothing). S goes to memory (L1), from which each
// block broadcasts its product with a load and no vector operation (this kernel is short of
// instructions per block: every change that only removed some paid; docs/benchmarks.md).
template <int NT, bool kFull, bool kOffset>
inline void scale_group(const uint8_t* blk, size_t block_bytes, int n, const QuantActs& a, int64_t x,
                        float (&Sm)[NT][8], __m256 (&acc_off)[NT]) {
  __m128i h;
  if constexpr (kFull) {  // eight word inserts from memory (gather_f16x8 takes three instructions a block)
    h = _mm_cvtsi32_si128(load_u16(blk));
    h = _mm_insert_epi16(h, load_u16(blk + 1 * block_bytes), 1);
    h = _mm_insert_epi16(h, load_u16(blk + 2 * block_bytes), 2);
    h = _mm_insert_epi16(h, load_u16(blk + 3 * block_bytes), 3);
    h = _mm_insert_epi16(h, load_u16(blk + 4 * block_bytes), 4);
    h = _mm_insert_epi16(h, load_u16(blk + 5 * block_bytes), 5);
    h = _mm_insert_epi16(h, load_u16(blk + 6 * block_bytes), 6);
    h = _mm_insert_epi16(h, load_u16(blk + 7 * block_bytes), 7);
  } else {
    uint64_t lo, hi;
    gather_f16x8<false>(blk, block_bytes, n, lo, hi);
    h = _mm_set_epi64x(int64_t(hi), int64_t(lo));
  }
  const __m256 sw = _mm256_cvtph_ps(h);
  const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
  for (int i = 0; i < NT; ++i) {
    const __m256 d = kFull ? _mm256_loadu_ps(a.d + x + i * a.nb) : _mm256_maskload_ps(a.d + x + i * a.nb, m);
    const __m256 S = _mm256_mul_ps(sw, d);
    _mm256_store_ps(Sm[i], S);
    if constexpr (kOffset) {
      const __m256i o = kFull ? load256(a.o + x + i * a.nb) : _mm256_maskload_epi32(a.o + x + i * a.nb, m);
      acc_off[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(o), S, acc_off[i]);
    }
  }
}

// ---- q8_0: |w| × (q with w's sign), so that maddubs gets an unsigned operand. Its scale per block
// and row, not per group: q8_0 ran ~7% slower with scale_group on the Zen 3 VM (one thread; its
// blocks are twice as many bytes, so the scale is a smaller share of their work), q4_0 1.2x faster.
struct Q8_0 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  static constexpr bool kOffset = false, kGrouped = false;
  // Block k of the group at x (weights at blk) into acc.
  template <int k, int NT>
  static void block(const uint8_t* blk, const QuantActs& a, int64_t x, const float (&)[NT][8], __m256 (&acc)[NT]) {
    prefetch(blk + kPrefetchBytes);
    const __m256 sw = _mm256_set1_ps(_cvtsh_ss(load_u16(blk)));
    const __m256i wq = load256(blk + 2);
    const __m256i aw = _mm256_sign_epi8(wq, wq);
#pragma GCC unroll 4
    for (int i = 0; i < NT; ++i) {
      const int64_t xi = x + i * a.nb;
      acc[i] = accumulate(acc[i], quads(aw, _mm256_sign_epi8(load256(a.q + xi * 32), wq)), sw, a, xi);
    }
  }
};

// ---- q4_0: codes c in [0, 15] as the unsigned operand; the offset −8·Σq apart (scale_group).
struct Q4_0 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  static constexpr bool kOffset = true, kGrouped = true;
  template <int k, int NT>
  static void block(const uint8_t* blk, const QuantActs& a, int64_t x, const float (&S)[NT][8], __m256 (&acc)[NT]) {
    // Three prefetches a group of eight (144 bytes, 54 apart: no cache line of the stream skipped)
    // rather than one a block: fewer instructions, the same lines.
    if constexpr (k % 3 == 0) prefetch(blk + kPrefetchBytes);
    // The 16 code bytes broadcast into both 128-bit lanes (a load, no shuffle), the upper lane
    // shifted right by 4: values 0..15 below, 16..31 above.
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    const __m256i c =
        _mm256_and_si256(_mm256_srlv_epi32(both, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)), _mm256_set1_epi8(0x0F));
#pragma GCC unroll 4
    for (int i = 0; i < NT; ++i) {
      const int64_t xi = x + i * a.nb;
      acc[i] = accumulate(acc[i], quads(c, load256(a.q + xi * 32)), &S[i][k]);
    }
  }
};

// Blocks [k, n) of a group (k < 8) into accumulators b mod 4, unrolled: block k at blk.
template <class K, int k, int NT>
inline void group_tail(const uint8_t* blk, int n, const QuantActs& a, int64_t x, const float (&S)[NT][8],
                       __m256 (&acc0)[NT], __m256 (&acc1)[NT], __m256 (&acc2)[NT], __m256 (&acc3)[NT]) {
  if constexpr (k < 8) {
    if (k >= n) return;
    __m256(&acc)[NT] = k % 4 == 0 ? acc0 : k % 4 == 1 ? acc1 : k % 4 == 2 ? acc2 : acc3;
    K::template block<k, NT>(blk, a, x + k, S, acc);
    group_tail<K, k + 1, NT>(blk + K::kBlockBytes, n, a, x, S, acc0, acc1, acc2, acc3);
  }
}

// NT activation rows t0.. against weight rows [r0, r1) of 32-blocks, block b into accumulator b mod 4,
// eight blocks (one scale group, K::kGrouped) a step.
template <class K, int NT>
void rows32(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QuantActs& a, int64_t t0, float* y,
            int64_t ldy) {
  const int64_t nb = a.nb, x0 = t0 * nb;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = w + size_t(r) * row_bytes;
    __m256 acc0[NT], acc1[NT], acc2[NT], acc3[NT], off[NT];
    alignas(32) float S[NT][8];
#pragma GCC unroll 4
    for (int i = 0; i < NT; ++i) acc0[i] = acc1[i] = acc2[i] = acc3[i] = off[i] = _mm256_setzero_ps();
    int64_t b = 0;
    for (; b + 8 <= nb; b += 8) {
      const uint8_t* blk = row + size_t(b) * K::kBlockBytes;
      if constexpr (K::kGrouped) scale_group<NT, true, K::kOffset>(blk, K::kBlockBytes, 8, a, x0 + b, S, off);
      group_tail<K, 0, NT>(blk, 8, a, x0 + b, S, acc0, acc1, acc2, acc3);
    }
    if (b < nb) {
      const uint8_t* blk = row + size_t(b) * K::kBlockBytes;
      const int n = int(nb - b);
      if constexpr (K::kGrouped) scale_group<NT, false, K::kOffset>(blk, K::kBlockBytes, n, a, x0 + b, S, off);
      group_tail<K, 0, NT>(blk, n, a, x0 + b, S, acc0, acc1, acc2, acc3);
    }
#pragma GCC unroll 4
    for (int i = 0; i < NT; ++i) {
      const float v = finish(acc0[i], acc1[i], acc2[i], acc3[i]);
      y[(t0 + i) * ldy + (r - r0)] = K::kOffset ? v + hsum8(off[i]) : v;
    }
  }
}

// ---- q4_k: per super-block the eight sub-block scales d·sc_s (exact) and mins dmin·m_s; sub-blocks
// 2p (low nibbles) and 2p+1 (high) share 32 code bytes; sub-block s into accumulator s mod 4.
struct Q4K {
  template <int NT>
  static void rows(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QuantActs& a, int64_t t0, float* y,
                   int64_t ldy) {
    const int64_t nb = a.nb, nsb = nb / 8, x0 = t0 * nb;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* row = w + size_t(r) * row_bytes;
      __m256 acc[4][NT], accm[NT];
#pragma GCC unroll 4
      for (int i = 0; i < NT; ++i) acc[0][i] = acc[1][i] = acc[2][i] = acc[3][i] = accm[i] = _mm256_setzero_ps();
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
        // S[i][s] = d·sc_s · d(i, s), the same fp32 product as the scalar kernel's.
        alignas(32) float S[NT][8];
#pragma GCC unroll 4
        for (int i = 0; i < NT; ++i) {
          accm[i] = _mm256_fmadd_ps(mw, _mm256_loadu_ps(a.s + x + i * nb), accm[i]);
          _mm256_store_ps(S[i], _mm256_mul_ps(scw, _mm256_loadu_ps(a.d + x + i * nb)));
        }
#pragma GCC unroll 4
        for (int p = 0; p < 4; ++p) {
          const __m256i raw = load256(blk + 16 + 32 * p);
          const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
#pragma GCC unroll 4
          for (int i = 0; i < NT; ++i) {
            const int64_t xi = x + i * nb + 2 * p;
            acc[(2 * p) % 4][i] = accumulate(acc[(2 * p) % 4][i], quads(lo, load256(a.q + xi * 32)), &S[i][2 * p]);
            acc[(2 * p + 1) % 4][i] =
                accumulate(acc[(2 * p + 1) % 4][i], quads(hi, load256(a.q + xi * 32 + 32)), &S[i][2 * p + 1]);
          }
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < NT; ++i)
        y[(t0 + i) * ldy + (r - r0)] = finish(acc[0][i], acc[1][i], acc[2][i], acc[3][i]) - hsum8(accm[i]);
    }
  }
};

template <class K, int NT>
void group(const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, const QuantActs& a, int64_t t0, float* y,
           int64_t ldy) {
  if constexpr (std::is_same_v<K, Q4K>) K::template rows<NT>(w, row_bytes, r0, r1, a, t0, y, ldy);
  else rows32<K, NT>(w, row_bytes, r0, r1, a, t0, y, ldy);
}

// run_groups over this path's group kernels (kGroup activation rows at most).
template <class K>
void run(const QuantActs& a, const uint8_t* w, size_t row_bytes, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  static constexpr GroupFn kFns[kGroup] = {group<K, 1>, group<K, 2>};
  static_assert(kGroup == 2);
  run_groups(kFns, kGroup, a, w, row_bytes, r0, r1, y, ldy);
}

void q8_0_avx2(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run<Q8_0>(a, w, q8_0_row_bytes(a.nb * 32), r0, r1, y, ldy);
}
void q4_0_avx2(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run<Q4_0>(a, w, q4_0_row_bytes(a.nb * 32), r0, r1, y, ldy);
}
void q4_k_avx2(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run<Q4K>(a, w, q4_k_row_bytes(a.nb * 32), r0, r1, y, ldy);
}

}  // namespace

const RowsFn kAvx2[3] = {q8_0_avx2, q4_0_avx2, q4_k_avx2};
#endif

}  // namespace retnet::cpu::qgemv
