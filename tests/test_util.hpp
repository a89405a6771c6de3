// Shared helpers for the tests: fixtures, goldens, error measures, running a Session in a mode.
#pragma once
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "npy.hpp"
#include "retnet/retnet.hpp"

namespace retnet::test {

// The message of the retnet::Error that fn() throws; a test failure (and "") when it throws none.
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no retnet::Error thrown";
  return "";
}

// EXPECT_TRUE(Contains(message, "part")): on failure prints the whole message and the missing part.
inline ::testing::AssertionResult Contains(const std::string& hay, const std::string& needle) {
  if (hay.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << hay << "\" does not contain \"" << needle << "\"";
}

#ifdef RETNET_CLI_PATH
// Starts the retnet CLI (no shell) with `args`, its stdin, stdout and stderr opened on the given
// paths (stdout and stderr created or truncated). Returns the child's pid, or -1 if it could not start.
inline pid_t spawn_cli(const std::vector<std::string>& args, const std::string& in, const std::string& out,
                       const std::string& err) {
  static const std::string cli = RETNET_CLI_PATH;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> all = {cli};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, cli.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}
// A waitpid status as a shell reports it: the exit code, or 128 + the signal.
inline int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }
#endif

// A whole file's bytes ("" when it cannot be read).
inline std::string slurp_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

#ifdef RETNET_CLI_PATH
// One CLI run with stdin /dev/null, waited for: its exit code (exit_code; -1 if it did not start) and
// what it wrote, captured in stdout.txt / stderr.txt under dir (replaced by the next run there).
struct CliRun {
  int code = -1;
  std::string out, err;
};
inline CliRun run_cli(const std::vector<std::string>& args, const std::filesystem::path& dir) {
  const std::filesystem::path o = dir / "stdout.txt", e = dir / "stderr.txt";
  const pid_t pid = spawn_cli(args, "/dev/null", o.string(), e.string());
  CliRun r;
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid) r.code = exit_code(status);
  r.out = slurp_file(o);
  r.err = slurp_file(e);
  return r;
}
#endif

inline std::string data_dir() { return RETNET_TEST_DATA; }

// A fixture giving each test a fresh, uniquely named temporary directory dir_ (removed afterwards).
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("retnet_" + std::string(info->test_suite_name()) + "_" + std::to_string(::getpid()) + "_" + info->name() +
            "_" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path dir_;
};
inline std::string fixture_dir(const std::string& name) { return data_dir() + "/" + name; }
// The bundled model (models/kjv-retnet), found from the fixture directory.
inline std::string bundled_dir() { return data_dir() + "/../../models/kjv-retnet"; }

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// Every model fixture (a directory with golden.json), sorted.
inline std::vector<std::string> model_fixtures() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(data_dir()))
    if (e.is_directory() && std::filesystem::exists(e.path() / "golden.json")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<int32_t> golden_ids(const std::string& fixture) {
  std::vector<int32_t> ids;
  const nlohmann::json g = read_json(fixture_dir(fixture) + "/golden.json");
  for (const auto& v : g["ids"]) ids.push_back(v.get<int32_t>());
  return ids;
}

// max|a - b| / max|b|: error relative to the logit scale of the reference b.
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b, size_t begin = 0, size_t end = SIZE_MAX) {
  end = std::min(end, b.size());
  double num = 0, den = 0;
  for (size_t i = begin; i < end; ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return den > 0 ? num / den : num;
}

// Logits [T*V] for ids: the first K prefilled in `mode` (chunk C), the rest decoded one by one.
inline std::vector<float> run_logits(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids, Mode mode,
                                     int64_t chunk = 0, int64_t K = -1) {
  const size_t T = ids.size();
  const size_t V = size_t(model->info().vocab_size);
  if (K < 0) K = int64_t(T);
  Session s(model);
  std::vector<float> all(T * V);
  if (K > 0) {
    PrefillOptions po;
    po.mode = mode;
    po.chunk_size = chunk;
    po.all_logits = true;
    auto lg = s.prefill(std::span<const int32_t>(ids.data(), size_t(K)), po);
    std::copy(lg.begin(), lg.end(), all.begin());
  }
  for (size_t t = size_t(K); t < T; ++t) {
    auto lg = s.decode(ids[t]);
    std::copy(lg.begin(), lg.end(), all.begin() + std::ptrdiff_t(t * V));
  }
  return all;
}

// A fixture on the CPU with `threads` threads and the other load options of lo.
inline std::shared_ptr<const Model> load_fixture(const std::string& name, LoadOptions lo, int threads = 2) {
  lo.device = Device::Cpu;
  lo.threads = threads;
  return Model::load(fixture_dir(name), lo);
}
inline std::shared_ptr<const Model> load_fixture(const std::string& name, int threads = 2) {
  return load_fixture(name, LoadOptions{}, threads);
}

inline std::shared_ptr<const Model> load_bundled(int threads = 2) {
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.threads = threads;
  return Model::load(bundled_dir(), lo);
}

}  // namespace retnet::test
