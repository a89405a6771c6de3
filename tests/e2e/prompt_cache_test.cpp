// Token history and `retnet generate --prompt-cache`: a session knows which tokens it absorbed (and a
// snapshot carries their digest), so a cached prompt state is resumed only for a prompt it is a prefix
// of, and the result equals a run without the cache. Also where the CLI's output files go (links,
// /dev/stdout), which shares the snapshot writer.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "retnet/retnet.hpp"
#include "retnet/tokenizer.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

extern char** environ;

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

TEST(SessionHistory, EveryWayOfAbsorbingTokensIsTracked) {
  const auto model = load_fixture("ts_swish_scaled", 1);
  const std::vector<int32_t> ids = golden_ids("ts_swish_scaled");
  ASSERT_GE(ids.size(), 8u);
  auto first = [&](size_t n) { return std::span<const int32_t>(ids.data(), n); };
  Session s(model), t(model);
  EXPECT_TRUE(s.history_matches({}));
  s.prefill(first(5));
  s.decode(ids[5]);
  Session* batch[2] = {&s, &t};
  const int32_t next[2] = {ids[6], ids[0]};
  Session::decode_batch(batch, next);
  EXPECT_TRUE(s.history_matches(first(7)));
  EXPECT_TRUE(t.history_matches(first(1)));
  EXPECT_FALSE(s.history_matches(first(6)));
  std::vector<int32_t> other(ids.begin(), ids.begin() + 7);
  other[3] = (other[3] + 1) % 97;
  EXPECT_FALSE(s.history_matches(other));
  std::swap(other[3], other[4]);
  other[4] = ids[3];
  other[3] = ids[4];
  if (ids[3] != ids[4]) EXPECT_FALSE(s.history_matches(other));  // reordered
  // clone, snapshots and reset carry or clear it.
  EXPECT_TRUE(s.clone().history_matches(first(7)));
  Session r(model);
  r.load_state(s.save_state());
  EXPECT_TRUE(r.history_matches(first(7)));
  r.reset();
  EXPECT_TRUE(r.history_matches({}));
  EXPECT_FALSE(r.history_matches(first(7)));
}

TEST(SessionHistory, GenerateFromTokensResumesAStateAndEqualsAFullRun) {
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.threads = 1;
  const auto model = Model::load(bundled_dir(), lo);
  const Tokenizer tok = Tokenizer::load(bundled_dir());
  const std::vector<int32_t> ids =
      tok.encode("And God said, Let there be light: and there was light. And God saw", true);
  ASSERT_GT(ids.size(), 8u);
  GenerateOptions go;
  go.max_tokens = 16;
  go.sampler.temperature = 0.9f;
  go.sampler.repeat_penalty = 1.5f;  // sees the whole prompt: also the tokens absorbed before
  go.sampler.repeat_last_n = -1;
  go.sampler.seed = 11;
  Session full(model);
  const GenerateResult a = full.generate(tok, ids, 0, go);
  EXPECT_EQ(a.prompt_tokens, int64_t(ids.size()));

  const size_t n = ids.size() - 3;
  Session part(model);
  part.prefill(std::span<const int32_t>(ids.data(), n));
  Session resumed(model);
  resumed.load_state(part.save_state());
  const GenerateResult b = resumed.generate(tok, ids, int64_t(n), go);
  EXPECT_EQ(b.prompt_tokens, 3);
  EXPECT_EQ(b.text, a.text);
  EXPECT_EQ(resumed.position(), full.position());

  // absorbed must describe the state: a session holding other tokens, the whole prompt, or out of range.
  Session fresh(model);
  fresh.prefill(std::span<const int32_t>(ids.data() + 1, n));
  EXPECT_THROW(fresh.generate(tok, ids, int64_t(n), go), Error);
  EXPECT_EQ(fresh.position(), int64_t(n)) << "a refused generate changed the session";
  Session whole(model);
  whole.prefill(ids);
  try {
    whole.generate(tok, ids, int64_t(ids.size()), go);
    ADD_FAILURE() << "generated without logits";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "already holds the whole prompt"));
  }
  EXPECT_THROW(whole.generate(tok, ids, -1, go), Error);
  EXPECT_THROW(whole.generate(tok, ids, int64_t(ids.size()) + 1, go), Error);
}

