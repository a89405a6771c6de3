// The reference quantizers (common/quant.hpp) against independent double-precision references, and
// the portable CPU products on block-typed weights against double sums of the dequantized values.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "../test_util.hpp"
#include "backend/cpu/cpu_backend.hpp"
#include "common/dtype.hpp"
#include "common/quant.hpp"
#include "common/quant_blocks.hpp"
#include "retnet/error.hpp"

namespace retnet {
namespace {

using test::Contains;
using test::error_of;

std::vector<float> normal(size_t n, uint32_t seed, float sc, float mean = 0.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(n);
  for (float& e : x) e = mean + nd(rng) * sc;
  return x;
}

std::vector<uint8_t> quantize(DType t, const std::vector<float>& x) {
  std::vector<uint8_t> b(dtype_row_bytes(t, int64_t(x.size())));
  quantize_row(t, x.data(), int64_t(x.size()), b.data(), "test");
  return b;
}
std::vector<float> dequantize(DType t, const std::vector<uint8_t>& b, size_t n) {
  std::vector<float> y(n);
  dequantize_row(t, b.data(), int64_t(n), y.data());
  return y;
}

// Rows of 1, 3 (odd) and 10 blocks, of three scales, with an outlier in some blocks.
std::vector<std::vector<float>> rows_for(int64_t block) {
  std::vector<std::vector<float>> rows;
  uint32_t seed = 1;
  for (int64_t nb : {1, 3, 10})
    for (float sc : {1e-3f, 1.f, 300.f}) {
      std::vector<float> x = normal(size_t(nb * block), seed++, sc);
      x[size_t(block / 2)] *= 9.f;  // an outlier sets its block's scale
      rows.push_back(x);
    }
  return rows;
}

// q8_0 in double: d = max|x|/127, q = round(x/d) half away from zero, x̂ = fp16(d)·q. Codes may
// differ from the engine's only where x/d lies within 1e-5 of a rounding tie (fp32 vs double).
TEST(Quant, Q8_0MatchesDoubleReferenceWithinItsBound) {
  for (const auto& x : rows_for(kQ8_0Block)) {
    const auto b = quantize(DType::Q8_0, x);
    const auto y = dequantize(DType::Q8_0, b, x.size());
    for (size_t k = 0; k < x.size() / kQ8_0Block; ++k) {
      double amax = 0;
      for (size_t j = 0; j < kQ8_0Block; ++j) amax = std::max(amax, std::fabs(double(x[k * 32 + j])));
      const double d = amax / 127, d16 = f16_to_f32(f32_to_f16(float(d)));
      for (size_t j = 0; j < kQ8_0Block; ++j) {
        const size_t i = k * 32 + j;
        const double u = double(x[i]) / d;
        const double ref = d16 * std::round(u);
        if (std::fabs(std::fabs(u - std::trunc(u)) - 0.5) > 1e-5) EXPECT_EQ(double(y[i]), ref) << i;
        // Bound: half a step, plus the scale's fp16 rounding times |q| <= 127. fp16 rounds d to
        // within 2^-11 relative, or 2^-25 absolute where d is subnormal (below 2^-14: small rows).
        const double d_err = std::max(d * std::ldexp(1.0, -11), std::ldexp(1.0, -25));
        EXPECT_LE(std::fabs(double(y[i]) - x[i]), (0.5 * d + 127 * d_err) * (1 + 1e-6)) << i;
      }
    }
  }
}

// q4_0 in double: m = the value of largest magnitude, d = m/−8, c = min(15, trunc(x/d + 8.5)),
// x̂ = fp16(d)·(c − 8).
TEST(Quant, Q4_0MatchesDoubleReferenceWithinItsBound) {
  for (const auto& x : rows_for(kQ4_0Block)) {
    const auto b = quantize(DType::Q4_0, x);
    const auto y = dequantize(DType::Q4_0, b, x.size());
    for (size_t k = 0; k < x.size() / kQ4_0Block; ++k) {
      double m = 0;
      for (size_t j = 0; j < kQ4_0Block; ++j)
        if (std::fabs(double(x[k * 32 + j])) > std::fabs(m)) m = x[k * 32 + j];
      const double d = m / -8, d16 = f16_to_f32(f32_to_f16(float(d)));
      for (size_t j = 0; j < kQ4_0Block; ++j) {
        const size_t i = k * 32 + j;
        const double u = double(x[i]) / d + 8.5;
        const double c = std::min(15.0, std::trunc(u));
        if (std::fabs(u - std::round(u)) > 1e-5) EXPECT_EQ(double(y[i]), d16 * (c - 8)) << i;
        // Bound: half a step, except a value at −m (x/d = +8 clamps to code 15: one step), plus
        // the fp16 rounding of d (as for q8_0) times |c − 8| <= 8.
        const double steps = double(x[i]) / d > 7.5 ? 1.0 : 0.5;
        const double d_err = std::max(std::fabs(d) * std::ldexp(1.0, -11), std::ldexp(1.0, -25));
        EXPECT_LE(std::fabs(double(y[i]) - x[i]), (std::fabs(d) * steps + 8 * d_err) * (1 + 1e-6)) << i;
      }
    }
  }
}

// q4_k dequantized in double from the bytes (its own unpacking of the 6-bit scales), and its error:
// each value is within one step of its sub-block (d·sc) plus the 6-bit rounding of the min, and
// the RMS error of Gaussian data is below q4_0's on the same data (the point of the type).
TEST(Quant, Q4_KDequantizesAsDoubleReferenceAndBeatsQ4_0) {
  double e4k = 0, e40 = 0;
  for (const auto& x : rows_for(kQ4KBlock)) {
    const auto b = quantize(DType::Q4_K, x);
    const auto y = dequantize(DType::Q4_K, b, x.size());
    const auto y40 = dequantize(DType::Q4_0, quantize(DType::Q4_0, x), x.size());
    double scale2 = 0;
    for (float v : x) scale2 += double(v) * v;
    for (size_t k = 0; k < x.size() / kQ4KBlock; ++k) {
      const uint8_t* blk = b.data() + k * sizeof(BlockQ4K);
      uint16_t dh, mh;
      std::memcpy(&dh, blk, 2);
      std::memcpy(&mh, blk + 2, 2);
      const double d = f16_to_f32(dh), dmin = f16_to_f32(mh);
      const uint8_t* sc = blk + 4;
      const uint8_t* qs = blk + 16;
      for (int s = 0; s < 8; ++s) {
        // 6-bit fields: sub-blocks 0..3 in the low bits of bytes s and s+4; 4..7 split into a nibble
        // of byte s+4 and the top two bits of bytes s-4 (scale) and s (min).
        const int scale = s < 4 ? sc[s] & 63 : (sc[s + 4] & 15) | ((sc[s - 4] >> 6) << 4);
        const int mn = s < 4 ? sc[s + 4] & 63 : (sc[s + 4] >> 4) | ((sc[s] >> 6) << 4);
        double lo = 0, hi = -1e30;
        for (int j = 0; j < 32; ++j)
          lo = std::min(lo, double(x[k * 256 + s * 32 + j])), hi = std::max(hi, double(x[k * 256 + s * 32 + j]));
        for (int j = 0; j < 32; ++j) {
          const size_t i = k * 256 + size_t(s) * 32 + size_t(j);
          const int c = s % 2 ? qs[32 * (s / 2) + j] >> 4 : qs[32 * (s / 2) + j] & 15;
          const double ref = d * scale * c - dmin * mn;
          // One fp32 rounding of the final subtraction: within half an ulp of the larger term.
          EXPECT_NEAR(double(y[i]), ref, std::max(d * scale * 15, dmin * mn) * std::ldexp(1.0, -24)) << i;
          EXPECT_EQ(y[i], load_as_f32(b.data(), DType::Q4_K, i)) << i;
          // The whole sub-block range [lo, hi] is covered by 15 steps of its pre-rounding scale
          // (hi − lo)/15 at worst; the 6-bit roundings of scale and min move a value by at most
          // 15·d/2 + dmin/2 more.
          EXPECT_LE(std::fabs(y[i] - x[i]), (hi - lo) / 15 + 7.5 * d + 0.5 * dmin + 1e-6 * (hi - lo)) << i;
        }
      }
    }
    for (size_t i = 0; i < x.size(); ++i) {
      e4k += (double(y[i]) - x[i]) * (double(y[i]) - x[i]) / scale2;
      e40 += (double(y40[i]) - x[i]) * (double(y40[i]) - x[i]) / scale2;
    }
  }
  EXPECT_LT(e4k, 0.8 * e40) << "q4_k relative squared error " << e4k << " vs q4_0 " << e40;
}

TEST(Quant, LoadElemEqualsDequantizeRow) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
    const auto x = normal(768, 5, 2.f, 0.7f);
    const auto b = quantize(t, x);
    const auto y = dequantize(t, b, x.size());
    for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(y[i], load_as_f32(b.data(), t, i)) << dtype_name(t) << " " << i;
  }
}

