// CPU chunkwise retention split across threads by (head, value-column block): the split must not
// change a single bit (each column's products run on the same fixed column tiles and the row scalar
// ρ is computed exactly as for a whole head; OpenBLAS's summation order depends on a product's
// width, so this fails if a split changes tile widths), and the unnormalised form must equal the
// recurrence computed in double.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.hpp"

namespace retnet {
namespace {

struct Problem {
  int64_t T, H, dk, dv, chunk;
  std::vector<float> q, k, v, state0, log_decay;
};

Problem make(int64_t T, int64_t H, int64_t dk, int64_t dv, int64_t chunk, uint32_t seed) {
  Problem p{T, H, dk, dv, chunk, {}, {}, {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  auto fill = [&](std::vector<float>& x, size_t n, float sc) {
    x.resize(n);
    for (float& e : x) e = nd(rng) * sc;
  };
  fill(p.q, size_t(T * H * dk), 0.3f);
  fill(p.k, size_t(T * H * dk), 0.3f);
  fill(p.v, size_t(T * H * dv), 1.f);
  fill(p.state0, size_t(H * dk * dv), 0.5f);  // a state carried in from an earlier block
  for (int64_t h = 0; h < H; ++h) p.log_decay.push_back(std::log(1.f - std::exp2(-5.f - float(h))));
  return p;
}

// out [T, H*dv] and the state after the block, from a CpuBackend with `threads` threads.
std::pair<std::vector<float>, std::vector<float>> run(const Problem& p, RetentionNorm norm, int threads) {
  CpuBackend cpu(threads);
  std::vector<float> out(size_t(p.T * p.H * p.dv), -1.f), state = p.state0;
  RetentionChunkArgs a;
  a.q = p.q.data();
  a.k = p.k.data();
  a.v = p.v.data();
  a.state = state.data();
  a.out = out.data();
  a.T = p.T;
  a.H = p.H;
  a.dk = p.dk;
  a.dv = p.dv;
  a.chunk = p.chunk;
  a.log_decay = p.log_decay.data();
  a.norm = norm;
  cpu.retention_chunk(a);
  return {out, state};
}

TEST(CpuRetentionChunk, ColumnSplitAcrossThreadsIsBitIdentical) {
  // 1 thread runs whole heads; 2 and 4 threads split odd head counts into 2 or 4 column blocks of
  // whole 128-column tiles (dv >= 256), 3 threads split 1, 2 and 4 heads into 3 blocks where dv
  // allows; dv 300 and 130 end in a ragged tile.
  for (const auto& [H, dv] : std::vector<std::pair<int64_t, int64_t>>{{1, 384}, {2, 300}, {3, 512}, {5, 256}, {4, 130}}) {
    for (const int64_t T : {1, 7, 40, 100}) {
      const Problem p = make(T, H, 32, dv, 16, uint32_t(H * 1000 + T));
      for (const RetentionNorm norm : {RetentionNorm::None, RetentionNorm::TorchscaleChunk, RetentionNorm::TorchscaleParallel}) {
        const auto one = run(p, norm, 1);
        for (const int threads : {2, 3, 4}) {
          const auto many = run(p, norm, threads);
          EXPECT_EQ(many.first, one.first) << "output: H " << H << " dv " << dv << " T " << T << " norm " << int(norm)
                                           << " threads " << threads;
          EXPECT_EQ(many.second, one.second) << "state: H " << H << " dv " << dv << " T " << T << " norm "
                                             << int(norm) << " threads " << threads;
        }
      }
    }
  }
}

TEST(CpuRetentionChunk, UnnormalisedEqualsTheRecurrenceInDouble) {
  // S_t = γ S_{t-1} + k_tᵀ v_t, o_t = q_t S_t, from the carried state; fp32 sums over at most
  // T + dk terms of O(1) magnitude: a relative error of 1e-4 of the row's magnitude is ~100x the
  // expected rounding and far below what a wrong decay power or column offset gives.
  const Problem p = make(100, 3, 32, 512, 16, 11);
  const auto got = run(p, RetentionNorm::None, 2);
  std::vector<double> S(p.state0.begin(), p.state0.end());
  for (int64_t t = 0; t < p.T; ++t) {
    for (int64_t h = 0; h < p.H; ++h) {
      const double g = std::exp(double(p.log_decay[size_t(h)]));
      double* Sh = S.data() + h * p.dk * p.dv;
      for (int64_t r = 0; r < p.dk; ++r)
        for (int64_t c = 0; c < p.dv; ++c)
          Sh[r * p.dv + c] = g * Sh[r * p.dv + c] + double(p.k[size_t((t * p.H + h) * p.dk + r)]) *
                                                       double(p.v[size_t((t * p.H + h) * p.dv + c)]);
      double mag = 0;
      std::vector<double> o(size_t(p.dv), 0.0);
      for (int64_t c = 0; c < p.dv; ++c) {
        for (int64_t r = 0; r < p.dk; ++r) o[size_t(c)] += double(p.q[size_t((t * p.H + h) * p.dk + r)]) * Sh[r * p.dv + c];
        mag = std::max(mag, std::fabs(o[size_t(c)]));
      }
      for (int64_t c = 0; c < p.dv; ++c)
        ASSERT_NEAR(got.first[size_t((t * p.H + h) * p.dv + c)], o[size_t(c)], 1e-4 * mag + 1e-6)
            << "t " << t << " h " << h << " c " << c;
    }
  }
  for (size_t i = 0; i < S.size(); ++i) ASSERT_NEAR(got.second[i], S[i], 1e-4 * (1 + std::fabs(S[i]))) << "state " << i;
}

}  // namespace
}  // namespace retnet
