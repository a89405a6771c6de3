// State snapshot files on bad input: a snapshot of another model, truncated at every section
// boundary, or huge; and saves that fail (target is a directory, no such directory, disk full)
// must leave an existing snapshot untouched and no temporary file behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <limits>
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
  // changed: the fingerprint covers every weight byte).
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
  // magic | version | dtype | fingerprint | position | dims | token count | token hash | scales | L states | checksum
  std::vector<size_t> cuts = {0, 4, 8, 12, 16, 24, 32, 47, 48, 56, 71, 72, 72 + 4 * H};
  for (size_t l = 1; l <= L; ++l) cuts.push_back(72 + 4 * H + l * per_layer);
  cuts.push_back(full.size() - 1);
  ASSERT_EQ(72 + 4 * H + L * per_layer + 8, full.size());
  Session s = session(2);
  for (const size_t cut : cuts) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    write_file(cut_file, full.substr(0, cut));
    const std::string m = load_error(s, cut_file);
    EXPECT_TRUE(Contains(m, cut_file.string()));
    if (cut < 8) EXPECT_TRUE(Contains(m, "bad magic"));
    else if (cut < 72) EXPECT_TRUE(Contains(m, "truncated inside the 72-byte header"));
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

  // The target is a directory: refused before anything is written.
  fs::create_directory(dir_ / "is_a_dir");
  try {
    other.save_state_file((dir_ / "is_a_dir").string());
    ADD_FAILURE() << "saved over a directory";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), (dir_ / "is_a_dir").string() + ": cannot write state snapshot: Is a directory"));
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

// ---- where a save writes: links, special files, permissions, messages -------------------------------

TEST_F(StateFile, SymlinksAreFollowedAndKept) {
  // A relative link, a chain of an absolute link onto it, and a dangling link: each save updates the
  // file the chain finally names and leaves every link a link.
  fs::create_directory(dir_ / "real");
  const fs::path target = dir_ / "real" / "a.state", link = dir_ / "link.state", chain = dir_ / "chain.state";
  session(2).save_state_file(target.string());
  fs::create_symlink("real/a.state", link);
  fs::create_symlink(link, chain);
  session(5).save_state_file(link.string());
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(fs::read_symlink(link), fs::path("real/a.state"));
  Session r(model_);
  r.load_state_file(target.string());
  EXPECT_EQ(r.position(), 5);
  session(8).save_state_file(chain.string());
  EXPECT_TRUE(fs::is_symlink(chain));
  EXPECT_TRUE(fs::is_symlink(link));
  r.load_state_file(target.string());
  EXPECT_EQ(r.position(), 8);
  const fs::path dangling = dir_ / "dangling.state";
  fs::create_symlink("real/new.state", dangling);
  session(3).save_state_file(dangling.string());
  EXPECT_TRUE(fs::is_symlink(dangling));
  r.load_state_file((dir_ / "real" / "new.state").string());
  EXPECT_EQ(r.position(), 3);
  EXPECT_EQ(leftovers({"real", "link.state", "chain.state", "dangling.state"}), std::vector<std::string>{});
  std::vector<std::string> in_real;
  for (const auto& e : fs::directory_iterator(dir_ / "real")) in_real.push_back(e.path().filename().string());
  std::sort(in_real.begin(), in_real.end());
  EXPECT_EQ(in_real, (std::vector<std::string>{"a.state", "new.state"})) << "temporary left behind";
}

