// State snapshot files on bad input: a snapshot of another model, truncated at every section
// boundary, or huge; and saves that fail (target is a directory, no such directory, disk full)
// must leave an existing snapshot untouched and no temporary file behind.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "retnet/retnet.hpp"
#include "st_writer.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

class StateFile : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    model_ = load_fixture("ts_swish_scaled", 1);
    ids_ = golden_ids("ts_swish_scaled");
  }
  // A session that has absorbed the first n golden ids.
  Session session(size_t n) const {
    Session s(model_);
    s.prefill(std::span<const int32_t>(ids_.data(), n));
    return s;
  }
  std::string load_error(Session& s, const fs::path& p) const {
    const int64_t before = s.position();
    try {
      s.load_state_file(p.string());
      ADD_FAILURE() << "loaded " << p;
    } catch (const Error& e) {
      EXPECT_EQ(s.position(), before) << "a refused snapshot changed the session";
      return e.what();
    }
    return "";
  }
  // Files in dir_ other than `keep`: temporaries a save left behind.
  std::vector<std::string> leftovers(const std::vector<std::string>& keep) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string n = e.path().filename().string();
      if (std::find(keep.begin(), keep.end(), n) == keep.end()) out.push_back(n);
    }
    return out;
  }

  std::shared_ptr<const Model> model_;
  std::vector<int32_t> ids_;
};

TEST_F(StateFile, SnapshotOfAnotherModelIsRefusedByName) {
  const fs::path p = dir_ / "a.state";
  session(7).save_state_file(p.string());
  // Another architecture, and the same architecture with other weights (one element of one matrix
  // changed: the fingerprint samples every weight's first and last 256 bytes).
  const fs::path same_shape = dir_ / "other";
  fs::copy(fixture_dir("ts_swish_scaled"), same_shape, fs::copy_options::recursive);
  StMap t = read_st(same_shape / "model.safetensors");
  t.at("layers.0.retention.q_proj.weight").bytes[1] ^= 0x10;
  write_file(same_shape / "model.safetensors", st_file(t));
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.threads = 1;
  for (const auto& other : {load_fixture("ts_sharded", 1), Model::load(same_shape.string(), lo)}) {
    Session s(other);
    s.prefill(std::span<const int32_t>(ids_.data(), 3));
    const std::string m = load_error(s, p);
    EXPECT_TRUE(Contains(m, p.string()));
    EXPECT_TRUE(Contains(m, "saved from a different model"));
  }
}

TEST_F(StateFile, TruncatedAtEverySectionBoundary) {
  const fs::path good = dir_ / "good.state", cut_file = dir_ / "cut.state";
  session(9).save_state_file(good.string());
  const std::string full = slurp_file(good);
  const size_t H = size_t(model_->info().heads), L = size_t(model_->info().layers);
  const size_t per_layer = model_->info().state_bytes / L;
  // magic | version | dtype | fingerprint | position | dims | scales | L states | checksum
  std::vector<size_t> cuts = {0, 4, 8, 12, 16, 24, 32, 47, 48, 48 + 4 * H};
  for (size_t l = 1; l <= L; ++l) cuts.push_back(48 + 4 * H + l * per_layer);
  cuts.push_back(full.size() - 1);
  ASSERT_EQ(48 + 4 * H + L * per_layer + 8, full.size());
  Session s = session(2);
  for (const size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    write_file(cut_file, full.substr(0, cut));
    const std::string m = load_error(s, cut_file);
    EXPECT_TRUE(Contains(m, cut_file.string()));
    if (cut < 8) EXPECT_TRUE(Contains(m, "bad magic"));
    else if (cut < 48) EXPECT_TRUE(Contains(m, "truncated inside the 48-byte header"));
    else EXPECT_TRUE(Contains(m, std::to_string(cut) + " bytes, expected " + std::to_string(full.size()) + " (truncated or padded)"));
  }
  s.load_state_file(good.string());
  EXPECT_EQ(s.position(), 9);
}

