// Matrix products against weights stored as F32/F16/BF16 [rows, in], used in place from the mapping,
// and against block-quantized weights (q8_0, q4_0, q4_k): decode rows through the integer kernels of
// quant_gemv.hpp on activations quantized once per matmul (CpuBackend::matmul), prefill rows
// through the integer GEMM of quant_gemm.hpp on the same quantized activations (gemm_rows_quant;
// gemm_rows can still dequantize panels to fp32 for sgemm: widen_row).
#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cpu/kernels_cpu.hpp"
#include "backend/cpu/quant_gemm.hpp"
#include "backend/cpu/weights_cpu.hpp"
#include "retnet/error.hpp"

namespace retnet::cpu {

namespace {

#ifdef RETNET_AVX2
inline float hsum(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}
#endif

#ifdef RETNET_AVX2
// a_j += w_j · x[8j, 8j+8) for j = 0..3: one 32-element step of a row's four accumulators.
inline void fma32(__m256 w0, __m256 w1, __m256 w2, __m256 w3, const float* x, __m256& a0, __m256& a1, __m256& a2,
                  __m256& a3) {
  a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x), a0);
  a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8), a1);
  a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + 16), a2);
  a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + 24), a3);
}
#endif

#ifdef RETNET_AVX2
// BF16 rows widened without a conversion instruction: a 32-byte load holds 16 bf16 values, as eight
// 32-bit lanes (even element in the low half, odd in the high half); `lane << 16` is the even one
// as fp32 and `lane & 0xffff0000` the odd one. The activations are de-interleaved to match once per
// panel (deinterleave16): fewer instructions per weight than vpmovzxwd + shift.
inline __m256 bf16_even(__m256i r) { return _mm256_castsi256_ps(_mm256_slli_epi32(r, 16)); }
inline __m256 bf16_odd(__m256i r) {
  return _mm256_castsi256_ps(_mm256_and_si256(r, _mm256_set1_epi32(int(0xffff0000u))));
}
#endif

// xp [in] = x [in] with each whole group of 16 reordered as its 8 even then its 8 odd elements; a
// tail shorter than 16 is copied as it is.
inline void deinterleave16(const float* x, int64_t in, float* xp) {
  int64_t g = 0;
  for (; g + 16 <= in; g += 16)
    for (int64_t j = 0; j < 8; ++j) {
      xp[g + j] = x[g + 2 * j];
      xp[g + 8 + j] = x[g + 2 * j + 1];
    }
  for (; g < in; ++g) xp[g] = x[g];
}

// Dot products of one weight row w0 [in] with NT (1 or 2) activation rows x + t·in, 32 columns per
// iteration into four accumulators per activation row, then a shorter vector step (8 columns; BF16:
// one 16-group), then a scalar tail. BF16 rows pair with activations de-interleaved by
// deinterleave16 (accumulators 0/1 take a 16-group's even/odd halves). Every activation row is
// summed in exactly the same order whatever NT and whichever other rows it is paired with, so
// batched decoding gives bit-identical results to decoding each sequence alone.
// (Written out with named accumulators: as loops over small arrays GCC -O2 kept them on the stack.)
template <int NT, DType D, size_t PFB = 0>
inline void row_dots(const uint8_t* w0, const float* x, int64_t in, float* out) {
  static_assert(NT == 1 || NT == 2);
  static_assert(DTypeConst<D>::block_elems == 1, "row_dots: a block type needs a row kernel of its own");
  constexpr size_t kPrefetch = PFB;
  const float* x1 = x + (NT == 2 ? in : 0);
  int64_t i = 0;
  float s0 = 0.f, s1 = 0.f;
#ifdef RETNET_AVX2
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;  // activation row 0
  __m256 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                    // activation row 1 (NT == 2)
  for (; i + 32 <= in; i += 32) {
    if constexpr (kPrefetch > 0) {
      _mm_prefetch(reinterpret_cast<const char*>(w0) + size_t(i) * DTypeConst<D>::block_bytes + kPrefetch, _MM_HINT_T0);
      if constexpr (D == DType::F32)
        _mm_prefetch(reinterpret_cast<const char*>(w0) + size_t(i) * 4 + kPrefetch + 64, _MM_HINT_T0);
    }
    __m256 w0v, w1v, w2v, w3v;
    if constexpr (D == DType::BF16) {
      const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + size_t(i) * 2));
      const __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + size_t(i) * 2 + 32));
      w0v = bf16_even(r0), w1v = bf16_odd(r0), w2v = bf16_even(r1), w3v = bf16_odd(r1);
    } else {
      w0v = load8<D>(w0, i), w1v = load8<D>(w0, i + 8), w2v = load8<D>(w0, i + 16), w3v = load8<D>(w0, i + 24);
    }
    fma32(w0v, w1v, w2v, w3v, x + i, a0, a1, a2, a3);
    if constexpr (NT == 2) fma32(w0v, w1v, w2v, w3v, x1 + i, b0, b1, b2, b3);
  }
  if constexpr (D == DType::BF16) {
    if (i + 16 <= in) {
      const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w0 + size_t(i) * 2));
      const __m256 e0 = bf16_even(r0), o0 = bf16_odd(r0);
      a0 = _mm256_fmadd_ps(e0, _mm256_loadu_ps(x + i), a0);
      a1 = _mm256_fmadd_ps(o0, _mm256_loadu_ps(x + i + 8), a1);
      if constexpr (NT == 2) {
        b0 = _mm256_fmadd_ps(e0, _mm256_loadu_ps(x1 + i), b0);
        b1 = _mm256_fmadd_ps(o0, _mm256_loadu_ps(x1 + i + 8), b1);
      }
      i += 16;
    }
  } else {
    for (; i + 8 <= in; i += 8) {
      const __m256 wv = load8<D>(w0, i);
      a0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + i), a0);
      if constexpr (NT == 2) b0 = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x1 + i), b0);
    }
  }
  s0 = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  if constexpr (NT == 2) s1 = hsum(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3)));
