// The `retnet` command line on the bad inputs of docs/bad-input.md not covered by cli_errors_test and
// cli_generate_test: --check-weights on every subcommand that loads a model, a hostile header length,
// a model too big for the machine, absurd flag values across the subcommands, and prompts holding
// invalid UTF-8 and NUL bytes (not errors: handled as the reference tokenizer does).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "retnet/retnet.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

const std::string kCli = RETNET_CLI_PATH;
const std::string kBundled = std::string(RETNET_TEST_DATA) + "/../../models/kjv-retnet";

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class CliBadInput2 : public TempDirTest {
 protected:
  CliRun run(const std::vector<std::string>& args, const std::string& stdin_file = "/dev/null") {
    std::string cmd = quote(kCli);
    for (const auto& a : args) cmd += " " + quote(a);
    const fs::path o = dir_ / "stdout.txt", e = dir_ / "stderr.txt";
    cmd += " <" + quote(stdin_file) + " >" + quote(o.string()) + " 2>" + quote(e.string());
    const int st = std::system(cmd.c_str());
    CliRun r;
    r.code = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    r.out = slurp_file(o);
    r.err = slurp_file(e);
    return r;
  }
  // Exit code 1, nothing on stdout, exactly one line on stderr starting with "error: "; returns it.
  std::string expect_error(const std::vector<std::string>& args) {
    std::string shown;
    for (const auto& a : args) shown += a + " ";
    SCOPED_TRACE("retnet " + shown);
    const CliRun r = run(args);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    return r.err;
  }
  // A copy of the ts_swish_scaled fixture with one NaN in layers.1's k_proj, element 123.
  fs::path nan_model() {
    const fs::path d = dir_ / "nan_model";
    fs::copy(fixture_dir("ts_swish_scaled"), d, fs::copy_options::recursive);
    StMap t = read_st(d / "model.safetensors");
    const float nan = std::numeric_limits<float>::quiet_NaN();
    std::memcpy(t.at("layers.1.retention.k_proj.weight").bytes.data() + 4 * 123, &nan, 4);
    write_file(d / "model.safetensors", st_file(t));
    return d;
  }
};

