// The CUDA backend end to end: every model fixture (tests/data) through the real Session code with
// CudaBackend underneath, against the same model on the CPU backend, in every mode (chunkwise with
// ragged chunks, parallel, recurrent prefill, decode after a prefill) and batched decode.
// Emulated build: CudaBackend's kernels run in the SIMT emulator on host memory; GPU build: the real
// backend on the device (skipped without one). The model is loaded the normal way, its backend made
// by the internal load hook (cuda_test_util.hpp), with uploads in small pinned chunks so that the
// chunked weight streaming is exercised too.
//
// Tolerance: max|Δlogit| ≤ 2e-5 × max|logit|. Both backends compute in fp32 from the same widened
// weights; only summation orders differ (per-op ≤ 5e-6, see the kernel tests), and 2–3 layers of
// norms keep that at the same scale (measured ≤ 1e-6 in the emulator). A wrong op (mask, ρ, rotation,
// gate) moves logits by ≥ 1e-3.
#include "cuda_test_util.hpp"

namespace {

using namespace ktest;
using retnet::Mode;

struct ModeCase {
  Mode mode;
  int64_t chunk;
  int64_t prefill;  // tokens prefilled before decoding the rest one by one (-1: all)
  const char* name;
};

KTEST(CudaBackend, FixturesMatchCpuInEveryMode) {
  KTEST_REQUIRE_DEVICE();
  const ModeCase cases[] = {
      {Mode::Chunkwise, 4, -1, "chunkwise C=4"},   {Mode::Chunkwise, 7, -1, "chunkwise C=7"},
      {Mode::Chunkwise, 0, -1, "chunkwise default"}, {Mode::Parallel, 0, -1, "parallel"},
      {Mode::Recurrent, 0, -1, "recurrent"},       {Mode::Chunkwise, 5, 9, "chunkwise 9 then decode"},
  };
  for (const std::string& fx : retnet::test::model_fixtures()) {
    auto cpu_model = retnet::test::load_fixture(fx, 1);
    auto model = load_cuda_fixture(fx);
    const std::vector<int32_t> ids = retnet::test::golden_ids(fx);
    for (const ModeCase& c : cases) {
      const auto want = retnet::test::run_logits(cpu_model, ids, c.mode, c.chunk, c.prefill);
      const auto got = retnet::test::run_logits(model, ids, c.mode, c.chunk, c.prefill);
      const double err = retnet::test::rel_err(got, want);
      EXPECT_LE(err, kLogitTol) << fx << " " << c.name;
      std::printf("[ measured ] %s %s: max|d|/max|cpu| = %.2e (tolerance %.0e)\n", fx.c_str(), c.name, err, kLogitTol);
    }
  }
}

KTEST(CudaBackend, BatchedDecodeMatchesCpu) {
  KTEST_REQUIRE_DEVICE();
  // Three sessions at different positions advanced together: retention_step with B = 3 and the
  // GEMV with T = 3, against the same sessions decoded one by one on the CPU.
  for (const std::string& fx : {std::string("fla_base"), std::string("ts_swish_scaled")}) {
    auto cpu_model = retnet::test::load_fixture(fx, 1);
    auto model = load_cuda_fixture(fx);
    const std::vector<int32_t> ids = retnet::test::golden_ids(fx);
    const size_t V = size_t(model->info().vocab_size);
    std::vector<std::vector<float>> want, got;
    for (auto* m : {&cpu_model, &model}) {
      std::vector<std::unique_ptr<retnet::Session>> ss;
      for (size_t p : {size_t(3), size_t(6), size_t(1)}) {
        ss.push_back(std::make_unique<retnet::Session>(*m));
        ss.back()->prefill(std::span<const int32_t>(ids.data(), p));
      }
      std::vector<float> all;
      for (int step = 0; step < 3; ++step) {
        const std::vector<int32_t> toks = {ids[7 + size_t(step)], ids[size_t(step)], ids[2 + size_t(step)]};
        if (m == &cpu_model) {
          for (size_t i = 0; i < ss.size(); ++i) {
            auto lg = ss[i]->decode(toks[i]);
            all.insert(all.end(), lg.begin(), lg.end());
          }
        } else {
          std::vector<retnet::Session*> ptrs;
          for (auto& s : ss) ptrs.push_back(s.get());
          retnet::Session::decode_batch(ptrs, toks);
          for (auto& s : ss) {
            auto lg = s->logits();
            all.insert(all.end(), lg.begin(), lg.end());
          }
        }
      }
      (m == &cpu_model ? want : got).push_back(all);
    }
    ASSERT_EQ(got[0].size(), 9 * V);
    EXPECT_LE(retnet::test::rel_err(got[0], want[0]), kLogitTol) << fx;
  }
}

}  // namespace
