#include "common/quant.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <thread>
#include <vector>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "common/dtype.hpp"
#include "common/quant_blocks.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

// x must be finite everywhere: a NaN or Inf would poison a whole block's scale.
void check_finite(const float* x, int64_t n, const std::string& what) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i]))
      throw Error(what + ": element " + std::to_string(i) + " is " +
                  (std::isnan(x[i]) ? "NaN"
                   : x[i] > 0       ? "+Inf"
                                    : "-Inf") +
                  "; cannot quantize it");
}

// The fp16 scale of a block; Error when it does not fit (fp16 tops out at 65504).
uint16_t scale_f16(float d, DType t, int64_t block, const std::string& what) {
  const uint16_t h = f32_to_f16(d);
  if (std::isinf(f16_to_f32(h)))
    throw Error(what + ": block " + std::to_string(block) + " holds values too large for " + dtype_name(t) +
                " (its fp16 scale " + std::to_string(d) + " overflows; keep this tensor unquantized)");
  return h;
}

void quantize_q8_0(const float* x, int64_t nb, BlockQ8_0* y, const std::string& what) {
  for (int64_t b = 0; b < nb; ++b, x += kQ8_0Block) {
    float amax = 0.f;
    for (int j = 0; j < kQ8_0Block; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[b].d = scale_f16(d, DType::Q8_0, b, what);
    for (int j = 0; j < kQ8_0Block; ++j) y[b].q[j] = int8_t(std::round(x[j] * id));
  }
}

void quantize_q4_0(const float* x, int64_t nb, BlockQ4_0* y, const std::string& what) {
  for (int64_t b = 0; b < nb; ++b, x += kQ4_0Block) {
    float amax = 0.f, m = 0.f;  // m: the value of largest magnitude, sign kept (the first of equals)
    for (int j = 0; j < kQ4_0Block; ++j)
      if (std::fabs(x[j]) > amax) amax = std::fabs(x[j]), m = x[j];
    const float d = m / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[b].d = scale_f16(d, DType::Q4_0, b, what);
    uint8_t c[kQ4_0Block];
    for (int j = 0; j < kQ4_0Block; ++j) {
      const int v = int(int8_t(x[j] * id + 8.5f));  // in [0, 16]: truncation, as llama.cpp
      c[j] = uint8_t(v < 15 ? v : 15);
    }
    for (int j = 0; j < kQ4_0Block / 2; ++j) y[b].qs[j] = uint8_t(c[j] | (c[j + kQ4_0Block / 2] << 4));
  }
}

// ---- q4_k: x ≈ s·c − m per sub-block of 32, c in [0, 15], s >= 0, m >= 0 (the block's lowest
// value is −m, so a sub-block that is all positive gets m = 0, as llama.cpp's type assumes).

struct SubFit {
  float s = 0.f, m = 0.f;
};

inline int code_of(float x, float s, float m) {
  if (s <= 0.f) return 0;
  const int c = int(std::nearbyint((x + m) / s));
  return c < 0 ? 0 : c > 15 ? 15 : c;
}

// Weighted squared error of a sub-block at (s, m) with each value at its nearest code.
double sub_error(const float* x, const float* w, float s, float m) {
  double e = 0;
  for (int j = 0; j < kQ4KSub; ++j) {
    const double r = double(s * float(code_of(x[j], s, m)) - m) - double(x[j]);
    e += w[j] * r * r;
  }
  return e;
}

// The best (s, m) of a sub-block before the 6-bit rounding: candidate steps (range / (15 + δ),
// δ = −1 … +1 by 0.1, the range from min(x, 0) to max(x)), each followed by the weighted
// least-squares (s, m) of the codes it gives (m kept >= 0); the pair of least weighted squared error
// wins. w [32]: each value's weight (quantize_q4_k).
SubFit fit_sub(const float* x, const float* w) {
  float lo = 0.f, hi = x[0];
  for (int j = 0; j < kQ4KSub; ++j) lo = std::fmin(lo, x[j]), hi = std::fmax(hi, x[j]);
  if (hi <= lo) return {0.f, -lo};  // every value equals lo (<= 0): c = 0 gives it exactly
  SubFit best{(hi - lo) / 15.f, -lo};
  double best_err = sub_error(x, w, best.s, best.m);
  for (int k = -10; k <= 10; ++k) {
    const float s0 = (hi - lo) / (15.f + 0.1f * float(k)), m0 = -lo;
    double n = 0, sc = 0, scc = 0, sx = 0, scx = 0;
    for (int j = 0; j < kQ4KSub; ++j) {
      const double c = code_of(x[j], s0, m0), wj = w[j];
      n += wj, sc += wj * c, scc += wj * c * c, sx += wj * x[j], scx += wj * c * x[j];
    }
    // The refit is at least as good as (s0, m0) on these codes (least squares), and re-rounding
    // the codes to it only lowers the error further: only the refit needs evaluating.
    const double det = scc * n - sc * sc;
    if (det <= 0) continue;
    double s = (n * scx - sc * sx) / det, m = (sc * scx - scc * sx) / det;
    if (m < 0) m = 0, s = scc > 0 ? scx / scc : 0;
    if (s <= 0) continue;
    const SubFit f{float(s), float(m)};
    const double e = sub_error(x, w, f.s, f.m);
    if (e < best_err) best_err = e, best = f;
  }
  return best;
}

void quantize_q4_k(const float* x, int64_t nb, BlockQ4K* y, const std::string& what) {
  constexpr int kSubs = kQ4KBlock / kQ4KSub;
  for (int64_t b = 0; b < nb; ++b, x += kQ4KBlock) {
    SubFit fit[kSubs];
    float smax = 0.f, mmax = 0.f;
    // Each value's weight in the squared error: x² (plus 1e-3 of the sub-block's mean square, so
    // that zeros still count a little). Large weights carry more of a layer's output than small
    // ones: on the bundled model this weighting cut q4_k's perplexity cost from +0.24% to +0.09%
    // (embedding and head kept) and from +0.72% to +0.27% (all quantized), against unweighted
    // errors; |x| and (mean square + x²)^2 weights did less well (README, "Quantized weights").
    float wt[kQ4KBlock];
    for (int s = 0; s < kSubs; ++s) {
      const float* xs = x + s * kQ4KSub;
      double ss = 0;
      for (int j = 0; j < kQ4KSub; ++j) ss += double(xs[j]) * xs[j];
      const float eps = float(1e-3 * ss / kQ4KSub);
      for (int j = 0; j < kQ4KSub; ++j) wt[s * kQ4KSub + j] = xs[j] * xs[j] + eps;
    }
    for (int s = 0; s < kSubs; ++s) {
      fit[s] = fit_sub(x + s * kQ4KSub, wt + s * kQ4KSub);
      smax = std::fmax(smax, fit[s].s), mmax = std::fmax(mmax, fit[s].m);
    }
    BlockQ4K& out = y[b];
    out.d = scale_f16(smax / 63.f, DType::Q4_K, b, what);
    out.dmin = scale_f16(mmax / 63.f, DType::Q4_K, b, what);
    const float d = f16_to_f32(out.d), dmin = f16_to_f32(out.dmin);
    uint8_t sc[kSubs], mq[kSubs];
    for (int s = 0; s < kSubs; ++s) {
      const float* xs = x + s * kQ4KSub;
      auto q6 = [](float v, float unit) {
        if (unit <= 0.f) return 0;
        const int q = int(std::nearbyint(v / unit));
        return q < 0 ? 0 : q > 63 ? 63 : q;
      };
      const int sc0 = q6(fit[s].s, d), m0 = q6(fit[s].m, dmin);
      double best = std::numeric_limits<double>::infinity();
      for (int a = std::max(0, sc0 - 1); a <= std::min(63, sc0 + 1); ++a)
        for (int c = std::max(0, m0 - 1); c <= std::min(63, m0 + 1); ++c) {
          const double e = sub_error(xs, wt + s * kQ4KSub, d * float(a), dmin * float(c));
          if (e < best) best = e, sc[s] = uint8_t(a), mq[s] = uint8_t(c);
        }
    }
    std::memset(out.scales, 0, sizeof out.scales);
    for (int s = 0; s < kSubs; ++s) {  // the packing kq4k_scale_min() reads
      if (s < 4) {
        out.scales[s] = uint8_t(out.scales[s] | sc[s]);
        out.scales[s + 4] = uint8_t(out.scales[s + 4] | mq[s]);
      } else {
        out.scales[s + 4] = uint8_t((sc[s] & 0x0F) | ((mq[s] & 0x0F) << 4));
        out.scales[s - 4] = uint8_t(out.scales[s - 4] | ((sc[s] >> 4) << 6));
        out.scales[s] = uint8_t(out.scales[s] | ((mq[s] >> 4) << 6));
      }
    }
    std::memset(out.qs, 0, sizeof out.qs);
    for (int s = 0; s < kSubs; ++s) {
      const float ds = d * float(sc[s]), ms = dmin * float(mq[s]);
      for (int j = 0; j < kQ4KSub; ++j) {
        const int c = code_of(x[s * kQ4KSub + j], ds, ms);
        out.qs[kQ4KSub * (s / 2) + j] |= uint8_t(s % 2 ? c << 4 : c);
      }
    }
  }
}

}  // namespace

