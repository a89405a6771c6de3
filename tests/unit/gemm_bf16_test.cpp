// The opt-in AVX512-BF16 prefill GEMM (src/backend/cpu/gemm_bf16_avx512.cpp) against a reference in
// double over ragged shapes: every remainder of its 8-row x 32-column tiles and of its K-pairs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cpu/kernels_cpu.hpp"

namespace retnet {
namespace {

// fp32 → bf16, round to nearest even (what vcvtne2ps2bf16 does for finite values).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(GemmBf16, MatchesDoubleReferenceOnRaggedShapes) {
  if (!cpu::bf16_gemm_supported()) GTEST_SKIP() << "this CPU has no AVX512-BF16 (avx512_bf16): the kernel is not used";
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<uint32_t> pack;
  for (int64_t in : {1, 2, 3, 31, 64, 257, 770}) {
    for (int64_t T : {1, 2, 7, 8, 9, 13, 17, 20}) {
      for (int64_t rows : {1, 15, 16, 17, 31, 33, 64, 70}) {
        std::vector<float> x(size_t(T * in));
        for (float& v : x) v = nd(rng);
        std::vector<uint16_t> w(size_t(rows * in));
        for (uint16_t& v : w) v = to_bf16(nd(rng) * 0.05f);
        const WeightRef wr{w.data(), DType::BF16, rows, in};
        std::vector<uint32_t> xb(size_t(T * ((in + 1) / 2)), 0xDEADBEEFu);
        cpu::round_rows_bf16(x.data(), T, in, xb.data());
        // The rounded activations are exactly the reference's (nearest even), the odd-K pad is zero.
        for (int64_t t = 0; t < T; ++t)
          for (int64_t k = 0; k < 2 * ((in + 1) / 2); ++k) {
            const uint32_t pair = xb[size_t(t * ((in + 1) / 2) + k / 2)];
            const uint16_t got = uint16_t(k % 2 ? pair >> 16 : pair & 0xFFFF);
            ASSERT_EQ(got, k < in ? to_bf16(x[size_t(t * in + k)]) : 0) << "t " << t << " k " << k;
          }
        // A panel in the middle of W (r0 > 0), written with a row stride ldy > its width; the
        // columns around it must stay untouched.
        const int64_t r0 = rows > 2 ? 1 : 0, r1 = rows, ldy = rows + 3;
        std::vector<float> y(size_t(T * ldy), -7.f);
        cpu::gemm_bf16_rows(xb.data(), T, in, wr, r0, r1, y.data() + 1, ldy, pack);
        for (int64_t t = 0; t < T; ++t) {
          for (int64_t c = 0; c < ldy; ++c) {
            const float got = y[size_t(t * ldy + c)];
            const int64_t r = r0 + c - 1;
            if (c < 1 || r >= r1) {
              ASSERT_EQ(got, -7.f) << "wrote outside the panel: t " << t << " c " << c;
              continue;
            }
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < in; ++k) {
              const double p = double(from_bf16(to_bf16(x[size_t(t * in + k)]))) * from_bf16(w[size_t(r * in + k)]);
              ref += p;
              mag += std::fabs(p);
            }
            // Each bf16·bf16 product is exact in fp32 (8+8 significant bits); only the fp32 sums
            // round, at most `in` of them, each by at most 2^-24 of a partial sum bounded by Σ|p|:
            // |error| <= in · 2^-24 · Σ|p| (the worst case; a few ulps of Σ|p| is typical).
            const double tol = double(in) * std::ldexp(1.0, -24) * mag + 1e-30;
            ASSERT_NEAR(got, ref, tol) << "in " << in << " T " << T << " rows " << rows << " t " << t << " r " << r;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace retnet
