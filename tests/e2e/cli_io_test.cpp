// The `retnet` command line's standard streams and its up-front checks: a failed write to stdout (a
// full disk, a closed stdout) is an error in every command that prints, while a closed pipe stays
// quiet; `-p -` with a directory or a closed stdin is an error, an empty stdin an empty prompt; bench
// refuses what would not fit in memory, too many threads and bad shapes before measuring anything;
// --angles on every command that runs a model.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "retnet/system.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

const std::string kCli = RETNET_CLI_PATH;
const std::string kFixture = std::string(RETNET_TEST_DATA) + "/ts_swish_scaled";

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct ShRun {
  int code = -1;
  std::string out, err;
  double seconds = 0;
};

class CliIo : public TempDirTest {
 protected:
  // `retnet ARGS` with the shell redirections `redirect` (e.g. ">/dev/full", "<&-"); stdout goes to a
  // file unless `redirect` redirects it, stderr always does. code is the CLI's exit status.
  ShRun run(const std::vector<std::string>& args, const std::string& redirect) {
    std::string cmd = quote(kCli);
    for (const auto& a : args) cmd += " " + quote(a);
    const fs::path o = dir_ / "stdout.txt", e = dir_ / "stderr.txt";
    const bool redirects_stdout = redirect.find('>') != std::string::npos && redirect.find("2>") == std::string::npos;
    const bool redirects_stdin = redirect.find('<') != std::string::npos;
    cmd += std::string(redirects_stdin ? "" : " </dev/null") + " " + redirect +
           (redirects_stdout ? "" : " >" + quote(o.string())) + " 2>" + quote(e.string());
    const auto t0 = std::chrono::steady_clock::now();
    const int st = std::system(cmd.c_str());
    ShRun r;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    r.code = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    r.out = fs::exists(o) ? slurp_file(o) : "";
    r.err = slurp_file(e);
    fs::remove(o);
    return r;
  }
  // `retnet ARGS | head -c1`, SIGPIPE ignored (then the CLI sees EPIPE) or not; returns the CLI's
  // exit status and stderr.
  ShRun run_into_closed_pipe(const std::vector<std::string>& args, bool ignore_sigpipe) {
    std::string cli = quote(kCli);
    for (const auto& a : args) cli += " " + quote(a);
    const fs::path e = dir_ / "stderr.txt", rc = dir_ / "rc.txt";
    const std::string inner = std::string(ignore_sigpipe ? "trap '' PIPE; " : "") + cli + " </dev/null 2>" +
                              quote(e.string()) + "; echo $? >" + quote(rc.string());
    const std::string cmd = "sh -c " + quote(inner) + " | head -c1 >/dev/null";
    std::system(cmd.c_str());
    ShRun r;
    r.code = std::atoi(slurp_file(rc).c_str());
    r.err = slurp_file(e);
    return r;
  }
};

// Every command line that prints on stdout, each format of bench and --help/--version included.
std::vector<std::vector<std::string>> printing_commands(const std::string& text_file) {
  const std::string M = bundled_dir();
  const std::vector<std::string> bench = {"bench", "-q", "--shape", "tiny", "-p", "8",           "-n",
                                          "2",     "-r", "1",       "-t",   "1",  "--no-warmup", "--bandwidth-mib",
                                          "1"};
  std::vector<std::vector<std::string>> cmds = {
      {"generate", "-m", M, "-p", "In the beginning", "-n", "4", "-s", "1", "-t", "1", "-q"},
      {"generate", "-m", M, "-p", "In the beginning", "-n", "0", "-e", "-t", "1", "-q"},
      {"perplexity", "-m", M, "-f", text_file, "-t", "1", "-q"},
      {"tokenize", "-m", M, "-p", "In the beginning"},
      {"tokenize", "-m", M, "-p", "In the beginning", "--ids"},
      {"info", "-m", M},
      {"--help"},
      {"generate", "--help"},
      {"--version"},
  };
  for (const char* fmt : {"md", "csv", "json", "jsonl"}) {
    cmds.push_back(bench);
    cmds.back().insert(cmds.back().end(), {"-o", fmt});
  }
  return cmds;
}

