// Quantized prefill GEMM, AVX-512 VNNI path: register tiles of kMR = 2 weight rows × kNR activation
// rows, each (weight row, activation row) pair with the GEMV's two zmm accumulators (blocks 4k, 4k+1
// in the halves of A, 4k+2, 4k+3 in B: quant_gemv.hpp's four accumulators) and the GEMV's fp32
// operations in the GEMV's order, so every output is bit-identical to gemv_q8_0 & co.
// (quant_gemv_avx512.cpp, whose scheme this follows; quant_gemm.hpp has the design).
//
// Only these functions carry AVX-512 target attributes; they run only when quant_path_supported
// says the CPU (and OS) has AVX-512 VNNI.
#include <immintrin.h>

#include <algorithm>

#include "backend/cpu/quant_gemm.hpp"
#include "backend/cpu/quant_gemm_impl.hpp"

#if defined(__x86_64__) && defined(__GNUC__)
#define RETNET_QGEMM_AVX512 1
#define RETNET_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#endif

namespace retnet::cpu::qgemm {

#ifdef RETNET_QGEMM_AVX512
// GCC 12's unmasked AVX-512 intrinsics pass a self-initialised _mm512_undefined_*() as the unused
// merge source, which -W(maybe-)uninitialized reports once inlined (the 256→512-bit casts here): a
// false positive (as in quant_gemv_avx512.cpp), silenced for these kernels only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace {

constexpr int kMR = 2;                // weight rows per tile
constexpr int kNR = int(kGemmTileT);  // activation rows per tile: 2·kMR·kNR accumulators + kMR·kNR scales

// The GEMV's final reduction (quant_gemv.hpp): R((acc0 + acc2) + (acc1 + acc3)), R as hsum8 reduces.
RETNET_VNNI inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
RETNET_VNNI inline __m256 lo_half(__m512 v) { return _mm512_castps512_ps256(v); }
RETNET_VNNI inline __m256 hi_half(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }
RETNET_VNNI inline __m512 with_lo(__m512 v, __m256 lo) {
  return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(v), _mm256_castps_pd(lo), 0));
}
RETNET_VNNI inline float finish(__m512 A, __m512 B) {
  return hsum8(_mm256_add_ps(_mm256_add_ps(lo_half(A), lo_half(B)), _mm256_add_ps(hi_half(A), hi_half(B))));
}
RETNET_VNNI inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
RETNET_VNNI inline __m512i join(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}
// Lanes 0..7 ← scale 2p, lanes 8..15 ← scale 2p + 1 (of the eight in the low half of a register).
RETNET_VNNI inline __m512i pair_index(int p) {
  return _mm512_set_epi32(2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p + 1, 2 * p,
                          2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p, 2 * p);
}
// acc = fma(float(L), S, acc) for a pair of blocks, S spread from the group's eight products.
RETNET_VNNI inline __m512 accumulate(__m512 acc, __m512i L, __m512 S8, __m512i sidx) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(L), _mm512_permutexvar_ps(sidx, S8), acc);
}
// A lone last block (odd block count) into one half: fma(float(L), s_w · d, acc), the GEMV's product.
RETNET_VNNI inline __m256 accumulate1(__m256 acc, __m256i L, float sw, const QuantActs& a, int64_t x) {
  return _mm256_fmadd_ps(_mm256_cvtepi32_ps(L), _mm256_mul_ps(_mm256_set1_ps(sw), _mm256_broadcast_ss(a.d + x)), acc);
}

