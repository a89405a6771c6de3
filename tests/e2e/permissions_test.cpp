// Unreadable files and directories in a model directory, an unreadable snapshot, an unwritable
// snapshot directory: each a retnet::Error (and for the CLI one "error:" line, exit code 1) naming
// the path and the reason. Root reads and writes through file permissions, and CI runs as root, so
// every check runs in a forked child that first drops to uid/gid 65534 when the test runs as root.
#include <gtest/gtest.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "app.hpp"  // the CLI in-process (tools/cli): a child as uid 65534 may not reach the binary's path
#include "retnet/retnet.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

struct Child {
  int code = -1;       // exit status
  std::string output;  // stdout and stderr together
};

// Runs body in a forked child whose stdout and stderr are captured, as uid/gid 65534 ("nobody")
// when this process is root. Exit codes 97-99 are the harness's own failures.
Child in_unprivileged_child(const std::function<int()>& body) {
  int fd[2];
  if (::pipe(fd) != 0) return {};
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fd[0]);
    ::dup2(fd[1], 1);
    ::dup2(fd[1], 2);
    if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) {
      std::fprintf(stderr, "cannot drop root privileges: %s", std::strerror(errno));
      ::_exit(99);
    }
    if (::geteuid() == 0) ::_exit(98);
    int rc = 97;
    try {
      rc = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "uncaught exception: %s", e.what());
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(rc);
  }
  ::close(fd[1]);
  Child c;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd[0], buf, sizeof buf)) > 0;) c.output.append(buf, size_t(n));
  ::close(fd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  c.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return c;
}

LoadOptions cpu1() {
  LoadOptions o;
  o.device = Device::Cpu;
  o.threads = 1;
  return o;
}

// Body: prints the Error of `f` and returns 0, or prints "no error" and returns 1.
std::function<int()> error_of(std::function<void()> f) {
  return [f] {
    try {
      f();
    } catch (const Error& e) {
      std::fputs(e.what(), stdout);
      return 0;
    }
    std::fputs("no error", stdout);
    return 1;
  };
}

class Permissions : public TempDirTest {
 protected:
  // A world-readable copy of a model directory (the child runs as another user).
  fs::path copy(const std::string& src, const std::string& name) {
    const fs::path d = dir_ / name;
    fs::copy(src, d, fs::copy_options::recursive);
    fs::permissions(d, fs::perms::all, fs::perm_options::add);
    for (const auto& e : fs::directory_iterator(d))
      fs::permissions(e.path(), fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read,
                      fs::perm_options::add);
    return d;
  }
  // The error of loading d (model, or tokenizer), as the unprivileged child sees it.
  Child load_in_child(const fs::path& d, bool tokenizer = false) {
    return in_unprivileged_child(error_of([d, tokenizer] {
      if (tokenizer) Tokenizer::load(d.string());
      else Model::load(d.string(), cpu1());
    }));
  }
  void SetUp() override {
    TempDirTest::SetUp();
    fs::permissions(dir_, fs::perms::all, fs::perm_options::add);  // reachable by uid 65534
  }
  void TearDown() override {
    // Restore permissions so that the directory can be removed by any user.
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir_, fs::directory_options::skip_permission_denied, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
    TempDirTest::TearDown();
  }
};

TEST_F(Permissions, UnreadableFilesOfAModelDirectory) {
  const std::string bundled = std::string(RETNET_TEST_DATA) + "/../../models/kjv-retnet";
  struct Case {
    std::string source, file;
    bool tokenizer;
  };
  for (const Case& c : {Case{fixture_dir("ts_swish_scaled"), "model.safetensors", false},
                        Case{fixture_dir("ts_swish_scaled"), "config.json", false},
                        Case{fixture_dir("ts_sharded"), "model.safetensors.index.json", false},
                        Case{fixture_dir("ts_sharded"), "model-00002-of-00002.safetensors", false},
                        Case{bundled, "generation_config.json", false},
                        Case{bundled, "tokenizer.json", true},
                        Case{bundled, "tokenizer_config.json", true}}) {
    SCOPED_TRACE(c.file);
    const fs::path d = copy(c.source, "m_" + c.file);
    // Control: the unprivileged child can load the intact copy, so the failure below is the chmod's.
    const Child ok = load_in_child(d, c.tokenizer);
    ASSERT_EQ(ok.code, 1) << ok.output;
    EXPECT_EQ(ok.output, "no error");
    fs::permissions(d / c.file, fs::perms::none);
    const Child bad = load_in_child(d, c.tokenizer);
    EXPECT_EQ(bad.code, 0) << bad.output;
    EXPECT_TRUE(Contains(bad.output, (d / c.file).string() + ": cannot open: Permission denied"));
  }
}

