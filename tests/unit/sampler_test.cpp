// Sampler: each stage on hand-made distributions with exact surviving sets, the stage order,
// greedy decoding, the PRNG against published vectors, a chi-square test of the draw, the
// parameter bounds and the order parser.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "retnet/error.hpp"
#include "retnet/sampler.hpp"

namespace {

using retnet::Error;
using retnet::Rng;
using retnet::Sampler;
using retnet::SamplerParams;
using retnet::SamplerStage;
using Dist = std::vector<std::pair<int32_t, float>>;

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

::testing::AssertionResult Contains(const std::string& hay, const std::string& needle) {
  if (hay.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << hay << "\" does not contain \"" << needle << "\"";
}

// Every stage off, temperature 1: the distribution is the plain softmax of the logits.
SamplerParams neutral() {
  SamplerParams p;
  p.temperature = 1.0f;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.repeat_penalty = 1.0f;
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.0f;
  p.seed = 1;
  return p;
}

Dist dist_of(const SamplerParams& p, const std::vector<float>& logits) {
  Sampler s(p, int32_t(logits.size()));
  return s.distribution(logits);
}

// `actual` must hold exactly the ids of `expected` (id -> logit after the chain), with the
// softmax of those logits as probabilities, sorted by probability descending, ties by id.
void expect_softmax(const Dist& actual, const std::map<int32_t, double>& expected) {
  double max = -1e300;
  for (auto& [id, l] : expected) max = std::max(max, l);
  double sum = 0;
  for (auto& [id, l] : expected) sum += std::exp(l - max);
  std::vector<std::pair<int32_t, double>> want;
  for (auto& [id, l] : expected) want.emplace_back(id, std::exp(l - max) / sum);
  std::stable_sort(want.begin(), want.end(), [](auto& a, auto& b) { return a.second > b.second; });
  ASSERT_EQ(actual.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(actual[i].first, want[i].first) << "position " << i;
    EXPECT_NEAR(actual[i].second, want[i].second, 1e-6) << "token " << want[i].first;
  }
}

// Exact probabilities, given directly.
void expect_dist(const Dist& actual, const std::vector<std::pair<int32_t, double>>& want) {
  ASSERT_EQ(actual.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(actual[i].first, want[i].first) << "position " << i;
    EXPECT_NEAR(actual[i].second, want[i].second, 1e-6) << "token " << want[i].first;
  }
}

std::vector<float> logs(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(float(std::log(p)));
  return out;
}

std::string error_of(const SamplerParams& p) {
  try {
    p.validate();
    ADD_FAILURE() << "validate() accepted the parameters";
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---- Rng --------------------------------------------------------------------------------

TEST(SamplerRng, SplitMix64MatchesPublishedVectorForSeedZero) {
  // Vigna's splitmix64.c started at 0; the same four values appear in many independent ports.
  uint64_t state = 0;
  EXPECT_EQ(Rng::splitmix64(state), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(Rng::splitmix64(state), 0x6e789e6aa1b965f4ULL);
  EXPECT_EQ(Rng::splitmix64(state), 0x06c45d188009454fULL);
  EXPECT_EQ(Rng::splitmix64(state), 0xf88bb8a8724c81ecULL);
}

TEST(SamplerRng, Xoshiro256StarStarMatchesPublishedVectorForState1234) {
  // Output of the reference xoshiro256starstar.c from the state {1, 2, 3, 4}.
  Rng r;
  r.set_state({1, 2, 3, 4});
  const uint64_t want[] = {11520ULL,
                           0ULL,
                           1509978240ULL,
                           1215971899390074240ULL,
                           1216172134540287360ULL,
                           607988272756665600ULL,
                           16172922978634559625ULL,
                           8476171486693032832ULL,
                           10595114339597558777ULL,
                           2904607092377533576ULL};
  for (uint64_t w : want) EXPECT_EQ(r.next_u64(), w);
}

TEST(SamplerRng, Seed42KnownOutputs) {
  // Computed by a separate Python transcription of SplitMix64 and xoshiro256** that first
  // reproduces both published vectors above; the state also matches published SplitMix64(42).
  Rng r(42);
  const std::array<uint64_t, 4> state = {0xbdd732262feb6e95ULL, 0x28efe333b266f103ULL, 0x47526757130f9f52ULL,
                                         0x581ce1ff0e4ae394ULL};
  EXPECT_EQ(r.state(), state);
  EXPECT_EQ(r.next_u64(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(r.next_u64(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(r.next_u64(), 0xae17533239e499a1ULL);
  EXPECT_EQ(r.next_u64(), 0xecb8ad4703b360a1ULL);

  // Floats are the top 24 bits of the same words, exactly.
  Rng f(42);
  EXPECT_EQ(f.next_float(), 1406987.0f / 16777216.0f);
  EXPECT_EQ(f.next_float(), 6358233.0f / 16777216.0f);
  EXPECT_EQ(f.next_float(), 11409235.0f / 16777216.0f);
  EXPECT_EQ(f.next_float(), 15513773.0f / 16777216.0f);
}

TEST(SamplerRng, SameSeedSameSequenceAndFloatsInUnitInterval) {
  Rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100000; ++i) {
    const float x = a.next_float();
    EXPECT_EQ(x, b.next_float());
    differs |= x != c.next_float();
    ASSERT_GE(x, 0.0f);
    ASSERT_LT(x, 1.0f);
  }
  EXPECT_TRUE(differs);
  Rng d(7);
  d.next_u64();
  d.reseed(7);
  EXPECT_EQ(d, Rng(7));
}

TEST(SamplerRng, AllZeroStateIsRefused) {
  Rng r;
  EXPECT_THROW(r.set_state({0, 0, 0, 0}), Error);
}

// ---- single stages ------------------------------------------------------------------------

TEST(SamplerStages, NothingEnabledIsPlainSoftmaxSortedByProbability) {
  expect_softmax(dist_of(neutral(), {1.0f, 3.0f, 2.0f, -1.5f}), {{0, 1.0}, {1, 3.0}, {2, 2.0}, {3, -1.5}});
}

TEST(SamplerStages, TopK) {
  auto p = neutral();
  const std::vector<float> logits = {0.5f, 3.0f, 1.0f, 2.0f};
  p.top_k = 1;
  expect_dist(dist_of(p, logits), {{1, 1.0}});
  p.top_k = 2;
  expect_softmax(dist_of(p, logits), {{1, 3.0}, {3, 2.0}});
  p.top_k = 3;
  expect_softmax(dist_of(p, logits), {{1, 3.0}, {3, 2.0}, {2, 1.0}});
  for (int32_t k : {4, 10, 0, -5}) {  // k >= vocab keeps all; k <= 0 disables
    p.top_k = k;
    expect_softmax(dist_of(p, logits), {{0, 0.5}, {1, 3.0}, {2, 1.0}, {3, 2.0}});
  }
}

TEST(SamplerStages, TopKTiesKeepLowestIds) {
  auto p = neutral();
  p.top_k = 2;
  expect_dist(dist_of(p, {1.0f, 2.0f, 2.0f, 2.0f, 0.0f}), {{1, 0.5}, {2, 0.5}});
  p.top_k = 1;
  expect_dist(dist_of(p, {0.0f, 5.0f, 1.0f, 5.0f}), {{1, 1.0}});
}

TEST(SamplerStages, TopPBoundaries) {
  auto p = neutral();
  const std::vector<float> flat = {0.0f, 0.0f, 0.0f, 0.0f};  // each exactly 1/4
  p.top_p = 0.5f;  // cumulative reaches exactly 0.5 at two tokens: two stay, not three
  expect_dist(dist_of(p, flat), {{0, 0.5}, {1, 0.5}});
  p.top_p = std::nextafter(0.5f, 1.0f);  // just above: a third token is needed
  expect_dist(dist_of(p, flat), {{0, 1.0 / 3}, {1, 1.0 / 3}, {2, 1.0 / 3}});
  p.top_p = 0.25f;
  expect_dist(dist_of(p, flat), {{0, 1.0}});
  p.top_p = 1e-6f;  // always at least one
  expect_dist(dist_of(p, {0.0f, 1.0f, 0.5f}), {{1, 1.0}});
  p.top_p = 1.0f;  // disabled
  expect_dist(dist_of(p, flat), {{0, 0.25}, {1, 0.25}, {2, 0.25}, {3, 0.25}});

  // 0.5, 0.25, 0.125, 0.125 in shuffled ids: 0.7 needs the two largest (cumulative 0.75).
  const auto skew = logs({0.125, 0.5, 0.125, 0.25});
  p.top_p = 0.7f;
  expect_dist(dist_of(p, skew), {{1, 2.0 / 3}, {3, 1.0 / 3}});
  p.top_p = 0.8f;  // 0.875 needed: three tokens, the 0.125 tie resolved by id
  expect_dist(dist_of(p, skew), {{1, 0.5 / 0.875}, {3, 0.25 / 0.875}, {0, 0.125 / 0.875}});
}

TEST(SamplerStages, MinP) {
  auto p = neutral();
  const auto logits = logs({0.1, 0.5, 0.15, 0.25});
  p.min_p = 0.4f;  // threshold 0.2
  expect_dist(dist_of(p, logits), {{1, 0.5 / 0.75}, {3, 0.25 / 0.75}});
  p.min_p = 0.25f;  // threshold 0.125
  expect_dist(dist_of(p, logits), {{1, 0.5 / 0.9}, {3, 0.25 / 0.9}, {2, 0.15 / 0.9}});
  p.min_p = 0.6f;  // threshold 0.3
  expect_dist(dist_of(p, logits), {{1, 1.0}});
  p.min_p = 0.0f;  // disabled
  expect_dist(dist_of(p, logits), {{1, 0.5}, {3, 0.25}, {2, 0.15}, {0, 0.1}});
  p.min_p = 1.0f;  // only the tokens tied with the maximum
  expect_dist(dist_of(p, {2.0f, 1.0f, 2.0f}), {{0, 0.5}, {2, 0.5}});
}

TEST(SamplerStages, Temperature) {
  auto p = neutral();
  const std::vector<float> logits = {0.0f, float(std::log(2.0))};  // 1/3, 2/3 at T = 1
  expect_dist(dist_of(p, logits), {{1, 2.0 / 3}, {0, 1.0 / 3}});
  p.temperature = 0.5f;  // logits doubled: 1 : 4
  expect_dist(dist_of(p, logits), {{1, 0.8}, {0, 0.2}});
  p.temperature = 2.0f;  // logits halved: 1 : sqrt(2)
  const double r2 = std::sqrt(2.0);
  expect_dist(dist_of(p, logits), {{1, r2 / (1 + r2)}, {0, 1 / (1 + r2)}});
  p.temperature = 1e-30f;  // tiny but positive: no overflow, all mass on the maximum
  expect_dist(dist_of(p, {3e38f, 1e38f, -3e38f}), {{0, 1.0}, {1, 0.0}, {2, 0.0}});
}

TEST(SamplerStages, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  auto p = neutral();
  p.repeat_penalty = 2.0f;
  Sampler s(p, 4);
  for (int32_t t : {0, 1, 0, 0}) s.accept(t);  // the count does not matter to this penalty
  expect_softmax(s.distribution(std::vector<float>{2.0f, -1.0f, 1.0f, 0.0f}),
                 {{0, 1.0}, {1, -2.0}, {2, 1.0}, {3, 0.0}});
}

TEST(SamplerStages, PenaltyWindow) {
  auto p = neutral();
  p.repeat_penalty = 2.0f;
  const std::vector<float> logits = {4.0f, 4.0f, 4.0f, 4.0f};
  const std::vector<int32_t> history = {0, 1, 2, 1};

  p.repeat_last_n = 2;  // window {2, 1}: token 0 has left it
  {
    Sampler s(p, 4);
    for (int32_t t : history) s.accept(t);
    expect_softmax(s.distribution(logits), {{0, 4.0}, {1, 2.0}, {2, 2.0}, {3, 4.0}});
  }
  p.repeat_last_n = -1;  // whole history
  {
    Sampler s(p, 4);
    for (int32_t t : history) s.accept(t);
    expect_softmax(s.distribution(logits), {{0, 2.0}, {1, 2.0}, {2, 2.0}, {3, 4.0}});
    s.reset();  // clears the history
    expect_softmax(s.distribution(logits), {{0, 4.0}, {1, 4.0}, {2, 4.0}, {3, 4.0}});
  }
  p.repeat_last_n = 0;  // penalties off
  {
    Sampler s(p, 4);
    for (int32_t t : history) s.accept(t);
    expect_softmax(s.distribution(logits), {{0, 4.0}, {1, 4.0}, {2, 4.0}, {3, 4.0}});
  }
  p.repeat_last_n = 64;
  p.order = {SamplerStage::TopK, SamplerStage::Temperature};  // not listed: not applied
  {
    Sampler s(p, 4);
    for (int32_t t : history) s.accept(t);
    expect_softmax(s.distribution(logits), {{0, 4.0}, {1, 4.0}, {2, 4.0}, {3, 4.0}});
  }
}

TEST(SamplerStages, FrequencyAndPresencePenaltiesCountOccurrencesInTheWindow) {
  auto p = neutral();
  p.frequency_penalty = 0.5f;
  p.presence_penalty = 1.0f;
  {
    Sampler s(p, 3);
    for (int32_t t : {0, 0, 0, 1}) s.accept(t);
    // token 0: 3 * 0.5 + 1; token 1: 0.5 + 1; token 2 unseen
    expect_softmax(s.distribution(std::vector<float>{1.0f, 1.0f, 1.0f}), {{0, -1.5}, {1, -0.5}, {2, 1.0}});
  }
  p.repeat_last_n = 3;  // window {0, 0, 1} of {0, 0, 0, 0, 1}
  {
    Sampler s(p, 3);
    for (int32_t t : {0, 0, 0, 0, 1}) s.accept(t);
    expect_softmax(s.distribution(std::vector<float>{1.0f, 1.0f, 1.0f}), {{0, -1.0}, {1, -0.5}, {2, 1.0}});
  }
  p.repeat_penalty = 2.0f;  // the repetition penalty applies first, then the subtraction
  {
    Sampler s(p, 3);
    for (int32_t t : {0, 0, 2}) s.accept(t);
    // token 0: 4 / 2 - 2 * 0.5 - 1 = 0; token 2: -1 * 2 - 0.5 - 1 = -3.5
    expect_softmax(s.distribution(std::vector<float>{4.0f, 1.0f, -1.0f}), {{0, 0.0}, {1, 1.0}, {2, -3.5}});
  }
}

TEST(SamplerStages, MaskedTokensAreNeverCandidates) {
  auto p = neutral();
  Sampler s(p, 4);
  const std::vector<float> logits = {kNegInf, 0.0f, kNegInf, 0.0f};
  expect_dist(s.distribution(logits), {{1, 0.5}, {3, 0.5}});
  for (int i = 0; i < 1000; ++i) {
    const int32_t t = s.sample(logits);
    ASSERT_TRUE(t == 1 || t == 3) << t;
  }
}

// ---- order ----------------------------------------------------------------------------------

TEST(SamplerOrder, TopKAndTopPDoNotCommute) {
  auto p = neutral();
  p.top_k = 2;
  p.top_p = 0.5f;
  const auto logits = logs({0.4, 0.35, 0.25});
  p.order = {SamplerStage::TopK, SamplerStage::TopP};  // 0.4 / 0.75 >= 0.5 after top-k
  expect_dist(dist_of(p, logits), {{0, 1.0}});
  p.order = {SamplerStage::TopP, SamplerStage::TopK};  // 0.4 < 0.5 over all three
  expect_dist(dist_of(p, logits), {{0, 0.4 / 0.75}, {1, 0.35 / 0.75}});
}

TEST(SamplerOrder, TemperatureBeforeMinPWidensTheSet) {
  auto p = neutral();
  p.min_p = 0.4f;
  p.temperature = 2.0f;
  const auto logits = logs({0.5, 0.25, 0.15, 0.1});
  p.order = {SamplerStage::MinP, SamplerStage::Temperature};  // threshold 0.2 at T = 1
  auto d = dist_of(p, logits);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_NEAR(d[0].second, std::sqrt(0.5) / (std::sqrt(0.5) + std::sqrt(0.25)), 1e-6);
  p.order = {SamplerStage::Temperature, SamplerStage::MinP};  // flattened first: all pass
  d = dist_of(p, logits);
  ASSERT_EQ(d.size(), 4u);
  const double z = std::sqrt(0.5) + std::sqrt(0.25) + std::sqrt(0.15) + std::sqrt(0.1);
  EXPECT_NEAR(d[3].second, std::sqrt(0.1) / z, 1e-6);
}

// ---- greedy ---------------------------------------------------------------------------------

TEST(SamplerGreedy, ArgmaxWithLowestIdOnTies) {
  for (float t : {0.0f, -1.0f}) {  // negative temperature is greedy too
    auto p = SamplerParams{};
    p.temperature = t;
    Sampler s(p, 4);
    const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 3.0f};
    EXPECT_EQ(s.sample(logits), 1);
    expect_dist(s.distribution(logits), {{1, 1.0}});
    EXPECT_EQ(s.sample(std::vector<float>{kNegInf, kNegInf, -5.0f, kNegInf}), 2);
  }
}

TEST(SamplerGreedy, AppliesPenaltiesFirst) {
  auto p = SamplerParams{};
  p.temperature = 0.0f;
  p.repeat_penalty = 2.0f;
  Sampler s(p, 4);
  s.accept(1);
  EXPECT_EQ(s.sample(std::vector<float>{1.0f, 3.0f, 2.0f, 2.5f}), 3);  // token 1: 3 / 2
}

TEST(SamplerGreedy, ConsumesNoRandomNumbers) {
  const std::vector<float> logits = {0.0f, 0.3f, 0.1f, 0.2f, 0.25f};
  auto p = SamplerParams{};
  p.seed = 99;
  p.temperature = 0.0f;
  {
    Sampler s(p, 5);
    for (int i = 0; i < 50; ++i) s.sample(logits);
    EXPECT_EQ(s.rng(), Rng(99));
  }
  // A sampling sampler that also makes greedy calls draws the same tokens as one that does not.
  p.temperature = 1.0f;
  Sampler mixed(p, 5), fresh(p, 5);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(mixed.greedy(logits), 1);
    ASSERT_EQ(mixed.sample(logits), fresh.sample(logits)) << "draw " << i;
  }
}

// ---- draws ------------------------------------------------------------------------------------

TEST(SamplerDraw, FirstDrawsForSeed42FollowFromTheRngOutputs) {
  // Four equal candidates: draw i picks floor(4 u_i), with u_i the published-derived floats
  // 0.0839, 0.3790, 0.6800, 0.9247 of Rng(42) (see Seed42KnownOutputs).
  auto p = neutral();
  p.seed = 42;
  Sampler s(p, 4);
  const std::vector<float> flat = {0.5f, 0.5f, 0.5f, 0.5f};
  EXPECT_EQ(s.sample(flat), 0);
  EXPECT_EQ(s.sample(flat), 1);
  EXPECT_EQ(s.sample(flat), 2);
  EXPECT_EQ(s.sample(flat), 3);
}

TEST(SamplerDraw, SameSeedSameTokensAndResetReplays) {
  std::vector<float> logits(100);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i)));
  SamplerParams p;
  p.temperature = 1.5f;
  p.seed = 2024;
  Sampler a(p, 100), b(p, 100);
  std::vector<int32_t> first;
  for (int i = 0; i < 500; ++i) {
    const int32_t t = a.sample(logits);
    ASSERT_EQ(t, b.sample(logits));
    first.push_back(t);
  }
  a.reset();
  for (int i = 0; i < 500; ++i) ASSERT_EQ(a.sample(logits), first[size_t(i)]);
  p.seed = 2025;
  Sampler c(p, 100);
  int same = 0;
  for (int i = 0; i < 500; ++i) same += c.sample(logits) == first[size_t(i)];
  EXPECT_LT(same, 400);
}

TEST(SamplerDraw, ChiSquareMatchesTheDistribution) {
  // 200k draws, fixed seed (deterministic). The bound is the chi-square quantile at
  // p = 0.001 for 4 degrees of freedom (18.467): a correct sampler fails it for only 0.1%
  // of seeds, while a bias of 0.005 in the 0.05 bucket alone adds ~100 to the statistic.
  const std::vector<double> probs = {0.1, 0.4, 0.05, 0.25, 0.2};  // ids deliberately unsorted
  auto p = neutral();
  p.seed = 12345;
  Sampler s(p, 5);
  const auto logits = logs(probs);
  const int n = 200000;
  std::vector<int> hist(5, 0);
  for (int i = 0; i < n; ++i) ++hist[size_t(s.sample(logits))];
  double chi2 = 0;
  for (size_t i = 0; i < 5; ++i) {
    const double e = n * probs[i];
    chi2 += (hist[i] - e) * (hist[i] - e) / e;
  }
  RecordProperty("chi2", std::to_string(chi2));
  EXPECT_LT(chi2, 18.467) << "counts " << hist[0] << " " << hist[1] << " " << hist[2] << " " << hist[3] << " "
                          << hist[4];
}

// ---- large vocabularies against a plain reference -------------------------------------------

// The chain written the obvious way: full sort after every stage, normalised cumulative sums,
// penalties counted from the whole history list.
Dist reference_chain(const SamplerParams& p, const std::vector<float>& logits, const std::vector<int32_t>& history = {}) {
  using Cand = std::pair<int32_t, double>;
  std::vector<Cand> c;
  for (size_t i = 0; i < logits.size(); ++i)
    if (std::isfinite(logits[i])) c.emplace_back(int32_t(i), double(logits[i]));
  auto by_logit = [](const Cand& a, const Cand& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  auto softmax = [](const std::vector<Cand>& v) {
    std::vector<double> pr;
    double s = 0;
    for (auto& x : v) s += std::exp(x.second - v[0].second);
    for (auto& x : v) pr.push_back(std::exp(x.second - v[0].second) / s);
    return pr;
  };
  std::sort(c.begin(), c.end(), by_logit);
  for (SamplerStage st : p.order) {
    if (st == SamplerStage::Penalties && p.repeat_last_n != 0) {
      const size_t from = p.repeat_last_n < 0 || size_t(p.repeat_last_n) >= history.size()
                              ? 0
                              : history.size() - size_t(p.repeat_last_n);
      for (auto& x : c) {
        const auto n = std::count(history.begin() + std::ptrdiff_t(from), history.end(), x.first);
        if (n == 0) continue;
        x.second = x.second > 0 ? x.second / p.repeat_penalty : x.second * p.repeat_penalty;
        x.second -= double(n) * p.frequency_penalty + p.presence_penalty;
      }
    }
    if (st == SamplerStage::TopK && p.top_k > 0 && size_t(p.top_k) < c.size()) c.resize(size_t(p.top_k));
    if (st == SamplerStage::TopP && p.top_p < 1.0f) {
      auto pr = softmax(c);
      double cum = 0;
      size_t keep = c.size();
      for (size_t i = 0; i < c.size(); ++i) {
        cum += pr[i];
        if (cum >= p.top_p) {
          keep = i + 1;
          break;
        }
      }
      c.resize(keep);
    }
    if (st == SamplerStage::MinP && p.min_p > 0.0f) {
      auto pr = softmax(c);
      size_t keep = 0;
      while (keep < c.size() && pr[keep] >= p.min_p * pr[0]) ++keep;
      c.resize(keep);
    }
    if (st == SamplerStage::Temperature)
      for (auto& x : c) x.second /= p.temperature;
    std::sort(c.begin(), c.end(), by_logit);
  }
  auto pr = softmax(c);
  Dist out;
  for (size_t i = 0; i < c.size(); ++i) out.emplace_back(c[i].first, float(pr[i]));
  return out;
}

std::vector<float> random_logits(size_t n, uint64_t seed, float scale) {
  Rng r(seed);
  std::vector<float> v(n);
  for (float& x : v) x = scale * (r.next_float() - 0.5f);
  return v;
}

TEST(SamplerLargeVocab, ChainMatchesAFullSortReference) {
  // Covers the fused load (penalties + top-k), the histogram search of top-p on large sets,
  // nth_element top-k later in the chain, and masked tokens.
  using S = SamplerStage;
  const size_t vocab = 32000;
  std::vector<int32_t> history;
  Rng h(11);
  for (int i = 0; i < 300; ++i) history.push_back(int32_t(h.next_u64() % 64));  // dense repeats
  const std::vector<std::vector<S>> orders = {
      {S::Penalties, S::TopK, S::TopP, S::MinP, S::Temperature},
      {S::Temperature, S::TopP, S::TopK, S::Penalties, S::MinP},
      {S::TopK, S::Penalties, S::MinP, S::TopP, S::Temperature},
  };
  for (float scale : {30.0f, 2.0f}) {
    auto logits = random_logits(vocab, 5, scale);
    for (size_t i = 0; i < vocab; i += 7) logits[i] = kNegInf;
    for (size_t o = 0; o < orders.size(); ++o) {
      for (int32_t k : {0, 1, 40, 5000}) {
        for (float top_p : {1.0f, 0.9f, 0.3f}) {
          SamplerParams p;
          p.order = orders[o];
          p.top_k = k;
          p.top_p = top_p;
          p.min_p = 0.001f;
          p.temperature = 0.7f;
          p.repeat_penalty = 1.3f;
          p.frequency_penalty = 0.05f;
          p.presence_penalty = 0.2f;
          p.repeat_last_n = 100;
          Sampler s(p, int32_t(vocab));
          for (int32_t t : history) s.accept(t);
          const Dist got = s.distribution(logits);
          const Dist want = reference_chain(p, logits, history);
          const std::string what = "order " + std::to_string(o) + " k " + std::to_string(k) + " top_p " +
                                   std::to_string(top_p) + " scale " + std::to_string(scale);
          ASSERT_EQ(got.size(), want.size()) << what;
          for (size_t i = 0; i < want.size(); ++i) {
            ASSERT_EQ(got[i].first, want[i].first) << what << " position " << i;
            ASSERT_NEAR(got[i].second, want[i].second, 1e-6) << what;
          }
        }
      }
    }
  }
}

TEST(SamplerLargeVocab, TiesOnTheHistogramPathResolveById) {
  // 3000 equal logits: every candidate lands in one histogram bin, so the tie-break by id
  // decides everything. Each weighs exactly 1, so the sums are exact.
  auto p = neutral();
  p.top_p = 0.5f;
  const std::vector<float> flat(3000, 0.0f);
  const Dist d = dist_of(p, flat);
  ASSERT_EQ(d.size(), 1500u);
  for (size_t i = 0; i < d.size(); ++i) {
    ASSERT_EQ(d[i].first, int32_t(i));
    ASSERT_NEAR(d[i].second, 1.0 / 1500, 1e-9);
  }
  // Draw i picks floor(3000 u_i) for the Rng(42) floats of Seed42KnownOutputs.
  p.top_p = 1.0f;
  p.seed = 42;
  Sampler s(p, 3000);
  EXPECT_EQ(s.sample(flat), 251);
  EXPECT_EQ(s.sample(flat), 1136);
  EXPECT_EQ(s.sample(flat), 2040);
  EXPECT_EQ(s.sample(flat), 2774);
}

TEST(SamplerLargeVocab, DrawFollowsTheInverseCdfOverAFlatDistribution) {
  // Nearly flat logits make the draw walk deep into the vocabulary, across many of the
  // incremental sort's chunks.
  const size_t vocab = 50000;
  const auto logits = random_logits(vocab, 9, 0.05f);
  auto p = neutral();
  p.seed = 77;
  Sampler s(p, int32_t(vocab));
  const Dist ref = reference_chain(p, logits);
  std::vector<double> cdf;
  double acc = 0;
  for (auto& x : ref) cdf.push_back(acc += x.second);
  Rng r(77);
  for (int i = 0; i < 200; ++i) {
    const double u = r.next_float();
    const size_t j = std::min(size_t(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin()), ref.size() - 1);
    const int32_t t = s.sample(logits);
    // Cumulative sums in float vs double may disagree right at a boundary; allow a neighbour there.
    if (t != ref[j].first) {
      const double gap = std::min(std::abs(u - cdf[j]), j > 0 ? std::abs(u - cdf[j - 1]) : 1.0);
      EXPECT_LT(gap, 1e-6) << "draw " << i << ": got " << t << ", reference " << ref[j].first;
    }
  }
}

// ---- errors ---------------------------------------------------------------------------------

TEST(SamplerErrors, ValidateNamesTheField) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Case {
    void (*set)(SamplerParams&, float);
    float value;
    const char* field;
  };
  const Case cases[] = {
      {[](SamplerParams& p, float v) { p.top_p = v; }, 2.0f, "top_p"},
      {[](SamplerParams& p, float v) { p.top_p = v; }, 0.0f, "top_p"},
      {[](SamplerParams& p, float v) { p.top_p = v; }, nan, "top_p"},
      {[](SamplerParams& p, float v) { p.min_p = v; }, 1.5f, "min_p"},
      {[](SamplerParams& p, float v) { p.min_p = v; }, -0.1f, "min_p"},
      {[](SamplerParams& p, float v) { p.repeat_penalty = v; }, 0.0f, "repeat_penalty"},
      {[](SamplerParams& p, float v) { p.repeat_penalty = v; }, -1.0f, "repeat_penalty"},
      {[](SamplerParams& p, float v) { p.repeat_penalty = v; }, nan, "repeat_penalty"},
      {[](SamplerParams& p, float v) { p.temperature = v; }, nan, "temperature"},
      {[](SamplerParams& p, float v) { p.temperature = v; }, 1e9f, "temperature"},
      {[](SamplerParams& p, float v) { p.temperature = v; }, -INFINITY, "temperature"},
      {[](SamplerParams& p, float v) { p.frequency_penalty = v; }, 1e6f, "frequency_penalty"},
      {[](SamplerParams& p, float v) { p.presence_penalty = v; }, nan, "presence_penalty"},
      {[](SamplerParams& p, float v) { p.repeat_last_n = int32_t(v); }, -2.0f, "repeat_last_n"},
  };
  for (const Case& c : cases) {
    SamplerParams p;
    c.set(p, c.value);
    EXPECT_TRUE(Contains(error_of(p), c.field)) << c.field << " = " << c.value;
    EXPECT_THROW(Sampler(p, 10), Error);
  }
  SamplerParams dup;
  dup.order = {SamplerStage::TopK, SamplerStage::Temperature, SamplerStage::TopK};
  EXPECT_TRUE(Contains(error_of(dup), "order"));
  EXPECT_TRUE(Contains(error_of(dup), "top_k"));
}

TEST(SamplerErrors, DocumentedEdgeValuesAreAccepted) {
  SamplerParams p;
  p.temperature = -1.0f;  // greedy
  p.top_k = -5;           // disabled
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repeat_last_n = -1;
  p.repeat_penalty = 0.5f;
  p.frequency_penalty = -2.0f;
  p.order.clear();
  EXPECT_NO_THROW(p.validate());
  p.min_p = 0.0f;
  p.temperature = 100.0f;
  EXPECT_NO_THROW(p.validate());
}

TEST(SamplerErrors, BadLogitsAndTokens) {
  // The plain load, the fused penalties + top-k load and the greedy scan each check.
  SamplerParams fused;
  fused.top_k = 2;
  fused.repeat_penalty = 1.5f;
  SamplerParams greedy = fused;
  greedy.temperature = 0.0f;
  for (const SamplerParams& p : {neutral(), fused, greedy}) {
    Sampler s(p, 4);
    s.accept(2);
    auto message = [&](const std::vector<float>& logits) -> std::string {
      try {
        s.sample(logits);
      } catch (const Error& e) {
        return e.what();
      }
      return "no error";
    };
    EXPECT_TRUE(Contains(message({0.0f, 1.0f, NAN, 0.0f}), "logits contain NaN at token 2"));
    EXPECT_TRUE(Contains(message({INFINITY, 1.0f, 0.0f, 0.0f}), "logits contain +inf at token 0"));
    EXPECT_TRUE(Contains(message({0.0f, 1.0f, 0.0f}), "logits: got 3 values for a vocabulary of 4"));
    EXPECT_TRUE(Contains(message({kNegInf, kNegInf, kNegInf, kNegInf}), "every token is -inf"));
    EXPECT_THROW(s.distribution(std::vector<float>{0.0f, NAN, 0.0f, 0.0f}), Error);
    EXPECT_THROW(s.accept(4), Error);
    EXPECT_THROW(s.accept(-1), Error);
  }
  try {
    Sampler bad(SamplerParams{}, 0);
    ADD_FAILURE() << "vocab_size 0 accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "vocab_size"));
  }
}

// ---- parse_sampler_order ----------------------------------------------------------------------

TEST(SamplerParse, GoodStrings) {
  using S = SamplerStage;
  const std::vector<S> all = {S::Penalties, S::TopK, S::TopP, S::MinP, S::Temperature};
  EXPECT_EQ(retnet::parse_sampler_order("penalties;top_k;top_p;min_p;temperature"), all);
  EXPECT_EQ(retnet::parse_sampler_order("ekpmt"), all);
  EXPECT_EQ(retnet::parse_sampler_order(" top-k , Temperature "), (std::vector<S>{S::TopK, S::Temperature}));
  EXPECT_EQ(retnet::parse_sampler_order("kpmt"), (std::vector<S>{S::TopK, S::TopP, S::MinP, S::Temperature}));
  EXPECT_EQ(retnet::parse_sampler_order("temperature"), std::vector<S>{S::Temperature});
  EXPECT_EQ(retnet::parse_sampler_order("t"), std::vector<S>{S::Temperature});
  EXPECT_EQ(retnet::parse_sampler_order("min_p;penalties"), (std::vector<S>{S::MinP, S::Penalties}));
  for (S s : all) EXPECT_EQ(retnet::parse_sampler_order(retnet::sampler_stage_name(s)), std::vector<S>{s});
}

TEST(SamplerParse, BadStrings) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty"},          {"   ", "empty"},          {"top_q", "top_q"},
      {"kpz", "kpz"},         {"top_k;;top_p", "empty"}, {"top_k;", "empty"},
      {"top_k;top_k", "top_k' appears twice"},           {"kk", "top_k' appears twice"},
      {"top_k;typical", "typical"},
  };
  for (auto [text, needle] : cases) {
    try {
      retnet::parse_sampler_order(text);
      ADD_FAILURE() << "accepted '" << text << "'";
    } catch (const Error& e) {
      EXPECT_TRUE(Contains(e.what(), needle)) << "for '" << text << "'";
    }
  }
}

}  // namespace