// ---- q8_0: the activations are the unsigned operand, as codes + 128 (q xor 0x80), and the int32 sum
// starts at −128·Σw over each lane's four weights, so L = Σ (q + 128)·w − 128·Σw = Σ q·w exactly (no
// saturation: dpbusd sums in 32 bits). Per tile that costs one xor per activation block and two ops
// per weight block, instead of moving w's sign onto every (weight row, activation row) pair.
struct Q8_0 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ8_0);
  static constexpr bool kOffset = false;
  struct W {
    __m512i w, init;
  };
  // Blocks x, x + 1 of a weight row (at blk).
  RETNET_VNNI static W weights(const uint8_t* blk) {
    const __m512i w = join(load256(blk + 2), load256(blk + 2 + kBlockBytes));
    const __m512i w128 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(char(0x80)), w);
    return {w, _mm512_sub_epi32(_mm512_setzero_si512(), w128)};
  }
  RETNET_VNNI static __m512i acts(const int8_t* q) {
    return _mm512_xor_si512(_mm512_loadu_si512(q), _mm512_set1_epi8(char(0x80)));
  }
  RETNET_VNNI static __m512i dot(const W& w, __m512i act) { return _mm512_dpbusd_epi32(w.init, act, w.w); }
  RETNET_VNNI static __m256 single(const uint8_t* blk, const QuantActs& a, int64_t x, __m256 acc) {
    const __m256i wq = load256(blk + 2);
    const __m256i L =
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wq), _mm256_sign_epi8(load256(a.q + x * 32), wq));
    return accumulate1(acc, L, _cvtsh_ss(qgemv::load_u16(blk)), a, x);
  }
};

// ---- q4_0: codes c in [0, 15] the unsigned operand; the offset −8·Σq apart (as the GEMV).
struct Q4_0 {
  static constexpr size_t kBlockBytes = sizeof(BlockQ4_0);
  static constexpr bool kOffset = true;
  struct W {
    __m512i c;
  };
  // Both blocks' 16 code bytes, then the 128-bit lanes (qs0, qs1, qs0 >> 4, qs1 >> 4) reordered to
  // values 0..15, 16..31 of block x, then of block x + 1.
  RETNET_VNNI static W weights(const uint8_t* blk) {
    const __m256i raw = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kBlockBytes + 2)),
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    const __m512i both = join(raw, _mm256_srli_epi16(raw, 4));
    return {_mm512_and_si512(_mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(3, 1, 2, 0)), _mm512_set1_epi8(0x0F))};
  }
  RETNET_VNNI static __m512i acts(const int8_t* q) { return _mm512_loadu_si512(q); }
  RETNET_VNNI static __m512i dot(const W& w, __m512i act) {
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.c, act);
  }
  RETNET_VNNI static __m256 single(const uint8_t* blk, const QuantActs& a, int64_t x, __m256 acc) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i c = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(raw, 4), raw), _mm256_set1_epi8(0x0F));
    const __m256i L = _mm256_dpbusd_epi32(_mm256_setzero_si256(), c, load256(a.q + x * 32));
    return accumulate1(acc, L, _cvtsh_ss(qgemv::load_u16(blk)), a, x);
  }
};

// The accumulators of one tile.
struct Acc {
  __m512 A[kMR][kNR], B[kMR][kNR];
  __m256 off[kMR][kNR];  // q4_0's offset term; q4_k's min term
};

// Blocks [b, b + n) (n <= 8; n < 8 only for a row's last group) of weight rows `rows` against
// activation rows t..t + kNR (x = t·nb + b): the scale products S = s_w · d once per group and pair
// (q4_0: the offset term with them), then the pairs of blocks, p even into A, odd into B.
template <class K, bool kFull>
RETNET_VNNI inline void group32(const uint8_t* const (&rows)[kMR], int64_t b, int n, const QuantActs& a, int64_t x,
                                Acc& acc) {
  const int64_t nb = a.nb;
  const __mmask8 mask = kFull ? __mmask8(0xFF) : __mmask8((1u << n) - 1);
  __m256 sw[kMR];
#pragma GCC unroll 2
  for (int m = 0; m < kMR; ++m) {
    uint64_t lo, hi;
    qgemv::gather_f16x8<kFull>(rows[m] + size_t(b) * K::kBlockBytes, K::kBlockBytes, n, lo, hi);
    sw[m] = _mm256_cvtph_ps(_mm_set_epi64x(int64_t(hi), int64_t(lo)));
  }
  __m512 S[kMR][kNR];
#pragma GCC unroll 4
  for (int i = 0; i < kNR; ++i) {
    const __m256 d = _mm256_maskz_loadu_ps(mask, a.d + x + i * nb);
#pragma GCC unroll 2
    for (int m = 0; m < kMR; ++m) {
      const __m256 s = _mm256_mul_ps(sw[m], d);
      S[m][i] = _mm512_castps256_ps512(s);
      if constexpr (K::kOffset)
        acc.off[m][i] =
            _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_maskz_loadu_epi32(mask, a.o + x + i * nb)), s, acc.off[m][i]);
    }
  }
