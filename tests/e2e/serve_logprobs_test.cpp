// `retnet serve`'s logprobs below HTTP: the log-softmax and its top-k (against a double-precision
// computation written here), the JSON shapes (partial UTF-8 tokens, character offsets, the chosen
// token beside the top k), and the scheduler's entries against the model's own logits and the text
// they go with. The same through the openai client: tests/serve/test_logprobs.py.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "serve/logprobs.hpp"
#include "serve/scheduler.hpp"
#include "serve_fixture.hpp"
#include "test_util.hpp"

namespace {

using namespace retnet;
using namespace retnet::serve;

using retnet::test::log_softmax_ref;

TEST(ServeLogprobs, LogSoftmaxTopRanksTiesByIdAndReportsTheChosenToken) {
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, -std::numeric_limits<float>::infinity(), 2.0f};
  const std::vector<double> ref = log_softmax_ref(logits);
  const LogSoftmaxTop r = log_softmax_top(logits, 2, 3);
  ASSERT_EQ(r.top.size(), 3u);
  // 1 and 3 tie: the lower id first, every time.
  EXPECT_EQ(r.top[0].id, 1);
  EXPECT_EQ(r.top[1].id, 3);
  EXPECT_EQ(r.top[2].id, 6);
  // Each value is the double log-softmax rounded to float: 1e-6 covers that rounding (|lp| < 8).
  for (const auto& t : r.top) EXPECT_NEAR(t.logprob, ref[size_t(t.id)], 1e-6) << t.id;
  EXPECT_EQ(r.top[0].logprob, r.top[1].logprob);
  // The chosen token is outside the top 3; its logprob is still reported.
  EXPECT_NEAR(r.chosen, ref[2], 1e-6);
  // -inf (an impossible token) reads as OpenAI's -9999.
  EXPECT_EQ(log_softmax_top(logits, 5, 0).chosen, kImpossibleLogprob);
  EXPECT_TRUE(log_softmax_top(logits, 5, 0).top.empty());
  // k is clamped to the vocabulary; NaN ranks last; a huge logit does not overflow.
  const std::vector<float> odd = {std::nanf(""), 1e30f, 0.0f};
  const LogSoftmaxTop o = log_softmax_top(odd, 1, 20);
  ASSERT_EQ(o.top.size(), 3u);
  EXPECT_EQ(o.top[0].id, 1);
  EXPECT_EQ(o.top[0].logprob, 0.0f);
  EXPECT_EQ(o.top[1].id, 2);
  EXPECT_EQ(o.top[1].logprob, -1e30f);  // exact: 0 - (1e30 + log(1 + e^-1e30)), no overflow on the way
  EXPECT_EQ(o.top[2].id, 0);
}

TEST(ServeLogprobs, TokenDisplayEscapesPartialCharactersAndOffsetsCountCharacters) {
  EXPECT_EQ(token_display(" h\xc3\xa9llo"), " h\xc3\xa9llo");
  EXPECT_EQ(token_display("\xe2\x80"), "\\xe2\\x80");                    // the first two bytes of a 3-byte character
  EXPECT_EQ(token_display("\x9c"), "\\x9c");                             // its last byte
  EXPECT_EQ(token_display("a\xf0\x9f\x98\x80z"), "a\xf0\x9f\x98\x80z");  // a whole emoji
  EXPECT_EQ(token_display("\xc0\xaf"), "\\xc0\\xaf");                    // overlong
  EXPECT_EQ(token_display("\xed\xa0\x80"), "\\xed\\xa0\\x80");           // a surrogate
  // "aé€b": bytes a | c3 a9 | e2 82 ac | b.
  const std::string t =
      "a\xc3\xa9\xe2\x82\xac"
      "b";
  const size_t want[] = {0, 1, 1, 2, 2, 2, 3, 4, 4};
  for (size_t off = 0; off < 9; ++off) EXPECT_EQ(utf8_char_index(t, off), want[off]) << off;
}

TEST(ServeLogprobs, JsonShapes) {
  LogprobEntry a;
  a.chosen = {7, -2.5f, "\xe2\x80"};
  a.top = {{1, -0.5f, " the"}, {2, -1.0f, " and"}};
  a.offset = 3;
  LogprobEntry b;
  b.chosen = {1, -0.25f, " the"};
  b.top = {{1, -0.25f, " the"}, {4, -1.5f, " the"}};  // two ids, one string: the more likely is kept
  b.offset = 7;
  const auto chat = chat_logprobs_json({a, b});
  ASSERT_EQ(chat["content"].size(), 2u);
  EXPECT_EQ(chat["content"][0]["token"], "\\xe2\\x80");
  EXPECT_EQ(chat["content"][0]["bytes"], nlohmann::ordered_json::array({0xe2, 0x80}));
  EXPECT_EQ(chat["content"][0]["logprob"].get<double>(), -2.5);
  EXPECT_EQ(chat["content"][0]["top_logprobs"][1]["token"], " and");
  EXPECT_EQ(chat["content"][0]["top_logprobs"][1]["bytes"], nlohmann::ordered_json::array({32, 97, 110, 100}));
  EXPECT_TRUE(chat["refusal"].is_null());

  // A stream chunk whose text "x€ the" starts at byte 3, character 2 of the choice's text.
  const auto c = completion_logprobs_json({a, b}, "x\xe2\x82\xac the", 3, 2);
  EXPECT_EQ(c["tokens"], nlohmann::ordered_json::array({"\\xe2\\x80", " the"}));
  EXPECT_EQ(c["token_logprobs"][1].get<double>(), -0.25);
  // The chosen token joins the top k when it is not among them (OpenAI: up to logprobs + 1), after them.
  EXPECT_EQ(c["top_logprobs"][0].dump(), R"({" the":-0.5," and":-1.0,"\\xe2\\x80":-2.5})");
  EXPECT_EQ(c["top_logprobs"][1].dump(), R"({" the":-0.25})");
  EXPECT_EQ(c["text_offset"], nlohmann::ordered_json::array({2, 4}));  // bytes 3 ("x") and 7 (" the")
}

