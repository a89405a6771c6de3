// The pieces of `retnet perplexity --kl-base` (tools/cli/kl_divergence.hpp) against values worked out by
// hand or in double: the summary statistics, the scored-position count, log softmax and the digest.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "kl_divergence.hpp"

namespace retnet::cli {
namespace {

TEST(KlDivergence, StatsAreMeanStandardErrorAndNearestRankPercentiles) {
  KlStats s;
  for (int i = 1; i <= 200; ++i) s.kl.push_back(double(201 - i));  // 200..1, order must not matter
  s.finish();
  EXPECT_DOUBLE_EQ(s.mean, 100.5);
  // sample sd of 1..200 = sqrt(200·201/12) = 58.02 ; standard error = sd / sqrt(200)
  EXPECT_NEAR(s.stderr_mean, std::sqrt(200.0 * 201.0 / 12.0) / std::sqrt(200.0), 1e-12);
  EXPECT_EQ(s.median, 100);  // the 100th of 200
  EXPECT_EQ(s.p90, 180);
  EXPECT_EQ(s.p99, 198);
  EXPECT_EQ(s.max, 200);
  KlStats one;
  one.kl = {0.25};
  one.finish();
  EXPECT_EQ(one.mean, 0.25);
  EXPECT_EQ(one.stderr_mean, 0);
  EXPECT_EQ(one.median, 0.25);
  EXPECT_EQ(one.p99, 0.25);
}

TEST(KlDivergence, ScoredPositionsOfOnePassAndOfWindows) {
  EXPECT_EQ(kl_scored_positions(1, 0), 0);
  EXPECT_EQ(kl_scored_positions(2, 0), 1);
  EXPECT_EQ(kl_scored_positions(1000, 0), 999);
  EXPECT_EQ(kl_scored_positions(10, 4), 3 + 3 + 1);  // windows [0,4) [4,8) [8,10)
  EXPECT_EQ(kl_scored_positions(9, 4), 3 + 3);       // the last window [8,9) has one token: nothing scored
  EXPECT_EQ(kl_scored_positions(8, 8), 7);
}

TEST(KlDivergence, LogSoftmaxMatchesDouble) {
  std::vector<float> x = {3.0f, -1.5f, 0.25f, 80.0f, -200.0f, 79.5f};
  std::vector<float> out(x.size());
  log_softmax(x, out);
  double mx = 80, s = 0;
  for (float v : x) s += std::exp(double(v) - mx);
  for (size_t i = 0; i < x.size(); ++i) {
    const double want = double(x[i]) - mx - std::log(s);
    EXPECT_NEAR(out[i], want, 1e-6 * std::max(1.0, std::fabs(want))) << i;  // fp32 rounding
  }
}

TEST(KlDivergence, DigestSeesEveryWordAndTheirOrder) {
  std::vector<int32_t> a(1000);
  std::iota(a.begin(), a.end(), 0);
  const uint64_t h = kl_digest_ids(a);
  EXPECT_EQ(h, kl_digest_ids(a));
  auto b = a;
  b[999] = 1000;
  EXPECT_NE(h, kl_digest_ids(b));
  std::swap(b[0], b[1]);
  b[999] = 999;
  EXPECT_NE(h, kl_digest_ids(b));
  a.push_back(0);
  EXPECT_NE(h, kl_digest_ids(a));  // a trailing zero word changes the length
  EXPECT_NE(kl_digest_ids({}), kl_digest_ids(std::vector<int32_t>{0}));
}

}  // namespace
}  // namespace retnet::cli
