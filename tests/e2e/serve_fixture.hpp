// The serve gtests' common fixture: the bundled model (2 threads) and its tokenizer, loaded once per
// test suite, as `retnet serve` would load them; and what their jobs are checked with.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "serve/job.hpp"

#include "retnet/retnet.hpp"
#include "test_util.hpp"

namespace retnet::test {

class BundledModelSuite : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = load_bundled(2);
    tok_ = new Tokenizer(Tokenizer::load(bundled_dir()));
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
    model_.reset();
  }
  static inline std::shared_ptr<const Model> model_;
  static inline Tokenizer* tok_ = nullptr;
};

// log_softmax in double (max subtracted, std::log of a double sum), written independently of
// logprobs.cpp: the reference the logprob values are compared with.
inline std::vector<double> log_softmax_ref(std::span<const float> x) {
  double mx = x[0];
  for (float v : x) mx = std::max(mx, double(v));
  double sum = 0;
  for (float v : x) sum += std::exp(double(v) - mx);
  std::vector<double> out;
  for (float v : x) out.push_back(double(v) - mx - std::log(sum));
  return out;
}

// Everything a job sent until it finished: its text, logprob entries and usage.
struct JobResult {
  std::string text, reason;
  std::vector<serve::LogprobEntry> entries;
  serve::JobUsage usage;
};
// Waits for the job to finish, collecting what it sends; it must not fail, and its entries come with
// the text that holds their first byte, never before it.
inline JobResult drain_job(serve::Job& j) {
  JobResult r;
  for (;;) {
    serve::Job::Update u = j.next(std::chrono::milliseconds(100));
    for (const auto& e : u.logprobs) EXPECT_LT(e.offset, r.text.size() + u.text.size()) << r.text << u.text;
    r.text += u.text;
    for (auto& e : u.logprobs) r.entries.push_back(std::move(e));
    if (u.finished) {
      EXPECT_EQ(u.error_status, 0) << u.error;
      r.reason = u.finish_reason;
      r.usage = u.usage;
      return r;
    }
  }
}

}  // namespace retnet::test
