// The torchscale family: microsoft/torchscale and syncdoth/RetNet v2 checkpoints (decoder_embed_dim
// configs; docs/reference.md §5).
#include <cmath>

#include "common/logger.hpp"
#include "model/family.hpp"
#include "model/weight_binder.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

bool detect(const ConfigKeys& c) { return c.has("decoder_embed_dim") || c.has("qk_dim"); }

ModelConfig parse(const ConfigKeys& c) {
  ModelConfig m;
  m.family = Family::Torchscale;
  if (c.has("qk_dim") || c.has("v_dim"))
    c.unsupported("qk_dim", "syncdoth v1 schema (xPos, unnormalised GroupNorm) is not supported");
  if (c.has("retnet_stability_update"))
    c.unsupported("retnet_stability_update", "RetNet-XATL configs are not supported");
  m.source = c.has("model_type") ? "syncdoth" : "torchscale";
  m.vocab_size = c.req_int("vocab_size");
  m.d_model = c.req_int("decoder_embed_dim", 1, kMaxWidth);
  const int64_t vd = c.req_int("decoder_value_embed_dim", 1, kMaxWidth);
  m.ffn_dim = c.req_int("decoder_ffn_embed_dim", 1, kMaxWidth);
  m.n_layers = c.req_int("decoder_layers", 1, kMaxLayers);
  m.n_heads = c.req_int("decoder_retention_heads", 1, kMaxLayers);
  if (m.d_model % m.n_heads != 0)
    throw Error(c.path() + ": decoder_embed_dim " + std::to_string(m.d_model) +
                " is not divisible by decoder_retention_heads " + std::to_string(m.n_heads));
  if (vd % m.n_heads != 0)
    throw Error(c.path() + ": decoder_value_embed_dim " + std::to_string(vd) +
                " is not divisible by decoder_retention_heads " + std::to_string(m.n_heads));
  m.head_dk = m.d_model / m.n_heads;
  m.head_dv = vd / m.n_heads;
  if (m.head_dk % 2 != 0)
    throw Error(c.path() + ": key dim per head " + std::to_string(m.head_dk) + " must be even (rotation pairs)");

  m.ffn_activation = parse_activation(c, "activation_fn", c.opt_str("activation_fn", "gelu"));
  if (!c.opt_bool("use_glu", true)) c.unsupported("use_glu", "only the GLU feed-forward (use_glu: true) is supported");
  if (c.opt_bool("multiway", false)) c.unsupported("multiway", "multiway networks are not supported");
  if (c.opt_int("moe_freq", 0) > 0) c.unsupported("moe_freq", "mixture-of-experts layers are not supported");
  const double eps = c.opt_num("layernorm_eps", 1e-6);
  check_eps(c, "layernorm_eps", eps);
  m.norm_eps = m.group_norm_eps = float(eps);
  m.embed_scale = c.opt_bool("no_scale_embedding", true) ? 1.0f : float(std::sqrt(double(m.d_model)));
  m.embed_norm = c.opt_bool("layernorm_embedding", false);
  // RetNetConfig's post-init: deepnorm forces post-norm, else subln (default on) forces pre-norm.
  const bool deepnorm = c.opt_bool("deepnorm", false);
  const bool subln = c.opt_bool("subln", true);
  m.normalize_before = deepnorm ? false : (subln ? true : c.opt_bool("decoder_normalize_before", true));
  m.residual_alpha = deepnorm ? float(std::pow(2.0 * double(m.n_layers), 0.25)) : 1.0f;
  m.final_norm = m.normalize_before;
  m.tied_embeddings = c.opt_bool("share_decoder_input_output_embed", false) || c.opt_bool("tie_word_embeddings", false);
  if (c.opt_bool("no_output_layer", false))
    c.unsupported("no_output_layer", "a model without an output layer cannot produce logits");
  m.group_norm_weight = false;
  m.log_decay = c.opt_bool("use_lm_decay", false) ? log_decay_lm(m.n_heads) : log_decay_default(m.n_heads);
  m.default_chunk_size = c.opt_int("recurrent_chunk_size", 512, 1);
  return m;
}

