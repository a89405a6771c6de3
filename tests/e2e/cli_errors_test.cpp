// The `retnet` command line on bad input: exit code 1, exactly one "error: ..." line on stderr,
// nothing on stdout, and no output file (or temporary) left behind.
#include <gtest/gtest.h>

#include "test_util.hpp"
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const std::string kData = RETNET_TEST_DATA;
const std::string kCli = RETNET_CLI_PATH;
const std::string kModel = kData + "/ts_swish_scaled";  // vocab 97

using retnet::test::Contains;

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct RunResult {
  int code = -1;
  std::string out, err;
};

class CliBadInput : public retnet::test::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    fs::create_directories(dir_ / "out");
    out_npy_ = (dir_ / "out" / "logits.npy").string();
  }

  RunResult run(const std::vector<std::string>& args) {
    std::string cmd = quote(kCli);
    for (const std::string& a : args) cmd += " " + quote(a);
    const fs::path o = dir_ / "stdout.txt", e = dir_ / "stderr.txt";
    cmd += " </dev/null >" + quote(o.string()) + " 2>" + quote(e.string());
    const int st = std::system(cmd.c_str());
    RunResult r;
    r.code = (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
    r.out = slurp(o);
    r.err = slurp(e);
    return r;
  }

  // `retnet logits` with the given model and ids plus extra arguments, writing to out/logits.npy.
  std::vector<std::string> logits_args(const std::string& model, const std::string& ids,
                                       const std::vector<std::string>& extra = {}) {
    std::vector<std::string> a = {"logits", "-m", model, "--ids", ids, "-o", out_npy_, "-t", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  // The contract for every refused invocation. Returns the error line for further checks.
  std::string expect_error(const std::vector<std::string>& args) {
    std::string shown;
    for (const auto& a : args) shown += quote(a) + " ";
    SCOPED_TRACE("retnet " + shown);
    RunResult r = run(args);
    EXPECT_EQ(r.code, 1);
    EXPECT_EQ(r.out, "");
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << "stderr: " << r.err;
    EXPECT_TRUE(r.err.empty() || r.err.back() == '\n') << "stderr: " << r.err;
    std::vector<std::string> left;
    for (const auto& f : fs::directory_iterator(dir_ / "out")) left.push_back(f.path().filename().string());
    EXPECT_TRUE(left.empty()) << "left behind: " << (left.empty() ? "" : left.front());
    return r.err;
  }

  fs::path copy_fixture() {
    const fs::path d = dir_ / "model";
    fs::copy(kModel, d, fs::copy_options::recursive);
    return d;
  }

  std::string out_npy_;
};

// Reads a float32 .npy written by `retnet logits`, checking the header on the way.
std::vector<int64_t> npy_shape(const std::string& bytes, size_t* data_offset) {
  EXPECT_GE(bytes.size(), 10u);
  if (bytes.size() < 10) return {};
  EXPECT_EQ(bytes.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(int(bytes[6]), 1);
  const size_t hlen = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
  EXPECT_EQ((10 + hlen) % 64, 0u);
  const std::string dict = bytes.substr(10, hlen);
  EXPECT_TRUE(Contains(dict, "'descr': '<f4'"));
  EXPECT_TRUE(Contains(dict, "'fortran_order': False"));
  EXPECT_EQ(dict.back(), '\n');
  const size_t s = dict.find("'shape': (");
  const size_t e = dict.find(')', s);
  std::vector<int64_t> shape;
  if (s == std::string::npos || e == std::string::npos) {
    ADD_FAILURE() << "no shape in " << dict;
    return shape;
  }
  std::string inner = dict.substr(s + 10, e - s - 10);
  size_t i = 0;
  while (i < inner.size()) {
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == ',')) ++i;
    size_t j = i;
    while (j < inner.size() && std::isdigit(uint8_t(inner[j]))) ++j;
    if (j > i) shape.push_back(std::stoll(inner.substr(i, j - i)));
    i = j + (j == i);
  }
  *data_offset = 10 + hlen;
  return shape;
}

// ---- --ids -----------------------------------------------------------------------------------

TEST_F(CliBadInput, IdsThatDoNotParse) {
  for (const std::string ids : {"5,,3", "a,b", "5;3", "1e3", "5,", ",5", "5 3", "0x10", "+", "5,-", "3.0"}) {
    std::string err = expect_error(logits_args(kModel, ids));
    EXPECT_TRUE(Contains(err, "--ids")) << ids;
  }
}

TEST_F(CliBadInput, IdsEmpty) {
  std::string err = expect_error(logits_args(kModel, ""));
  EXPECT_TRUE(Contains(err, "--ids"));
  err = expect_error(logits_args(kModel, "   "));
  EXPECT_TRUE(Contains(err, "empty"));
}

TEST_F(CliBadInput, IdsOutOfInt32Range) {
  std::string err = expect_error(logits_args(kModel, "99999999999"));
  EXPECT_TRUE(Contains(err, "--ids"));
  EXPECT_TRUE(Contains(err, "99999999999"));
  err = expect_error(logits_args(kModel, "1,2147483648"));
  EXPECT_TRUE(Contains(err, "out of range"));
  err = expect_error(logits_args(kModel, "99999999999999999999999"));
  EXPECT_TRUE(Contains(err, "out of range"));
}

TEST_F(CliBadInput, NegativeId) {
  std::string err = expect_error(logits_args(kModel, "5,-1"));
  EXPECT_TRUE(Contains(err, "--ids"));
  EXPECT_TRUE(Contains(err, "negative"));
  err = expect_error({"logits", "-m", kModel, "--ids=-7", "-o", out_npy_});
  EXPECT_TRUE(Contains(err, "-7"));
}

TEST_F(CliBadInput, IdAtOrPastVocab) {
  std::string err = expect_error(logits_args(kModel, "1,97"));
  EXPECT_TRUE(Contains(err, "token id 97"));
  EXPECT_TRUE(Contains(err, "vocabulary"));
  // also when the bad id is only reached by decode
  err = expect_error(logits_args(kModel, "1,2,500", {"--prefill", "1"}));
  EXPECT_TRUE(Contains(err, "token id 500"));
}

// ---- the model directory ---------------------------------------------------------------------

TEST_F(CliBadInput, MissingModelDir) {
  const std::string d = (dir_ / "no_such_model").string();
  std::string err = expect_error(logits_args(d, "1,2"));
  EXPECT_TRUE(Contains(err, d));
}

TEST_F(CliBadInput, ModelDirIsAFile) {
  const fs::path f = dir_ / "a_file";
  { std::ofstream(f) << "not a model"; }
  std::string err = expect_error(logits_args(f.string(), "1,2"));
  EXPECT_TRUE(Contains(err, f.string()));
  err = expect_error(logits_args(kModel + "/model.safetensors", "1,2"));
  EXPECT_TRUE(Contains(err, "model.safetensors"));
}

TEST_F(CliBadInput, TruncatedSafetensors) {
  const fs::path d = copy_fixture();
  fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") / 2);
  std::string err = expect_error(logits_args(d.string(), "1,2"));
  EXPECT_TRUE(Contains(err, (d / "model.safetensors").string()));
  fs::resize_file(d / "model.safetensors", 5);
  err = expect_error(logits_args(d.string(), "1,2"));
  EXPECT_TRUE(Contains(err, "too short"));
}

TEST_F(CliBadInput, ConfigJsonMissing) {
  const fs::path d = copy_fixture();
  fs::remove(d / "config.json");
  std::string err = expect_error(logits_args(d.string(), "1,2"));
  EXPECT_TRUE(Contains(err, "config.json"));
}

TEST_F(CliBadInput, ConfigJsonBroken) {
  const fs::path d = copy_fixture();
  { std::ofstream(d / "config.json") << "{\"vocab_size\": 97,\n\n"; }
  std::string err = expect_error(logits_args(d.string(), "1,2"));
  EXPECT_TRUE(Contains(err, "config.json"));
  EXPECT_TRUE(Contains(err, "not valid JSON"));
}

TEST_F(CliBadInput, InfoOnBadModelDir) {
  std::string err = expect_error({"info", "-m", (dir_ / "nothing").string()});
  EXPECT_TRUE(Contains(err, (dir_ / "nothing").string()));
}

// ---- options ---------------------------------------------------------------------------------

TEST_F(CliBadInput, UnknownMode) {
  std::string err = expect_error(logits_args(kModel, "1,2", {"--mode", "fast"}));
  EXPECT_TRUE(Contains(err, "--mode"));
  EXPECT_TRUE(Contains(err, "fast"));
}

TEST_F(CliBadInput, ChunkSizeZeroOrNegativeOrNotANumber) {
  std::string err = expect_error(logits_args(kModel, "1,2", {"--chunk-size", "0"}));
  EXPECT_TRUE(Contains(err, "--chunk-size"));
  err = expect_error(logits_args(kModel, "1,2", {"--chunk-size=-4"}));
  EXPECT_TRUE(Contains(err, "--chunk-size"));
  expect_error(logits_args(kModel, "1,2", {"--chunk-size", "four"}));
}

TEST_F(CliBadInput, PrefillLargerThanSequence) {
  std::string err = expect_error(logits_args(kModel, "1,2,3", {"--prefill", "4"}));
  EXPECT_TRUE(Contains(err, "--prefill"));
  EXPECT_TRUE(Contains(err, "4"));
  err = expect_error(logits_args(kModel, "1,2,3", {"--prefill=-2"}));
  EXPECT_TRUE(Contains(err, "--prefill"));
}

TEST_F(CliBadInput, BadDeviceAnglesThreads) {
  EXPECT_TRUE(Contains(expect_error(logits_args(kModel, "1,2", {"--device", "tpu"})), "--device"));
  EXPECT_TRUE(Contains(expect_error(logits_args(kModel, "1,2", {"--angles", "approx"})), "--angles"));
  EXPECT_TRUE(Contains(expect_error(logits_args(kModel, "1,2", {"-t", "-3"})), "--threads"));
}

TEST_F(CliBadInput, UnknownFlag) {
  std::string err = expect_error(logits_args(kModel, "1,2", {"--bogus-flag"}));
  EXPECT_TRUE(Contains(err, "--bogus-flag"));
}

TEST_F(CliBadInput, MissingRequiredOptions) {
  std::string err = expect_error({"logits", "--ids", "1,2", "-o", out_npy_});
  EXPECT_TRUE(Contains(err, "model"));
  err = expect_error({"logits", "-m", kModel, "-o", out_npy_});
  EXPECT_TRUE(Contains(err, "ids"));
  err = expect_error({"logits", "-m", kModel, "--ids", "1,2"});
  EXPECT_TRUE(Contains(err, "output"));
}

TEST_F(CliBadInput, NoOrUnknownSubcommand) {
  expect_error({});
  expect_error({"generate", "-m", kModel});
}

TEST_F(CliBadInput, OutputInMissingDirectory) {
  const std::string bad_out = (dir_ / "out" / "no_dir" / "x.npy").string();
  std::string err = expect_error({"logits", "-m", kModel, "--ids", "1,2", "-o", bad_out, "-t", "1"});
  EXPECT_TRUE(Contains(err, bad_out));
}

// ---- positive --------------------------------------------------------------------------------

TEST_F(CliBadInput, LogitsWritesNpyOfShapeTByVocab) {
  RunResult r = run(logits_args(kModel, "5, 17,3,96,0"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const std::string bytes = slurp(out_npy_);
  size_t off = 0;
  const std::vector<int64_t> shape = npy_shape(bytes, &off);
  ASSERT_EQ(shape, (std::vector<int64_t>{5, 97}));
  ASSERT_EQ(bytes.size(), off + 5 * 97 * 4);
  std::vector<float> v(5 * 97);
  std::memcpy(v.data(), bytes.data() + off, v.size() * 4);
  for (float x : v) ASSERT_TRUE(std::isfinite(x));
  EXPECT_FALSE(fs::exists(out_npy_ + ".tmp"));

  // Same logits with a prefill/decode split in recurrent mode (up to rounding).
  const std::string out2 = (dir_ / "out" / "split.npy").string();
  r = run({"logits", "-m", kModel, "--ids", "5,17,3,96,0", "-o", out2, "-t", "1", "--mode", "recurrent",
           "--prefill", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string bytes2 = slurp(out2);
  size_t off2 = 0;
  ASSERT_EQ(npy_shape(bytes2, &off2), (std::vector<int64_t>{5, 97}));
  ASSERT_EQ(bytes2.size(), off2 + 5 * 97 * 4);
  std::vector<float> v2(5 * 97);
  std::memcpy(v2.data(), bytes2.data() + off2, v2.size() * 4);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v2[i], v[i], 1e-3f * (1.0f + std::fabs(v[i]))) << i;
}

TEST_F(CliBadInput, LogitsSingleTokenAndPrefillZero) {
  RunResult r = run(logits_args(kModel, "96", {"--prefill", "0"}));
  ASSERT_EQ(r.code, 0) << r.err;
  size_t off = 0;
  EXPECT_EQ(npy_shape(slurp(out_npy_), &off), (std::vector<int64_t>{1, 97}));
}

TEST_F(CliBadInput, HelpExitsZero) {
  RunResult r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(Contains(r.out, "logits"));
  EXPECT_EQ(r.err, "");
  r = run({"logits", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(Contains(r.out, "--ids"));
  r = run({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(Contains(r.out, "retnet"));
}

TEST_F(CliBadInput, InfoPrintsModelSummary) {
  RunResult r = run({"info", "-m", kModel});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "vocab_size      97"));
  EXPECT_TRUE(Contains(r.out, "layers          2"));
  EXPECT_TRUE(Contains(r.out, "device          ")) << r.out;  // auto: cuda (<name>) with a device, else cpu
  r = run({"info", "-m", kModel, "--device", "cpu"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "device          cpu\n")) << r.out;
}

}  // namespace
