// The fla family: flash-linear-attention RetNet checkpoints (hidden_size + attn_mode configs;
// docs/reference.md §5).
#include "model/family.hpp"
#include "model/weight_binder.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

bool detect(const ConfigKeys& c) {
  return c.has("hidden_size") &&
         (c.has("attn_mode") || c.has("expand_v") || c.has("expand_k") || c.has("num_hidden_layers"));
}

ModelConfig parse(const ConfigKeys& c) {
  ModelConfig m;
  m.family = Family::Fla;
  m.source = "fla";
  m.vocab_size = c.req_int("vocab_size");
  m.d_model = c.req_int("hidden_size", 1, kMaxWidth);
  m.n_layers = c.req_int("num_hidden_layers", 1, kMaxLayers);
  m.n_heads = c.req_int("num_heads", 1, kMaxLayers);
  const double ek = c.opt_num("expand_k", 1.0), ev = c.opt_num("expand_v", 2.0);
  if (!(ek > 0) || !(ev > 0) || ek > 64 || ev > 64) throw Error(c.path() + ": expand_k/expand_v must be positive");
  const int64_t key_dim = int64_t(double(m.d_model) * ek);  // python int() truncation
  const int64_t value_dim = int64_t(double(m.d_model) * ev);
  if (key_dim > kMaxWidth || value_dim > kMaxWidth)
    throw Error(c.path() + ": expand_k/expand_v give key_dim " + std::to_string(key_dim) + " / value_dim " +
                std::to_string(value_dim) + ", above the limit of " + std::to_string(kMaxWidth));
  if (key_dim % m.n_heads || value_dim % m.n_heads)
    throw Error(c.path() + ": key_dim " + std::to_string(key_dim) + " / value_dim " + std::to_string(value_dim) +
                " not divisible by num_heads " + std::to_string(m.n_heads));
  m.head_dk = key_dim / m.n_heads;
  m.head_dv = value_dim / m.n_heads;
  if (m.head_dk < 1 || m.head_dv < 1)
    throw Error(c.path() + ": key dim per head " + std::to_string(m.head_dk) + " / value dim per head " +
                std::to_string(m.head_dv) + " must be positive (expand_k/expand_v too small)");
  if (m.head_dk % 2 != 0) throw Error(c.path() + ": key dim per head " + std::to_string(m.head_dk) + " must be even");
  if (c.has("num_kv_heads") && c.opt_int("num_kv_heads", m.n_heads, 1) != m.n_heads)
    c.unsupported("num_kv_heads", "grouped key/value heads are not supported");
  if (c.has("feature_map")) c.unsupported("feature_map", "feature maps are not supported");
  if (c.opt_bool("use_short_conv", false)) c.unsupported("use_short_conv", "short convolutions are not supported");
  if (c.has("attn")) c.unsupported("attn", "hybrid softmax-attention layers are not supported");
  if (c.has("attnres_block_size")) c.unsupported("attnres_block_size", "attention residuals are not supported");
  const std::string mode = c.opt_str("attn_mode", "chunk");
  if (mode != "chunk" && mode != "fused_chunk" && mode != "parallel" && mode != "fused_recurrent")
    c.unsupported("attn_mode", "'" + mode + "'");
  if (c.opt_str("hidden_act", "swish") != "swish" && c.opt_str("hidden_act", "swish") != "silu")
    c.unsupported("hidden_act", "fla RetNet MLPs use swish");
  m.ffn_activation = Activation::Silu;
  if (c.has("intermediate_size")) {
    m.ffn_dim = c.req_int("intermediate_size", 1, kMaxWidth);
  } else {
    const double ratio = c.opt_num("hidden_ratio", 2.0);
    if (!(ratio > 0) || ratio > 64) throw Error(c.path() + ": key 'hidden_ratio' must be in (0, 64]");
    int64_t i = int64_t(double(m.d_model) * ratio * 2.0 / 3.0);
    m.ffn_dim = 256 * ((i + 255) / 256);
    if (m.ffn_dim < 1)
      throw Error(c.path() + ": hidden_ratio " + std::to_string(ratio) + " leaves the MLP with no channels");
    if (m.ffn_dim > kMaxWidth)
      throw Error(c.path() + ": hidden_ratio " + std::to_string(ratio) + " gives an MLP of " +
                  std::to_string(m.ffn_dim) + " channels, above the limit of " + std::to_string(kMaxWidth));
  }
  double eps = c.opt_num("norm_eps", c.opt_num("rms_norm_eps", 1e-6));
  check_eps(c, "norm_eps", eps);
  m.norm_eps = m.group_norm_eps = float(eps);
  m.group_norm_weight = c.opt_bool("elementwise_affine", true);
  m.output_gate = c.opt_bool("use_output_gate", true);
  m.embed_scale = 1.0f;
  m.embed_norm = false;
  m.normalize_before = true;
  m.final_norm = true;
  m.tied_embeddings = c.opt_bool("tie_word_embeddings", false);
  m.log_decay = log_decay_default(m.n_heads);
  m.default_chunk_size = 64;
  return m;
}

