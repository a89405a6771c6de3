// The memory plan adds up what each layer states it needs (backend: allocation padding and scratch;
// runtime: a session's buffers); the figures are those the plan had when it copied them.
#include <gtest/gtest.h>

#include <malloc.h>

#include <cstdint>
#include <string>
#include <vector>

#include "backend/cpu/kernels_cpu.hpp"
#include "model/memory_plan.hpp"
#include "runtime/model_impl.hpp"
#include "retnet/retnet.hpp"
#include "runtime/session_impl.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

LoadOptions cpu(int threads, const std::string& dtype = "") {
  LoadOptions o;
  o.device = Device::Cpu;
  o.threads = threads;
  o.dtype = dtype;
  return o;
}

void expect_plan(const MemoryPlan& p, uint64_t mapped, uint64_t owned, uint64_t vectors, uint64_t session,
                 uint64_t scratch) {
  EXPECT_EQ(p.mapped, mapped);
  EXPECT_EQ(p.owned, owned);
  EXPECT_EQ(p.vectors, vectors);
  EXPECT_EQ(p.session, session);
  EXPECT_EQ(p.scratch, scratch);
}

// The figures 13ce15b's plan gave when it copied the backend's padding and panel rows and the
// session's buffers; now each layer states them (a change to a layer's allocations must show here).
TEST(MemoryPlanLayers, FiguresAreThoseOfThePlanThatCopiedThem) {
  expect_plan(Model::load(bundled_dir(), cpu(1))->impl().memory, 11534336, 0, 10880, 25170896, 1048576);
  expect_plan(Model::load(bundled_dir(), cpu(2, "f32"))->impl().memory, 0, 23068672, 10880, 25170896, 2097152);
  expect_plan(Model::load(fixture_dir("ts_swish_scaled"), cpu(3))->impl().memory, 226176, 0, 1536, 1565004, 6550008);
  expect_plan(Model::load(fixture_dir("fla_base"), cpu(3))->impl().memory, 512000, 0, 1984, 2675536, 786432);
  RandomModelSpec sp;
  sp.family = "fla";
  sp.vocab_size = 1000;
  sp.hidden_size = 256;
  sp.layers = 2;
  sp.heads = 2;
  sp.value_dim = 1024;
  expect_plan(Model::random(sp, cpu(2))->impl().memory, 0, 6266880, 10752, 16159560, 4194304);
}

TEST(MemoryPlanLayers, TheLayersStateWhatTheyAllocate) {
  const auto model = Model::load(fixture_dir("ts_swish_scaled"), cpu(1));
  const Model::Impl& m = model->impl();
  Backend& be = *m.backend;
  // The runtime's figure is the plan's session.
  const ModelConfig& c = m.desc.cfg;
  EXPECT_EQ(planned_session_host_bytes(c, be), m.memory.session);
  EXPECT_EQ(prefill_block_rows(c.default_chunk_size), std::max<int64_t>(c.default_chunk_size, 512));
  EXPECT_EQ(prefill_block_rows(7), 518);  // whole chunks
  EXPECT_LT(session_host_bytes(c, be, 1), session_host_bytes(c, be, 2));
  // The CPU backend's allocation figure covers what alloc() really takes from the heap.
  for (uint64_t n : {1, 15, 16, 17, 1000, 4096}) {
    float* p = be.alloc(n);
    EXPECT_GE(malloc_usable_size(p), be.host_alloc_bytes(n) - 64) << n;  // the extra 64 covers the allocator
    EXPECT_GE(be.host_alloc_bytes(n), 4 * n) << n;
    be.release(p);
  }
  EXPECT_EQ(be.host_alloc_bytes(uint64_t(1) << 63), UINT64_MAX);  // saturates
  // retention_chunk_cols grows its scratch to exactly the figure it states.
  for (const auto& [C, n] : {std::pair<int64_t, int64_t>{4, 4}, {16, 200}, {3, 128}}) {
    const int64_t T = 2 * C, H = 1, dk = 4, dv = n;
    std::vector<float> q(size_t(T * dk), 0.1f), k(size_t(T * dk), 0.2f), v(size_t(T * dv), 0.3f),
        state(size_t(dk * dv), 0.f), out(size_t(T * dv)), scratch;
    const float log_decay = -0.1f;
    RetentionChunkArgs a;
    a.q = q.data();
    a.k = k.data();
    a.v = v.data();
    a.state = state.data();
    a.out = out.data();
    a.T = T;
    a.H = H;
    a.dk = dk;
    a.dv = dv;
    a.chunk = C;
    a.log_decay = &log_decay;
    cpu::retention_chunk_cols(a, 0, 0, n, 0, cpu::ChunkNormParts{}, scratch);
    EXPECT_EQ(scratch.size(), cpu::retention_chunk_scratch_floats(C, n)) << C << " " << n;
  }
}

}  // namespace
}  // namespace retnet::test
