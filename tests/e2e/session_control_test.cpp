// Controlling a Session: generate() with max_tokens = 0 absorbs the prompt, a prefill (and the
// prompt of a generate) can be cancelled between blocks and then continued exactly, and the CLI's
// Ctrl-C stops a long prompt at once.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "st_writer.hpp"
#include "test_util.hpp"

extern char** environ;

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

// ids [n] spread over the vocabulary (deterministic)
std::vector<int32_t> some_ids(size_t n, int64_t vocab) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = int32_t((i * 7919 + 13) % size_t(vocab));
  return ids;
}

// ---- generate with max_tokens = 0

TEST(GenerateNoTokens, AbsorbsThePromptLikeAPrefill) {
  auto model = load_bundled();
  const Tokenizer tok = Tokenizer::load(bundled_dir());
  const std::string prompt = "In the beginning God created the heaven and the earth.";
  Session a(model);
  GenerateOptions go;
  go.max_tokens = 0;
  const GenerateResult r = a.generate(tok, prompt, go);
  const std::vector<int32_t> ids = tok.encode(prompt, go.add_special);
  EXPECT_EQ(r.prompt_tokens, int64_t(ids.size()));
  EXPECT_EQ(r.generated_tokens, 0);
  EXPECT_TRUE(r.text.empty());
  EXPECT_EQ(a.position(), int64_t(ids.size()));
  EXPECT_EQ(a.stats().prompt_tokens, int64_t(ids.size()));

  Session b(model);
  b.prefill(ids, go.prefill);
  EXPECT_EQ(a.save_state(), b.save_state());  // same state, position and torchscale scalars
  const auto la = a.decode(5);
  const std::vector<float> va(la.begin(), la.end());
  const auto lb = b.decode(5);
  EXPECT_EQ(va, std::vector<float>(lb.begin(), lb.end()));
  // A second generate(max_tokens = 0) adds its prompt after the first; an empty one mid-stream is a no-op.
  const GenerateResult r2 = a.generate(tok, " And", go);
  EXPECT_EQ(a.position(), int64_t(ids.size()) + 1 + r2.prompt_tokens);
  EXPECT_EQ(a.generate(tok, "", GenerateOptions{.max_tokens = 0, .add_special = false}).prompt_tokens, 0);
  EXPECT_EQ(a.position(), int64_t(ids.size()) + 1 + r2.prompt_tokens);
}

// ---- cancellation

struct CancelAt {
  int calls_allowed;  // on_progress returns true this many times, then false
  std::vector<int64_t> done;
  int64_t total = -1;
  std::function<bool(int64_t, int64_t)> fn() {
    return [this](int64_t d, int64_t t) {
      done.push_back(d);
      total = t;
      return int(done.size()) <= calls_allowed;
    };
  }
};

TEST(PrefillCancel, StopsBetweenBlocksAndContinuesExactly) {
  auto model = load_bundled();
  const int64_t V = model->info().vocab_size, C = model->info().default_chunk_size;
  const std::vector<int32_t> ids = some_ids(1100, V);  // blocks of 512, 512 and 76 rows at chunk 64

  Session ref(model);
  PrefillOptions po;
  int ref_calls = 0;
  po.on_progress = [&](int64_t, int64_t) { return ++ref_calls > 0; };  // polled, never cancels
  const auto lw = ref.prefill(ids, po);
  const std::vector<float> want(lw.begin(), lw.end());
  ASSERT_EQ(ref_calls, 3);
  ref.reset();
  ref.prefill(ids);  // and no callback gives the same
  ASSERT_EQ(std::vector<float>(ref.logits().begin(), ref.logits().end()), want);

  Session s(model);
  CancelAt cancel{2, {}};
  po.on_progress = cancel.fn();
  const auto r = s.prefill(ids, po);
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(s.logits().empty());
  ASSERT_EQ(cancel.done.size(), 3u);
  EXPECT_EQ(cancel.total, int64_t(ids.size()));
  const int64_t block = cancel.done[1];
  EXPECT_EQ(cancel.done[0], 0);
  EXPECT_EQ(block % C, 0);
  EXPECT_EQ(cancel.done[2], 2 * block);
  EXPECT_EQ(s.position(), 2 * block);  // whole blocks, never part of one
  EXPECT_EQ(s.stats().prompt_tokens, 2 * block);

  // The state is that of a prefill of the absorbed tokens alone...
  Session part(model);
  part.prefill(std::span<const int32_t>(ids.data(), size_t(2 * block)));
  EXPECT_EQ(s.save_state(), part.save_state());
  // ...and prefilling the rest gives the uncancelled run's logits, bit for bit.
  const auto rest = s.prefill(std::span<const int32_t>(ids.data() + 2 * block, ids.size() - size_t(2 * block)));
  EXPECT_EQ(std::vector<float>(rest.begin(), rest.end()), want);
  ref.reset();
  ref.prefill(ids);
  EXPECT_EQ(s.save_state(), ref.save_state());
}