#pragma GCC unroll 4
  for (int p = 0; p < 4; ++p) {
    if (!kFull && 2 * p + 2 > n) break;
    typename K::W w[kMR];
#pragma GCC unroll 2
    for (int m = 0; m < kMR; ++m) w[m] = K::weights(rows[m] + size_t(b + 2 * p) * K::kBlockBytes);
    const __m512i sidx = pair_index(p);
#pragma GCC unroll 4
    for (int i = 0; i < kNR; ++i) {
      const __m512i act = K::acts(a.q + (x + i * nb + 2 * p) * 32);
#pragma GCC unroll 2
      for (int m = 0; m < kMR; ++m) {
        __m512& dst = p % 2 == 0 ? acc.A[m][i] : acc.B[m][i];
        dst = accumulate(dst, K::dot(w[m], act), S[m][i], sidx);
      }
    }
  }
}

// Weight rows r, r + 1 against activation rows t..t + kNR of 32-blocks; y[(t + i)·ldy + m] for row r + m.
template <class K>
RETNET_VNNI void tile32(const uint8_t* w, size_t row_bytes, int64_t r, const QuantActs& a, int64_t t, float* y,
                        int64_t ldy) {
  const int64_t nb = a.nb, x0 = t * nb;
  const uint8_t* const rows[kMR] = {w + size_t(r) * row_bytes, w + size_t(r + 1) * row_bytes};
  Acc acc;
#pragma GCC unroll 2
  for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
    for (int i = 0; i < kNR; ++i) acc.A[m][i] = acc.B[m][i] = _mm512_setzero_ps(), acc.off[m][i] = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) group32<K, true>(rows, b, 8, a, x0 + b, acc);
  if (b < nb) {  // one to three more pairs, then maybe a single block
    const int n = int(nb - b);
    group32<K, false>(rows, b, n, a, x0 + b, acc);
    b += n & ~1;
  }
#pragma GCC unroll 2
  for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
    for (int i = 0; i < kNR; ++i) {
      __m512 A = acc.A[m][i], B = acc.B[m][i];
      if (b < nb) {  // one block left: b mod 4 is 0 (into acc0, A's low half) or 2 (acc2, B's low half)
        const uint8_t* blk = rows[m] + size_t(b) * K::kBlockBytes;
        if (b % 4 == 0) A = with_lo(A, K::single(blk, a, x0 + b + i * nb, lo_half(A)));
        else B = with_lo(B, K::single(blk, a, x0 + b + i * nb, lo_half(B)));
      }
      const float v = finish(A, B);
      y[(t + i) * ldy + m] = K::kOffset ? v + hsum8(acc.off[m][i]) : v;
    }
}

// ---- q4_k: per super-block and weight row the eight sub-block scales d·sc_s (exact) and mins
// dmin·m_s; the 128 code bytes unpacked into four registers (sub-blocks 2p | 2p+1) once per weight
// row for the kNR activation rows; pairs p = 0, 2 into A, p = 1, 3 into B, as the GEMV.
RETNET_VNNI void tile_q4k(const uint8_t* w, size_t row_bytes, int64_t r, const QuantActs& a, int64_t t, float* y,
                          int64_t ldy) {
  const int64_t nb = a.nb, nsb = nb / 8, x0 = t * nb;
  const uint8_t* const rows[kMR] = {w + size_t(r) * row_bytes, w + size_t(r + 1) * row_bytes};
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  Acc acc;
#pragma GCC unroll 2
  for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
    for (int i = 0; i < kNR; ++i) acc.A[m][i] = acc.B[m][i] = _mm512_setzero_ps(), acc.off[m][i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < nsb; ++k) {
    const int64_t x = x0 + k * 8;
    const uint8_t* blk[kMR];
    __m256 scw[kMR], mw[kMR];
#pragma GCC unroll 2
    for (int m = 0; m < kMR; ++m) {
      blk[m] = rows[m] + size_t(k) * sizeof(BlockQ4K);
      uint64_t sc8, m8;
      qgemv::q4k_scales_mins(blk[m] + 4, sc8, m8);
      scw[m] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(sc8)))),
                             _mm256_set1_ps(_cvtsh_ss(qgemv::load_u16(blk[m]))));
      mw[m] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(int64_t(m8)))),
                            _mm256_set1_ps(_cvtsh_ss(qgemv::load_u16(blk[m] + 2))));
    }
    __m512 S[kMR][kNR];
