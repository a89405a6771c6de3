// `retnet serve` below HTTP: the scheduler (continuous batching equals Session::generate), the
// prefix-state cache (token trie, LRU budget; a resumed prompt continues as a cold one), request
// parsing (types, bounds, nesting, the plain chat template), and the command's argument errors.
// The HTTP side is tested with the real openai client in tests/serve (ctest serve_openai).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "serve/api.hpp"
#include "serve/prefix_cache.hpp"
#include "serve/scheduler.hpp"
#include "serve_fixture.hpp"
#include "test_util.hpp"

namespace {

using namespace retnet;
using namespace retnet::serve;
using retnet::test::Contains;

struct Done {
  std::string text, reason;
  int error_status = 0;
  JobUsage usage;
};

Done drain(Job& j) {
  Done d;
  for (;;) {
    Job::Update u = j.next(std::chrono::milliseconds(100));
    d.text += u.text;
    if (u.finished) {
      d.reason = u.finish_reason;
      d.error_status = u.error_status;
      d.usage = u.usage;
      return d;
    }
  }
}

// What Session::generate gives for these tokens alone: the reference the scheduler must equal.
std::string reference(const std::shared_ptr<const Model>& m, const Tokenizer& tok, const std::vector<int32_t>& ids,
                      const SamplerParams& sp, int64_t n) {
  Session s(m);
  GenerateOptions go;
  go.max_tokens = n;
  go.sampler = sp;
  return s.generate(tok, ids, 0, go).text;
}

class ServeScheduler : public retnet::test::BundledModelSuite {
 protected:
  static std::shared_ptr<Job> job(const std::string& prompt, int64_t n, float temp = 0, uint64_t seed = 0) {
    JobParams p;
    p.prompt = tok_->encode(prompt, true);
    p.max_tokens = n;
    p.sampler.temperature = temp;
    p.sampler.seed = seed;
    return std::make_shared<Job>(p);
  }
  static std::string long_text(int words) {
    std::string s;
    for (int i = 0; i < words; ++i) s += (i % 7 == 0 ? "and the LORD spake unto Moses " : "saying ");
    return s;
  }
};

// Mixed lengths at once, two of them longer than one prefill block (512 tokens): each prompt is
// prefilled block by block between decode steps of the others, and every output equals its own
// Session::generate bit for bit (greedy and seeded).
TEST_F(ServeScheduler, BatchedOutputsEqualGenerate) {
  Scheduler sched(model_, *tok_, SchedulerOptions{3, 16, 0});
  std::vector<std::shared_ptr<Job>> jobs = {job("In the beginning", 20), job(long_text(700), 20),
                                            job("And God said", 20, 0.9f, 7), job(long_text(1300), 12),
                                            job("Blessed are", 16, 1.0f, 99)};
  ASSERT_GT(jobs[1]->params.prompt.size(), 512u);
  ASSERT_GT(jobs[3]->params.prompt.size(), 1024u);
  ASSERT_EQ(sched.submit(jobs), Scheduler::Submit::Ok);
  for (auto& j : jobs) {
    const Done d = drain(*j);
    ASSERT_EQ(d.error_status, 0) << d.text;
    EXPECT_EQ(d.text, reference(model_, *tok_, j->params.prompt, j->params.sampler, j->params.max_tokens));
    EXPECT_EQ(d.usage.prompt_tokens, int64_t(j->params.prompt.size()));
    EXPECT_EQ(d.usage.cached_tokens, 0);
  }
  EXPECT_GT(sched.stats().steps, 0u);
  EXPECT_LT(sched.stats().steps, sched.stats().decoded_tokens);  // some steps advanced several streams
}

// Short prompts that arrive together are prefilled in one loop iteration (they fit one block's
// budget together), so they decode in lockstep: every step advances all of them, and the round takes
// exactly the steps one stream would (the first token of each comes from its prefill's logits, the
// other n - 1 from decode steps). Before, one prompt per iteration left the batch part-empty for three
// more steps at the start and at the end.
TEST_F(ServeScheduler, ShortPromptsArrivingTogetherDecodeInLockstep) {
  Scheduler sched(model_, *tok_, SchedulerOptions{4, 16, 0});  // no cache: no closing step
  constexpr int64_t n = 12;
  std::vector<std::shared_ptr<Job>> jobs = {job("In the beginning", n), job("And God said", n),
                                            job("Blessed are", n, 0.8f, 3), job("The LORD is my shepherd", n)};
  ASSERT_EQ(sched.submit(jobs), Scheduler::Submit::Ok);  // one submit: admitted in one iteration
  for (auto& j : jobs) {
    const Done d = drain(*j);
    ASSERT_EQ(d.error_status, 0) << d.text;
    EXPECT_EQ(d.usage.completion_tokens, n);
    EXPECT_EQ(d.text, reference(model_, *tok_, j->params.prompt, j->params.sampler, j->params.max_tokens));
  }
  EXPECT_EQ(sched.stats().steps, uint64_t(n - 1));
  EXPECT_EQ(sched.stats().decoded_tokens, uint64_t(4 * (n - 1)));
}

// A prompt that extends a cached one resumes from the snapshot, prefills only the rest, and
// continues as a cold prompt does; the identical prompt again needs no prefill at all (the logits
// came with the snapshot) and gives the identical text.
TEST_F(ServeScheduler, PrefixCacheResumesAndMatchesCold) {
  Scheduler sched(model_, *tok_, SchedulerOptions{2, 16, 64ull << 20});
  auto first = job(long_text(600) + " Behold", 8);
  ASSERT_EQ(sched.submit({first}), Scheduler::Submit::Ok);
  const Done d1 = drain(*first);
  EXPECT_EQ(d1.usage.cached_tokens, 0);

  auto again = job(long_text(600) + " Behold", 8);
  ASSERT_EQ(sched.submit({again}), Scheduler::Submit::Ok);
  const Done d2 = drain(*again);
  EXPECT_EQ(d2.usage.cached_tokens, d2.usage.prompt_tokens);
  EXPECT_EQ(d2.text, d1.text);

  // The first reply's tokens followed by more text: resumed from the snapshot after the reply.
  auto longer = job(long_text(600) + " Behold" + d1.text + " and the", 10);
  ASSERT_EQ(sched.submit({longer}), Scheduler::Submit::Ok);
  const Done d3 = drain(*longer);
  EXPECT_GE(d3.usage.cached_tokens, d1.usage.prompt_tokens);
  EXPECT_LT(d3.usage.cached_tokens, d3.usage.prompt_tokens);
  EXPECT_EQ(d3.text, reference(model_, *tok_, longer->params.prompt, longer->params.sampler, 10));
  const SchedulerStats st = sched.stats();
  EXPECT_EQ(st.cache_hits, 2u);
  EXPECT_LE(st.cache_bytes, 64ull << 20);
}

// The numbers behind "continues as a cold prompt does": the logits after resuming a snapshot and
// prefilling the rest equal those of one cold prefill of the whole prompt to float rounding. The
// two runs split the chunkwise sums differently (the snapshot ends mid-block), so they are not
// bitwise equal: max |Δ| / max |logit| was 2.1e-5 here (bundled model, AVX-512 AMD EPYC). 1e-4 leaves room
// for other CPUs' summation orders while staying far below a rounding of the weights' precision
// (bf16: 4e-3), i.e. below anything a change in the maths would give.
TEST_F(ServeScheduler, ResumedLogitsEqualColdLogits) {
  const std::vector<int32_t> ids = tok_->encode(long_text(300) + " and it came to pass", true);
  const size_t cut = ids.size() - 37;
  Session cold(model_);
  const auto c = cold.prefill(ids);
  const std::vector<float> want(c.begin(), c.end());
  Session a(model_);
  a.prefill(std::span<const int32_t>(ids).first(cut));
  PrefixCache cache(16 << 20);
  cache.put(std::span<const int32_t>(ids).first(cut), a.save_state(), {});
  const PrefixCache::EntryPtr e = cache.lookup(ids);
  ASSERT_NE(e, nullptr);
  ASSERT_EQ(e->tokens, int64_t(cut));
  Session b(model_);
  b.load_state(e->state);
  ASSERT_TRUE(b.history_matches(std::span<const int32_t>(ids).first(cut)));
  const auto r = b.prefill(std::span<const int32_t>(ids).subspan(cut));
  const std::vector<float> got(r.begin(), r.end());
  const double err = retnet::test::rel_err(got, want);
  RecordProperty("rel_err", std::to_string(err));
  std::printf("resumed vs cold logits: relative error %.3g\n", err);
  EXPECT_LT(err, 1e-4);
}

TEST_F(ServeScheduler, StopStringsCutTheTextAndStopIdsEnd) {
  Scheduler sched(model_, *tok_, SchedulerOptions{2, 16, 0});
  auto plain = job("In the beginning", 24);
  ASSERT_EQ(sched.submit({plain}), Scheduler::Submit::Ok);
  const std::string full = drain(*plain).text;
  const std::string word = " LORD";
  ASSERT_NE(full.find(word), std::string::npos) << full;
  JobParams p = plain->params;
  p.stop_strings = {"no such text", word};
  auto cut = std::make_shared<Job>(p);
  ASSERT_EQ(sched.submit({cut}), Scheduler::Submit::Ok);
  const Done d = drain(*cut);
  EXPECT_EQ(d.text, full.substr(0, full.find(word)));
  EXPECT_EQ(d.reason, "stop");

  p.stop_strings.clear();
  p.stop_ids = {tok_->encode(full, false).at(2)};
  auto by_id = std::make_shared<Job>(p);
  ASSERT_EQ(sched.submit({by_id}), Scheduler::Submit::Ok);
  const Done e = drain(*by_id);
  EXPECT_EQ(e.reason, "stop");
  EXPECT_EQ(e.usage.completion_tokens, 2);
  EXPECT_EQ(full.rfind(e.text, 0), 0u);
}

TEST_F(ServeScheduler, CancelFreesTheSlotAndTheQueueHasALimit) {
  Scheduler sched(model_, *tok_, SchedulerOptions{1, 1, 0});
  JobParams p;
  p.prompt = tok_->encode("In the beginning", true);
  p.max_tokens = 1 << 20;
  p.ignore_eos = true;
  auto endless = std::make_shared<Job>(p);
  ASSERT_EQ(sched.submit({endless}), Scheduler::Submit::Ok);
  while (endless->next(std::chrono::milliseconds(100)).text.empty()) {
  }
  // One slot busy, queue limit 1: one more waits, two more are refused together.
  EXPECT_EQ(sched.submit({job("a", 1), job("b", 1)}), Scheduler::Submit::QueueFull);
  auto waiting = job("And God said", 4);
  ASSERT_EQ(sched.submit({waiting}), Scheduler::Submit::Ok);
  endless->cancelled = true;  // as a client that went away: freed at the next step
  const Done d = drain(*waiting);
  EXPECT_EQ(d.error_status, 0);
  EXPECT_EQ(d.usage.completion_tokens, 4);
  // The slot is released right after the job is answered.
  for (int i = 0; i < 100 && sched.stats().active > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(sched.stats().active, 0u);
  // Counted as cancelled (the /metrics counter behind the chat page's Stop); the finished job is not.
  EXPECT_EQ(sched.stats().jobs_cancelled, 1u);
  EXPECT_EQ(sched.stats().jobs_done, 1u);
  sched.shutdown();
  EXPECT_EQ(sched.submit({job("x", 1)}), Scheduler::Submit::ShuttingDown);
}

TEST(ServePrefixCache, DeepestPrefixLruAndBudget) {
  const std::vector<uint8_t> state(1000, 1);
  PrefixCache c(20000);
  const std::vector<int32_t> a = {1, 2, 3, 4, 5, 6};
  c.put(std::span(a).first(2), state, {});
  c.put(std::span(a).first(4), state, {});
  EXPECT_EQ(c.lookup(a)->tokens, 4);
  // A snapshot as long as the request is usable only with its logits.
  EXPECT_EQ(c.lookup(std::span(a).first(4))->tokens, 2);
  c.put(std::span(a).first(4), state, {0.5f, 0.25f});
  EXPECT_EQ(c.lookup(std::span(a).first(4))->tokens, 4);
  EXPECT_EQ(c.lookup(std::vector<int32_t>{9, 9}), nullptr);
  EXPECT_EQ(c.entries(), 2u);
  // Filling past the budget evicts the least recently used first (the 2-token one: looked up last long ago).
  for (int32_t k = 0; k < 30; ++k) c.put(std::vector<int32_t>{100 + k}, state, {});
  EXPECT_LE(c.bytes(), 20000u);
  EXPECT_LT(c.entries(), 32u);
  // Too big for the whole budget: not stored; a budget of 0 stores nothing.
  c.put(std::vector<int32_t>{7}, std::vector<uint8_t>(30000), {});
  EXPECT_EQ(c.lookup(std::vector<int32_t>{7, 1}), nullptr);
  PrefixCache off(0);
  off.put(a, state, {1.0f});
  EXPECT_EQ(off.lookup(a), nullptr);
  // A long chain of single-token nodes is torn down without recursion.
  PrefixCache deep(64ull << 20);
  deep.put(std::vector<int32_t>(200000, 3), state, {});
  EXPECT_EQ(deep.entries(), 1u);
}

class ServeApi : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = retnet::test::load_bundled(1);
    tok_ = std::make_unique<Tokenizer>(Tokenizer::load(retnet::test::bundled_dir()));
    ctx_.tok = tok_.get();
    ctx_.info = &model_->info();
    ctx_.model_name = "kjv-retnet";
    ctx_.limits.max_tokens = 100;
    ctx_.limits.max_prompt_tokens = 50;
    ctx_.limits.max_n = 4;
  }
  // The ApiError a body gets (status 0 when it parses).
  ApiError refuse(const std::string& body, bool chat = false) {
    try {
      parse_completion(parse_body(body, 64), chat, ctx_);
    } catch (const ApiError& e) {
      return e;
    }
    return ApiError{0, "", "", "", ""};
  }
  std::shared_ptr<const Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  ApiContext ctx_;
};