void quantize_row(DType t, const float* x, int64_t n, void* dst, const std::string& what) {
  const int64_t be = dtype_traits(t).block_elems;
  if (!dtype_is_block(t) || n % be != 0)
    throw Error(what + ": cannot quantize " + std::to_string(n) + " values to " + dtype_name(t) +
                " (a block type needs a multiple of its block of " + std::to_string(be) + ")");
  check_finite(x, n, what);
  const int64_t nb = n / be;
  switch (t) {
    case DType::Q8_0:
      return quantize_q8_0(x, nb, static_cast<BlockQ8_0*>(dst), what);
    case DType::Q4_0:
      return quantize_q4_0(x, nb, static_cast<BlockQ4_0*>(dst), what);
    case DType::Q4_K:
      return quantize_q4_k(x, nb, static_cast<BlockQ4K*>(dst), what);
    case DType::F32:
    case DType::F16:
    case DType::BF16:
      break;  // refused above
  }
  throw_bad_dtype(t, "quantize_row");
}

void dequantize_row(DType t, const void* src, int64_t n, float* dst) {
  visit_dtype(
      t,
      [&](auto d) {
        constexpr DType D = decltype(d)::value;
        if constexpr (D == DType::Q8_0) {
          const auto* b = static_cast<const BlockQ8_0*>(src);
          for (int64_t k = 0; k < n / kQ8_0Block; ++k, dst += kQ8_0Block) {
            const float s = f16_to_f32(b[k].d);
            for (int j = 0; j < kQ8_0Block; ++j) dst[j] = s * float(b[k].q[j]);
          }
        } else if constexpr (D == DType::Q4_0) {
          const auto* b = static_cast<const BlockQ4_0*>(src);
          for (int64_t k = 0; k < n / kQ4_0Block; ++k, dst += kQ4_0Block) {
            const float s = f16_to_f32(b[k].d);
#if defined(__AVX2__)
            // GCC leaves the scalar loop below scalar (about 1.3 GB/s of blocks against q8_0's 12):
            // the same values, (float(c) − 8) · s, eight at a time.
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[k].qs));
            const __m128i lo = _mm_and_si128(bytes, _mm_set1_epi8(0x0F));
            const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(0x0F));
            const __m256 vs = _mm256_set1_ps(s), v8 = _mm256_set1_ps(8.f);
            const __m128i part[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};  // elements 8·i ..
            for (int i = 0; i < 4; ++i) {
              const __m256 c = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part[i]));
              _mm256_storeu_ps(dst + 8 * i, _mm256_mul_ps(_mm256_sub_ps(c, v8), vs));
            }