// ---- the command line ---------------------------------------------------------------------------

class PromptCache : public TempDirTest {
 protected:
  // Runs the CLI (no shell), capturing stdout and stderr.
  CliRun run(const std::vector<std::string>& args) { return run_cli(args, dir_); }
  // generate with a fixed seed, a temperature and a repeat penalty over the whole context.
  CliRun gen(const std::string& prompt, const std::string& cache = "", const std::string& model = bundled_dir()) {
    std::vector<std::string> a = {
        "generate",        "-m", model, "-p", prompt, "-n", "12", "-s", "7", "--temp", "0.9", "--repeat-penalty", "1.5",
        "--repeat-last-n", "-1", "-t",  "1"};
    if (!cache.empty()) a.insert(a.end(), {"--prompt-cache", cache});
    const CliRun r = run(a);
    EXPECT_EQ(r.code, 0) << r.err;
    return r;
  }
  static int64_t prompt_eval_tokens(const std::string& err) {
    std::smatch m;
    static const std::regex re(R"(prompt eval time\s*=\s*[0-9.]+ ms /\s*([0-9]+) tokens)");
    return std::regex_search(err, m, re) ? std::stoll(m[1]) : -1;
  }
};

const std::string kPrompt = "In the beginning God created the heaven and the earth. And the earth was without form";

TEST_F(PromptCache, SecondRunResumesAndGivesTheSameTextAsNoCache) {
  const std::string cache = (dir_ / "p.state").string();
  const CliRun plain = gen(kPrompt);
  const int64_t n = prompt_eval_tokens(plain.err);
  ASSERT_GT(n, 5);
  const CliRun first = gen(kPrompt, cache);
  EXPECT_TRUE(Contains(first.err, "does not exist yet"));
  EXPECT_EQ(prompt_eval_tokens(first.err), n);
  EXPECT_EQ(first.out, plain.out);
  const uintmax_t size = fs::file_size(cache);
  // The same prompt again: the cache holds all of it but the last token, which is all that is prefilled.
  const CliRun second = gen(kPrompt, cache);
  EXPECT_TRUE(
      Contains(second.err, "resuming " + std::to_string(n - 1) + " of " + std::to_string(n) + " prompt tokens"));
  EXPECT_EQ(prompt_eval_tokens(second.err), 1);
  EXPECT_EQ(second.out, plain.out);
  // A longer prompt extending it: only the new tokens, and the text of a run without the cache.
  const std::string longer = kPrompt + ", and void; and darkness was upon the face of the deep.";
  const CliRun plain_longer = gen(longer);
  const int64_t m = prompt_eval_tokens(plain_longer.err);
  const CliRun third = gen(longer, cache);
  EXPECT_TRUE(Contains(third.err, "resuming " + std::to_string(n - 1) + " of " + std::to_string(m)));
  EXPECT_EQ(prompt_eval_tokens(third.err), m - (n - 1));
  EXPECT_EQ(third.out, plain_longer.out);
  // One snapshot of constant size, however long the history.
  EXPECT_EQ(fs::file_size(cache), size);
  const CliRun fourth = gen(longer, cache);
  EXPECT_EQ(prompt_eval_tokens(fourth.err), 1);
  EXPECT_EQ(fourth.out, plain_longer.out);
  EXPECT_EQ(fs::file_size(cache), size);
}

TEST_F(PromptCache, PromptNotExtendingTheCacheIsPrefilledFromScratch) {
  const std::string cache = (dir_ / "p.state").string();
  gen(kPrompt, cache);
  const std::string other = "And God said, Let there be light";
  const CliRun plain = gen(other);
  const CliRun r = gen(other, cache);
  EXPECT_TRUE(Contains(r.err, "are not a prefix of this prompt"));
  EXPECT_EQ(prompt_eval_tokens(r.err), prompt_eval_tokens(plain.err));
  EXPECT_EQ(r.out, plain.out);
  // The cache now holds the new prompt.
  EXPECT_EQ(prompt_eval_tokens(gen(other, cache).err), 1);
}