TEST_F(ServeApi, ParsesWhatOpenAIClientsSend) {
  const CompletionRequest r = parse_completion(
      parse_body(R"({"model": "kjv-retnet", "prompt": ["In the beginning"], "max_tokens": 7, "temperature": 0.5,
                   "top_p": 0.9, "top_k": 5, "min_p": 0.1, "presence_penalty": 0.5, "frequency_penalty": 0.25,
                   "seed": 42, "stop": "x", "n": 2, "stream": true, "stream_options": {"include_usage": true},
                   "logprobs": null, "user": "u"})",
                 64),
      false, ctx_);
  EXPECT_EQ(r.job.prompt, tok_->encode("In the beginning", true));
  EXPECT_EQ(r.job.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.job.sampler.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.job.sampler.top_p, 0.9f);
  EXPECT_EQ(r.job.sampler.top_k, 5);
  EXPECT_FLOAT_EQ(r.job.sampler.min_p, 0.1f);
  EXPECT_FLOAT_EQ(r.job.sampler.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(r.job.sampler.frequency_penalty, 0.25f);
  EXPECT_EQ(r.job.sampler.seed, 42u);
  EXPECT_EQ(r.job.stop_strings, std::vector<std::string>{"x"});
  EXPECT_EQ(r.n, 2);
  EXPECT_TRUE(r.stream && r.include_usage);
  EXPECT_EQ(r.job.logprobs, -1);  // null: none
  EXPECT_EQ(parse_completion(parse_body(R"({"prompt": "x", "logprobs": 0})", 64), false, ctx_).job.logprobs, 0);
  EXPECT_EQ(parse_completion(parse_body(R"({"prompt": "x", "logprobs": 20})", 64), false, ctx_).job.logprobs, 20);
  const auto chat = [&](const char* extra) {
    return parse_completion(
               parse_body(std::string(R"({"messages": [{"role": "user", "content": "Hi"}])") + extra + "}", 64), true,
               ctx_)
        .job.logprobs;
  };
  EXPECT_EQ(chat(R"(, "logprobs": true)"), 0);
  EXPECT_EQ(chat(R"(, "logprobs": true, "top_logprobs": 3)"), 3);
  EXPECT_EQ(chat(R"(, "logprobs": false)"), -1);
  EXPECT_EQ(chat(""), -1);
  EXPECT_FALSE(r.job.echo);
  // echo: a prompt string is repeated as sent, token ids as their text; false is no echo.
  const CompletionRequest e =
      parse_completion(parse_body(R"({"prompt": "In the beginning", "echo": true, "max_tokens": 0})", 64), false, ctx_);
  EXPECT_TRUE(e.job.echo);
  EXPECT_EQ(e.job.echo_text, "In the beginning");
  EXPECT_EQ(e.job.max_tokens, 0);
  const std::string ids = nlohmann::json(tok_->encode("And God said", true)).dump();
  const CompletionRequest t =
      parse_completion(parse_body(R"({"prompt": [)" + ids + R"(], "echo": true, "logprobs": 1})", 64), false, ctx_);
  EXPECT_TRUE(t.job.echo);
  EXPECT_EQ(t.job.echo_text, "And God said");
  EXPECT_EQ(t.job.logprobs, 1);
  EXPECT_FALSE(parse_completion(parse_body(R"({"prompt": "x", "echo": false})", 64), false, ctx_).job.echo);
  // A batch: each element a prompt of its own (strings or token-id arrays), the first in job.
  const CompletionRequest batch =
      parse_completion(parse_body(R"({"prompt": ["And God said", [5, 6]], "echo": true, "n": 2})", 64), false, ctx_);
  ASSERT_EQ(batch.prompts.size(), 2u);
  EXPECT_EQ(batch.prompts[0], tok_->encode("And God said", true));
  EXPECT_EQ(batch.prompts[1], (std::vector<int32_t>{5, 6}));
  EXPECT_EQ(batch.echo_texts[0], "And God said");
  EXPECT_EQ(batch.echo_texts[1], tok_->decode(std::vector<int32_t>{5, 6}));
  EXPECT_EQ(batch.job.prompt, batch.prompts[0]);
  EXPECT_EQ(parse_completion(parse_body(R"({"prompt": [7, 8]})", 64), false, ctx_).prompts.size(), 1u);
  // An empty prompt starts from BOS, as `retnet generate` does.
  EXPECT_EQ(parse_completion(parse_body(R"({"prompt": ""})", 64), false, ctx_).job.prompt,
            std::vector<int32_t>{tok_->bos_id()});
}

