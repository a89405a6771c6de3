// Fuzz target: config.json text → ModelConfig (parse_config_text), both families. Either
// retnet::Error, or a configuration whose derived sizes are consistent (the model loader and the
// sessions size their buffers from these fields without re-checking them).
#include <cmath>
#include <cstdint>
#include <string>

#include "fuzz_check.hpp"
#include "model/config.hpp"
#include "retnet/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  retnet::ModelConfig c;
  try {
    c = retnet::parse_config_text(text, "fuzz/config.json");
  } catch (const retnet::Error&) {
    return 0;
  }
  FUZZ_CHECK(c.vocab_size >= 1 && c.d_model >= 1 && c.n_layers >= 1 && c.n_heads >= 1, "non-positive size");
  FUZZ_CHECK(c.head_dk >= 2 && c.head_dk % 2 == 0, "key dim per head %lld", (long long)c.head_dk);
  FUZZ_CHECK(c.head_dv >= 1 && c.ffn_dim >= 1, "value dim %lld, ffn %lld", (long long)c.head_dv, (long long)c.ffn_dim);
  FUZZ_CHECK(c.theta.size() == size_t(c.head_dk / 2) && c.theta64.size() == c.theta.size(), "theta size");
  FUZZ_CHECK(c.log_decay.size() == size_t(c.n_heads), "log_decay size");
  for (float t : c.theta) FUZZ_CHECK(std::isfinite(t) && t > 0, "theta %g", double(t));
  for (float d : c.log_decay) FUZZ_CHECK(std::isfinite(d) && d < 0, "log decay %g (decay must be in (0, 1))", double(d));
  FUZZ_CHECK(std::isfinite(c.norm_eps) && c.norm_eps >= 0, "norm eps");
  FUZZ_CHECK(std::isfinite(c.embed_scale) && std::isfinite(c.residual_alpha), "scales");
  FUZZ_CHECK(c.default_chunk_size >= 1, "chunk size %lld", (long long)c.default_chunk_size);
  // Per-session state and per-layer weights must be representable (the loader multiplies these).
  const double state = double(c.n_layers) * double(c.n_heads) * double(c.head_dk) * double(c.head_dv);
  FUZZ_CHECK(state < 9.2e18, "state elements overflow int64");
  return 0;
}