class ServeSchedulerLogprobs : public retnet::test::BundledModelSuite {
 protected:
  static retnet::test::JobResult run(Scheduler& sched, JobParams p) {
    auto j = std::make_shared<Job>(std::move(p));
    EXPECT_EQ(sched.submit({j}), Scheduler::Submit::Ok);
    return retnet::test::drain_job(*j);
  }
};

// Greedy, 5 alternatives, sampled with penalties and temperature that must not change the reported
// distribution: every entry's values equal a double log-softmax of Session's own logits for the same
// tokens (prefill of the prompt, then decode: what the scheduler runs, so the fp32 logits are the same
// bits; 1e-5 covers the float rounding of values below 100 in magnitude), and the tokens' bytes joined
// are the text.
TEST_F(ServeSchedulerLogprobs, EntriesAreTheRawLogitsLogSoftmaxAndJoinToTheText) {
  Scheduler sched(model_, *tok_, SchedulerOptions{2, 16, 0});
  JobParams p;
  p.prompt = tok_->encode("And the LORD said unto Moses", true);
  p.max_tokens = 24;
  p.logprobs = 5;
  p.sampler.temperature = 0.7f;
  p.sampler.repeat_penalty = 1.3f;
  p.sampler.seed = 11;
  const retnet::test::JobResult r = run(sched, p);
  ASSERT_EQ(int64_t(r.entries.size()), r.usage.completion_tokens);
  ASSERT_EQ(r.usage.completion_tokens, 24);
  std::string joined;
  for (const auto& e : r.entries) {
    EXPECT_EQ(e.offset, joined.size());
    joined += e.chosen.bytes;
  }
  EXPECT_EQ(joined, r.text);

  Session s(model_);
  std::span<const float> l = s.prefill(p.prompt);
  for (const auto& e : r.entries) {
    const std::vector<double> ref = log_softmax_ref(l);
    EXPECT_NEAR(e.chosen.logprob, ref[size_t(e.chosen.id)], 1e-5);
    ASSERT_EQ(e.top.size(), 5u);
    for (size_t i = 0; i < e.top.size(); ++i) {
      EXPECT_NEAR(e.top[i].logprob, ref[size_t(e.top[i].id)], 1e-5);
      if (i > 0) {
        EXPECT_GE(l[size_t(e.top[i - 1].id)], l[size_t(e.top[i].id)]);
      }
      EXPECT_EQ(e.top[i].bytes, tok_->token_bytes(e.top[i].id, &e == &r.entries.front()));
    }
    for (size_t id = 0; id < l.size(); ++id) EXPECT_LE(double(l[id]), double(l[size_t(e.top[0].id)]));
    l = s.decode(e.chosen.id);
  }

  // Without logprobs nothing is computed or sent.
  p.logprobs = -1;
  EXPECT_TRUE(run(sched, p).entries.empty());
}

// A stop string cuts the text: the entries are those of the tokens with at least one byte in it
// (the one that holds the stop string's start is dropped when the cut falls on its first byte).
TEST_F(ServeSchedulerLogprobs, AStopStringDropsTheEntriesAfterTheCut) {
  Scheduler sched(model_, *tok_, SchedulerOptions{1, 16, 0});
  JobParams p;
  p.prompt = tok_->encode("In the beginning", true);
  p.max_tokens = 24;
  p.logprobs = 0;
  const retnet::test::JobResult full = run(sched, p);
  ASSERT_EQ(full.entries.size(), 24u);
  // Cut inside a token's text (from its second byte on) and at the next token's start.
  size_t k = 3;
  while (k + 1 < full.entries.size() && full.entries[k].chosen.bytes.size() < 2) ++k;
  ASSERT_LT(k + 1, full.entries.size()) << full.text;
  const std::string tk = full.entries[k].chosen.bytes, next = full.entries[k + 1].chosen.bytes;
  for (const std::string& stop : {tk.substr(1) + next, next}) {
    p.stop_strings = {stop};
    const retnet::test::JobResult cut = run(sched, p);
    ASSERT_EQ(cut.reason, "stop");
    const size_t at = full.text.find(stop);
    EXPECT_EQ(cut.text, full.text.substr(0, at));
    size_t n = 0;
    while (n < full.entries.size() && full.entries[n].offset < at) ++n;
    ASSERT_EQ(cut.entries.size(), n) << stop;
    for (size_t i = 0; i < n; ++i) {
      EXPECT_EQ(cut.entries[i].chosen.id, full.entries[i].chosen.id);
      EXPECT_EQ(cut.entries[i].chosen.logprob, full.entries[i].chosen.logprob);
      EXPECT_TRUE(cut.entries[i].top.empty());  // logprobs = 0: the chosen token only
    }
  }
}

}  // namespace
