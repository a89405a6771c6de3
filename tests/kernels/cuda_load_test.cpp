// Weight upload of the CUDA backend (src/backend/cuda/cuda_upload.cpp, src/runtime/model_placement.cpp):
// streamed in pinned chunks with progress, cancellable, and leaving no device or pinned allocation
// behind when cancelled. Emulated build and device (Gpu*, skipped without one).
#include <cstdlib>

#include "cuda_test_util.hpp"

namespace {

using namespace ktest;

KTEST(CudaLoad, UploadStreamsInChunksAndRoundTrips) {
  KTEST_REQUIRE_DEVICE();
  const int64_t before = retnet::gpu::live_allocations();
  {
    retnet::CudaBackend be(test_cuda_options());  // 1000-byte chunks
    const TypedWeights w = make_weights(randu(50 * 101, 3), retnet::DType::F16);  // 10100 bytes
    std::vector<uint64_t> parts;
    const retnet::WeightRef d = be.upload(w.ref(50, 101), [&](uint64_t n) { parts.push_back(n); });
    be.finish_uploads();
    ASSERT_EQ(parts.size(), 11u);
    EXPECT_EQ(parts.back(), 100u);
    uint64_t sum = 0;
    for (uint64_t p : parts) sum += p;
    EXPECT_EQ(sum, w.bytes.size());
    EXPECT_NE(d.data, w.bytes.data());
    std::vector<uint8_t> back(w.bytes.size());
    retnet::gpu::copy_d2h(back.data(), d.data, back.size(), nullptr);
    EXPECT_EQ(back, w.bytes);
  }
  EXPECT_EQ(retnet::gpu::live_allocations(), before) << "the backend freed what it uploaded";
}

KTEST(CudaLoad, CancelledUploadFreesItsMemory) {
  KTEST_REQUIRE_DEVICE();
  const int64_t before = retnet::gpu::live_allocations();
  retnet::CudaBackend be(test_cuda_options());
  const TypedWeights w = make_weights(randu(4000, 4), retnet::DType::F32);  // 16 chunks
  int parts = 0;
  EXPECT_THROW(be.upload(w.ref(40, 100),
                         [&](uint64_t) {
                           if (++parts == 3) throw retnet::Error("cancelled");
                         }),
               retnet::Error);
  be.finish_uploads();
  EXPECT_EQ(parts, 3);
  EXPECT_EQ(retnet::gpu::live_allocations(), before) << "a cancelled upload left memory behind";
}

KTEST(CudaLoad, ModelLoadReportsProgressAndCancelLeaksNothing) {
  KTEST_REQUIRE_DEVICE();
  const std::string fx = "ts_swish_scaled";
  const int64_t before = retnet::gpu::live_allocations();
  {
    std::vector<std::pair<uint64_t, uint64_t>> calls;
    retnet::LoadOptions lo;
    lo.on_progress = [&](uint64_t done, uint64_t total) {
      calls.emplace_back(done, total);
      return true;
    };
    auto model = load_cuda_fixture(fx, test_cuda_options(), lo);
    ASSERT_GE(calls.size(), 2u);
    EXPECT_EQ(calls.front().first, 0u);
    for (size_t i = 1; i < calls.size(); ++i) {
      EXPECT_EQ(calls[i].second, calls[0].second);
      EXPECT_GE(calls[i].first, calls[i - 1].first);
    }
    EXPECT_EQ(calls.back().first, calls.back().second);
    // Progress counts the matrices made resident, a tied head once.
    const retnet::Model::Impl& m = model->impl();
    const retnet::ModelWeights& mw = m.weights;
    uint64_t matrices = mw.embed.bytes() + (mw.lm_head.data == mw.embed.data ? 0 : mw.lm_head.bytes());
    for (const retnet::LayerWeights& l : mw.layers)
      for (const retnet::WeightRef* w : {&l.q, &l.k, &l.v, &l.g, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down})
        matrices += w->bytes();
    EXPECT_EQ(calls.back().second, matrices);
    const retnet::ModelInfo& info = model->info();
    EXPECT_EQ(info.device.rfind("cuda", 0), 0u) << info.device;
  }
  EXPECT_EQ(retnet::gpu::live_allocations(), before) << "the model freed its device memory";
  for (int cancel_at : {1, 2}) {  // before any upload, and at the last report (all uploaded)
    int n = 0;
    retnet::LoadOptions lo;
    lo.on_progress = [&](uint64_t, uint64_t) { return ++n < cancel_at; };
    try {
      load_cuda_fixture(fx, test_cuda_options(), lo);
      ADD_FAILURE() << "a cancelled load returned a model";
    } catch (const retnet::Error& e) {
      EXPECT_NE(std::string(e.what()).find("load cancelled"), std::string::npos) << e.what();
    }
    EXPECT_EQ(n, cancel_at);
    EXPECT_EQ(retnet::gpu::live_allocations(), before) << "cancelled at report " << cancel_at;
  }
}

}  // namespace