void bind(ModelDesc& d, WeightBinder& b) {
  ModelConfig& c = d.cfg;
  ModelWeights& m = d.weights;
  const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim, V = c.vocab_size;
  m.embed = b.matrix("model.embeddings.weight", V, D);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string l = "model.layers." + std::to_string(i) + ".";
    LayerWeights w;
    w.attn_norm = b.vector(l + "attn_norm.weight", D);
    w.q = b.matrix(l + "attn.q_proj.weight", KD, D);
    w.k = b.matrix(l + "attn.k_proj.weight", KD, D);
    w.v = b.matrix(l + "attn.v_proj.weight", VD, D);
    if (c.output_gate) w.g = b.matrix(l + "attn.g_proj.weight", VD, D);
    w.o = b.matrix(l + "attn.o_proj.weight", D, VD);
    if (c.group_norm_weight) {
      const std::string fused = l + "attn.g_norm_swish_gate.weight", plain = l + "attn.g_norm.weight";
      w.gn_weight = b.vector(b.find(fused) ? fused : plain, c.head_dv);
    }
    w.ffn_norm = b.vector(l + "mlp_norm.weight", D);
    const TensorInfo* gate = b.find(l + "mlp.gate_proj.weight");
    if (!b.find(l + "mlp.up_proj.weight") && gate && gate->shape == std::vector<int64_t>{2 * F, D}) {
      // Before 2025-02 fla fused [gate; up] into one gate_proj [2F, D] (docs/reference.md §5).
      c.fused_gate_up = true;
      w.ffn_act = b.matrix_rows(l + "mlp.gate_proj.weight", 2 * F, D, 0, F);
      w.ffn_lin = b.matrix_rows(l + "mlp.gate_proj.weight", 2 * F, D, F, F);
    } else {
      w.ffn_act = b.matrix(l + "mlp.gate_proj.weight", F, D);
      w.ffn_lin = b.matrix(l + "mlp.up_proj.weight", F, D);
    }
    w.ffn_down = b.matrix(l + "mlp.down_proj.weight", D, F);
    m.layers.push_back(w);
  }
  m.final_norm = b.vector("model.norm.weight", D);
  if (c.tied_embeddings) {
    m.lm_head = m.embed;
    if (b.find("lm_head.weight")) b.ignore("lm_head.weight");
  } else {
    m.lm_head = b.matrix("lm_head.weight", V, D);
  }
}

// fla's defaults: the group norm's weight on, no embedding scale or norm.
void random_defaults(ModelConfig& c) {
  c.group_norm_weight = true;
  c.embed_scale = 1.0f;
  c.embed_norm = false;
}

}  // namespace

// Rotation pairs (p, p + dk/2) at 1/10000^(2i/dk); no row normalisation (ρ = 1); the 1/sqrt(dk)
// scale on q.
const ModelFamily kFlaFamily{Family::Fla,
                             "fla",
                             "'hidden_size' with 'attn_mode' (flash-linear-attention)",
                             detect,
                             parse,
                             bind,
                             random_defaults,
                             Pairing::Half,
                             /*torchscale_norm=*/false,
                             /*scale_on_q=*/true,
                             theta_fla,
                             theta64_fla};

}  // namespace retnet