#endif
  for (; i < in; ++i) {
    const float wi = load_elem<D>(w0, size_t(i));
    s0 += wi * x[i];
    if constexpr (NT == 2) s1 += wi * x1[i];
  }
  out[0] = s0;
  if constexpr (NT == 2) out[1] = s1;
}

// Whether a single BF16 row is prefetched 1 KiB ahead in software. On the Zen 3 VM (AVX2 only) the
// prefetch made a single row stream ~1.1x faster than the hardware prefetcher alone
// (docs/benchmarks.md); on the Zen 4 VM (AVX-512) it does the opposite: 125m's decode matrices on one
// thread streamed at ~0.75x of the plain read rate with it and ~1.0x without. Keyed on AVX-512F as
// the mark of the newer core, and RETNET_NO_AVX512 (set, not "" or "0") keeps the prefetch as on
// an AVX2-only CPU. Either way the arithmetic is the same: only the speed depends on it.
bool bf16_single_row_prefetch() {
  static const bool on = [] {
    const char* off = std::getenv("RETNET_NO_AVX512");
    const bool no512 = off && *off && std::strcmp(off, "0") != 0;
#if defined(__x86_64__) && defined(__GNUC__)
    // libgcc sets the AVX-512 bits only when XCR0 shows the OS saves the zmm/opmask state.
    return no512 || !__builtin_cpu_supports("avx512f");
#else
    return true;
#endif
  }();
  return on;
}

// T activation rows [T, in] against rows [r0, r1) of W; y[t, r - r0] with row stride ldy.
// One weight row at a time, read to its end: each thread's weight traffic is one sequential stream
// (walking several adjacent rows in lockstep makes interleaved streams KiBs apart, which the
// prefetchers follow worse than one). For T > 1 the row is reused from L1 by
// every pair of activation rows, so weights still come from memory once, and the next row is
// prefetched meanwhile (the batch makes each row compute-heavy enough to outrun the prefetcher).
// BF16 first de-interleaves x into scratch (T·in floats; the portable build keeps plain order).
template <DType D>
void gemv_batch_any(const float* x, int64_t T, int64_t in, const uint8_t* wbase, int64_t r0, int64_t r1, float* y,
                    int64_t ldy, std::vector<float>& scratch) {
#ifdef RETNET_AVX2
  if constexpr (D == DType::BF16) {
    if (scratch.size() < size_t(T * in)) scratch.resize(size_t(T * in));
    for (int64_t t = 0; t < T; ++t) deinterleave16(x + t * in, in, scratch.data() + t * in);
    x = scratch.data();
  }
#else
  (void)scratch;
#endif
  // A single BF16 row is prefetched 1 KiB ahead where the hardware prefetcher alone falls behind it
  // (bf16_single_row_prefetch).
  constexpr size_t kSinglePrefetch = D == DType::BF16 ? 1024 : 0;
  const bool single_prefetch = kSinglePrefetch > 0 && bf16_single_row_prefetch();
  const size_t row_bytes = size_t(dtype_row_bytes(D, in));
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w0 = wbase + size_t(r) * row_bytes;
    int64_t t = 0;
    float pair[2];
    for (; t + 2 <= T; t += 2) {
      row_dots<2, D, 2048>(w0, x + t * in, in, pair);
      y[t * ldy + (r - r0)] = pair[0];
      y[(t + 1) * ldy + (r - r0)] = pair[1];
    }
    if (t < T) {
      if (single_prefetch) row_dots<1, D, kSinglePrefetch>(w0, x + t * in, in, y + t * ldy + (r - r0));
      else row_dots<1, D>(w0, x + t * in, in, y + t * ldy + (r - r0));
    }
  }
}

}  // namespace

