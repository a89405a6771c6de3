// `retnet bench` smoke test: tiny random model, one repetition, JSON parsed and its fields checked.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <regex>

#include "backend/backend.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

std::string run_capture(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p.get())) > 0) out.append(buf, n);
  return out;
}

TEST(BenchSmoke, JsonRowsCarryTheLlamaBenchFields) {
  const std::string cmd = std::string(RETNET_CLI_PATH) +
                          " bench --shape tiny -p 32 -n 8 -d 0,16 -b 1,2 -r 1 -t 1 --bandwidth-mib 16 -o json -q 2>/dev/null";
  const nlohmann::json j = nlohmann::json::parse(run_capture(cmd));
  ASSERT_TRUE(j.is_array());
  // 2 depths × (pp32 + tg8 at batch 1 and 2) = 6 rows
  ASSERT_EQ(j.size(), 6u) << j.dump(1);
  for (const auto& r : j) {
    for (const char* k : {"build_commit", "cpu_info", "model_type", "model_size", "model_n_params", "n_batch", "n_threads",
                          "n_prompt", "n_gen", "n_depth", "test", "avg_ns", "stddev_ns", "avg_ts", "stddev_ts",
                          "samples_ns", "samples_ts", "measured_bandwidth_gbs", "measured_sgemm_gflops", "measured_peak_gflops", "peak_kind"})
      EXPECT_TRUE(r.contains(k)) << k;
    EXPECT_GT(r["avg_ts"].get<double>(), 0.0);
    EXPECT_EQ(r["samples_ts"].size(), 1u);
    // The commit of the build (stamped at build time, "-dirty" for uncommitted changes), or
    // "unknown" outside a git checkout.
    EXPECT_TRUE(std::regex_match(r["build_commit"].get<std::string>(), std::regex("([0-9a-f]{7,40}(-dirty)?|unknown)")))
        << r["build_commit"];
    EXPECT_EQ(r["n_threads"], 1);
    EXPECT_GT(r["model_n_params"].get<uint64_t>(), 0u);
    // Default device auto: CUDA exactly when a device is present, named in gpu_info.
    EXPECT_EQ(r["backends"], cuda_available() ? "CUDA" : "CPU");
    EXPECT_EQ(r["gpu_info"].get<std::string>().empty(), !cuda_available());
    const std::string test = r["test"];
    if (test.rfind("tg", 0) == 0) {
      EXPECT_GT(r["bandwidth_gbs"].get<double>(), 0.0);
      EXPECT_GT(r["roofline_pct"].get<double>(), 0.0);
      EXPECT_EQ(r["n_gen"], 8);
    } else {
      EXPECT_EQ(test, "pp32");
      EXPECT_GT(r["gflops"].get<double>(), 0.0);
    }
  }
  // Other formats and a bad flag
  EXPECT_NE(run_capture(std::string(RETNET_CLI_PATH) + " bench --shape tiny -p 8 -n 0 -r 1 -t 1 --bandwidth-mib 16 -o md -q 2>/dev/null")
                .find("| pp8 |"),
            std::string::npos);
  EXPECT_NE(std::system((std::string(RETNET_CLI_PATH) + " bench --shape 12x1x5 -q 2>/dev/null").c_str()), 0);
}

}  // namespace
}  // namespace retnet::test