std::string shown(const std::vector<std::string>& args) {
  std::string s = "retnet";
  for (const auto& a : args) s += " " + a;
  return s;
}

TEST_F(CliIo, FullDiskOnStdoutIsAnErrorInEveryCommandThatPrints) {
  const std::string text = (dir_ / "t.txt").string();
  write_file(text, "In the beginning God created the heaven and the earth.\n");
  for (const auto& args : printing_commands(text)) {
    SCOPED_TRACE(shown(args));
    const ShRun r = run(args, ">/dev/full");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "error: writing to stdout: No space left on device\n");
  }
}

TEST_F(CliIo, ClosedStdoutIsAnErrorInEveryCommandThatPrints) {
  const std::string text = (dir_ / "t.txt").string();
  write_file(text, "In the beginning God created the heaven and the earth.\n");
  for (const auto& args : printing_commands(text)) {
    SCOPED_TRACE(shown(args));
    const ShRun r = run(args, ">&-");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.err, "error: writing to stdout: Bad file descriptor\n");
  }
}

TEST_F(CliIo, CommandsThatPrintNothingSucceedWithAFullOrClosedStdout) {
  // logits writes its .npy; with stdout full or closed it still succeeds (and, stdout being closed,
  // the .npy it opens is not mistaken for stdout).
  for (const std::string redirect : {">/dev/full", ">&-"}) {
    const std::string npy = (dir_ / "x.npy").string();
    const ShRun r = run({"logits", "-m", kFixture, "--ids", "1,2,3", "-o", npy, "-t", "1"}, redirect);
    EXPECT_EQ(r.code, 0) << redirect << ": " << r.err;
    EXPECT_EQ(r.err, "");
    ASSERT_TRUE(fs::exists(npy)) << redirect;
    const uintmax_t header = fs::file_size(npy) - 3 * 97 * 4;  // [3, 97] float32 after a 64-byte aligned header
    EXPECT_TRUE(header > 0 && header % 64 == 0) << redirect << ": " << fs::file_size(npy);
    fs::remove(npy);
  }
}

TEST_F(CliIo, GenerateStopsAtTheFirstFailedWrite) {
  // 100000 tokens take minutes; a generate that stops at its first failed write takes the load time.
  const ShRun r = run({"generate", "-m", bundled_dir(), "-p", "And", "-n", "100000", "--ignore-eos", "-t", "1", "-q"},
                      ">/dev/full");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: writing to stdout: No space left on device\n");
  EXPECT_LT(r.seconds, 20.0);
}

TEST_F(CliIo, ClosedPipeStaysQuiet) {
  // Output well past what a pipe buffers, so that the CLI is still writing when the reader leaves.
  std::string text;
  for (int i = 0; i < 20000; ++i) text += "In the beginning ";
  write_file(dir_ / "big.txt", text);
  const std::vector<std::vector<std::string>> cmds = {
      {"tokenize", "-m", bundled_dir(), "-f", (dir_ / "big.txt").string()},
      {"generate", "-m", bundled_dir(), "-f", (dir_ / "big.txt").string(), "-e", "-n", "1", "-t", "1", "-q"},
  };
  for (const auto& args : cmds) {
    SCOPED_TRACE(shown(args));
    // SIGPIPE at its default: the reader's leaving ends the CLI (status 128 + 13 as a shell shows it).
    ShRun r = run_into_closed_pipe(args, false);
    EXPECT_EQ(r.code, 141);
    EXPECT_EQ(r.err, "");
    // SIGPIPE ignored (as some parents leave it): EPIPE, the same quiet end and status.
    r = run_into_closed_pipe(args, true);
    EXPECT_EQ(r.code, 141);
    EXPECT_EQ(r.err, "");
  }
}

// ---- stdin -------------------------------------------------------------------------------------