#else
            for (int j = 0; j < kQ4_0Block / 2; ++j) {
              dst[j] = s * float(int(b[k].qs[j] & 0x0F) - 8);
              dst[j + kQ4_0Block / 2] = s * float(int(b[k].qs[j] >> 4) - 8);
            }
#endif
          }
        } else if constexpr (D == DType::Q4_K) {
          const auto* b = static_cast<const BlockQ4K*>(src);
          for (int64_t k = 0; k < n / kQ4KBlock; ++k) {
            const float dd = f16_to_f32(b[k].d), dm = f16_to_f32(b[k].dmin);
            for (int s = 0; s < kQ4KBlock / kQ4KSub; ++s, dst += kQ4KSub) {
              const Q4KScaleMin sm = kq4k_scale_min(b[k].scales, s);
              const float ds = dd * float(sm.scale), ms = dm * float(sm.min);
              const uint8_t* q = b[k].qs + kQ4KSub * (s / 2);
              for (int j = 0; j < kQ4KSub; ++j) dst[j] = ds * float(s % 2 ? q[j] >> 4 : q[j] & 0x0F) - ms;
            }
          }
        } else {
          throw Error(std::string("dequantize_row: ") + dtype_name(D) + " is not a block type");
        }
      },
      [&] { throw_bad_dtype(t, "dequantize_row"); });
}

