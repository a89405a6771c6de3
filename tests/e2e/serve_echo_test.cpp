// `retnet serve`'s echo below HTTP: the prompt's entries of an echo with logprobs against the model's
// own logits (one all_logits prefill of the whole prompt in a separate Session, as `retnet logits`
// makes them, and a log-softmax in double written here), the generated part against the same job
// without echo, a decoding stream running beside the echo's block-by-block prefill, and the prefix
// cache (which an echo with logprobs does not resume from, but fills). The same through the openai
// client: tests/serve/test_echo.py.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>

#include "serve/echo.hpp"
#include "serve/logprobs.hpp"
#include "serve/scheduler.hpp"
#include "serve_fixture.hpp"

namespace {

using namespace retnet;
using namespace retnet::serve;

class ServeEcho : public retnet::test::BundledModelSuite {
 protected:
  using Result = retnet::test::JobResult;
  static std::shared_ptr<Job> submit(Scheduler& sched, JobParams p) {
    auto j = std::make_shared<Job>(std::move(p));
    EXPECT_EQ(sched.submit({j}), Scheduler::Submit::Ok);
    return j;
  }
  static Result drain(Job& j) { return retnet::test::drain_job(j); }
  static std::string long_text(int words) {
    std::string s;
    for (int i = 0; i < words; ++i) s += (i % 5 == 0 ? "and the LORD spake unto Moses, " : "saying ");
    return s;
  }
  static JobParams echo_params(const std::string& text, int64_t max_tokens, int k) {
    JobParams p;
    p.prompt = tok_->encode(text, true);
    p.max_tokens = max_tokens;
    p.logprobs = k;
    p.echo = true;
    p.echo_text = text;
    return p;
  }
};

using retnet::test::log_softmax_ref;

// A prompt of three prefill blocks and more: every prompt entry is the log-softmax of the logits of
// one all_logits prefill of the whole prompt at the position before it (bit for bit the same logits,
// since the server prefills in the same blocks and multiplies each block's rows by the head as one
// product: the value equals log_softmax_top of the reference row exactly; and within 1e-5 of a double
// log-softmax, the fp32 rounding of values of magnitude < 100). The first entry has no logprob. A
// decoding stream admitted before it advances between the echo's blocks and gives its solo output.
TEST_F(ServeEcho, PromptEntriesAreTheAllLogitsLogSoftmaxAndAStreamRunsBeside) {
  Scheduler sched(model_, *tok_, SchedulerOptions{2, 16, 0});
  JobParams solo;
  solo.prompt = tok_->encode("In the beginning God created", true);
  solo.max_tokens = 48;
  const Result alone = drain(*submit(sched, solo));

  const std::string text = long_text(1800);
  JobParams p = echo_params(text, 0, 3);
  const int64_t block = prefill_block_tokens(model_->info());
  ASSERT_GT(int64_t(p.prompt.size()), 7 * block);
  auto stream = submit(sched, solo);
  auto echo = submit(sched, p);
  // The stream's fifth token comes while the echo's prompt is still being prefilled (one block per
  // step, 8 blocks or more): its prefill gives way to decode steps between its blocks.
  std::string stream_text;
  for (int pieces = 0; pieces < 5;) {
    Job::Update u = stream->next(std::chrono::milliseconds(100));
    stream_text += u.text;
    pieces += u.text.empty() ? 0 : 1;
    ASSERT_FALSE(u.finished);
  }
  EXPECT_FALSE(echo->finished()) << "the echo's prefill did not interleave with the stream's decode steps";
  Result s = drain(*stream);
  EXPECT_EQ(stream_text + s.text, alone.text);
  const Result r = drain(*echo);
  EXPECT_EQ(r.reason, "length");
  EXPECT_EQ(r.text, text);
  EXPECT_EQ(r.usage.completion_tokens, 0);
  EXPECT_EQ(r.usage.cached_tokens, 0);
  ASSERT_EQ(r.entries.size(), p.prompt.size());

  Session ref(model_);
  PrefillOptions all;
  all.all_logits = true;
  const std::span<const float> logits = ref.prefill(p.prompt, all);
  const size_t V = size_t(model_->info().vocab_size);
  EXPECT_TRUE(r.entries[0].unconditioned);
  EXPECT_EQ(r.entries[0].chosen.id, p.prompt[0]);
  std::string joined;
  for (size_t j = 0; j < r.entries.size(); ++j) {
    const LogprobEntry& e = r.entries[j];
    EXPECT_EQ(e.offset, joined.size()) << j;
    if (!tok_->is_special(e.chosen.id)) joined += e.chosen.bytes;  // BOS: an entry, no text
    if (j == 0) continue;
    EXPECT_FALSE(e.unconditioned);
    ASSERT_EQ(e.chosen.id, p.prompt[j]);
    const std::span<const float> row = logits.subspan((j - 1) * V, V);
    const LogSoftmaxTop same = log_softmax_top(row, p.prompt[j], 3);
    EXPECT_EQ(e.chosen.logprob, same.chosen) << j;
    const std::vector<double> d = log_softmax_ref(row);
    EXPECT_NEAR(e.chosen.logprob, d[size_t(p.prompt[j])], 1e-5) << j;
    ASSERT_EQ(e.top.size(), 3u);
    for (size_t t = 0; t < 3; ++t) {
      EXPECT_EQ(e.top[t].id, same.top[t].id) << j;
      EXPECT_NEAR(e.top[t].logprob, d[size_t(e.top[t].id)], 1e-5) << j;
    }
  }
  EXPECT_EQ(joined, r.text);                   // the bundled byte-level tokenizer gives the prompt back exactly
  EXPECT_TRUE(tok_->is_special(p.prompt[0]));  // encode(text, true) starts with BOS here
}

// The generated part of an echo is the job without echo: the same text and tokens, values within
// 1e-5 (the first generated token's logits are the last row of a [block, vocab] head product instead
// of a one-row product). With the cache on, an echo with logprobs prefills from position 0 (cached 0)
// and gets the identical entries a second time, while it leaves snapshots that a plain job resumes
// from. echo without logprobs resumes from the cache like any job.
TEST_F(ServeEcho, GeneratedPartEqualsThePlainJobAndTheCacheIsFilledNotUsed) {
  Scheduler sched(model_, *tok_, SchedulerOptions{2, 16, 64ull << 20});
  const std::string text = long_text(150) + "Behold";
  JobParams p = echo_params(text, 12, 2);
  const Result first = drain(*submit(sched, p));
  const Result again = drain(*submit(sched, p));
  EXPECT_EQ(first.usage.cached_tokens, 0);
  EXPECT_EQ(again.usage.cached_tokens, 0);
  ASSERT_EQ(first.entries.size(), again.entries.size());
  for (size_t i = 0; i < first.entries.size(); ++i) {
    EXPECT_EQ(first.entries[i].chosen.id, again.entries[i].chosen.id);
    EXPECT_EQ(first.entries[i].chosen.logprob, again.entries[i].chosen.logprob);
    EXPECT_EQ(first.entries[i].offset, again.entries[i].offset);
  }
  EXPECT_EQ(first.text, again.text);

  JobParams plain = p;
  plain.echo = false;
  plain.echo_text.clear();
  const Result gen = drain(*submit(sched, plain));
  EXPECT_EQ(gen.usage.cached_tokens, int64_t(p.prompt.size()));  // the echo's snapshot of the whole prompt
  ASSERT_EQ(first.text, text + gen.text);
  ASSERT_EQ(first.entries.size(), p.prompt.size() + gen.entries.size());
  EXPECT_EQ(first.usage.completion_tokens, gen.usage.completion_tokens);
  for (size_t i = 0; i < gen.entries.size(); ++i) {
    const LogprobEntry& e = first.entries[p.prompt.size() + i];
    EXPECT_EQ(e.chosen.id, gen.entries[i].chosen.id);
    EXPECT_NEAR(e.chosen.logprob, gen.entries[i].chosen.logprob, 1e-5);
    EXPECT_EQ(e.offset, text.size() + gen.entries[i].offset);  // offsets count from the echoed prompt's end
  }

  // Without logprobs: the prompt's text, then the reply; the cache serves it.
  JobParams bare = p;
  bare.logprobs = -1;
  const Result b = drain(*submit(sched, bare));
  EXPECT_EQ(b.text, text + gen.text);
  EXPECT_TRUE(b.entries.empty());
  EXPECT_EQ(b.usage.cached_tokens, int64_t(p.prompt.size()));
}

// set_prompt_offsets on its own: tokens held back by the decoder start where their text starts, and
// offsets never pass the echoed text's end.
TEST_F(ServeEcho, PromptOffsetsFollowTheDecodedText) {
  const std::string text = "Blessed are the meek";
  const std::vector<int32_t> ids = tok_->encode(text, true);
  std::vector<LogprobEntry> entries;
  entries.push_back(first_prompt_entry(ids, *tok_));
  for (size_t j = 1; j < ids.size(); ++j)
    entries.push_back(LogprobEntry{TokenLogprob{ids[j], 0, tok_->token_bytes(ids[j])}});
  set_prompt_offsets(ids, *tok_, entries, text.size());
  size_t at = 0;
  for (const auto& e : entries) {
    EXPECT_EQ(e.offset, at);
    if (!tok_->is_special(e.chosen.id)) at += e.chosen.bytes.size();  // BOS starts where the text starts
  }
  EXPECT_EQ(at, text.size());
  set_prompt_offsets(ids, *tok_, entries, 3);  // a shorter echoed text: clamped
  for (const auto& e : entries) EXPECT_LE(e.offset, 3u);
}

}  // namespace
