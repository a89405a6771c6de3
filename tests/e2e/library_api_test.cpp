// The embedding API as a library user meets it: generate's token events (id, text, raw bytes,
// stopping), stats, load progress and cancellation, view lifetimes, and sessions of one shared model
// running on several threads at once.
#include <gtest/gtest.h>

#include <thread>

#include "test_util.hpp"

namespace retnet::test {
namespace {

struct Event {
  int32_t id;
  std::string text, bytes;
};

TEST(Generate, EventsCarryIdTextAndTheTokensRawBytes) {
  auto model = load_bundled();
  const Tokenizer tok = Tokenizer::load(bundled_dir());
  Session s(model);
  GenerateOptions go;
  go.max_tokens = 24;
  go.ignore_eos = true;
  go.sampler.seed = 5;
  std::vector<Event> events;
  const GenerateResult r = s.generate(tok, "And God said", go, [&](const TokenEvent& ev) {
    events.push_back({ev.id, std::string(ev.text), std::string(ev.bytes)});
    return true;
  });
  ASSERT_EQ(r.generated_tokens, 24);
  std::vector<int32_t> ids;
  std::string texts, bytes;
  bool first = true;
  for (const Event& e : events) {
    texts += e.text;
    bytes += e.bytes;
    if (e.id < 0) {
      EXPECT_TRUE(e.bytes.empty());  // the final flush event: its bytes came with earlier tokens
      continue;
    }
    ids.push_back(e.id);
    const std::string want = tok.is_special(e.id) ? std::string() : tok.token_bytes(e.id, first);
    EXPECT_EQ(e.bytes, want) << "id " << e.id;
    if (!tok.is_special(e.id)) first = false;
  }
  EXPECT_EQ(ids.size(), 24u);
  EXPECT_EQ(texts, r.text);
  EXPECT_EQ(texts, tok.decode(ids));
  EXPECT_EQ(bytes, texts);  // byte-level tokenizer, valid UTF-8 output: the bytes are the text
  EXPECT_EQ(s.position(), r.prompt_tokens + 24);
}

TEST(Generate, CallbackStopsAndStatsAccumulate) {
  auto model = load_bundled();
  const Tokenizer tok = Tokenizer::load(bundled_dir());
  Session s(model);
  GenerateOptions go;
  go.max_tokens = 50;
  go.ignore_eos = true;
  go.sampler.temperature = 0;
  int seen = 0;
  const GenerateResult r = s.generate(tok, "In the beginning", go, [&](const TokenEvent& ev) {
    return ev.id < 0 || ++seen < 3;
  });
  EXPECT_EQ(r.stop, GenerateResult::Stop::Callback);
  EXPECT_EQ(r.generated_tokens, 3);
  EXPECT_EQ(s.position(), r.prompt_tokens + 3);  // the stopping token entered the state too
  const SessionStats st = s.stats();
  EXPECT_EQ(st.prompt_tokens, r.prompt_tokens);
  EXPECT_EQ(st.eval_tokens, 3);
  EXPECT_GT(st.prompt_ms, 0);
  EXPECT_GT(st.eval_ms, 0);
  EXPECT_EQ(st.load_ms, model->info().load_ms);
  EXPECT_GT(st.load_ms, 0);
  s.reset();
  EXPECT_EQ(s.stats().eval_tokens, 0);
  EXPECT_EQ(s.stats().load_ms, model->info().load_ms);  // a property of the model, not the session
}

TEST(Load, ProgressIsReportedAndFalseCancels) {
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.threads = 1;
  lo.on_progress = [&](uint64_t done, uint64_t total) {
    calls.emplace_back(done, total);
    return true;
  };
  auto model = Model::load(bundled_dir(), lo);
  ASSERT_GE(calls.size(), 2u);
  for (size_t i = 0; i < calls.size(); ++i) {
    EXPECT_LE(calls[i].first, calls[i].second);
    EXPECT_EQ(calls[i].second, calls[0].second);
    if (i) EXPECT_GE(calls[i].first, calls[i - 1].first);
  }
  EXPECT_EQ(calls.back().first, calls.back().second);
  EXPECT_GT(calls.back().second, 0u);

  int n = 0;
  lo.on_progress = [&](uint64_t, uint64_t) { return ++n < 2; };  // cancel at the second report
  try {
    Model::load(bundled_dir(), lo);
    FAIL() << "a cancelled load returned a model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
  }
  EXPECT_EQ(n, 2);
}

TEST(Session, ViewsLifetimesAndBadArguments) {
  auto model = load_fixture("ts_swish_scaled");
  const std::vector<int32_t> ids = golden_ids("ts_swish_scaled");
  EXPECT_THROW(Session(std::shared_ptr<const Model>()), Error);
  Session s(model);
  EXPECT_TRUE(s.logits().empty());
  const std::span<const float> l = s.prefill(std::span(ids).first(5));
  EXPECT_EQ(l.data(), s.logits().data());
  const std::vector<float> kept(l.begin(), l.end());
  Session moved = std::move(s);  // views stay valid across a move
  EXPECT_EQ(std::vector<float>(l.begin(), l.end()), kept);
  EXPECT_EQ(moved.logits().data(), l.data());
  const int64_t pos = moved.position();
  EXPECT_THROW(moved.decode(int32_t(model->info().vocab_size)), Error);
  EXPECT_EQ(moved.position(), pos);  // unchanged by the failed call
  EXPECT_THROW(moved.prefill(std::span<const int32_t>()), Error);
  EXPECT_EQ(moved.position(), pos);
  Session c = moved.clone();
  EXPECT_TRUE(c.logits().empty());
  EXPECT_EQ(c.position(), pos);
  const std::vector<uint8_t> snap = moved.save_state();
  c.decode(ids[5]);
  c.load_state(snap);
  EXPECT_TRUE(c.logits().empty());  // snapshots hold no logits: nothing stale is left visible
  moved.reset();
  EXPECT_TRUE(moved.logits().empty());
}

// Sessions of one model on several threads at once: the model's backend (one thread pool with
// per-thread scratch) is shared, so their passes must take turns; every thread must get exactly the
// logits it gets alone. Two threads per model make the pool's job hand-off part of every step.
TEST(Threads, SessionsOfOneModelRunConcurrently) {
  for (const std::string f : {"ts_swish_scaled", "fla_base"}) {
    auto model = load_fixture(f, 2);
    const std::vector<int32_t> ids = golden_ids(f);
    const int kThreads = 4, kSteps = 60;
    // Thread t prefills a different prefix (different state and position), then decodes kSteps tokens.
    auto run = [&](int t, std::vector<float>& out) {
      Session s(model);
      s.prefill(std::span(ids).first(size_t(2 + t)));
      for (int k = 0; k < kSteps; ++k) {
        const std::span<const float> l = s.decode(ids[size_t((t + k) % ids.size())]);
        out.insert(out.end(), l.begin(), l.end());
      }
    };
    std::vector<std::vector<float>> alone(kThreads), together(kThreads);
    for (int t = 0; t < kThreads; ++t) run(t, alone[size_t(t)]);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) threads.emplace_back(run, t, std::ref(together[size_t(t)]));
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) EXPECT_EQ(together[size_t(t)], alone[size_t(t)]) << f << " thread " << t;
  }
}

}  // namespace
}  // namespace retnet::test