TEST_F(ServeApi, PlainChatTemplate) {
  const auto m = nlohmann::json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
          {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Who?"}])");
  EXPECT_EQ(plain_chat_prompt(m), "System: Be brief.\nUser: Hi\nAssistant: Hello.\nUser: Who?\nAssistant:");
  const CompletionRequest r =
      parse_completion(parse_body(R"({"messages": [{"role": "user", "content": "Hi"}]})", 64), true, ctx_);
  EXPECT_EQ(r.job.prompt, tok_->encode("User: Hi\nAssistant:", true));
  EXPECT_EQ(r.job.stop_strings, std::vector<std::string>{"\nUser:"});
  EXPECT_EQ(r.job.max_tokens, 100);  // chat without max_tokens: the server's limit
}

TEST_F(ServeApi, RefusesBadTypesAndBoundsNamingTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"prompt": "x", "max_tokens": "5"})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": -1})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 101})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 1e400})", ""},
      {R"({"prompt": "x", "n": 0})", "n"},
      {R"({"prompt": "x", "n": 5})", "n"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "seed": 1.5})", "seed"},
      {R"({"prompt": "x", "stop": ""})", "stop"},
      {R"({"prompt": "x", "stop_token_ids": [4096]})", "stop_token_ids"},
      {R"({"prompt": [0, -1]})", "prompt"},
      {R"({"prompt": {"a": 1}})", "prompt"},
      {R"({"max_tokens": 1})", "prompt"},
      {R"({"prompt": "x", "echo": 1})", "echo"},
      {R"({"prompt": ["x", "y", "z"], "n": 2})", "prompt"},  // 6 choices: past max_n
      {R"({"prompt": ["x", 1]})", "prompt"},
      {R"({"prompt": "x", "logprobs": -1})", "logprobs"},
      {R"({"prompt": "x", "logprobs": 21})", "logprobs"},
      {R"({"prompt": "x", "logprobs": true})", "logprobs"},
      {R"({"prompt": "x", "top_logprobs": 1})", "top_logprobs"},
      {R"({"prompt": "x", "stream_options": 3})", "stream_options"},
  };
  for (const auto& [body, param] : cases) {
    const ApiError e = refuse(body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << ": " << e.message;
  }
  // 51 tokens: past the prompt limit.
  std::string many;
  for (int i = 0; i < 60; ++i) many += " and";
  EXPECT_TRUE(Contains(refuse(R"({"prompt": ")" + many + R"("})").message, "limit of 50"));
  EXPECT_EQ(refuse(R"({"model": "gpt-4", "prompt": "x"})").status, 404);
  EXPECT_EQ(refuse(R"({"messages": []})", true).param, "messages");
  EXPECT_EQ(refuse(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 1})", true).param,
            "top_logprobs");
  EXPECT_EQ(
      refuse(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 21})", true).param,
      "top_logprobs");
  EXPECT_EQ(refuse(R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 2})", true).param, "logprobs");
  EXPECT_EQ(refuse(R"({"messages": [{"role": "user", "content": "x"}], "echo": true})", true).param, "echo");
  EXPECT_EQ(refuse(R"({"messages": [{"role": "robot", "content": "x"}]})", true).param, "messages[0].role");
  EXPECT_EQ(refuse(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})", true).param,
            "messages[0].content");
}

