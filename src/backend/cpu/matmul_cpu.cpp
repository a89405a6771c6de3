// Matrix products against weights stored as F32/F16/BF16 [rows, in], used in place from the mapping.
#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels_cpu.hpp"

namespace retnet::cpu {

namespace {

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define RETNET_AVX2 1
template <DType D>
inline __m256 load8(const void* base, int64_t i) {
  if constexpr (D == DType::F32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else if constexpr (D == DType::F16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
  } else {
    __m256i w = _mm256_cvtepu16_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
}

inline __m128 hsum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 ab = _mm256_hadd_ps(a, b);
  __m256 cd = _mm256_hadd_ps(c, d);
  __m256 abcd = _mm256_hadd_ps(ab, cd);
  return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

inline float hsum(__m256 a) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}
#endif

// One x row against rows [r0, r1) of W: 4 weight rows at a time, 16 columns per iteration.
template <DType D>
void gemv1(const float* x, int64_t in, const uint8_t* wbase, int64_t r0, int64_t r1, float* y) {
  const size_t es = dtype_size(D);
  const size_t row_bytes = size_t(in) * es;
  int64_t r = r0;
#ifdef RETNET_AVX2
  const int64_t in16 = in & ~int64_t(15);
  const int64_t in8 = in & ~int64_t(7);
  for (; r + 4 <= r1; r += 4) {
    const uint8_t* w0 = wbase + size_t(r) * row_bytes;
    const uint8_t* w1 = w0 + row_bytes;
    const uint8_t* w2 = w1 + row_bytes;
    const uint8_t* w3 = w2 + row_bytes;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i < in16; i += 16) {
      __m256 xa = _mm256_loadu_ps(x + i), xb = _mm256_loadu_ps(x + i + 8);
      a0 = _mm256_fmadd_ps(load8<D>(w0, i), xa, a0);
      b0 = _mm256_fmadd_ps(load8<D>(w0, i + 8), xb, b0);
      a1 = _mm256_fmadd_ps(load8<D>(w1, i), xa, a1);
      b1 = _mm256_fmadd_ps(load8<D>(w1, i + 8), xb, b1);
      a2 = _mm256_fmadd_ps(load8<D>(w2, i), xa, a2);
      b2 = _mm256_fmadd_ps(load8<D>(w2, i + 8), xb, b2);
      a3 = _mm256_fmadd_ps(load8<D>(w3, i), xa, a3);
      b3 = _mm256_fmadd_ps(load8<D>(w3, i + 8), xb, b3);
    }
    for (; i < in8; i += 8) {
      __m256 xa = _mm256_loadu_ps(x + i);
      a0 = _mm256_fmadd_ps(load8<D>(w0, i), xa, a0);
      a1 = _mm256_fmadd_ps(load8<D>(w1, i), xa, a1);
      a2 = _mm256_fmadd_ps(load8<D>(w2, i), xa, a2);
      a3 = _mm256_fmadd_ps(load8<D>(w3, i), xa, a3);
    }
    __m128 s = hsum4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3));
    float out[4];
    _mm_storeu_ps(out, s);
    for (; i < in; ++i) {
      out[0] += load_as_f32(w0, D, size_t(i)) * x[i];
      out[1] += load_as_f32(w1, D, size_t(i)) * x[i];
      out[2] += load_as_f32(w2, D, size_t(i)) * x[i];
      out[3] += load_as_f32(w3, D, size_t(i)) * x[i];
    }
    std::memcpy(y + (r - r0), out, sizeof out);
  }
  for (; r < r1; ++r) {
    const uint8_t* w0 = wbase + size_t(r) * row_bytes;
    __m256 a0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i < in8; i += 8) a0 = _mm256_fmadd_ps(load8<D>(w0, i), _mm256_loadu_ps(x + i), a0);
    float s = hsum(a0);
    for (; i < in; ++i) s += load_as_f32(w0, D, size_t(i)) * x[i];
    y[r - r0] = s;
  }
#else
  for (; r < r1; ++r) {
    const uint8_t* w0 = wbase + size_t(r) * row_bytes;
    float s = 0.f;
    for (int64_t i = 0; i < in; ++i) s += load_as_f32(w0, D, size_t(i)) * x[i];
    y[r - r0] = s;
  }
#endif
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
  int64_t i = 0;
  float s = 0.f;
#ifdef RETNET_AVX2
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  s = hsum(_mm256_add_ps(acc0, acc1));
#endif
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void widen_row(const void* src, DType t, int64_t n, float* dst) {
  int64_t i = 0;
#ifdef RETNET_AVX2
  if (t == DType::F16) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8<DType::F16>(src, i));
  } else if (t == DType::BF16) {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load8<DType::BF16>(src, i));
  }
#endif
  if (t == DType::F32) {
    std::memcpy(dst, src, size_t(n) * 4);
    return;
  }
  for (; i < n; ++i) dst[i] = load_as_f32(src, t, size_t(i));
}

void gemv_rows(const float* x, int64_t T, int64_t in, const WeightRef& w, int64_t r0, int64_t r1, float* y,
               int64_t ldy, std::vector<float>& scratch) {
  const auto* base = static_cast<const uint8_t*>(w.data);
  if (T > 1 && w.dtype != DType::F32) {
    // Batched decode: widen a block of 4 weight rows × KC columns once (into L1), then use it
    // for every activation row, so the conversion cost is shared by the whole batch.
    constexpr int64_t KC = 512;
    if (scratch.size() < size_t(4 * KC)) scratch.resize(size_t(4 * KC));
    const size_t row_bytes = size_t(in) * dtype_size(w.dtype);
    for (int64_t t = 0; t < T; ++t) std::fill(y + t * ldy, y + t * ldy + (r1 - r0), 0.0f);
    for (int64_t r = r0; r < r1; r += 4) {
      const int64_t nr = std::min<int64_t>(4, r1 - r);
      for (int64_t c0 = 0; c0 < in; c0 += KC) {
        const int64_t kc = std::min(KC, in - c0);
        for (int64_t i = 0; i < nr; ++i)
          widen_row(base + size_t(r + i) * row_bytes + size_t(c0) * dtype_size(w.dtype), w.dtype, kc,
                    scratch.data() + i * KC);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t i = 0; i < nr; ++i)
            y[t * ldy + (r - r0) + i] += dot_f32(scratch.data() + i * KC, x + t * in + c0, kc);
      }
    }
    return;
  }
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * in;
    float* yt = y + t * ldy;
    switch (w.dtype) {
      case DType::F32: gemv1<DType::F32>(xt, in, base, r0, r1, yt); break;
      case DType::F16: gemv1<DType::F16>(xt, in, base, r0, r1, yt); break;
      case DType::BF16: gemv1<DType::BF16>(xt, in, base, r0, r1, yt); break;
    }
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
    const size_t es = dtype_size(w.dtype);
    for (int64_t r = 0; r < n; ++r)
      widen_row(static_cast<const uint8_t*>(w.data) + size_t(r0 + r) * size_t(in) * es, w.dtype, in,
                scratch.data() + r * in);
    panel = scratch.data();
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(T), int(n), int(in), 1.0f, x, int(in), panel, int(in), 0.0f,
              y, int(ldy));
}

}  // namespace retnet::cpu
