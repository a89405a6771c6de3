// LoadOptions::bf16_activations end to end on the BF16 fixtures: a prefill of more than 8 tokens (the
// GEMM path) with activations rounded to bf16, against the fp32 goldens, and the state it leaves
// decoding on. The default path must not change: a second model of the same fixture without the
// option still matches its goldens as tightly as golden_test requires.
#include <gtest/gtest.h>

#include "backend/cpu/kernels_cpu.hpp"
#include "npy.hpp"
#include "retnet/retnet.h"
#include "test_util.hpp"

namespace retnet::test {
namespace {

std::shared_ptr<const Model> load_bf16act(const std::string& name) {
  LoadOptions lo;
  lo.bf16_activations = true;
  return load_fixture(name, lo);
}

TEST(Bf16Activations, PrefillAndDecodeMatchGoldens) {
  if (!cpu::bf16_gemm_supported())
    GTEST_SKIP() << "this CPU has no AVX512-BF16 (avx512_bf16): --bf16-activations is ignored here";
  for (const std::string f : {"fla_bf16_tied", "ts_gelu_tied_bf16"}) {
    auto model = load_bf16act(f);
    EXPECT_TRUE(model->info().bf16_activations) << f;
    const auto ids = golden_ids(f);
    ASSERT_GT(ids.size(), size_t(20)) << f;
    const NpyArray ref = read_npy_f32(fixture_dir(f) + "/chunkwise_c7.npy");  // fp32 golden, all positions
    const size_t V = size_t(model->info().vocab_size), K = 20;
    // 20 tokens prefilled chunkwise (chunk 7: blocks of T = 20 > 8 rows take the GEMM), the rest decoded.
    const std::vector<float> got = run_logits(model, ids, Mode::Chunkwise, 7, int64_t(K));
    const std::vector<float> exact = run_logits(load_fixture(f), ids, Mode::Chunkwise, 7, int64_t(K));
    const double e_prefill = rel_err(got, ref.data, 0, K * V), e_decode = rel_err(got, ref.data, K * V);
    const double e_default = rel_err(exact, ref.data);
    RecordProperty("rel_err_prefill_" + f, std::to_string(e_prefill));
    RecordProperty("rel_err_decode_" + f, std::to_string(e_decode));
    std::printf("%s: bf16 activations rel_err prefill %.3g, decode after it %.3g; default path %.3g\n", f.c_str(),
                e_prefill, e_decode, e_default);
    // Each rounded activation is off by at most 2^-9 relative (8 significant bits, nearest even), and
    // these errors enter every projection of every layer. These fixtures are tiny (hidden 48, random
    // weights: a dot product averages over few terms), so the worst logit moves by more than on a
    // real model: measured 1.0e-2 / 1.4e-2 of the logit scale here (prefill), against 2.0e-3 on the
    // bundled kjv-retnet. 5e-2 leaves a 3.5x margin and is still far below what a wiring error
    // gives (wrong rows, stride or packing: differences of the order of the logits themselves, ~1).
    EXPECT_LT(e_prefill, 5e-2) << f;
    // Decode itself is exact (fp32 activations): only the state built by the bf16 prefill differs
    // (measured 4.6e-3 / 6.9e-3).
    EXPECT_LT(e_decode, 5e-2) << f;
    // The option is really in effect: the logits are not the fp32 path's (golden_test: < 1e-4).
    EXPECT_GT(rel_err(got, exact, 0, K * V), 1e-6) << f;
    EXPECT_LT(e_default, 1e-4) << f;
  }
}

// Prefills of 8 tokens or fewer (the GEMV path) and decode are unaffected by the option: bit-identical.
TEST(Bf16Activations, ShortPrefillAndDecodeUnchanged) {
  if (!cpu::bf16_gemm_supported())
    GTEST_SKIP() << "this CPU has no AVX512-BF16 (avx512_bf16): --bf16-activations is ignored here";
  const std::string f = "fla_bf16_tied";
  const auto ids = golden_ids(f);
  const std::vector<int32_t> first(ids.begin(), ids.begin() + 12);
  EXPECT_EQ(run_logits(load_bf16act(f), first, Mode::Chunkwise, 4, 8),
            run_logits(load_fixture(f), first, Mode::Chunkwise, 4, 8));
}

// CPUs without AVX512-BF16 ignore it (info log; ModelInfo says so) and stay bit-identical to the
// default path. Runs where the CPU lacks it, and here through the ctest
// bf16_activations_without_avx512bf16, which sets RETNET_NO_AVX512BF16=1.
TEST(Bf16Activations, IgnoredWithoutAvx512Bf16) {
  if (cpu::bf16_gemm_supported())
    GTEST_SKIP() << "this CPU has AVX512-BF16; ctest bf16_activations_without_avx512bf16 runs this case";
  const std::string f = "fla_bf16_tied";
  auto model = load_bf16act(f);
  EXPECT_FALSE(model->info().bf16_activations);
  const auto ids = golden_ids(f);
  EXPECT_EQ(run_logits(model, ids, Mode::Chunkwise, 7, 20), run_logits(load_fixture(f), ids, Mode::Chunkwise, 7, 20));
}

// The C API's retnet_load_options::bf16_activations reaches the same switch: a 20-token prefill
// gives the bf16 path's logits (not the exact ones) where the CPU has AVX512-BF16, the exact ones
// where it has not.
TEST(Bf16Activations, ThroughTheCApi) {
  const std::string f = "fla_bf16_tied";
  const auto ids = golden_ids(f);
  ASSERT_GT(ids.size(), size_t(20));
  const std::vector<int32_t> first(ids.begin(), ids.begin() + 20);
  auto last_logits = [&](int on) {
    retnet_load_options o = {};
    o.device = 1;
    o.threads = 2;
    o.bf16_activations = on;
    retnet_model* m = nullptr;
    EXPECT_EQ(retnet_model_load(fixture_dir(f).c_str(), &o, &m), RETNET_OK) << retnet_last_error();
    retnet_session* s = nullptr;
    EXPECT_EQ(retnet_session_new(m, &s), RETNET_OK) << retnet_last_error();
    const float* logits = nullptr;
    EXPECT_EQ(retnet_session_prefill(s, first.data(), first.size(), &logits), RETNET_OK) << retnet_last_error();
    std::vector<float> out(logits, logits + retnet_model_vocab_size(m));
    retnet_session_free(s);
    retnet_model_free(m);
    return out;
  };
  const std::vector<float> exact = last_logits(0), bf16 = last_logits(1);
  if (cpu::bf16_gemm_supported())
    EXPECT_NE(bf16, exact);
  else
    EXPECT_EQ(bf16, exact);
}

// Models without BF16 matrices ignore it (info log) and stay exact.
TEST(Bf16Activations, IgnoredWithoutBf16Weights) {
  auto model = load_bf16act("ts_swish_scaled");
  EXPECT_FALSE(model->info().bf16_activations);
  const auto ids = golden_ids("ts_swish_scaled");
  EXPECT_EQ(run_logits(model, ids, Mode::Chunkwise, 7), run_logits(load_fixture("ts_swish_scaled"), ids, Mode::Chunkwise, 7));
}

}  // namespace
}  // namespace retnet::test