// Stored rotation/decay buffers of torchscale/syncdoth checkpoints (P2, P11): preferred over our
// reconstruction because PyTorch's fp32 linspace/pow can differ from ours in the last ulp.
void read_rel_pos_buffers(WeightBinder& b, ModelConfig& cfg, const std::string& prefix) {
  const std::string an = prefix + "retnet_rel_pos.angle", dn = prefix + "retnet_rel_pos.decay";
  if (const TensorInfo* a = b.find(an)) {
    b.ignore(an);
    if (a->shape != std::vector<int64_t>{cfg.head_dk})
      throw Error(a->file + ": tensor '" + an + "' has shape " + a->shape_str() + ", expected [" +
                  std::to_string(cfg.head_dk) + "]");
    if (a->dtype != DType::F32) {
      if (!b.dry_)
        lib_log().warn("{}: '{}' is stored as {} (model saved after casting); recomputing the angles in fp32", b.dir(),
                       an, dtype_name(a->dtype));
    } else {
      for (int64_t p = 0; p < cfg.head_dk / 2; ++p) {
        const float x0 = load_as_f32(a->data, a->dtype, size_t(2 * p)),
                    x1 = load_as_f32(a->data, a->dtype, size_t(2 * p + 1));
        if (x0 != x1 || !(x0 > 0.f) || !std::isfinite(x0))
          throw Error(a->file + ": tensor '" + an + "' is not an interleaved-duplicated positive frequency vector");
        if (x0 != cfg.theta[size_t(p)]) cfg.theta64[size_t(p)] = double(x0);
        cfg.theta[size_t(p)] = x0;
      }
    }
  }
  if (const TensorInfo* d = b.find(dn)) {
    b.ignore(dn);
    if (d->shape != std::vector<int64_t>{cfg.n_heads})
      throw Error(d->file + ": tensor '" + dn + "' has shape " + d->shape_str() + ", expected [" +
                  std::to_string(cfg.n_heads) + "]");
    if (d->dtype != DType::F32) {
      if (!b.dry_)
        lib_log().warn("{}: '{}' is stored as {}; recomputing the decays in fp32", b.dir(), dn, dtype_name(d->dtype));
    } else {
      for (int64_t h = 0; h < cfg.n_heads; ++h) {
        const float x = load_as_f32(d->data, d->dtype, size_t(h));
        if (!(x <= 0.f) || !std::isfinite(x))
          throw Error(d->file + ": tensor '" + dn + "' holds a decay that is not ln γ ≤ 0");
        cfg.log_decay[size_t(h)] = x;
      }
    }
  }
}

void bind(ModelDesc& d, WeightBinder& b) {
  ModelConfig& c = d.cfg;
  ModelWeights& m = d.weights;
  std::string p;
  if (b.find("embed_tokens.weight")) p = "";
  else if (b.find("model.embed_tokens.weight")) p = "model.";
  else if (b.find("decoder.embed_tokens.weight")) p = "decoder.";
  else
    throw Error(
        b.dir() +
        ": missing tensor 'embed_tokens.weight' (looked for it with no prefix and with 'model.' and 'decoder.')");
  const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim, V = c.vocab_size;
  m.embed = b.matrix(p + "embed_tokens.weight", V, D);
  if (c.embed_norm) m.embed_norm = b.vector(p + "layernorm_embedding.weight", D);
  b.refuse_if_present(p + "layers.0.retention.q_proj.bias",
                      "projection biases (torchscale before 2023-09-28) are not supported");
  b.refuse_if_present(p + "layers.0.retention_layer_norm.bias",
                      "LayerNorm block norms (torchscale before 2023-09-28) are not supported");
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string l = p + "layers." + std::to_string(i) + ".";
    LayerWeights w;
    w.q = b.matrix(l + "retention.q_proj.weight", KD, D);
    w.k = b.matrix(l + "retention.k_proj.weight", KD, D);
    w.v = b.matrix(l + "retention.v_proj.weight", VD, D);
    w.g = b.matrix(l + "retention.g_proj.weight", VD, D);
    w.o = b.matrix(l + "retention.out_proj.weight", D, VD);
    w.attn_norm = b.vector(l + "retention_layer_norm.weight", D);
    w.ffn_norm = b.vector(l + "final_layer_norm.weight", D);
    w.ffn_act = b.matrix(l + "ffn.fc1.weight", F, D);
    w.ffn_lin = b.matrix(l + "ffn.gate.weight", F, D);
    w.ffn_down = b.matrix(l + "ffn.fc2.weight", D, F);
    m.layers.push_back(w);
  }
  if (c.final_norm) m.final_norm = b.vector(p + "layer_norm.weight", D);
  if (c.tied_embeddings) {
    m.lm_head = m.embed;
    for (const std::string& n : {std::string("lm_head.weight"), p + "output_projection.weight"})
      if (b.find(n)) b.ignore(n);  // a tied head saved anyway is the same tensor
  } else if (b.find("lm_head.weight")) {
    m.lm_head = b.matrix("lm_head.weight", V, D);
  } else if (b.find(p + "output_projection.weight")) {
    m.lm_head = b.matrix(p + "output_projection.weight", V, D);
  } else {
    throw Error(b.dir() + ": missing tensor 'lm_head.weight' (or '" + p +
                "output_projection.weight'), and config.json does not tie the embeddings");
  }
  read_rel_pos_buffers(b, c, p);
  if (!p.empty()) b.ignore(p + "version");
  b.ignore("decoder.version");
}

// syncdoth conventions at their most exercising: sqrt(D) embedding scale and the embedding norm on.
void random_defaults(ModelConfig& c) {
  c.group_norm_weight = false;
  c.embed_scale = std::sqrt(float(c.d_model));
  c.embed_norm = true;
}

}  // namespace

// Interleaved rotation pairs at linspace frequencies; rows normalised by sqrt(Σγ^t) and the per-mode
// denominators; the 1/sqrt(dk) scale on k.
const ModelFamily kTorchscaleFamily{Family::Torchscale,
                                    "torchscale",
                                    "'decoder_embed_dim' (torchscale/syncdoth)",
                                    detect,
                                    parse,
                                    bind,
                                    random_defaults,
                                    Pairing::Interleaved,
                                    /*torchscale_norm=*/true,
                                    /*scale_on_q=*/false,
                                    theta_linspace,
                                    theta64_linspace};

}  // namespace retnet
