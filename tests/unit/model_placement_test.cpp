// Placement (src/runtime/model_placement.cpp): the model layer's backend-neutral description made
// resident on a backend. The per-model constants (θ in fp32 and fp64, ln γ, γ) are backend buffers the
// placed model owns, uploaded once, holding the description's values bit for bit (they are copies, not
// recomputations: any difference is a bug, so the comparison is exact); the description's host views
// are placement's input and are cleared once the backend holds its copies.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/model_impl.hpp"
#include "test_util.hpp"

namespace retnet::test {
namespace {

template <class T>
void expect_copy(const T* placed, const std::vector<T>& host, const char* what) {
  ASSERT_NE(placed, nullptr) << what;
  ASSERT_FALSE(host.empty()) << what;
  EXPECT_NE(static_cast<const void*>(placed), static_cast<const void*>(host.data())) << what << ": not a copy";
  EXPECT_EQ(reinterpret_cast<uintptr_t>(placed) % alignof(T), 0u) << what;
  EXPECT_EQ(std::memcmp(placed, host.data(), host.size() * sizeof(T)), 0) << what;
}

TEST(ModelPlacement, ConstantsAreModelOwnedCopiesOfTheDescription) {
  for (const std::string fx : {"fla_base", "ts_swish_scaled"}) {
    SCOPED_TRACE(fx);
    const auto model = load_fixture(fx, 1);
    const Model::Impl& m = model->impl();
    const ModelConfig& c = m.desc.cfg;
    ASSERT_EQ(c.theta.size(), size_t(c.head_dk / 2));
    ASSERT_EQ(c.theta64.size(), size_t(c.head_dk / 2));
    ASSERT_EQ(m.desc.gamma.size(), size_t(c.n_heads));
    expect_copy(m.constants.theta32, c.theta, "theta32");
    expect_copy(m.constants.theta64, c.theta64, "theta64");
    expect_copy(m.constants.log_decay, c.log_decay, "log_decay");
    expect_copy(m.constants.gamma, m.desc.gamma, "gamma");
    EXPECT_EQ(m.owned_constants.size(), 4u);
  }
}

TEST(ModelPlacement, TheDescriptionsHostViewsArePlacementsInput) {
  const auto model = load_fixture("fla_base", 1);
  const Model::Impl& m = model->impl();
  const ModelConfig& c = m.desc.cfg;
  // Placed: every layer, its norm vectors as backend buffers of the model's own.
  ASSERT_EQ(m.weights.layers.size(), size_t(c.n_layers));
  size_t vectors = (m.weights.embed_norm ? 1 : 0) + (m.weights.final_norm ? 1 : 0);
  for (const LayerWeights& l : m.weights.layers) {
    EXPECT_NE(l.q.data, nullptr);
    EXPECT_NE(l.attn_norm, nullptr);
    EXPECT_NE(l.ffn_norm, nullptr);
    vectors += 2 + (l.gn_weight ? 1 : 0);
  }
  EXPECT_EQ(m.owned_f32.size(), vectors);
  // The description no longer holds views (some were into buffers dropped once copied).
  EXPECT_TRUE(m.desc.weights.layers.empty());
  EXPECT_EQ(m.desc.weights.embed.data, nullptr);
  EXPECT_TRUE(m.desc.owned_vectors.empty());
}

// The memory a load plans is the model's own needs plus what the backend and the session state, so
// a backend that keeps everything in host memory adds its figures to the description's.
TEST(ModelPlacement, ThePlanAddsTheBackendsFiguresToTheModelsNeeds) {
  const auto model = load_fixture("ts_swish_scaled", 1);
  const Model::Impl& m = model->impl();
  const MemoryPlan p = plan_model_memory(m.desc, *m.backend);
  EXPECT_EQ(p.mapped, m.desc.needs.mapped);
  EXPECT_EQ(p.owned, m.desc.needs.owned);
  uint64_t vectors = 0;
  for (const ModelNeeds::Vectors& v : m.desc.needs.vectors) vectors += v.count * m.backend->host_alloc_bytes(v.floats);
  EXPECT_EQ(p.vectors, vectors);
  EXPECT_GT(p.session, 0u);
  EXPECT_EQ(p.total(), m.memory.total());
}

}  // namespace
}  // namespace retnet::test