TEST_F(CliIo, PromptFromADirectoryOrAClosedStdinIsAnError) {
  const std::vector<std::vector<std::string>> cmds = {
      {"generate", "-m", bundled_dir(), "-p", "-", "-n", "2", "-t", "1"},
      {"tokenize", "-m", bundled_dir(), "-p", "-"},
  };
  for (const auto& args : cmds) {
    SCOPED_TRACE(shown(args));
    ShRun r = run(args, "<" + quote(dir_.string()));
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "error: -p -: reading stdin: Is a directory\n");
    r = run(args, "<&-");
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(r.err, "error: -p -: stdin is closed\n");
  }
  // -f with a directory, for tokenize, generate and perplexity
  for (const std::string cmd : {"tokenize", "generate", "perplexity"}) {
    const ShRun r = run({cmd, "-m", bundled_dir(), "-f", dir_.string()}, "");
    EXPECT_EQ(r.code, 1) << cmd;
    EXPECT_EQ(r.err, "error: " + dir_.string() + ": is a directory, expected a text file\n") << cmd;
  }
}

TEST_F(CliIo, EmptyStdinIsAnEmptyPrompt) {
  ShRun r = run({"tokenize", "-m", bundled_dir(), "-p", "-", "--ids", "--no-special"}, "</dev/null");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "\n");
  write_file(dir_ / "p.txt", "In");
  r = run({"tokenize", "-m", bundled_dir(), "-p", "-", "--ids", "--no-special"},
          "<" + quote((dir_ / "p.txt").string()));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out, "\n");
}

// ---- bench: checked before measuring -----------------------------------------------------------

// Refused with one error line and nothing measured (no "device: ..." line on stderr, no -q given).
std::string expect_refused_fast(const ShRun& r) {
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_LT(r.seconds, 10.0);
  return r.err;
}

TEST_F(CliIo, BenchBatchThatDoesNotFitIsRefusedBeforeAllocating) {
  std::string err =
      expect_refused_fast(run({"bench", "--shape", "125m", "-p", "0", "-n", "1", "-b", "1000000", "-r", "1"}, ""));
  EXPECT_TRUE(Contains(err, "error: --batch 1000000 (1000000 sequences of random:125m): needs "));
  EXPECT_TRUE(Contains(err, " bytes of memory, but only "));
  EXPECT_TRUE(Contains(err, " bytes is available ("));
  // A checkpoint: checked once it is loaded (after the rooflines, hence -q), before any session is made.
  err = expect_refused_fast(run({"bench", "-q", "-m", kFixture, "-p", "0", "-n", "1", "-b", "100000000", "-r", "1",
                                 "-t", "1", "--bandwidth-mib", "1"},
                                ""));
  EXPECT_TRUE(Contains(err, "error: --batch 100000000 (100000000 sequences of " + kFixture + "): needs "));
  // The token ids of -p, -d, -n x -b, --pg and the bandwidth buffer.
  err = expect_refused_fast(run({"bench", "--shape", "tiny", "-p", "1000000000000000", "-n", "0"}, ""));
  EXPECT_TRUE(Contains(err, "error: --n-prompt 1000000000000000 (its token ids): needs 3.55 PiB"));
  err = expect_refused_fast(run({"bench", "--shape", "tiny", "-p", "0", "-d", "1000000000000000"}, ""));
  EXPECT_TRUE(Contains(err, "error: --n-depth 1000000000000000 (its token ids): needs"));
  err = expect_refused_fast(run({"bench", "--shape", "tiny", "-p", "0", "-n", "1000000000000", "-b", "1000"}, ""));
  EXPECT_TRUE(Contains(err, "error: --n-gen 1000000000000 x --batch 1000 (their token ids): needs"));
  err = expect_refused_fast(run({"bench", "--shape", "tiny", "-p", "0", "-n", "0", "--pg", "1,1000000000000000"}, ""));
  EXPECT_TRUE(Contains(err, "error: --pg 1,1000000000000000 (its token ids): needs"));
  err = expect_refused_fast(run({"bench", "--shape", "tiny", "--device", "cpu", "--bandwidth-mib", "1e9"}, ""));
  EXPECT_TRUE(Contains(err, "error: --bandwidth-mib 1000000000 (the buffer it reads): needs"));
}

