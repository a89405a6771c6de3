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

// The per-model constants are device buffers the placed model owns, uploaded once at load: they hold
// the config's values bit for bit (copies: compared exactly), and exact angles — the fp64 θ table —
// give the CPU backend's exact-angle logits (tolerance as above).
KTEST(CudaBackend, ModelConstantsAndExactAnglesMatchCpu) {
  KTEST_REQUIRE_DEVICE();
  const std::string fx = "ts_swish_scaled";
  retnet::LoadOptions lo;
  lo.angles = retnet::Angles::Exact;
  lo.device = retnet::Device::Cpu;
  lo.threads = 1;
  auto cpu_model = retnet::Model::load(retnet::test::fixture_dir(fx), lo);
  auto model = load_cuda_fixture(fx, test_cuda_options(), lo);
  const retnet::Model::Impl& m = model->impl();
  const retnet::ModelConfig& c = m.desc.cfg;
  auto device_bytes = [](const void* dev, size_t n) {
    std::vector<unsigned char> h(n);
    retnet::gpu::copy_d2h(h.data(), dev, n, nullptr);
    return h;
  };
  auto host_bytes = [](const auto& v) {
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    return std::vector<unsigned char>(p, p + v.size() * sizeof(v[0]));
  };
  EXPECT_EQ(device_bytes(m.constants.theta32, c.theta.size() * 4), host_bytes(c.theta));
  EXPECT_EQ(device_bytes(m.constants.theta64, c.theta64.size() * 8), host_bytes(c.theta64));
  EXPECT_EQ(device_bytes(m.constants.log_decay, c.log_decay.size() * 4), host_bytes(c.log_decay));
  EXPECT_EQ(device_bytes(m.constants.gamma, m.desc.gamma.size() * 4), host_bytes(m.desc.gamma));
  const std::vector<int32_t> ids = retnet::test::golden_ids(fx);
  for (const ModeCase& mc :
       {ModeCase{Mode::Chunkwise, 4, -1, "chunkwise C=4"}, ModeCase{Mode::Recurrent, 0, -1, "recurrent"}}) {
    const auto want = retnet::test::run_logits(cpu_model, ids, mc.mode, mc.chunk, mc.prefill);
    const auto got = retnet::test::run_logits(model, ids, mc.mode, mc.chunk, mc.prefill);
    EXPECT_LE(retnet::test::rel_err(got, want), kLogitTol) << mc.name;
  }
}

KTEST(CudaBackend, FailedStagingGrowthLeavesNoNullBuffer) {
  KTEST_REQUIRE_DEVICE();
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer aborts on the oversized allocation this test relies on";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  GTEST_SKIP() << "AddressSanitizer aborts on the oversized allocation this test relies on";
#endif
#endif
  // A staging buffer whose growth fails (out of device memory) must not keep the capacity it asked
  // for: a later call that fits in it would be handed a null workspace. Same op on a fresh backend:
  // the results must be equal.
  constexpr int64_t T = 3, H = 1, DK = 2, DV = 2;
  const std::vector<float> q = randu(size_t(T * H * DK), 11), k = randu(size_t(T * H * DK), 12),
                           v = randu(size_t(T * H * DV), 13);
  const float log_decay[1] = {-0.1f};
  std::vector<std::vector<float>> outs;
  for (bool fail_first : {true, false}) {
    retnet::CudaBackend be(test_cuda_options());
    float* dq = be.alloc(q.size());
    float* dk = be.alloc(k.size());
    float* dv = be.alloc(v.size());
    float* state = be.alloc(size_t(H * DK * DV));
    float* out = be.alloc(size_t(T * H * DV));
    be.from_host(dq, q.data(), q.size());
    be.from_host(dk, k.data(), k.size());
    be.from_host(dv, v.data(), v.size());
    void* ld = be.upload_constant(log_decay, sizeof log_decay);  // a per-model constant: device memory
    be.finish_uploads();
    retnet::RetentionChunkArgs a;
    a.q = dq; a.k = dk; a.v = dv; a.state = state; a.out = out;
    a.T = T;
    a.H = H;
    a.dk = DK;
    a.dv = DV;
    a.chunk = 2;
    a.log_decay = static_cast<const float*>(ld);
    if (fail_first) {
      retnet::RetentionChunkArgs huge = a;
      huge.T = int64_t(1) << 48;  // a 1 PiB workspace: refused before any kernel is launched
      huge.chunk = 1;
      EXPECT_THROW(be.retention_chunk(huge), retnet::Error);
    }
    EXPECT_NO_THROW(be.retention_chunk(a));
    std::vector<float> o(size_t(T * H * DV));
    be.to_host(o.data(), out, o.size());
    outs.push_back(o);
    for (float* p : {dq, dk, dv, state, out}) be.release(p);
    be.release_constant(ld);
  }
  EXPECT_EQ(outs[0], outs[1]);
}

}  // namespace