void gemv_rows(const float* x, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
               int64_t ldy, std::vector<float>& scratch) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  visit_dtype(
      w.dtype,
      [&](auto d) {
        constexpr DType D = decltype(d)::value;
        if constexpr (DTypeConst<D>::block_elems > 1)
          throw Error(std::string("gemv_rows: ") + dtype_name(D) +
                      " weights take quantized activations (gemv_rows_quant)");
        else gemv_batch_any<D>(x, T, in, base, r0, r1, y, ldy, scratch);
      },
      [&] { throw_bad_dtype(w.dtype, "gemv_rows"); });
}

void gemv_rows_quant(const QuantActs& a, const WeightRef& w, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  visit_dtype(
      w.dtype,
      [&](auto d) {
        constexpr DType D = decltype(d)::value;
        if constexpr (D == DType::Q8_0) QuantKernel<BlockQ8_0>::gemv(a, w.data, r0, r1, y, ldy);
        else if constexpr (D == DType::Q4_0) QuantKernel<BlockQ4_0>::gemv(a, w.data, r0, r1, y, ldy);
        else if constexpr (D == DType::Q4_K) QuantKernel<BlockQ4K>::gemv(a, w.data, r0, r1, y, ldy);
        else {
          static_assert(DTypeConst<D>::block_elems == 1, "gemv_rows_quant: a block type without its kernel");
          throw Error(std::string("gemv_rows_quant: ") + dtype_name(D) + " is not a block type (gemv_rows)");
        }
      },
      [&] { throw_bad_dtype(w.dtype, "gemv_rows_quant"); });
}

void gemm_rows_quant(const QuantActs& a, const WeightRef& w, int64_t r0, int64_t r1, float* y, int64_t ldy,
                     std::vector<uint8_t>& pack) {
  // The pack buffer aligned to 64 bytes (the kernels' aligned loads), grown as needed.
  const size_t need = quant_pack_bytes(r1 - r0, a.nb * kQActBlock) + 64;
  if (pack.size() < need) pack.resize(need);
  uint8_t* p = pack.data() + (64 - reinterpret_cast<uintptr_t>(pack.data()) % 64) % 64;
  switch (w.dtype) {
    case DType::Q8_0:
      return gemm_q8_0(a, w.data, r0, r1, y, ldy, p);
    case DType::Q4_0:
      return gemm_q4_0(a, w.data, r0, r1, y, ldy, p);
    case DType::Q4_K:
      return gemm_q4_k(a, w.data, r0, r1, y, ldy, p);
    default:
      throw Error(std::string("gemm_rows_quant: ") + dtype_name(w.dtype) + " has no integer GEMM");
  }
}

void gemm_rows(const float* x, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
               int64_t ldy, std::vector<float>& scratch) {
  const int64_t n = r1 - r0;
  if (n <= 0) return;
  const float* panel;
  if (w.dtype == DType::F32) {
    panel = static_cast<const float*>(w.data) + r0 * in;
  } else {
    if (scratch.size() < size_t(n * in)) scratch.resize(size_t(n * in));
    for (int64_t r = 0; r < n; ++r) widen_row(w.row(r0 + r), w.dtype, in, scratch.data() + r * in);
    panel = scratch.data();
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(n), int(in), 1.0f, x, int(in), panel, int(in), 0.0f,
              y, int(ldy));
}

}  // namespace retnet::cpu