TEST(Quant, ZeroNegativeOnlyAndHugeRows) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
    const int64_t n = dtype_traits(t).block_elems * 3;
    // Zeros come back as zeros (d = 0).
    const auto z = dequantize(t, quantize(t, std::vector<float>(size_t(n), 0.f)), size_t(n));
    for (float v : z) EXPECT_EQ(v, 0.f) << dtype_name(t);
    // Negative-only values: the relative error stays that of the type (q4_k: its min carries them).
    auto neg = normal(size_t(n), 9, 0.2f, -3.f);
    const auto yn = dequantize(t, quantize(t, neg), size_t(n));
    for (size_t i = 0; i < neg.size(); ++i) EXPECT_NEAR(yn[i], neg[i], t == DType::Q8_0 ? 0.03 : 0.35) << dtype_name(t);
    // Large but representable: 1e5 (the fp16 scale stays finite for every type).
    auto big = normal(size_t(n), 10, 1.f);
    big[3] = 1e5f;
    const auto yb = dequantize(t, quantize(t, big), size_t(n));
    EXPECT_NEAR(yb[3], 1e5f, 1e5f * (t == DType::Q8_0 ? 0.005 : 0.07)) << dtype_name(t);
    // Beyond what the fp16 scale holds: refused, naming the block.
    big[size_t(n) - 1] = 3e38f;
    EXPECT_TRUE(Contains(error_of([&] { quantize(t, big); }), "too large for " + std::string(dtype_name(t))));
  }
}

