// CUDA-graph decode (src/backend/cuda/cuda_decode_step.cpp): a decode step runs plainly once per
// (session backend, batch size, buffer layout), is captured into a graph on the next step and replayed
// from then on. Checked in the emulator — which records and replays captured work as a graph does and
// refuses what a capture refuses — and on a device (Gpu*, skipped without one):
//   * graph decode == plain decode bit for bit over 64 steps (logits and positions), and both match
//     the CPU backend: every replay reads that step's ids, positions, 1/ρ and state pointers afresh;
//   * a new batch size, a workspace moved by a longer prefill or a bigger batch lead to a new capture
//     rather than a stale replay, with the exact plain/capture/replay counts;
//   * a capture that fails part-way falls back to plain launches without running anything twice;
//   * decode steps allocate nothing on the device once warm, with graphs and without.
#include "cuda_test_util.hpp"

namespace {

using namespace ktest;

// n tokens: the fixture's golden ids, then a deterministic walk through the vocabulary.
std::vector<int32_t> tokens(const std::string& fx, size_t n) {
  std::vector<int32_t> ids = retnet::test::golden_ids(fx);
  const int64_t V = retnet::test::load_fixture(fx, 1)->info().vocab_size;
  for (size_t i = ids.size(); i < n; ++i) ids.push_back(int32_t((i * 7919 + 13) % size_t(V)));
  ids.resize(n);
  return ids;
}

struct Trace {
  std::vector<float> logits;      // every step's logits, concatenated
  std::vector<int64_t> positions; // position after every step
};

void record(Trace& tr, const retnet::Session& s) {
  const auto lg = s.logits();
  tr.logits.insert(tr.logits.end(), lg.begin(), lg.end());
  tr.positions.push_back(s.position());
}

struct Counts {
  uint64_t plain, captures, replays, failures;
};
Counts counts(const retnet::Model& m) {
  const retnet::CudaStepStats& st = cuda_backend_of(m).step_stats();
  return {st.plain.load(), st.captures.load(), st.replays.load(), st.failures.load()};
}
void expect_counts(const retnet::Model& m, Counts want, const char* when) {
  const Counts got = counts(m);
  EXPECT_EQ(got.plain, want.plain) << when;
  EXPECT_EQ(got.captures, want.captures) << when;
  EXPECT_EQ(got.replays, want.replays) << when;
  EXPECT_EQ(got.failures, want.failures) << when;
}

KTEST(CudaGraph, GraphDecodeEqualsPlainDecodeBitForBit) {
  KTEST_REQUIRE_DEVICE();
  constexpr size_t kPrefill = 5, kSteps = 64;
  // torchscale: 1/ρ changes every step; fla: ρ = 1, gated group norm.
  for (const std::string fx : {"ts_swish_scaled", "fla_base"}) {
    const std::vector<int32_t> ids = tokens(fx, kPrefill + kSteps);
    auto graphs = load_cuda_fixture(fx, test_cuda_options(true));
    auto plain = load_cuda_fixture(fx, test_cuda_options(false));
    auto cpu = retnet::test::load_fixture(fx, 1);
    std::vector<Trace> traces;
    for (const auto* m : {&graphs, &plain, &cpu}) {
      retnet::Session s(*m);
      s.prefill(std::span<const int32_t>(ids.data(), kPrefill));
      Trace tr;
      for (size_t t = kPrefill; t < ids.size(); ++t) {
        s.decode(ids[t]);
        record(tr, s);
      }
      traces.push_back(tr);
    }
    const Trace &g = traces[0], &p = traces[1], &c = traces[2];
    ASSERT_EQ(g.logits.size(), p.logits.size());
    EXPECT_EQ(count_mismatch(g.logits, p.logits), 0u) << fx << ": graph replay differs from plain launches";
    EXPECT_EQ(g.positions, p.positions) << fx;
    EXPECT_EQ(g.positions, c.positions) << fx;
    EXPECT_EQ(g.positions.back(), int64_t(kPrefill + kSteps)) << fx;
    const double err = retnet::test::rel_err(g.logits, c.logits);
    EXPECT_LE(err, kLogitTol) << fx;
    std::printf("[ measured ] %s, %zu graph-replayed steps vs cpu: max|d|/max|cpu| = %.2e\n", fx.c_str(), kSteps, err);
    // Step 1 plain (warm-up), step 2 captured and launched, steps 3..64 replayed.
    expect_counts(*graphs, {1, 1, kSteps - 1, 0}, "graphs on");
    expect_counts(*plain, {kSteps, 0, 0, 0}, "graphs off");
  }
}

KTEST(CudaGraph, NewBatchSizeOrMovedBuffersAreRecapturedNotReplayedStale) {
  KTEST_REQUIRE_DEVICE();
  const std::string fx = "ts_swish_scaled";
  const std::vector<int32_t> ids = tokens(fx, 96);
  auto graphs = load_cuda_fixture(fx, test_cuda_options(true));
  auto plain = load_cuda_fixture(fx, test_cuda_options(false));
  auto cpu = retnet::test::load_fixture(fx, 1);
  size_t next = 0;
  auto tok = [&] { return ids[next++ % ids.size()]; };
  std::vector<Trace> traces;
  for (const auto* m : {&graphs, &plain, &cpu}) {
    next = 0;
    Trace tr;
    retnet::Session a(*m), b(*m), c(*m);
    for (auto [s, n] : {std::pair{&a, size_t(3)}, {&b, size_t(6)}, {&c, size_t(1)}}) {
      std::vector<int32_t> p;
      for (size_t i = 0; i < n; ++i) p.push_back(tok());
      s->prefill(p);
    }
    auto decode_a = [&](int n) {
      for (int i = 0; i < n; ++i) {
        a.decode(tok());
        record(tr, a);
      }
    };
    auto decode_abc = [&](int n) {
      for (int i = 0; i < n; ++i) {
        std::vector<retnet::Session*> ss = {&a, &b, &c};
        const std::vector<int32_t> t = {tok(), tok(), tok()};
        retnet::Session::decode_batch(ss, t);
        for (auto* s : ss) record(tr, *s);
      }
    };
    const bool counted = m == &graphs;
    decode_a(4);  // B = 1: plain, capture, replay, replay
    if (counted) expect_counts(**m, {1, 1, 3, 0}, "after 4 single steps");
    decode_abc(3);  // B = 3 grows a's workspace: plain, capture, replay
    if (counted) expect_counts(**m, {2, 2, 5, 0}, "after 3 batched steps");
    decode_a(2);  // B = 1 again, but its graph used the old workspace: plain, capture
    if (counted) expect_counts(**m, {3, 3, 6, 0}, "after the batch");
    std::vector<int32_t> longer;
    for (int i = 0; i < 40; ++i) longer.push_back(tok());
    a.prefill(longer);  // a 40-row block moves the workspace again
    tr.positions.push_back(a.position());
    decode_a(5);  // plain, capture, replay ×3
    if (counted) expect_counts(**m, {4, 4, 10, 0}, "after a longer prefill");
    traces.push_back(tr);
  }
  EXPECT_EQ(count_mismatch(traces[0].logits, traces[1].logits), 0u) << "graph replay differs from plain launches";
  EXPECT_EQ(traces[0].positions, traces[1].positions);
  EXPECT_EQ(traces[0].positions, traces[2].positions);
  EXPECT_LE(retnet::test::rel_err(traces[0].logits, traces[2].logits), kLogitTol);
  expect_counts(*plain, {4 + 3 + 2 + 5, 0, 0, 0}, "graphs off");
}

KTEST(CudaGraph, BatchBeyondTheGemvRunsInPartsEachCaptured) {
  KTEST_REQUIRE_DEVICE();
  // 10 rows > kDecodeBatchRows: decode_batch runs parts of 8 and 2 rows (a wider product would be a
  // cuBLAS GEMM, whose sums differ from the GEMV's), each part its own step key and graph: run
  // plainly once, captured once, then replayed, without the two keys evicting each other.
  const std::string fx = "fla_bf16_tied";
  const std::vector<int32_t> ids = tokens(fx, 64);
  constexpr size_t kRows = 10, kSteps = 4;
  static_assert(kRows > size_t(retnet::kDecodeBatchRows) && kRows < 2 * size_t(retnet::kDecodeBatchRows));
  auto graphs = load_cuda_fixture(fx, test_cuda_options(true));
  auto plain = load_cuda_fixture(fx, test_cuda_options(false));
  auto cpu = retnet::test::load_fixture(fx, 1);
  std::vector<Trace> traces;
  for (const auto* m : {&graphs, &plain, &cpu}) {
    std::vector<std::unique_ptr<retnet::Session>> ss;
    std::vector<retnet::Session*> ptrs;
    for (size_t i = 0; i < kRows; ++i) {
      ss.push_back(std::make_unique<retnet::Session>(*m));
      ss.back()->prefill(std::span<const int32_t>(ids.data() + i, 1 + i % 3));
      ptrs.push_back(ss.back().get());
    }
    Trace tr;
    for (size_t step = 0; step < kSteps; ++step) {
      std::vector<int32_t> t;
      for (size_t i = 0; i < kRows; ++i) t.push_back(ids[20 + step * kRows + i]);
      retnet::Session::decode_batch(ptrs, t);
      for (auto* s : ptrs) record(tr, *s);
    }
    traces.push_back(tr);
  }
  EXPECT_EQ(count_mismatch(traces[0].logits, traces[1].logits), 0u) << "graph replay differs from plain launches";
  EXPECT_EQ(traces[0].positions, traces[2].positions);
  EXPECT_LE(retnet::test::rel_err(traces[0].logits, traces[2].logits), kLogitTol);
  expect_counts(*graphs, {2, 2, 2 * (kSteps - 1), 0}, "graphs on");
}

KTEST(CudaGraph, FailedCaptureFallsBackWithoutRunningTwice) {
  KTEST_REQUIRE_DEVICE();
  // A step that copies to the host cannot be captured. Each step doubles a, then reads it: a step
  // recorded before the refusal must be discarded, not run, or a would be doubled twice.
  retnet::CudaBackend be(test_cuda_options(true));
  constexpr size_t n = 64;
  float* a = be.alloc(n);
  float* b = be.alloc(n);
  const std::vector<float> ones(n, 1.5f);
  be.from_host(a, ones.data(), n);
  std::vector<float> out(n);
  std::vector<float> seen;
  for (int step = 0; step < 4; ++step) {
    be.run_step(7, [&] {
      // a += a through a copy: residual's x and y are __restrict__ on the device, so one buffer must
      // not be passed as both.
      be.copy(b, a, n);
      be.residual(a, b, 1.0f, n);
      be.to_host(out.data(), a, n);
    });
    seen.push_back(out[n - 1]);
  }
  EXPECT_EQ(seen, (std::vector<float>{3.f, 6.f, 12.f, 24.f}));
  const retnet::CudaStepStats& st = be.step_stats();
  EXPECT_EQ(st.failures.load(), 1u);
  EXPECT_EQ(st.captures.load(), 0u);
  EXPECT_EQ(st.plain.load(), 4u);  // warm-up, the failed capture's plain rerun, then plain launches
  be.release(b);
  be.release(a);
}

KTEST(CudaGraph, DecodeAllocatesNothingOnTheDevice) {
  KTEST_REQUIRE_DEVICE();
  const std::string fx = "fla_bf16_tied";
  const std::vector<int32_t> ids = tokens(fx, 32);
  for (bool graphs : {true, false}) {
    auto model = load_cuda_fixture(fx, test_cuda_options(graphs));
    retnet::Session s(model), t(model);
    s.prefill(std::span<const int32_t>(ids.data(), 4));
    t.prefill(std::span<const int32_t>(ids.data(), 2));
    // Warm: B = 1 plain, captured, replayed; B = 2 likewise.
    for (size_t i = 4; i < 7; ++i) s.decode(ids[i]);
    std::vector<retnet::Session*> both = {&s, &t};
    for (size_t i = 7; i < 10; ++i) retnet::Session::decode_batch(both, std::vector<int32_t>{ids[i], ids[i + 1]});
    for (size_t i = 10; i < 12; ++i) s.decode(ids[i]);  // B = 1 re-captured after the batch grew the workspace
    const uint64_t before = retnet::gpu::allocation_count();
    for (size_t i = 12; i < 28; ++i) s.decode(ids[i]);
    for (size_t i = 12; i < 20; i += 2)
      retnet::Session::decode_batch(both, std::vector<int32_t>{ids[i], ids[i + 1]});
    EXPECT_EQ(retnet::gpu::allocation_count(), before) << (graphs ? "graphs on" : "graphs off");
  }
}

// The step-input block is the only thing a decode step copies from the host: the per-model constants
// (θ, ln γ, γ) are device buffers the model uploaded once at load, so the ops take nothing else from
// host memory — one copy_h2d per step, single or batched, graphs or not (from the first, plain step
// of a key on).
KTEST(CudaGraph, DecodeCopiesOnlyItsStepInputsToTheDevice) {
  KTEST_REQUIRE_DEVICE();
  const std::string fx = "ts_swish_scaled";  // torchscale: 1/ρ per step in the block too
  const std::vector<int32_t> ids = tokens(fx, 10);
  for (bool graphs : {true, false}) {
    auto model = load_cuda_fixture(fx, test_cuda_options(graphs));
    retnet::Session s(model), t(model);
    s.prefill(std::span<const int32_t>(ids.data(), 2));
    t.prefill(std::span<const int32_t>(ids.data(), 3));
    // The first decode step of the model: where a constant first seen per call would be uploaded.
    const uint64_t before = retnet::gpu::h2d_copy_count();
    for (size_t i = 2; i < 6; ++i) s.decode(ids[i]);
    EXPECT_EQ(retnet::gpu::h2d_copy_count() - before, 4u) << "single steps, " << (graphs ? "graphs on" : "graphs off");
    std::vector<retnet::Session*> both = {&s, &t};
    const uint64_t batched = retnet::gpu::h2d_copy_count();
    for (size_t i = 6; i < 10; i += 2) retnet::Session::decode_batch(both, std::vector<int32_t>{ids[i], ids[i + 1]});
    EXPECT_EQ(retnet::gpu::h2d_copy_count() - batched, 2u)
        << "batched steps, " << (graphs ? "graphs on" : "graphs off");
  }
}

}  // namespace