namespace {

// Block-quantized models on the CUDA backend (kernels/gemv_quant.cuh, quant.cuh): loaded like any other
// model and run against the same model on the CPU backend. Reference: the CPU's *prefill* logits of all
// tokens with RETNET_NO_QUANT_GEMM (its T > 8 products then use the dequantized weights and fp32
// activations, as CUDA's decode and prefill both do; the CPU's integer GEMV and GEMM quantize
// activations to int8, a different rounding). So the two
// differ by summation order only (and retention's recurrent vs chunkwise form for CUDA's decode), the
// same difference as the fp32 fixtures': tolerance kLogitTol, as FixturesMatchCpuInEveryMode.
// Random models of width 256 give every type — q4_k's 256-wide blocks included — its own matrices.
// A CPU model made with RETNET_NO_QUANT_GEMM set (read when its backend is made): prefill on
// dequantized panels with fp32 activations.
template <class F>
std::shared_ptr<const retnet::Model> cpu_dequant_prefill(F make) {
  setenv("RETNET_NO_QUANT_GEMM", "1", 1);
  std::shared_ptr<const retnet::Model> m;
  try {
    m = make();
  } catch (...) {
    unsetenv("RETNET_NO_QUANT_GEMM");
    throw;
  }
  unsetenv("RETNET_NO_QUANT_GEMM");
  return m;
}

std::vector<float> quant_logits(const std::shared_ptr<const retnet::Model>& m, const std::vector<int32_t>& ids,
                                int64_t prefill) {
  return retnet::test::run_logits(m, ids, retnet::Mode::Chunkwise, 0, prefill);
}

KTEST(CudaLoad, QuantizedModelsRunAndMatchCpuPrefill) {
  KTEST_REQUIRE_DEVICE();
  const std::vector<int32_t> ids = {3, 17, 42, 5, 63, 8, 21, 34, 55, 1, 13, 40};  // 12 > kGemvMaxRows: a GEMM prefill
  for (const char* dtype : {"q8_0", "q4_0", "q4_k"}) {
    retnet::RandomModelSpec sp;
    sp.vocab_size = 64;
    sp.hidden_size = 256;
    sp.layers = 1;
    sp.heads = 2;
    sp.value_dim = 256;
    sp.ffn_dim = 256;
    sp.dtype = dtype;
    retnet::LoadOptions lo;
    lo.device = retnet::Device::Cpu;
    lo.threads = 1;
    const auto cpu = cpu_dequant_prefill([&] { return retnet::Model::random(sp, lo); });
    lo.device = retnet::Device::Cuda;
    const auto cuda = retnet::Model::Impl::random(sp, lo, cuda_hooks(test_cuda_options()));
    EXPECT_EQ(cuda->info().device.rfind("cuda", 0), 0u) << cuda->info().device;
    EXPECT_TRUE(retnet::test::Contains(cuda->info().weight_dtype, dtype)) << cuda->info().weight_dtype;
    const std::vector<float> want = quant_logits(cpu, ids, -1);
    // Prefill (widen + GEMM), decode after one token (GEMV, T = 1) and decode after 9 tokens.
    for (int64_t prefill : {int64_t(-1), int64_t(1), int64_t(9)}) {
      const double err = retnet::test::rel_err(quant_logits(cuda, ids, prefill), want);
      EXPECT_LE(err, kLogitTol) << dtype << " prefill " << prefill;
      std::printf("[ measured ] %s prefill %lld then decode: max|d|/max|cpu prefill| = %.2e (tolerance %.0e)\n", dtype,
                  static_cast<long long>(prefill), err, kLogitTol);
    }
  }
}

// A checkpoint quantized at load (LoadOptions::quantize) runs on CUDA too, and its decode matches the
// CPU's prefill of the same quantized model.
KTEST(CudaLoad, QuantizeAtLoadRunsOnCuda) {
  KTEST_REQUIRE_DEVICE();
  const std::string fx = "fla_base";
  retnet::LoadOptions lo;
  lo.device = retnet::Device::Cpu;
  lo.threads = 1;
  lo.quantize = "q8_0";
  const auto cpu = cpu_dequant_prefill([&] { return retnet::Model::load(retnet::test::fixture_dir(fx), lo); });
  const auto cuda = load_cuda_fixture(fx, test_cuda_options(), lo);
  EXPECT_TRUE(retnet::test::Contains(cuda->info().weight_dtype, "q8_0")) << cuda->info().weight_dtype;
  const std::vector<int32_t> ids = retnet::test::golden_ids(fx);
  ASSERT_GT(ids.size(), size_t(retnet::kGemvMaxRows));
  const std::vector<float> want = quant_logits(cpu, ids, -1);
  EXPECT_LE(retnet::test::rel_err(quant_logits(cuda, ids, 2), want), kLogitTol);
}

// LoadOptions::state_dtype f16 is CPU-only: the CUDA backend's retention kernels keep fp32 states, so
// the load refuses it with an Error that says so, before reading any weight.
KTEST(CudaLoad, F16StateIsRefused) {
  KTEST_REQUIRE_DEVICE();
  retnet::LoadOptions lo;
  lo.state_dtype = "f16";
  try {
    load_cuda_fixture("fla_base", test_cuda_options(), lo);
    ADD_FAILURE() << "an f16 state loaded on the CUDA backend";
  } catch (const retnet::Error& e) {
    EXPECT_TRUE(retnet::test::Contains(e.what(), "keeps fp32 states only"));
  }
}

}  // namespace