TEST_F(CliIo, BenchTooManyThreadsIsRefusedBeforeMeasuring) {
  const std::string err = expect_refused_fast(run({"bench", "--shape", "tiny", "-t", "2,1000", "-r", "1"}, ""));
  EXPECT_EQ(err, "error: --threads: 1000 is more than " + std::to_string(kMaxThreads) + "\n");
}

TEST_F(CliIo, BadShapesGetOneMessage) {
  for (const std::string s : {"12x1x5", "64x2x3", "0x1x1", "64x0x2", "64x2x0", "2000000x1x1", "abc", "64x2", "64x2x2x",
                              "64X2X2", "64x2x2 "}) {
    SCOPED_TRACE(s);
    const std::string err = expect_refused_fast(run({"bench", "--shape", s, "-r", "1"}, ""));
    EXPECT_EQ(err.rfind("error: --shape: '" + s + "' is not a model shape (", 0), 0u) << err;
    EXPECT_TRUE(Contains(err, "); expected 125m, 350m, 1.3b, 2.7b, 6.7b, tiny or WIDTHxLAYERSxHEADS, e.g. 512x6x2\n"));
  }
}

// ---- --angles ----------------------------------------------------------------------------------

TEST_F(CliIo, AnglesOnEveryCommandThatRunsAModel) {
  const std::string M = bundled_dir(), npy = (dir_ / "x.npy").string(), text = (dir_ / "t.txt").string();
  write_file(text,
             "In the beginning God created the heaven and the earth. And the earth was without form, and void.\n");
  const std::vector<std::vector<std::string>> cmds = {
      {"generate", "-m", M, "-p", "In the beginning", "-n", "3", "--temp", "0", "-t", "1", "-q"},
      {"perplexity", "-m", M, "-f", text, "-t", "1", "-q"},
      {"logits", "-m", M, "--ids", "1,2,3", "-o", npy, "-t", "1"},
      {"bench", "--shape", "tiny", "-p", "8", "-n", "2", "-r", "1", "-t", "1", "--bandwidth-mib", "1", "-q"},
  };
  for (const auto& base : cmds) {
    SCOPED_TRACE(shown(base));
    std::vector<std::string> args = base;
    args.insert(args.end(), {"--angles", "sloppy"});
    const ShRun bad = run(args, "");
    EXPECT_EQ(bad.code, 1);
    EXPECT_EQ(bad.err, "error: --angles: 'sloppy' is not one of reference, exact\n");
    // At these positions exact and reference angles agree: the same text, perplexity, logits.
    args = base;
    const ShRun ref = run(args, "");
    args.insert(args.end(), {"--angles", "exact"});
    const ShRun exact = run(args, "");
    EXPECT_EQ(exact.code, 0) << exact.err;
    EXPECT_EQ(ref.code, 0) << ref.err;
    if (base[0] == "generate") EXPECT_EQ(exact.out, ref.out);
    if (base[0] == "perplexity") {
      const auto ppl = [](const std::string& out) { return std::strtod(out.c_str() + out.find(' '), nullptr); };
      EXPECT_GT(ppl(ref.out), 1.0) << ref.out;
      EXPECT_NEAR(ppl(exact.out), ppl(ref.out), 1e-5 * ppl(ref.out)) << exact.out << ref.out;
    }
  }
}

// ---- the library's check behind bench's -------------------------------------------------------

TEST(HostMemory, CheckNamesWhatAndTheBytes) {
  EXPECT_NO_THROW(check_host_memory(0, "x"));
  EXPECT_NO_THROW(check_host_memory(4096, "x"));
  try {
    check_host_memory(uint64_t(1) << 62, "--batch 7");
    ADD_FAILURE() << "4 EiB fit";
  } catch (const Error& e) {
    EXPECT_EQ(
        std::string(e.what()).rfind("--batch 7: needs 4.00 EiB = 4611686018427387904 bytes of memory, but only ", 0),
        0u)
        << e.what();
    EXPECT_TRUE(Contains(e.what(), " bytes is available ("));
  }
  try {
    check_host_memory(UINT64_MAX, "y");
    ADD_FAILURE() << "16 EiB fit";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("y: needs more than 16 EiB of memory, but only ", 0), 0u) << e.what();
  }
}

}  // namespace
}  // namespace retnet::test