TEST_F(Permissions, ModelDirectoryWithoutSearchPermission) {
  const fs::path d = copy(fixture_dir("ts_swish_scaled"), "m");
  // Readable (listable) but not searchable, for everyone including the owner (tests may not run as root).
  fs::permissions(d, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read, fs::perm_options::replace);
  const Child c = load_in_child(d);
  EXPECT_EQ(c.code, 0) << c.output;
  // Not "config.json is missing": the directory cannot be looked into.
  EXPECT_TRUE(Contains(c.output, (d / "config.json").string() + ": cannot access: Permission denied"));
  fs::permissions(d, fs::perms::none);
  const Child none = load_in_child(d);
  EXPECT_TRUE(Contains(none.output, (d / "config.json").string() + ": cannot access: Permission denied"));
}

TEST_F(Permissions, SnapshotUnreadableOrDirectoryUnwritable) {
  const auto model = load_fixture("ts_swish_scaled", 1);
  Session s(model);
  const auto ids = golden_ids("ts_swish_scaled");
  s.prefill(std::span<const int32_t>(ids.data(), 5));
  const fs::path ro = dir_ / "ro";
  fs::create_directory(ro);
  const fs::path snap = ro / "s.state";
  s.save_state_file(snap.string());
  const std::string before = slurp_file(snap);
  // No permission for anyone (the owner included: tests may not run as root): r-x directory, --- file.
  fs::permissions(snap, fs::perms::none, fs::perm_options::replace);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec, fs::perm_options::replace);
  const Child unreadable = in_unprivileged_child(error_of([&] {
    Session t(model);
    t.load_state_file(snap.string());
  }));
  EXPECT_EQ(unreadable.code, 0) << unreadable.output;
  EXPECT_TRUE(Contains(unreadable.output, snap.string() + ": cannot open state snapshot: Permission denied"));
  const Child unwritable = in_unprivileged_child(error_of([&] { s.save_state_file(snap.string()); }));
  EXPECT_EQ(unwritable.code, 0) << unwritable.output;
  EXPECT_TRUE(Contains(unwritable.output, snap.string() + ": cannot write state snapshot: Permission denied"));
  fs::permissions(snap, fs::perms::owner_read, fs::perm_options::add);
  EXPECT_EQ(slurp_file(snap), before);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ro)) names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"s.state"});
}

TEST_F(Permissions, CommandLineGivesOneErrorLineAndExitCode1) {
  const fs::path d = copy(fixture_dir("ts_swish_scaled"), "m");
  fs::permissions(d / "model.safetensors", fs::perms::none);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"info", "-m", d.string()},
        std::vector<std::string>{"logits", "-m", d.string(), "--ids", "1,2", "-o", (dir_ / "x.npy").string()},
        std::vector<std::string>{"generate", "-m", d.string(), "-p", "x", "-n", "1"}}) {
    SCOPED_TRACE(args[0]);
    const Child c = in_unprivileged_child([args] {
      std::vector<const char*> argv = {"retnet"};
      for (const auto& a : args) argv.push_back(a.c_str());
      return retnet::cli::run(int(argv.size()), argv.data());
    });
    EXPECT_EQ(c.code, 1) << c.output;
    EXPECT_EQ(c.output.rfind("error: ", 0), 0u) << c.output;
    EXPECT_EQ(std::count(c.output.begin(), c.output.end(), '\n'), 1) << c.output;
    EXPECT_TRUE(Contains(c.output, (d / "model.safetensors").string() + ": cannot open: Permission denied"));
  }
  EXPECT_FALSE(fs::exists(dir_ / "x.npy"));
}

}  // namespace
}  // namespace retnet::test
