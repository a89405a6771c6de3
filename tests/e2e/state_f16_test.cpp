// LoadOptions::state_dtype "f16": the recurrent state stored as f16 between steps (each step and
// each prefill block computes in fp32).
//
// Accuracy against the PyTorch fp32 reference (the fixtures' golden recurrent and chunkwise logits):
// storing the state rounds each of its values by at most 2^-11 relatively (4.9e-4) per step that
// writes it; a state is a decayed sum (Σ γ^i k v, γ < 1), so the roundings of a sequence add up to at
// most ~1/(1 - γ) of them in the worst case and far fewer in practice, and the logits move by a
// comparable fraction of their scale. Tolerance 4e-3 of the logit scale over the fixtures' 29-45
// tokens (measured up to 1.5e-3 on these tiny random models, whose logits lean hard on a small
// state; the fp32 engine matches the references to 1e-4, golden_test); printed by the test. On real text the bundled
// model's decode path moves by KL 6.5e-8 (docs/library.md). What f16 storage must not change: batch rows equal single
// decoding bit for bit, a snapshot round trip (f16 → fp32 file → f16) restores the state exactly, and the state takes
// half the bytes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/hash_words.hpp"
#include "npy.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

std::shared_ptr<const Model> load_f16(const std::string& fixture) {
  LoadOptions lo;
  lo.state_dtype = "f16";
  return load_fixture(fixture, lo);
}

// The golden file of a fixture's first case in `mode` ("recurrent", "chunkwise"), or "".
std::string golden_file(const std::string& fixture, const std::string& mode) {
  const nlohmann::json g = read_json(fixture_dir(fixture) + "/golden.json");
  for (const auto& c : g["cases"])
    if (c["mode"] == mode && !c.contains("denominator")) return c["file"];
  return "";
}
int64_t golden_chunk(const std::string& fixture, const std::string& file) {
  const nlohmann::json g = read_json(fixture_dir(fixture) + "/golden.json");
  for (const auto& c : g["cases"])
    if (c["file"] == file) return c.value("chunk_size", int64_t(0));
  return 0;
}

const char* const kFixtures[] = {"ts_swish_scaled", "fla_bf16_tied", "ts_deepnorm_fairseq_f16"};

TEST(StateF16, InfoSaysF16AndHalfTheBytes) {
  const auto f32 = load_fixture("ts_swish_scaled");
  const auto f16 = load_f16("ts_swish_scaled");
  EXPECT_EQ(f32->info().state_dtype, "f32");
  EXPECT_EQ(f16->info().state_dtype, "f16");
  EXPECT_EQ(f16->info().state_bytes * 2, f32->info().state_bytes);
  const auto i = f16->info();
  EXPECT_EQ(i.state_bytes, uint64_t(i.layers * i.heads * i.key_head_dim * i.value_head_dim) * 2);
}

TEST(StateF16, DecodeAndPrefillMatchTheReference) {
  for (const std::string f : kFixtures) {
    const auto model = load_f16(f);
    const auto ids = golden_ids(f);
    for (const std::string mode : {"recurrent", "chunkwise"}) {
      const std::string file = golden_file(f, mode);
      if (file.empty()) continue;
      const NpyArray ref = read_npy_f32(fixture_dir(f) + "/" + file);
      // Recurrent: every token one decode step (the state rounded after each); chunkwise: one prefill
      // of all tokens (rounded once per block) with every position's logits.
      const auto got = run_logits(model, ids, mode == "recurrent" ? Mode::Recurrent : Mode::Chunkwise,
                                  golden_chunk(f, file), mode == "recurrent" ? 0 : -1);
      const double err = rel_err(got, ref.data);
      std::printf("[ measured ] %s %s, f16 state: max|d|/max|ref| = %.2e (tolerance 4e-3)\n", f.c_str(), mode.c_str(),
                  err);
      EXPECT_LE(err, 4e-3) << f << " " << mode;
    }
  }
}

TEST(StateF16, PrefillThenDecodeStaysCloseToF32) {
  for (const std::string f : kFixtures) {
    const auto ids = golden_ids(f);
    const auto a = run_logits(load_fixture(f), ids, Mode::Chunkwise, 4, 9);
    const auto b = run_logits(load_f16(f), ids, Mode::Chunkwise, 4, 9);
    const double err = rel_err(b, a);
    std::printf("[ measured ] %s prefill 9 + decode, f16 against f32 state: %.2e (tolerance 4e-3)\n", f.c_str(), err);
    EXPECT_LE(err, 4e-3) << f;
    EXPECT_GT(err, 0.0) << f << ": f16 storage changed nothing (is the option applied?)";
  }
}

TEST(StateF16, BatchRowsEqualDecodingAloneBitForBit) {
  const std::string f = "fla_bf16_tied";
  const auto model = load_f16(f);
  const auto ids = golden_ids(f);
  const int B = 4;
  std::vector<Session> batch, alone;
  for (int b = 0; b < B; ++b)
    for (auto* v : {&batch, &alone}) {
      v->emplace_back(model);
      v->back().prefill(std::span<const int32_t>(ids.data() + b, size_t(2 + 3 * b)));
    }
  std::vector<Session*> ptrs;
  for (auto& s : batch) ptrs.push_back(&s);
  for (int step = 0; step < 5; ++step) {
    std::vector<int32_t> toks;
    for (int b = 0; b < B; ++b) toks.push_back(ids[size_t(12 + b + step)]);
    Session::decode_batch(ptrs, toks);
    for (int b = 0; b < B; ++b) {
      const auto ref = alone[size_t(b)].decode(toks[size_t(b)]);
      const auto got = batch[size_t(b)].logits();
      EXPECT_EQ(std::vector<float>(got.begin(), got.end()), std::vector<float>(ref.begin(), ref.end()))
          << "b=" << b << " step=" << step;
    }
  }
  for (int b = 0; b < B; ++b) EXPECT_EQ(batch[size_t(b)].save_state(), alone[size_t(b)].save_state());
}