void load_row_f32(DType t, const void* src, int64_t n, float* dst) {
  if (dtype_is_block(t)) return dequantize_row(t, src, n, dst);
  visit_dtype(
      t,
      [&](auto d) {
        constexpr DType D = decltype(d)::value;
        if constexpr (DTypeConst<D>::block_elems == 1)
          for (int64_t i = 0; i < n; ++i) dst[i] = load_elem<D>(src, size_t(i));
      },
      [&] { throw_bad_dtype(t, "load_row_f32"); });
}

std::optional<DType> quant_type_from_name(std::string_view name) {
  for (const DTypeTraits& t : kDTypeTraits) {
    if (!dtype_is_block(t.type)) continue;
    const std::string_view n = t.name;
    bool eq = n.size() == name.size();
    for (size_t i = 0; eq && i < n.size(); ++i) eq = n[i] == char(std::tolower(static_cast<unsigned char>(name[i])));
    if (eq) return t.type;
  }
  return std::nullopt;
}

std::string quant_type_names() {
  std::string s;
  for (const DTypeTraits& t : kDTypeTraits)
    if (dtype_is_block(t.type)) s += (s.empty() ? "" : ", ") + std::string(t.name);
  return s;
}

void quantize_rows(DType t, DType src_t, const void* src, int64_t rows, int64_t cols, void* dst,
                   const std::function<std::string(int64_t)>& what, int threads,
                   const std::function<void(int64_t)>& on_rows) {
  if (rows <= 0) return;
  const int P = std::max(1, threads > 0 ? threads : int(std::thread::hardware_concurrency()));
  const size_t src_rb = size_t(dtype_row_bytes(src_t, cols)), dst_rb = size_t(dtype_row_bytes(t, cols));
  const auto* in = static_cast<const uint8_t*>(src);
  auto* out = static_cast<uint8_t*>(dst);
  // Rows [b, e): one worker's share of a batch. The first failing row of each worker is kept, so that
  // the error thrown is the first row's whatever the split.
  struct Failure {
    int64_t row = -1;
    std::exception_ptr error;
  };
  auto work = [&](int64_t b, int64_t e, Failure& f) {
    std::vector<float> x(static_cast<size_t>(cols));
    for (int64_t r = b; r < e; ++r) {
      try {
        load_row_f32(src_t, in + size_t(r) * src_rb, cols, x.data());
        quantize_row(t, x.data(), cols, out + size_t(r) * dst_rb, what(r));
      } catch (...) {
        f = {r, std::current_exception()};
        return;
      }
    }
  };
  // Batches of 64 rows per worker: small enough for prompt progress, large enough that starting the
  // threads costs nothing next to the rows (q4_k: ~0.4 µs per value).
  const int64_t batch = int64_t(P) * 64;
  for (int64_t b0 = 0; b0 < rows; b0 += batch) {
    const int64_t n = std::min(batch, rows - b0);
    const int workers = int(std::min<int64_t>(P, (n + 15) / 16));
    std::vector<Failure> fails(static_cast<size_t>(workers));
    std::vector<std::thread> pool;
    auto edge = [&](int w) { return b0 + n * w / workers; };
    for (int w = 1; w < workers; ++w) pool.emplace_back(work, edge(w), edge(w + 1), std::ref(fails[size_t(w)]));
    work(edge(0), edge(1), fails[0]);
    for (std::thread& th : pool) th.join();
    for (const Failure& f : fails)
      if (f.error) std::rethrow_exception(f.error);  // workers hold ascending rows: the first is the lowest
    if (on_rows) on_rows(b0 + n);
  }
}

}  // namespace retnet