TEST(PrefillCancel, BeforeTheFirstBlockRecurrentAndAllLogits) {
  auto model = load_fixture("ts_swish_scaled");
  const int64_t V = model->info().vocab_size;
  const std::vector<int32_t> ids = some_ids(40, V);
  Session s(model);
  s.prefill(std::span<const int32_t>(ids.data(), 3));
  const std::vector<uint8_t> before = s.save_state();
  // Cancelled at once: nothing absorbed, state unchanged, in every mode.
  for (Mode m : {Mode::Chunkwise, Mode::Parallel, Mode::Recurrent}) {
    PrefillOptions po;
    po.mode = m;
    po.on_progress = [](int64_t, int64_t) { return false; };
    EXPECT_TRUE(s.prefill(ids, po).empty());
    EXPECT_EQ(s.position(), 3);
    EXPECT_EQ(s.save_state(), before);
  }
  // Recurrent: a block is one token.
  PrefillOptions po;
  po.mode = Mode::Recurrent;
  po.all_logits = true;
  CancelAt cancel{7, {}};
  po.on_progress = cancel.fn();
  EXPECT_TRUE(s.prefill(ids, po).empty());
  EXPECT_EQ(s.position(), 3 + 7);
  const std::vector<int64_t> want_done = {0, 1, 2, 3, 4, 5, 6, 7};
  EXPECT_EQ(cancel.done, want_done);
  // The rest continues exactly: the same state as one uncancelled recurrent prefill.
  const auto rest = s.prefill(std::span<const int32_t>(ids.data() + 7, ids.size() - 7), {.mode = Mode::Recurrent});
  ASSERT_EQ(rest.size(), size_t(V));
  Session whole(model);
  whole.prefill(std::span<const int32_t>(ids.data(), 3));
  whole.prefill(ids, {.mode = Mode::Recurrent});
  EXPECT_EQ(s.save_state(), whole.save_state());
  EXPECT_EQ(std::vector<float>(rest.begin(), rest.end()),
            std::vector<float>(whole.logits().begin(), whole.logits().end()));
}

TEST(PrefillCancel, GenerateStopsDuringThePrompt) {
  auto model = load_bundled();
  const Tokenizer tok = Tokenizer::load(bundled_dir());
  std::string prompt;
  for (int i = 0; i < 60; ++i) prompt += "And God said, Let there be light: and there was light. ";
  Session s(model);
  GenerateOptions go;
  go.max_tokens = 20;
  CancelAt cancel{1, {}};
  go.prefill.on_progress = cancel.fn();
  int tokens = 0;
  const GenerateResult r = s.generate(tok, prompt, go, [&](const TokenEvent&) { return ++tokens > 0; });
  EXPECT_EQ(r.stop, GenerateResult::Stop::Callback);
  EXPECT_EQ(r.generated_tokens, 0);
  EXPECT_EQ(tokens, 0);
  ASSERT_EQ(cancel.done.size(), 2u);
  EXPECT_GT(cancel.total, cancel.done[1]);  // the prompt is longer than one block
  EXPECT_EQ(r.prompt_tokens, cancel.done[1]);
  EXPECT_EQ(s.position(), cancel.done[1]);
}

// ---- the CLI

struct CliResult {
  int code = -1;
  std::string err;
  double exit_s = -1;  // seconds from the SIGINT to the exit
};

// Runs the CLI (stdout to /dev/null); with sigint_after_ms >= 0 sends SIGINT then and waits at most
// 20 s more before killing it (the run then reports code 137).
CliResult run_cli(const std::vector<std::string>& args, const fs::path& dir, int sigint_after_ms = -1) {
  const std::string err = (dir / "err").string();
  CliResult r;
  const pid_t pid = spawn_cli(args, "/dev/null", "/dev/null", err);
  if (pid < 0) return r;
  int status = 0;
  if (sigint_after_ms >= 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(sigint_after_ms));
    ::kill(pid, SIGINT);
    const auto t0 = std::chrono::steady_clock::now();
    while (::waitpid(pid, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(20)) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    r.exit_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } else {
    ::waitpid(pid, &status, 0);
  }
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = slurp_file(err);
  return r;
}

// "prompt eval time = X ms / N tokens": {X, N}
std::pair<double, int64_t> prompt_eval(const std::string& err) {
  std::smatch m;
  static const std::regex re(R"(prompt eval time\s*=\s*([0-9.]+) ms /\s*([0-9]+) tokens)");
  if (!std::regex_search(err, m, re)) return {-1, -1};
  return {std::stod(m[1]), std::stoll(m[2])};
}

class CliSessionControl : public TempDirTest {};

TEST_F(CliSessionControl, GenerateWithNoTokensStillPrefillsThePrompt) {
  std::string prompt;
  for (int i = 0; i < 20; ++i) prompt += "And God saw the light, that it was good. ";
  const CliResult r = run_cli({"generate", "-m", bundled_dir(), "-p", prompt, "-n", "0", "-t", "2"}, dir_);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto [ms, n] = prompt_eval(r.err);
  EXPECT_GT(n, 100) << r.err;
  EXPECT_GT(ms, 0.0) << r.err;  // the prompt was run through the model, not only counted
}

TEST_F(CliSessionControl, CtrlCStopsALongPromptWithinASecondOrTwo) {
  // About 250k tokens: minutes of prefill if it were not interruptible.
  const fs::path big = dir_ / "big.txt";
  {
    std::ofstream out(big);
    for (int i = 0; i < 20000; ++i)
      out << "And the earth was without form, and void; and darkness was upon the face of the deep. ";
  }
  const CliResult r = run_cli({"generate", "-m", bundled_dir(), "-f", big.string(), "-n", "16", "-t", "1"}, dir_, 2500);
  EXPECT_EQ(r.code, 130) << r.err;
  EXPECT_LT(r.exit_s, 2.0) << r.err;
  EXPECT_TRUE(Contains(r.err, "interrupted"));
  const auto [ms, n] = prompt_eval(r.err);  // the summary, with the prompt tokens absorbed so far
  EXPECT_GE(n, 0) << r.err;
  EXPECT_LT(n, 200000) << r.err;
  EXPECT_TRUE(Contains(r.err, "eval time"));
}

}  // namespace
}  // namespace retnet::test