TEST(Quant, NonFiniteAndRaggedInputRefused) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K}) {
    const int64_t n = dtype_traits(t).block_elems * 2;
    auto x = normal(size_t(n), 3, 1.f);
    x[5] = NAN;
    EXPECT_TRUE(Contains(error_of([&] { quantize(t, x); }), "test: element 5 is NaN; cannot quantize it"));
    x[5] = -INFINITY;
    EXPECT_TRUE(Contains(error_of([&] { quantize(t, x); }), "element 5 is -Inf"));
    std::vector<float> ragged(size_t(n) - 1, 1.f);
    EXPECT_TRUE(Contains(error_of([&] { quantize(t, ragged); }), "a multiple of its block"));
  }
  std::vector<uint8_t> b(4);
  EXPECT_TRUE(Contains(error_of([&] { store_from_f32(b.data(), DType::Q4_0, 0, 1.f); }), "q4_0 is a block type"));
  EXPECT_EQ(quant_type_from_name("Q4_K"), DType::Q4_K);
  EXPECT_FALSE(quant_type_from_name("q5_0").has_value());
  EXPECT_FALSE(quant_type_from_name("bf16").has_value());
}

// The CPU products on block-typed weights: decode (T <= 8: the integer kernels of quant_gemv.hpp) and
// prefill (T > 8: the integer GEMM of quant_gemm.hpp), both on activations quantized to int8 per
// block of 32, against double sums of the dequantized weights times the fp32 x. Tolerance: an fp32 sum of n terms
// is within n·2^-24·Σ|w·x| of the exact one (n <= 768: 4.6e-5 of Σ|w·x|); the dequantization itself
// is exact but for q4_k's one rounding, which is the same value on both sides. Both add the
// activations' rounding: each x is replaced by d·round(x/d) with d = max|x_block| / 127, off by at
// most d/2, so the sum moves by at most Σ_blocks d/2 · Σ_block |w| (d itself is an fp32 division:
// 1% slack). (quant_gemv_test and quant_gemm_test hold the kernels to the quantized activations
// tightly.) Batch rows
// are bit-identical to the row alone.
TEST(Quant, CpuProductsOnBlockWeightsAgainstDouble) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K})
    for (int64_t in : {256, 768}) {
      const int64_t rows = 70;
      std::vector<uint8_t> wb(size_t(rows) * dtype_row_bytes(t, in));
      std::vector<float> wf(size_t(rows * in));
      const auto src = normal(size_t(rows * in), uint32_t(in), 0.5f);
      for (int64_t r = 0; r < rows; ++r) {
        quantize_row(t, src.data() + r * in, in, wb.data() + size_t(r) * dtype_row_bytes(t, in), "w");
        dequantize_row(t, wb.data() + size_t(r) * dtype_row_bytes(t, in), in, wf.data() + r * in);
      }
      const WeightRef w{wb.data(), t, rows, in};
      for (int64_t T : {1, 3, 8, 20}) {
        const auto x = normal(size_t(T * in), uint32_t(T), 1.f);
        CpuBackend cpu(2);
        std::vector<float> y(size_t(T * rows));
        Backend::MatmulJob job{&w, y.data()};
        cpu.matmul(x.data(), T, in, std::span<const Backend::MatmulJob>(&job, 1));
        for (int64_t a = 0; a < T; ++a)
          for (int64_t o = 0; o < rows; ++o) {
            double s = 0, mag = 0, act = 0;
            for (int64_t b = 0; b < in; b += 32) {
              double xmax = 0, wsum = 0;
              for (int64_t i = b; i < b + 32; ++i) {
                s += double(wf[size_t(o * in + i)]) * x[size_t(a * in + i)];
                mag += std::fabs(double(wf[size_t(o * in + i)]) * x[size_t(a * in + i)]);
                xmax = std::max(xmax, double(std::fabs(x[size_t(a * in + i)])));
                wsum += std::fabs(double(wf[size_t(o * in + i)]));
              }
              act += xmax / 254 * wsum * 1.01;
            }
            const double bound = double(in) * std::ldexp(1.0, -24) * mag + act + 1e-30;
            ASSERT_NEAR(y[size_t(a * rows + o)], s, bound) << dtype_name(t) << " in " << in << " T " << T;
          }
        if (T <= 8) {  // decode rows: a batch row equals that row alone, bit for bit
          std::vector<float> y1(static_cast<size_t>(rows));
          Backend::MatmulJob j1{&w, y1.data()};
          cpu.matmul(x.data() + (T - 1) * in, 1, in, std::span<const Backend::MatmulJob>(&j1, 1));
          for (int64_t o = 0; o < rows; ++o) ASSERT_EQ(y1[size_t(o)], y[size_t((T - 1) * rows + o)]);
        }
      }
    }
}

