// Weight upload of the CUDA backend (src/backend/cuda/cuda_upload.cpp, src/runtime/model_placement.cpp):
// streamed in pinned chunks with progress, cancellable, and leaving no device or pinned allocation
// behind when cancelled. Emulated build and device (Gpu*, skipped without one).
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

// Block-typed weights have no CUDA kernels yet: a load onto the CUDA backend (here through the load
// hook, emulated or real) is refused with the type and the way out, before anything is uploaded.
KTEST(CudaLoad, QuantizedWeightsRefusedWithTheWayOut) {
  KTEST_REQUIRE_DEVICE();
  retnet::LoadOptions lo;
  lo.device = retnet::Device::Cuda;
  lo.threads = 1;
  lo.quantize = "q8_0";
  try {
    retnet::Model::Impl::load(retnet::test::fixture_dir("fla_fused_mlp"), lo, cuda_hooks(test_cuda_options()));
    ADD_FAILURE() << "loaded";
  } catch (const retnet::Error& e) {
    EXPECT_TRUE(retnet::test::Contains(e.what(), "q8_0 weights: the cuda"));
    EXPECT_TRUE(retnet::test::Contains(e.what(), "load it with --device cpu"));
  }
}

}  // namespace