TEST(StateF16, SnapshotsAreFp32AndRoundTripExactly) {
  const std::string f = "ts_swish_scaled";
  const auto m16 = load_f16(f);
  const auto m32 = load_fixture(f);
  const auto ids = golden_ids(f);
  Session a(m16);
  a.prefill(std::span<const int32_t>(ids.data(), 11));
  a.decode(ids[11]);
  const std::vector<uint8_t> snap = a.save_state();
  // The same format and size as an fp32 session's snapshot: the file does not depend on the option.
  EXPECT_EQ(snap.size(), Session(m32).save_state().size());
  // Loaded into another f16 session: the identical state (f16 values are exact in fp32), so the
  // same logits from here on, and the same snapshot.
  Session b(m16);
  b.load_state(snap);
  EXPECT_EQ(b.save_state(), snap);
  // Loaded into an fp32 session: that session continues from the widened state.
  Session c(m32);
  c.load_state(snap);
  for (size_t t = 12; t < ids.size(); ++t) {
    const auto la = a.decode(ids[t]);
    const auto lb = b.decode(ids[t]);
    EXPECT_EQ(std::vector<float>(la.begin(), la.end()), std::vector<float>(lb.begin(), lb.end())) << "t=" << t;
    const auto lc = c.decode(ids[t]);
    EXPECT_LE(rel_err(std::vector<float>(lc.begin(), lc.end()), std::vector<float>(la.begin(), la.end())), 4e-3);
  }
  // Clone and reset keep working on f16 states.
  Session d = a.clone();
  EXPECT_EQ(d.save_state(), a.save_state());
  d.reset();
  EXPECT_EQ(d.save_state(), Session(m16).save_state());
}

// A snapshot value that f16 cannot hold is refused (with the session unchanged), not clipped.
TEST(StateF16, ASnapshotBeyondF16RangeIsRefused) {
  const std::string f = "fla_bf16_tied";
  const auto m16 = load_f16(f);
  const auto m32 = load_fixture(f);
  Session a(m32);
  a.decode(golden_ids(f)[0]);
  std::vector<uint8_t> snap = a.save_state();
  // The first state value (after the 72-byte header and the H per-head scales) set to 70000, and the
  // checksum (hash_words of everything before it, seed 0) redone.
  const size_t at = 72 + 4 * size_t(m32->info().heads);
  const float big = 70000.f;
  std::memcpy(snap.data() + at, &big, 4);
  const uint64_t sum = hash_words(snap.data(), snap.size() - 8, 0);
  std::memcpy(snap.data() + snap.size() - 8, &sum, 8);
  Session c32(m32);
  EXPECT_NO_THROW(c32.load_state(snap));  // fp32 holds it
  Session c16(m16);
  c16.decode(3);
  const std::vector<uint8_t> before = c16.save_state();
  try {
    c16.load_state(snap);
    ADD_FAILURE() << "a value beyond f16's range loaded";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "beyond the range of this model's f16 states"));
  }
  EXPECT_EQ(c16.save_state(), before);
}

TEST(StateF16, BadNamesAndCudaAreRefused) {
  LoadOptions lo;
  lo.device = Device::Cpu;
  lo.state_dtype = "bf16";
  try {
    Model::load(fixture_dir("fla_base"), lo);
    ADD_FAILURE() << "state dtype bf16 loaded";
  } catch (const Error& e) {
    EXPECT_TRUE(Contains(e.what(), "state dtype 'bf16' is not one of f32, f16"));
  }
  lo.state_dtype = "f32";
  EXPECT_EQ(Model::load(fixture_dir("fla_base"), lo)->info().state_dtype, "f32");
}

// The command line: --state-type on generate, perplexity, logits, bench and serve; a bad value is one
// error line naming the flag; bench's rows say the state type.
class StateF16Cli : public TempDirTest {
 protected:
  CliRun cli(const std::vector<std::string>& args) { return run_cli(args, dir_); }
};

TEST_F(StateF16Cli, FlagOnEveryCommandAndBadValuesRefused) {
  for (const std::vector<std::string>& cmd : {std::vector<std::string>{"generate", "-p", "x", "-n", "1"},
                                              {"perplexity", "-f", "/dev/null"},
                                              {"logits", "--ids", "1,2", "-o", (dir_ / "l.npy").string()},
                                              {"bench", "-p", "0", "-n", "1"},
                                              {"serve"}}) {
    std::vector<std::string> a = cmd;
    a.insert(a.end(), {"-m", bundled_dir(), "--state-type", "f8", "-q"});
    const CliRun r = cli(a);
    EXPECT_EQ(r.code, 1) << cmd[0] << ": " << r.err;
    EXPECT_TRUE(Contains(r.err, "error: --state-type: 'f8' is not one of f32, f16")) << cmd[0];
  }
  CliRun r = cli({"generate", "-p", "In the beginning", "-n", "8", "--temp", "0", "--state-type", "f16", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  r = cli({"bench", "-p", "0", "-n", "2", "-r", "1", "--no-warmup", "--bandwidth-mib", "16", "-t", "1", "-o", "json",
           "--state-type", "f16", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "\"state_dtype\": \"f16\""));
}

}  // namespace
}  // namespace retnet::test