// quantize_rows (the multithreaded driver of quantize, --quantize and random models): the bytes of
// quantize_row row by row whatever the thread count, from F32 and BF16 sources; progress after each
// batch; with bad rows on several workers, the first row's error.
TEST(Quant, QuantizeRowsEqualsRowByRowOnAnyThreadCount) {
  const int64_t rows = 301, cols = 512;  // 301: batches and worker splits that do not divide evenly
  const auto src = normal(size_t(rows * cols), 11, 0.7f);
  std::vector<uint16_t> src16(src.size());
  for (size_t i = 0; i < src.size(); ++i) src16[i] = f32_to_bf16(src[i]);
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K})
    for (DType st : {DType::F32, DType::BF16}) {
      const void* in = st == DType::F32 ? static_cast<const void*>(src.data()) : src16.data();
      const size_t rb = size_t(dtype_row_bytes(t, cols)), srb = size_t(dtype_row_bytes(st, cols));
      std::vector<uint8_t> want(size_t(rows) * rb);
      std::vector<float> x(static_cast<size_t>(cols));
      for (int64_t r = 0; r < rows; ++r) {
        load_row_f32(st, static_cast<const uint8_t*>(in) + size_t(r) * srb, cols, x.data());
        quantize_row(t, x.data(), cols, want.data() + size_t(r) * rb, "w");
      }
      for (int threads : {1, 2, 3, 0}) {
        std::vector<uint8_t> got(want.size(), 0xee);
        int64_t last = 0;
        quantize_rows(
            t, st, in, rows, cols, got.data(), [](int64_t) { return std::string("w"); }, threads,
            [&](int64_t done) {
              EXPECT_GT(done, last);
              last = done;
            });
        EXPECT_EQ(last, rows);
        EXPECT_EQ(got, want) << dtype_name(t) << " from " << dtype_name(st) << ", " << threads << " threads";
      }
    }
  std::vector<float> bad(src);
  // 3 threads: the first batch is rows [0, 192), 64 a worker. Row 150 (third worker) and row 70 (second)
  // both fail; the lower row is the one named.
  bad[size_t(150 * cols + 3)] = std::nanf("");
  bad[size_t(70 * cols + 9)] = INFINITY;
  std::vector<uint8_t> out(size_t(rows) * dtype_row_bytes(DType::Q8_0, cols));
  const std::string e = error_of([&] {
    quantize_rows(
        DType::Q8_0, DType::F32, bad.data(), rows, cols, out.data(),
        [](int64_t r) { return "t row " + std::to_string(r); }, 3);
  });
  EXPECT_TRUE(Contains(e, "t row 70: element 9")) << e;
}

}  // namespace
}  // namespace retnet