TEST_F(StateFile, FifoIsWrittenInPlace) {
  const fs::path fifo = dir_ / "pipe.state", keep = dir_ / "pipe.keep";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  fs::create_hard_link(fifo, keep);  // to release the reader if a save replaced the FIFO's name
  const Session s = session(6);
  std::string got;
  std::thread reader([&] {
    std::ifstream in(fifo, std::ios::binary);
    got.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  });
  s.save_state_file(fifo.string());
  if (!fs::is_fifo(fifo)) {  // replaced: nobody will write to the reader's FIFO, so open and close it
    const int fd = ::open(keep.c_str(), O_WRONLY);
    if (fd >= 0) ::close(fd);
  }
  reader.join();
  const std::vector<uint8_t> want = s.save_state();
  EXPECT_EQ(got, std::string(want.begin(), want.end()));
  struct stat st;
  ASSERT_EQ(::lstat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
  EXPECT_EQ(leftovers({"pipe.state", "pipe.keep"}), std::vector<std::string>{});
}

TEST_F(StateFile, CharacterDeviceStaysADevice) {
  // As root a rename over /dev/null would replace it. First a null device of our own (mknod needs
  // root; otherwise only /dev/null, which a non-root save could not replace anyway), so that a writer
  // that replaces devices fails here before it reaches the real one.
  if (::geteuid() == 0) {
    const fs::path dev = dir_ / "null";
    ASSERT_EQ(::mknod(dev.c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0) << std::strerror(errno);
    session(4).save_state_file(dev.string());
    struct stat st;
    ASSERT_EQ(::lstat(dev.c_str(), &st), 0);
    ASSERT_TRUE(S_ISCHR(st.st_mode)) << "the device was replaced by a regular file";
    EXPECT_EQ(leftovers({"null"}), std::vector<std::string>{});
  }
  session(4).save_state_file("/dev/null");
  struct stat st;
  ASSERT_EQ(::lstat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
}

TEST_F(StateFile, ResavingKeepsThePermissionBits) {
  const fs::path p = dir_ / "private.state";
  for (const fs::perms mode : {fs::perms(0600), fs::perms(0640), fs::perms(0604)}) {
    session(3).save_state_file(p.string());
    fs::permissions(p, mode);
    session(4).save_state_file(p.string());
    EXPECT_EQ(fs::status(p).permissions() & fs::perms::all, mode) << "re-saving changed the permissions";
  }
}

TEST_F(StateFile, FailuresNameTheTargetAndTheReasonNeverTheTemporary) {
  const Session s = session(2);
  auto error_of = [&](const std::string& path) -> std::string {
    try {
      s.save_state_file(path);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "saved to '" << path << "'";
    return "";
  };
  // A name over NAME_MAX: the target's own name is too long (not a longer temporary's).
  const std::string long_name = (dir_ / std::string(300, 'x')).string();
  std::string m = error_of(long_name);
  EXPECT_TRUE(Contains(m, long_name + ": cannot write state snapshot: File name too long"));
  // A name that fits, but only just: a temporary named after it would not.
  const fs::path just_fits = dir_ / (std::string(248, 'y') + ".state");
  s.save_state_file(just_fits.string());
  EXPECT_TRUE(fs::is_regular_file(just_fits));
  fs::remove(just_fits);
  m = error_of((dir_ / "missing" / "x.state").string());
  EXPECT_TRUE(Contains(
      m, (dir_ / "missing" / "x.state").string() + ": cannot write state snapshot: No such file or directory"));
  fs::create_directory(dir_ / "d");
  m = error_of((dir_ / "d").string());
  EXPECT_TRUE(Contains(m, (dir_ / "d").string() + ": cannot write state snapshot: Is a directory"));
  fs::create_symlink("d", dir_ / "link_to_dir");
  m = error_of((dir_ / "link_to_dir").string());
  EXPECT_TRUE(Contains(m, (dir_ / "link_to_dir").string() + " (-> " + (dir_ / "d").string() +
                              "): cannot write state snapshot: Is a directory"));
  m = error_of("");
  EXPECT_EQ(m, "cannot write state snapshot: the path is empty");
  EXPECT_EQ(leftovers({"d", "link_to_dir"}), std::vector<std::string>{});
}

// ---- model identity and what a snapshot may hold --------------------------------------------------

// A copy of ts_swish_scaled with one element in the middle of `tensor` changed (its lowest byte).
fs::path changed_copy(const fs::path& dir, const std::string& tensor) {
  const fs::path d = dir / ("changed_" + std::to_string(std::hash<std::string>{}(tensor)));
  fs::copy(fixture_dir("ts_swish_scaled"), d, fs::copy_options::recursive);
  StMap t = read_st(d / "model.safetensors");
  std::string& b = t.at(tensor).bytes;
  b[b.size() / 2 / 4 * 4] ^= 0x01;
  write_file(d / "model.safetensors", st_file(t));
  return d;
}

TEST_F(StateFile, FingerprintCoversEveryWeightByte) {
  // One element in the middle of any one tensor (matrices and norm vectors alike) makes another model:
  // its fingerprint differs and a snapshot of the original is refused.
  const fs::path p = dir_ / "a.state";
  session(7).save_state_file(p.string());
  const StMap tensors = read_st(fs::path(fixture_dir("ts_swish_scaled")) / "model.safetensors");
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.threads = 1;
  int checked = 0;
  for (const auto& [name, t] : tensors) {
    if (name.find("rel_pos") != std::string::npos) continue;  // stored rotation/decay buffers: validated at load
    SCOPED_TRACE(name);
    const fs::path d = changed_copy(dir_, name);
    const auto other = Model::load(d.string(), lo);
    EXPECT_NE(other->info().fingerprint, model_->info().fingerprint);
    Session s(other);
    EXPECT_TRUE(Contains(load_error(s, p), "saved from a different model"));
    fs::remove_all(d);
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

TEST_F(StateFile, FingerprintIsTheCheckpointsWhateverTheStorageDtype) {
  // Converting the weights at load changes how they are stored, not which model it is: a snapshot of
  // the checkpoint loaded as stored loads into the converted models (and back).
  const fs::path p = dir_ / "a.state";
  session(9).save_state_file(p.string());
  for (const std::string dtype : {"f32", "f16", "bf16"}) {
    SCOPED_TRACE(dtype);
    LoadOptions lo;
    lo.device = Device::Cpu;
    lo.threads = 1;
    lo.dtype = dtype;
    const auto converted = Model::load(fixture_dir("ts_swish_scaled"), lo);
    EXPECT_EQ(converted->info().fingerprint, model_->info().fingerprint);
    Session s(converted);
    s.load_state_file(p.string());
    EXPECT_EQ(s.position(), 9);
  }
  // Random models: their generated weights (same spec and seed: same model; another seed: another).
  RandomModelSpec sp;
  sp.vocab_size = 64;
  sp.hidden_size = 16;
  sp.layers = 1;
  sp.heads = 2;
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.threads = 1;
  const uint64_t a = Model::random(sp, lo)->info().fingerprint, b = Model::random(sp, lo)->info().fingerprint;
  sp.seed = 2;
  EXPECT_EQ(a, b);
  EXPECT_NE(Model::random(sp, lo)->info().fingerprint, a);
}

// The snapshot's trailing checksums, written out here from their definitions (to forge snapshots that
// pass them): format 3's hash_words (src/common/hash_words.hpp) with seed 0, format 2's FNV-1a 64.
uint64_t fnv1a64(const std::string& s, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ uint8_t(s[i])) * 0x100000001b3ull;
  return h;
}
uint64_t words_hash(const std::string& s, size_t n) {
  constexpr uint64_t kMul = 0x9fb21c651e98df25ull;
  const auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  const auto word = [&](size_t i, size_t len) {
    uint64_t v = 0;
    std::memcpy(&v, s.data() + i, len);
    return v;
  };
  const auto step = [&](uint64_t lane, uint64_t w) { return rotl((lane ^ w) * kMul, 29); };
  const auto mix = [](uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  uint64_t lane[4] = {0x243f6a8885a308d3ull, 0x13198a2e03707344ull, 0xa4093822299f31d0ull, 0x082efa98ec4e6c89ull};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int k = 0; k < 4; ++k) lane[k] = step(lane[k], word(i + 8 * size_t(k), 8));
  for (; i + 8 <= n; i += 8) lane[0] = step(lane[0], word(i, 8));
  if (i < n) lane[1] = step(lane[1], word(i, n - i));
  const uint64_t h = mix(lane[0]) ^ rotl(mix(lane[1]), 16) ^ rotl(mix(lane[2]), 32) ^ rotl(mix(lane[3]), 48);
  return mix(h ^ uint64_t(n) * kMul);
}
void reseal(std::string& snap) {
  const uint64_t sum = snap[8] == 2 ? fnv1a64(snap, snap.size() - 8) : words_hash(snap, snap.size() - 8);
  std::memcpy(snap.data() + snap.size() - 8, &sum, 8);
}

TEST_F(StateFile, NonFiniteStateOrScaleIsRefused) {
  const fs::path good = dir_ / "good.state", bad = dir_ / "bad.state";
  session(9).save_state_file(good.string());
  const std::string full = slurp_file(good);
  const size_t H = size_t(model_->info().heads), L = size_t(model_->info().layers);
  const size_t per_layer = model_->info().state_bytes / L / 4;  // floats
  const size_t states = full.size() - 8 - model_->info().state_bytes, scales = states - 4 * H;
  struct Case {
    size_t offset;
    float value;
    std::string message;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<Case> cases = {
      {scales + 4 * (H - 1), inf, "the scale of head " + std::to_string(H - 1) + " is Inf"},
      {scales, nan, "the scale of head 0 is NaN"},
      {states + 4 * 17, nan, "the state of layer 0 holds NaN at element 17"},
      {states + 4 * ((L - 1) * per_layer + 5), -inf,
       "the state of layer " + std::to_string(L - 1) + " holds Inf at element 5"},
  };
  Session s = session(2);
  const std::vector<uint8_t> before = s.save_state();
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    std::string forged = full;
    std::memcpy(forged.data() + c.offset, &c.value, 4);
    reseal(forged);
    write_file(bad, forged);
    const std::string m = load_error(s, bad);
    EXPECT_TRUE(Contains(m, bad.string() + ": state snapshot: " + c.message));
    EXPECT_EQ(s.save_state(), before) << "a refused snapshot changed the session";
  }
  // A snapshot of format version 1 (no token digest) is refused by its version.
  std::string v1 = full;
  v1[8] = 1;
  reseal(v1);
  write_file(bad, v1);
  EXPECT_TRUE(Contains(load_error(s, bad), "format version 1 is not supported (this build reads 2 and 3)"));
}

TEST_F(StateFile, Format2WithItsFnvChecksumStillLoads) {
  // Snapshots written before the checksum became hash_words (format 2: the same layout, FNV-1a 64)
  // load as they did: same state, same next logits.
  const fs::path v3 = dir_ / "v3.state", v2 = dir_ / "v2.state";
  session(7).save_state_file(v3.string());
  const std::string full = slurp_file(v3);
  ASSERT_EQ(full[8], 3) << "this build writes format 3";
  uint64_t stored = 0;
  std::memcpy(&stored, full.data() + full.size() - 8, 8);
  EXPECT_EQ(stored, words_hash(full, full.size() - 8)) << "the checksum is hash_words as documented";
  std::string old = full;
  old[8] = 2;
  reseal(old);
  write_file(v2, old);
  Session a(model_), b(model_);
  a.load_state_file(v3.string());
  b.load_state_file(v2.string());
  EXPECT_EQ(a.position(), b.position());
  const auto la = a.decode(11);
  const std::vector<float> ka(la.begin(), la.end());
  const auto lb = b.decode(11);
  EXPECT_EQ(ka, std::vector<float>(lb.begin(), lb.end()));
  // A format 2 snapshot whose FNV checksum does not match is still refused.
  old[100] ^= 1;
  write_file(v2, old);
  EXPECT_TRUE(Contains(load_error(a, v2), "checksum mismatch"));
}

}  // namespace
}  // namespace retnet::test