TEST_F(StateFile, HugeFileIsRefusedWithoutBeingReadWhole) {
  // A valid snapshot followed by a sparse 16 GiB hole: refused as padded after reading one byte past
  // the expected size; a reader that slurped the file first would need 16 GiB of memory.
  const fs::path p = dir_ / "huge.state";
  session(5).save_state_file(p.string());
  const uint64_t real = fs::file_size(p);
  fs::resize_file(p, uint64_t(16) << 30);
  Session s = session(1);
  const std::string m = load_error(s, p);
  EXPECT_TRUE(Contains(m, std::to_string(real + 1) + " bytes, expected " + std::to_string(real) + " (truncated or padded)"));
}

TEST_F(StateFile, FailedSavesLeaveTheTargetUntouchedAndNoTemporary) {
  const fs::path target = dir_ / "snap.state";
  session(4).save_state_file(target.string());
  const std::string before = slurp_file(target);
  const Session other = session(11);

  // The target is a directory: the rename fails after the temporary was written.
  fs::create_directory(dir_ / "is_a_dir");
  try {
    other.save_state_file((dir_ / "is_a_dir").string());
    ADD_FAILURE() << "saved over a directory";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (dir_ / "is_a_dir").string() + ": cannot move the snapshot into place"));
  }
  EXPECT_TRUE(fs::is_directory(dir_ / "is_a_dir"));
  EXPECT_TRUE(fs::is_empty(dir_ / "is_a_dir"));

  // No such directory: nothing can be created.
  try {
    other.save_state_file((dir_ / "missing" / "x.state").string());
    ADD_FAILURE() << "saved into a missing directory";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "cannot write state snapshot: No such file or directory"));
  }

  // The disk fills up mid-write (a file size limit of 1 KiB, in a child process so the limit stays
  // there): the write fails, the temporary is removed, the old snapshot stays as it was.
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::close(pipefd[0]);
    std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing the process
    const rlimit lim{1024, 1024};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    std::string msg = "saved";
    try {
      other.save_state_file(target.string());
    } catch (const Error& e) {
      msg = e.what();
    }
    (void)!::write(pipefd[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::string msg;
  char buf[512];
  for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) msg.append(buf, size_t(n));
  ::close(pipefd[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(Contains(msg, target.string() + ": writing the state snapshot failed: File too large"));

  EXPECT_EQ(slurp_file(target), before) << "a failed save changed the existing snapshot";
  EXPECT_EQ(leftovers({"snap.state", "is_a_dir"}), std::vector<std::string>{}) << "temporary left behind";
  // And a save that succeeds replaces it whole.
  other.save_state_file(target.string());
  Session back(model_);
  back.load_state_file(target.string());
  EXPECT_EQ(back.position(), 11);
  EXPECT_EQ(leftovers({"snap.state", "is_a_dir"}), std::vector<std::string>{});
}

TEST_F(StateFile, ConcurrentSavesToOnePathNeverLeaveAPartialSnapshot) {
  // Two sessions saving to the same path at once: each uses its own temporary, so the file is always
  // one whole snapshot of one of them (with a shared temporary name one could rename the other's
  // half-written file into place).
  const fs::path target = dir_ / "shared.state";
  const Session a = session(3), b = session(12);
  auto saver = [&](const Session& s) {
    for (int i = 0; i < 25; ++i) s.save_state_file(target.string());
  };
  std::thread ta(saver, std::cref(a)), tb(saver, std::cref(b));
  ta.join();
  tb.join();
  Session r(model_);
  r.load_state_file(target.string());
  EXPECT_TRUE(r.position() == 3 || r.position() == 12) << r.position();
  EXPECT_EQ(leftovers({"shared.state"}), std::vector<std::string>{});
}

}  // namespace
}  // namespace retnet::test