#pragma GCC unroll 4
    for (int i = 0; i < kNR; ++i) {
      const __m256 d = _mm256_loadu_ps(a.d + x + i * nb), s = _mm256_loadu_ps(a.s + x + i * nb);
#pragma GCC unroll 2
      for (int m = 0; m < kMR; ++m) {
        acc.off[m][i] = _mm256_fmadd_ps(mw[m], s, acc.off[m][i]);
        S[m][i] = _mm512_castps256_ps512(_mm256_mul_ps(scw[m], d));
      }
    }
#pragma GCC unroll 4
    for (int p = 0; p < 4; ++p) {
      __m512i z[kMR];
#pragma GCC unroll 2
      for (int m = 0; m < kMR; ++m) {
        const __m256i raw = load256(blk[m] + 16 + 32 * p);
        z[m] = join(_mm256_and_si256(raw, m4), _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
      }
      const __m512i sidx = pair_index(p);
#pragma GCC unroll 4
      for (int i = 0; i < kNR; ++i) {
        const __m512i act = _mm512_loadu_si512(a.q + (x + i * nb + 2 * p) * 32);
#pragma GCC unroll 2
        for (int m = 0; m < kMR; ++m) {
          __m512& dst = p % 2 == 0 ? acc.A[m][i] : acc.B[m][i];
          dst = accumulate(dst, _mm512_dpbusd_epi32(_mm512_setzero_si512(), z[m], act), S[m][i], sidx);
        }
      }
    }
  }
#pragma GCC unroll 2
  for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
    for (int i = 0; i < kNR; ++i) y[(t + i) * ldy + m] = finish(acc.A[m][i], acc.B[m][i]) - hsum8(acc.off[m][i]);
}

using TileFn = void (*)(const uint8_t* w, size_t row_bytes, int64_t r, const QuantActs& a, int64_t t, float* y,
                        int64_t ldy);

// Every whole tile of weight rows [r0, r1) × activation rows [0, a.T): each weight-row pair against
// all activation tiles (the pair stays in L1, the chunk of activations too); the edges — an odd last
// weight row, the last a.T mod kNR activation rows — through the GEMV kernel, which computes the same.
void run_tiles(TileFn tile, qgemv::RowsFn gemv, size_t row_bytes, const QuantActs& a, const uint8_t* w, int64_t r0,
               int64_t r1, float* y, int64_t ldy) {
  const int64_t tt = a.T / kNR * kNR;
  int64_t r = r0;
  if (tt > 0)
    for (; r + kMR <= r1; r += kMR)
      for (int64_t t = 0; t < tt; t += kNR) tile(w, row_bytes, r, a, t, y + (r - r0), ldy);
  if (r < r1 && tt > 0) gemv(quant_acts_rows(a, 0, tt), w, r, r1, y + (r - r0), ldy);
  if (tt < a.T) gemv(quant_acts_rows(a, tt, a.T - tt), w, r0, r1, y + tt * ldy, ldy);
}

void q8_0_avx512(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run_tiles(tile32<Q8_0>, qgemv::kAvx512[0], q8_0_row_bytes(a.nb * 32), a, w, r0, r1, y, ldy);
}
void q4_0_avx512(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run_tiles(tile32<Q4_0>, qgemv::kAvx512[1], q4_0_row_bytes(a.nb * 32), a, w, r0, r1, y, ldy);
}
void q4_k_avx512(const QuantActs& a, const uint8_t* w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  run_tiles(tile_q4k, qgemv::kAvx512[2], q4_k_row_bytes(a.nb * 32), a, w, r0, r1, y, ldy);
}

}  // namespace

const qgemv::RowsFn kAvx512[3] = {q8_0_avx512, q4_0_avx512, q4_k_avx512};
#pragma GCC diagnostic pop
#else
const qgemv::RowsFn kAvx512[3] = {nullptr, nullptr, nullptr};
#endif

}  // namespace retnet::cpu::qgemm