TEST_F(ServeApi, BodyParsingRefusesNestingBadUtf8AndNonObjects) {
  const std::string deep = R"({"prompt": )" + std::string(100000, '[') + std::string(100000, ']') + "}";
  for (const std::string& body : {deep, std::string("{\"prompt\": \"\xff\"}"), std::string("[1]"), std::string(""),
                                  std::string("{\"prompt\": \"x\"")}) {
    try {
      parse_body(body, 64);
      ADD_FAILURE() << body.substr(0, 40);
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status, 400);
    }
  }
  // Brackets inside strings are not nesting.
  EXPECT_NO_THROW(parse_body(R"({"prompt": ")" + std::string(1000, '[') + R"("})", 64));
}

// The command's own argument errors: one "error:" line, exit status 1, before any model is loaded.
TEST(CliServe, BadArgumentsAreOneErrorLine) {
  const std::vector<std::string> cases[] = {
      {"--port", "70000"},
      {"--port", "-1"},
      {"--parallel", "0"},
      {"--queue", "-1"},
      {"--cache-ram", "-5"},
      {"--max-body", "10"},
      {"--max-tokens", "0"},
      {"--timeout", "0"},
      {"--api-key", ""},
      {"--device", "tpu"},
      {"--port", "x"},
      // Chat templates are read before the model: a missing or broken one is one line too.
      {"--chat-template", ""},
      {"--chat-template", "/nonexistent/t.jinja"},
      {"--chat-template",
       (std::filesystem::temp_directory_path() / ("serve_tmpl_" + std::to_string(getpid()))).string()},
  };
  const std::filesystem::path err = std::filesystem::temp_directory_path() / ("serve_err_" + std::to_string(getpid()));
  std::ofstream(cases[std::size(cases) - 1][1]) << "line one\n{% for m in messages %}{{ m.content | nosuch }}";
  for (const auto& args : cases) {
    std::string cmd = std::string(RETNET_CLI_PATH) + " serve";
    for (const auto& a : args) cmd += " '" + a + "'";
    const int st = std::system((cmd + " </dev/null >/dev/null 2>" + err.string()).c_str());
    std::ifstream in(err);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(WEXITSTATUS(st), 1) << cmd;
    EXPECT_EQ(text.rfind("error: ", 0), 0u) << cmd << ": " << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << cmd << ": " << text;
    if (args[0] == "--chat-template" && args[1].find("serve_tmpl_") != std::string::npos)
      EXPECT_TRUE(Contains(text, "line 2, column 39: unknown filter 'nosuch'")) << text;
  }
  std::filesystem::remove(err);
  std::filesystem::remove(cases[std::size(cases) - 1][1]);
}

}  // namespace
