// The CPU decode kernels on their own: the GEMV that streams weights once per step (CpuBackend::matmul
// with T <= 8 rows) and the recurrent retention step split into blocks of state rows. Both are
// checked against sums in double, and for the properties decoding relies on: a batch row gives the
// same bits as that row decoded alone, and the thread count changes no bit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <span>
#include <vector>

#include "backend/cpu/cpu_backend.hpp"
#include "common/dtype.hpp"

namespace retnet {
namespace {

std::vector<float> normal(size_t n, uint32_t seed, float sc) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(n);
  for (float& e : x) e = nd(rng) * sc;
  return x;
}

// Weights [rows, in] of type t from fp32 values; `exact` receives what the stored values are.
std::vector<uint8_t> encode(const std::vector<float>& f, DType t, std::vector<float>& exact) {
  std::vector<uint8_t> b(dtype_traits(t).bytes(f.size()));
  exact.resize(f.size());
  for (size_t i = 0; i < f.size(); ++i) {
    store_from_f32(b.data(), t, i, f[i]);
    exact[i] = load_as_f32(b.data(), t, i);
  }
  return b;
}

std::vector<float> gemv(int threads, const std::vector<float>& x, int64_t T, int64_t in, const WeightRef& w) {
  CpuBackend cpu(threads);
  std::vector<float> y(size_t(T * w.rows), -7.f);
  Backend::MatmulJob job{&w, y.data()};
  cpu.matmul(x.data(), T, in, std::span<const Backend::MatmulJob>(&job, 1));
  return y;
}

TEST(CpuGemv, AllTypesAndWidthsAgainstDoubleBatchRowsAndThreadsBitIdentical) {
  // Widths around the kernels' 16- and 32-element steps (BF16 de-interleaves whole 16-groups) and
  // 125m's 768. Tolerance: an fp32 dot product of n terms is within n·2^-24·Σ|w·x| of the exact
  // sum (a worst-case bound; n <= 768 gives <= 4.6e-5); the weights are widened exactly.
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (int64_t in : {1, 8, 13, 16, 17, 31, 32, 33, 48, 100, 257, 768}) {
      const int64_t rows = 300, T = 8;  // 300 rows: several panels per thread at every width
      std::vector<float> wx;
      const std::vector<uint8_t> wb = encode(normal(size_t(rows * in), uint32_t(in), 1.f), t, wx);
      const WeightRef w{wb.data(), t, rows, in};
      const std::vector<float> x = normal(size_t(T * in), uint32_t(in + 99), 1.f);
      const std::vector<float> y8 = gemv(2, x, T, in, w);
      for (int64_t r = 0; r < T; ++r)
        for (int64_t o = 0; o < rows; ++o) {
          double s = 0, mag = 0;
          for (int64_t i = 0; i < in; ++i) {
            const double p = double(wx[size_t(o * in + i)]) * double(x[size_t(r * in + i)]);
            s += p;
            mag += std::fabs(p);
          }
          ASSERT_NEAR(y8[size_t(r * rows + o)], s, double(in) * 0x1p-24 * mag + 1e-30)
              << dtype_name(t) << " in " << in << " row " << r << " out " << o;
        }
      for (int64_t T1 : {1, 3, 5}) {  // the first T1 rows alone: odd counts take the single-row path
        const std::vector<float> x1(x.begin(), x.begin() + T1 * in);
        const std::vector<float> y1 = gemv(1, x1, T1, in, w);
        EXPECT_TRUE(std::equal(y1.begin(), y1.end(), y8.begin())) << dtype_name(t) << " in " << in << " T " << T1;
      }
      EXPECT_EQ(gemv(3, x, T, in, w), y8) << dtype_name(t) << " in " << in << " 3 threads";
    }
}

struct StepRun {
  std::vector<float> out;                  // [steps, B, H*dv]
  std::vector<std::vector<float>> states;  // B × [H, dk, dv]
};

StepRun step(int threads, int64_t B, int64_t H, int64_t dk, int64_t dv, int64_t steps, const std::vector<float>& gamma,
             const std::vector<float>& scale) {
  CpuBackend cpu(threads);
  StepRun r;
  for (int64_t b = 0; b < B; ++b) r.states.push_back(normal(size_t(H * dk * dv), uint32_t(40 + b), 0.5f));
  for (int64_t t = 0; t < steps; ++t) {
    // Row b of step t is the same for every B, so a smaller batch is a prefix of a larger one.
    std::vector<float> q, k, v;
    for (int64_t b = 0; b < B; ++b) {
      const auto qb = normal(size_t(H * dk), uint32_t(1000 * t + b), 0.3f), kb = normal(size_t(H * dk), uint32_t(2000 * t + b), 0.3f),
                 vb = normal(size_t(H * dv), uint32_t(3000 * t + b), 1.f);
      q.insert(q.end(), qb.begin(), qb.end());
      k.insert(k.end(), kb.begin(), kb.end());
      v.insert(v.end(), vb.begin(), vb.end());
    }
    std::vector<float*> ptrs;
    for (auto& s : r.states) ptrs.push_back(s.data());
    std::vector<float> out(size_t(B * H * dv), -1.f);
    RetentionStepArgs a;
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.states = ptrs.data(), a.out = out.data();
    a.B = B, a.H = H, a.dk = dk, a.dv = dv, a.gamma = gamma.data(), a.out_scale = scale.data();
    cpu.retention_step(a);
    r.out.insert(r.out.end(), out.begin(), out.end());
  }
  return r;
}

TEST(CpuRetentionStep, RowBlocksAgainstDoubleBatchRowsAndThreadsBitIdentical) {
  // dk 16 and 64 are one block of state rows, 100 ends in a ragged block, 256 is 125m's four.
  // Tolerance: each output sums dk products of O(1) terms after the state update; 1e-5 of the
  // row's largest |o| is ~50x the fp32 rounding of such sums and far below a wrong row or decay.
  const int64_t H = 3, steps = 4, B = 3;
  const std::vector<float> gamma = {0.96875f, 0.984375f, 0.9921875f};
  for (int64_t dk : {16, 64, 100, 256})
    for (int64_t dv : {20, 512}) {
      const std::vector<float> scale = normal(size_t(B * H), 5, 1.f);
      const StepRun got = step(2, B, H, dk, dv, steps, gamma, scale);
      for (int64_t b = 0; b < B; ++b) {
        std::vector<double> S;
        for (float e : normal(size_t(H * dk * dv), uint32_t(40 + b), 0.5f)) S.push_back(e);
        for (int64_t t = 0; t < steps; ++t) {
          const auto q = normal(size_t(H * dk), uint32_t(1000 * t + b), 0.3f), k = normal(size_t(H * dk), uint32_t(2000 * t + b), 0.3f),
                     v = normal(size_t(H * dv), uint32_t(3000 * t + b), 1.f);
          for (int64_t h = 0; h < H; ++h) {
            double* Sh = S.data() + h * dk * dv;
            std::vector<double> o(size_t(dv), 0.0);
            double mag = 0;
            for (int64_t c = 0; c < dv; ++c) {
              for (int64_t j = 0; j < dk; ++j) {
                double& z = Sh[j * dv + c];
                z = double(gamma[size_t(h)]) * z + double(k[size_t(h * dk + j)]) * double(v[size_t(h * dv + c)]);
                o[size_t(c)] += double(q[size_t(h * dk + j)]) * z;
              }
              o[size_t(c)] *= double(scale[size_t(b * H + h)]);
              mag = std::max(mag, std::fabs(o[size_t(c)]));
            }
            for (int64_t c = 0; c < dv; ++c)
              ASSERT_NEAR(got.out[size_t(((t * B + b) * H + h) * dv + c)], o[size_t(c)], 1e-5 * mag)
                  << "dk " << dk << " dv " << dv << " b " << b << " t " << t << " h " << h << " c " << c;
          }
        }
        for (size_t i = 0; i < S.size(); ++i)
          ASSERT_NEAR(got.states[size_t(b)][i], S[i], 1e-5 * (1 + std::fabs(S[i]))) << "state " << i << " dk " << dk;
      }
      // Row 0 alone, and the same batch on 1 and 3 threads: the same bits.
      const StepRun one = step(1, 1, H, dk, dv, steps, gamma, scale);
      for (int64_t t = 0; t < steps; ++t)
        EXPECT_TRUE(std::equal(one.out.begin() + t * H * dv, one.out.begin() + (t + 1) * H * dv,
                               got.out.begin() + t * B * H * dv))
            << "dk " << dk << " dv " << dv << " step " << t;
      EXPECT_EQ(one.states[0], got.states[0]);
      for (int threads : {1, 3}) {
        const StepRun other = step(threads, B, H, dk, dv, steps, gamma, scale);
        EXPECT_EQ(other.out, got.out) << threads << " threads, dk " << dk << " dv " << dv;
        EXPECT_EQ(other.states, got.states) << threads << " threads, dk " << dk << " dv " << dv;
      }
    }
}

}  // namespace
}  // namespace retnet