TEST_F(CliBadInput2, CheckWeightsOnEverySubcommandThatLoadsAModel) {
  const std::string d = nan_model().string();
  const std::string text = kBundled + "/validation.txt";
  const std::string npy = (dir_ / "x.npy").string();
  const std::vector<std::vector<std::string>> cases = {
      {"info", "-m", d, "--check-weights"},
      {"logits", "-m", d, "--ids", "1,2", "-o", npy, "--check-weights"},
      {"generate", "-m", d, "-p", "x", "-n", "1", "--check-weights"},
      {"perplexity", "-m", d, "-f", text, "--check-weights"},
      {"bench", "-q", "-m", d, "-p", "0", "-n", "1", "-r", "1", "--no-warmup", "--check-weights"},
  };
  for (const auto& args : cases) {
    const std::string err = expect_error(args);
    EXPECT_TRUE(Contains(err, d + "/model.safetensors: tensor 'layers.1.retention.k_proj.weight' holds NaN at element 123"))
        << args[0];
  }
  EXPECT_FALSE(fs::exists(npy));
  // Without the flag the scan does not run (it reads the whole checkpoint again): info succeeds.
  const CliRun r = run({"info", "-m", d});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(CliBadInput2, HeaderLength2Pow63) {
  const fs::path d = dir_ / "m";
  fs::copy(fixture_dir("ts_swish_scaled"), d, fs::copy_options::recursive);
  std::string bytes = slurp_file(d / "model.safetensors");
  for (int i = 0; i < 8; ++i) bytes[size_t(i)] = char(i == 7 ? 0x80 : 0);
  write_file(d / "model.safetensors", bytes);
  const std::string err = expect_error({"info", "-m", d.string()});
  EXPECT_TRUE(Contains(err, (d / "model.safetensors").string() + ": header length 9223372036854775808"));
}

TEST_F(CliBadInput2, AbsurdFlagValuesNameTheFlag) {
  const std::string M = kBundled, text = kBundled + "/validation.txt", npy = (dir_ / "x.npy").string();
  struct Case {
    std::vector<std::string> args;
    std::string word;
  };
  const std::vector<Case> cases = {
      {{"generate", "-m", M, "-p", "x", "-n", "-5"}, "--predict: -5"},
      {{"generate", "-m", M, "-p", "x", "--top-p", "2"}, "top_p"},
      {{"generate", "-m", M, "-p", "x", "--min-p", "-0.5"}, "min_p"},
      {{"generate", "-m", M, "-p", "x", "--temp", "inf"}, "temperature"},
      {{"generate", "-m", M, "-p", "x", "--repeat-last-n", "-2"}, "repeat_last_n"},
      {{"generate", "-m", M, "-p", "x", "-t", "-1"}, "--threads"},
      {{"generate", "-m", M, "-p", "x", "-s", "-3"}, "--seed"},
      {{"generate", "-m", M, "-p", "x", "--device", "gpu"}, "--device"},
      {{"perplexity", "-m", M, "-f", text, "--chunk-size", "0"}, "--chunk-size"},
      {{"perplexity", "-m", M, "-f", text, "--ctx", "0"}, "--ctx"},
      {{"perplexity", "-m", M, "-f", text, "-t", "-8"}, "--threads"},
      {{"logits", "-m", M, "--ids", "1,2", "-o", npy, "--chunk-size", "0"}, "--chunk-size"},
      {{"logits", "-m", M, "--ids", "1,2", "-o", npy, "--prefill", "3"}, "--prefill"},
      {{"logits", "-m", M, "--ids", "1,2", "-o", npy, "-t", "-1"}, "--threads"},
      {{"bench", "-m", M, "-p", "0", "-n", "1", "-t", "0"}, "--threads"},
      {{"bench", "-m", M, "-p", "0", "-n", "1", "-r", "0"}, "--repetitions"},
      {{"bench", "-m", M, "-p", "0", "-n", "1", "-b", "0"}, "--batch"},
      {{"bench", "-m", M, "-p", "-1", "-n", "1"}, "--n-prompt"},
      {{"bench", "-m", M, "-p", "8", "-n", "0", "--chunk-size=-1"}, "--chunk-size"},
      {{"tokenize", "-m", M, "-p", "x", "-f", text}, "not both"},
  };
  for (const Case& c : cases) EXPECT_TRUE(Contains(expect_error(c.args), c.word)) << c.args[0] << " " << c.word;
  EXPECT_FALSE(fs::exists(npy));
}

TEST_F(CliBadInput2, ThreadsZeroMeansEveryHardwareThread) {
  // Not absurd for generate/perplexity/logits: -t 0 is documented as "all cores" (LoadOptions::threads).
  const CliRun r = run({"generate", "-m", kBundled, "-p", "x", "-n", "1", "-t", "0", "-s", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Contains(r.err, ", " + std::to_string(std::max(1u, std::thread::hardware_concurrency())) + " threads"));
}

TEST_F(CliBadInput2, PromptsWithInvalidUtf8AndNulBytes) {
  // Invalid UTF-8 becomes U+FFFD per maximal ill-formed subsequence and NUL is an ordinary character,
  // as in the reference tokenizer (tokenizer_test checks the rule itself); from a file and from
  // stdin alike, and generation runs on.
  const std::string prompt("And \xff\xfe the \xc3 LORD\0 said \xe2\x82", 27);
  write_file(dir_ / "prompt.txt", prompt);
  const Tokenizer tok = Tokenizer::load(kBundled);
  const std::vector<int32_t> want = tok.encode(prompt);
  EXPECT_EQ(tok.decode(want), std::string("And \xef\xbf\xbd\xef\xbf\xbd the \xef\xbf\xbd LORD\0 said \xef\xbf\xbd", 34));
  std::string want_text;
  for (const int32_t id : want) want_text += (want_text.empty() ? "" : " ") + std::to_string(id);
  for (const bool from_stdin : {false, true}) {
    const CliRun r = from_stdin ? run({"tokenize", "-m", kBundled, "--ids", "-p", "-"}, (dir_ / "prompt.txt").string())
                             : run({"tokenize", "-m", kBundled, "--ids", "-f", (dir_ / "prompt.txt").string()});
    ASSERT_EQ(r.code, 0) << r.err;
    std::string got = r.out;
    while (!got.empty() && (got.back() == '\n' || got.back() == ' ')) got.pop_back();
    EXPECT_EQ(got, want_text) << (from_stdin ? "stdin" : "file");
  }
  const CliRun g = run({"generate", "-m", kBundled, "-f", (dir_ / "prompt.txt").string(), "-n", "8", "-s", "1", "-q"});
  EXPECT_EQ(g.code, 0) << g.err;
  EXPECT_EQ(g.err, "");
  EXPECT_GT(g.out.size(), 1u);
}

TEST_F(CliBadInput2, ModelDirectoryThatIsAFileForEverySubcommand) {
  const std::string f = (dir_ / "plain_file").string();
  write_file(f, "not a model");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info", "-m", f}, std::vector<std::string>{"generate", "-m", f, "-p", "x"},
        std::vector<std::string>{"perplexity", "-m", f, "-f", kBundled + "/validation.txt"},
        std::vector<std::string>{"tokenize", "-m", f, "-p", "x"},
        std::vector<std::string>{"bench", "-q", "-m", f, "-p", "0", "-n", "1", "-r", "1"}}) {
    const std::string err = expect_error(args);
    EXPECT_TRUE(Contains(err, f)) << args[0];
  }
}

}  // namespace
}  // namespace retnet::test
