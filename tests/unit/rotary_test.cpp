// Rotation angles against PyTorch's fp32 values and the float64 truth (tests/data/angles.json,
// written by tools/make_fixtures.py with torch 1.13 CPU).
#include <gtest/gtest.h>

#include <cmath>

#include "common/rotary.hpp"
#include "model/config.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

TEST(Rotary, ThetaMatchesTorchFp32) {
  const nlohmann::json a = read_json(data_dir() + "/angles.json");
  for (const auto& e : a["entries"]) {
    const int64_t dk = e["dk"];
    const auto mine = e["convention"] == "linspace" ? theta_linspace(dk) : theta_fla(dk);
    ASSERT_EQ(mine.size(), e["theta"].size());
    for (size_t p = 0; p < mine.size(); ++p) {
      // torch fills linspace with a vectorised kernel whose rounding differs from the scalar formula
      // by 1 ulp of x for some lengths; θ = 10000^-x multiplies that relative error by x·ln(10^4)
      // ≤ 9.2, so allow 8 ulp of θ (measured ≤ 6 at dk = 256). Checkpoints of the torchscale family
      // carry the exact angle buffer, which the loader prefers; fla's θ matches to 1 ulp.
      const float ref = e["theta"][p].get<float>();
      EXPECT_LE(std::fabs(mine[p] - ref), std::fabs(ref) * 8 * 1.2e-7f) << e["convention"] << " dk=" << dk << " p=" << p;
    }
  }
}

// Reference mode reproduces torch's fp32 angles: the argument float32(n)·θ bit for bit, sin/cos to
// within 2 ulp (torch's vectorised sin differs from a correctly rounded one by ≤ 1 ulp, and ours too).
TEST(Rotary, ReferenceModeMatchesTorch) {
  const nlohmann::json a = read_json(data_dir() + "/angles.json");
  const auto& pos = a["positions"];
  for (const auto& e : a["entries"]) {
    for (size_t i = 0; i < pos.size(); ++i) {
      for (size_t p = 0; p < e["theta"].size(); ++p) {
        const float th = e["theta"][p].get<float>();
        const int64_t n = pos[i].get<int64_t>();
        EXPECT_EQ(float(n) * th, e["arg_f32"][i][p].get<float>());
        float s, c;
        rotary_sincos_reference(n, th, &s, &c);
        const float rs = e["sin_f32"][i][p].get<float>(), rc = e["cos_f32"][i][p].get<float>();
        EXPECT_LE(std::fabs(s - rs), 2.5e-7f) << "n=" << n << " p=" << p;
        EXPECT_LE(std::fabs(c - rc), 2.5e-7f) << "n=" << n << " p=" << p;
      }
    }
  }
}

// Exact mode stays within ~1 ulp of sin/cos(n·θ64) at every position, while the fp32 argument of
// the reference drifts by up to n·ulp(θ)/2: at n = 1e5 that is ~1e-3, at 2^24 it is order 1.
TEST(Rotary, ExactModeIsCloserToFloat64TruthAtLongPositions) {
  const nlohmann::json a = read_json(data_dir() + "/angles.json");
  const auto& pos = a["positions"];
  for (const auto& e : a["entries"]) {
    double worst_exact = 0, worst_ref_long = 0;
    for (size_t i = 0; i < pos.size(); ++i) {
      const int64_t n = pos[i].get<int64_t>();
      for (size_t p = 0; p < e["theta"].size(); ++p) {
        float s, c, rs, rc;
        rotary_sincos_exact(n, e["theta64"][p].get<double>(), &s, &c);
        rotary_sincos_reference(n, e["theta"][p].get<float>(), &rs, &rc);
        const double ts = e["sin_true64"][i][p].get<double>(), tc = e["cos_true64"][i][p].get<double>();
        const double ex = std::max(std::fabs(s - ts), std::fabs(c - tc));
        worst_exact = std::max(worst_exact, ex);
        if (n >= 100000) worst_ref_long = std::max(worst_ref_long, std::max(std::fabs(rs - ts), std::fabs(rc - tc)));
      }
    }
    std::printf("[ measured ] dk=%d %s: exact-mode max error %.2e, reference-mode max error at n>=1e5 %.2e\n",
                e["dk"].get<int>(), e["convention"].get<std::string>().c_str(), worst_exact, worst_ref_long);
    EXPECT_LE(worst_exact, 1.2e-7);     // one fp32 rounding of a value in [-1, 1]
    EXPECT_GE(worst_ref_long, 1e-4);    // the fp32 argument really is far off out there
  }
}

TEST(Rotary, DecayConstantsAreFp32LikeTheReferences) {
  const auto d = log_decay_default(24);
  const double expect[] = {-0.0317487, -0.0157484, -0.0078432, -0.0039139, -0.0019550, -0.0009770, -0.0004884, -0.0002442};
  for (int h = 0; h < 8; ++h) EXPECT_NEAR(d[size_t(h)], expect[h], 1e-6) << h;
  // 1 - 2^-25 is 1.0f: heads from 20 on do not decay at all in fp32 (docs/reference.md §3).
  EXPECT_EQ(d[20], 0.0f);
  EXPECT_LT(d[19], 0.0f);
}

}  // namespace
}  // namespace retnet::test
