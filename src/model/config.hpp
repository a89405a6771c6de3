// One internal description of a RetNet model, whichever family's config.json it came from.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/types.hpp"

namespace retnet {

// Which family file (model/family_*.cpp) parsed the config; hashed into the model fingerprint, so a
// value never changes meaning.
enum class Family : uint8_t {
  Torchscale,  // microsoft/torchscale and syncdoth/RetNet v2 (decoder_embed_dim configs)
  Fla,         // flash-linear-attention (hidden_size + attn_mode configs)
};

struct ModelConfig {
  Family family = Family::Torchscale;
  std::string source;  // "torchscale", "syncdoth", "fla" — for messages and info only

  int64_t vocab_size = 0;
  int64_t d_model = 0;   // D
  int64_t n_layers = 0;  // L
  int64_t n_heads = 0;   // H
  int64_t head_dk = 0;   // key/query dim per head
  int64_t head_dv = 0;   // value dim per head
  int64_t ffn_dim = 0;   // F (torchscale) / intermediate_size (fla)

  int64_t key_dim() const { return n_heads * head_dk; }
  int64_t value_dim() const { return n_heads * head_dv; }

  float norm_eps = 1e-6f;        // block RMSNorms
  float group_norm_eps = 1e-6f;  // per-head RMS norm of the retention output
  bool group_norm_weight = false;
  bool output_gate = true;      // silu(g) ⊙ norm(o); fla may turn it off
  Activation ffn_activation = Activation::Silu;
  bool normalize_before = true;  // pre-norm; torchscale post-norm when false
  float residual_alpha = 1.0f;   // deepnorm: (2L)^0.25
  float embed_scale = 1.0f;
  bool embed_norm = false;  // torchscale layernorm_embedding
  bool final_norm = true;
  bool tied_embeddings = false;
  bool fused_gate_up = false;  // old fla MLP: gate_proj holds [gate; up] as [2F, D]

  Pairing pairing = Pairing::Interleaved;
  // Retention normalisation: torchscale divides by sqrt(Σγ^t) and its per-mode denominators
  // (docs/reference.md §4); fla has none (ρ = 1).
  bool torchscale_norm = true;
  bool scale_on_q = false;  // dk^-0.5 on q (fla) rather than on k (torchscale)
  std::vector<float> theta;      // [dk/2] rotation frequencies (fp32, as the reference computes them)
  std::vector<double> theta64;   // [dk/2] the same frequencies evaluated in float64 (AngleMode::Exact)
  std::vector<float> log_decay;  // [H] ln γ_h (fp32)
  int64_t default_chunk_size = 64;

  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;
};

// Parses <dir>/config.json. Throws Error naming the key on anything missing or unsupported.
ModelConfig load_config(const std::string& model_dir);
ModelConfig parse_config_text(const std::string& text, const std::string& path_for_messages);

// Default rotation frequencies and decays of each family (fp32 arithmetic like the references).
std::vector<float> theta_linspace(int64_t dk);  // torchscale: 1 / 10000^linspace(0, 1, dk/2)
std::vector<float> theta_fla(int64_t dk);       // fla: 1 / 10000^(2i/dk)
std::vector<double> theta64_linspace(int64_t dk);
std::vector<double> theta64_fla(int64_t dk);
std::vector<float> log_decay_default(int64_t H);      // ln(1 - 2^(-5-h))
std::vector<float> log_decay_lm(int64_t H);           // syncdoth use_lm_decay

}  // namespace retnet
