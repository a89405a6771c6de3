// ModelInfo's derived counts against the checkpoint files themselves (safetensors headers read here
// with plain JSON, not through the loader).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "test_util.hpp"

namespace retnet::test {
namespace {

namespace fs = std::filesystem;

// Elements of the 2-D tensors of the layers (`layers.` in the name: q, k, v, g, o and FFN
// matrices; norms and decay buffers are 1-D) over every shard of a model directory.
uint64_t layer_matrix_elements(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".safetensors") continue;
    std::ifstream f(e.path(), std::ios::binary);
    uint64_t len = 0;
    f.read(reinterpret_cast<char*>(&len), 8);
    std::string header(len, '\0');
    f.read(header.data(), std::streamsize(len));
    const nlohmann::json h = nlohmann::json::parse(header);  // named: items() must not outlive it
    for (const auto& [name, t] : h.items()) {
      if (name == "__metadata__" || name.find("layers.") == std::string::npos || t["shape"].size() != 2) continue;
      n += t["shape"][0].get<uint64_t>() * t["shape"][1].get<uint64_t>();
    }
  }
  return n;
}

TEST(ModelInfo, LayerMatrixParamsCountEveryLayerMatrixOnce) {
  // Includes fla_fused_mlp (gate and up stored as one [2F, D] tensor, split at load) and the
  // sharded checkpoint; the bench's prefill FLOP count rests on this figure.
  for (const std::string& f : model_fixtures()) {
    const auto model = load_fixture(f);
    EXPECT_EQ(model->info().layer_matrix_params, layer_matrix_elements(fixture_dir(f))) << f;
    EXPECT_LT(model->info().layer_matrix_params, model->info().n_params) << f;
  }
}

}  // namespace
}  // namespace retnet::test