TEST_F(PromptCache, CacheOfAnotherModelOrDamagedIsIgnoredAndReplaced) {
  // The bundled model with one weight changed in the middle of a matrix: another model.
  const fs::path other = dir_ / "other";
  fs::copy(bundled_dir(), other, fs::copy_options::recursive);
  StMap t = read_st(other / "model.safetensors");
  std::string& b = t.begin()->second.bytes;
  b[b.size() / 2] ^= 0x01;
  write_file(other / "model.safetensors", st_file(t));
  const std::string cache = (dir_ / "p.state").string();
  gen(kPrompt, cache, other.string());
  const CliRun plain = gen(kPrompt);
  const CliRun r = gen(kPrompt, cache);
  EXPECT_TRUE(Contains(r.err, "warning: prompt cache ignored"));
  EXPECT_TRUE(Contains(r.err, "saved from a different model"));
  EXPECT_EQ(r.out, plain.out);
  EXPECT_EQ(prompt_eval_tokens(gen(kPrompt, cache).err), 1) << "the cache was not replaced";
  // Damaged: warned about even with -q, then replaced.
  write_file(cache, "not a snapshot");
  const CliRun q =
      run({"generate", "-m", bundled_dir(), "-p", kPrompt, "-n", "2", "-t", "1", "-q", "--prompt-cache", cache});
  EXPECT_EQ(q.code, 0) << q.err;
  EXPECT_TRUE(Contains(q.err, "warning: prompt cache ignored (it is replaced after generating): " + cache +
                                  ": state snapshot: not a retnet state (bad magic)"));
  EXPECT_EQ(prompt_eval_tokens(gen(kPrompt, cache).err), 1);
  // A directory is refused before generating; an empty path too.
  fs::create_directory(dir_ / "d");
  CliRun d = run({"generate", "-m", bundled_dir(), "-p", kPrompt, "-n", "2", "--prompt-cache", (dir_ / "d").string()});
  EXPECT_EQ(d.code, 1);
  EXPECT_EQ(d.out, "");
  EXPECT_TRUE(Contains(d.err, "error: --prompt-cache: " + (dir_ / "d").string() + " is a directory"));
  d = run({"generate", "-m", bundled_dir(), "-p", kPrompt, "--prompt-cache", ""});
  EXPECT_EQ(d.code, 1);
  EXPECT_TRUE(Contains(d.err, "error: --prompt-cache: the path is empty"));
}

TEST_F(PromptCache, SymlinkedCacheIsFollowed) {
  fs::create_directory(dir_ / "real");
  const fs::path link = dir_ / "cache.state", target = dir_ / "real" / "c.state";
  fs::create_symlink("real/c.state", link);
  gen(kPrompt, link.string());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(target)));
  EXPECT_EQ(prompt_eval_tokens(gen(kPrompt, link.string()).err), 1);
  EXPECT_TRUE(fs::is_symlink(link));
}

// ---- logits -o ----------------------------------------------------------------------------------

TEST_F(PromptCache, LogitsOutputToDevStdoutAndThroughASymlink) {
  const std::string model = fixture_dir("ts_swish_scaled");
  const std::string file = (dir_ / "direct.npy").string();
  CliRun r = run({"logits", "-m", model, "--ids", "5,17,3", "-o", file, "-t", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string npy = slurp_file(file);
  ASSERT_GT(npy.size(), 3u * 97 * 4);
  // /dev/stdout: the bytes arrive on stdout (here a file), the device link is untouched.
  r = run({"logits", "-m", model, "--ids", "5,17,3", "-o", "/dev/stdout", "-t", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, npy);
  EXPECT_TRUE(fs::is_symlink("/dev/stdout") || fs::is_character_file("/dev/stdout"));
  // A symlink: the link stays, its target gets the logits.
  fs::create_directory(dir_ / "real");
  write_file(dir_ / "real" / "old.npy", "stale");
  fs::create_symlink("real/old.npy", dir_ / "link.npy");
  r = run({"logits", "-m", model, "--ids", "5,17,3", "-o", (dir_ / "link.npy").string(), "-t", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.npy"));
  EXPECT_EQ(slurp_file(dir_ / "real" / "old.npy"), npy);
  // Over-long name: the target's name in the message, not a temporary's.
  const std::string long_name = (dir_ / (std::string(300, 'z') + ".npy")).string();
  r = run({"logits", "-m", model, "--ids", "5,17,3", "-o", long_name, "-t", "1"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: " + long_name + ": cannot write logits: File name too long\n");
}

}  // namespace
}  // namespace retnet::test
