#include "model/config.hpp"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/json_file.hpp"
#include "retnet/error.hpp"

namespace retnet {

using json = nlohmann::json;

namespace {

// Bounds on sizes, far above any released RetNet (widths are ≤ 16K, heads ≤ 64, layers ≤ 128), that
// keep hostile configs from doing harm before a weight is read: the rotation tables are built from
// the config alone (a decoder_embed_dim of 2^31 made parsing allocate 12 GB), and the loader and
// sessions multiply these sizes (L·H·dk·dv, T·vocab) in int64, which stays far from overflow with them.
constexpr int64_t kMaxWidth = int64_t(1) << 20;   // hidden, key/value dim, FFN dim
constexpr int64_t kMaxLayers = int64_t(1) << 16;  // layers, heads

class Keys {
 public:
  Keys(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  bool has(const char* k) const { return j_.contains(k) && !j_[k].is_null(); }

  int64_t req_int(const char* k, int64_t min_value = 1, int64_t max_value = int64_t(1) << 31) const {
    if (!has(k)) throw Error(path_ + ": required key '" + k + "' is missing");
    return get_int(k, min_value, max_value);
  }
  int64_t opt_int(const char* k, int64_t def, int64_t min_value = 0) const {
    return has(k) ? get_int(k, min_value, int64_t(1) << 31) : def;
  }
  double opt_num(const char* k, double def) const {
    if (!has(k)) return def;
    if (!j_[k].is_number()) throw Error(path_ + ": key '" + std::string(k) + "' must be a number");
    return j_[k].get<double>();
  }
  bool opt_bool(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!j_[k].is_boolean()) throw Error(path_ + ": key '" + std::string(k) + "' must be true or false");
    return j_[k].get<bool>();
  }
  std::string opt_str(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!j_[k].is_string()) throw Error(path_ + ": key '" + std::string(k) + "' must be a string");
    return j_[k].get<std::string>();
  }
  [[noreturn]] void unsupported(const std::string& k, const std::string& why) const {
    throw Error(path_ + ": unsupported option '" + k + "': " + why);
  }
  std::vector<int64_t> int_list(const char* k) const {
    std::vector<int64_t> v;
    if (!has(k)) return v;
    const json& x = j_[k];
    if (x.is_number_integer()) {
      v.push_back(x.get<int64_t>());
    } else if (x.is_array()) {
      for (const json& e : x) {
        if (!e.is_number_integer()) throw Error(path_ + ": key '" + std::string(k) + "' must hold integers");
        v.push_back(e.get<int64_t>());
      }
    } else {
      throw Error(path_ + ": key '" + std::string(k) + "' must be an integer or a list of integers");
    }
    return v;
  }
  const std::string& path() const { return path_; }

 private:
  int64_t get_int(const char* k, int64_t min_value, int64_t max_value) const {
    const json& v = j_[k];
    if (!v.is_number_integer()) throw Error(path_ + ": key '" + std::string(k) + "' must be an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(max_value))  // beyond int64: no wrap-around
      throw Error(path_ + ": key '" + std::string(k) + "' = " + v.dump() + " is out of range [" +
                  std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
    int64_t x = v.get<int64_t>();
    if (x < min_value || x > max_value)
      throw Error(path_ + ": key '" + std::string(k) + "' = " + std::to_string(x) + " is out of range [" +
                  std::to_string(min_value) + ", " + std::to_string(max_value) + "]");
    return x;
  }
  const json& j_;
  std::string path_;
};

Activation parse_activation(const Keys& c, const char* key, const std::string& v) {
  if (v == "swish" || v == "silu") return Activation::Silu;
  if (v == "gelu") return Activation::Gelu;
  c.unsupported(key, "activation '" + v + "' (swish/silu and gelu are)");
}

void check_eps(const Keys& c, const char* key, double eps) {
  if (!(eps >= 0.0) || eps > 1.0) throw Error(c.path() + ": key '" + std::string(key) + "' must be in [0, 1]");
}

ModelConfig parse_torchscale(const Keys& c) {
  ModelConfig m;
  m.family = Family::Torchscale;
  if (c.has("qk_dim") || c.has("v_dim")) c.unsupported("qk_dim", "syncdoth v1 schema (xPos, unnormalised GroupNorm) is not supported");
  if (c.has("retnet_stability_update")) c.unsupported("retnet_stability_update", "RetNet-XATL configs are not supported");
  m.source = c.has("model_type") ? "syncdoth" : "torchscale";
  m.vocab_size = c.req_int("vocab_size");
  m.d_model = c.req_int("decoder_embed_dim", 1, kMaxWidth);
  const int64_t vd = c.req_int("decoder_value_embed_dim", 1, kMaxWidth);
  m.ffn_dim = c.req_int("decoder_ffn_embed_dim", 1, kMaxWidth);
  m.n_layers = c.req_int("decoder_layers", 1, kMaxLayers);
  m.n_heads = c.req_int("decoder_retention_heads", 1, kMaxLayers);
  if (m.d_model % m.n_heads != 0)
    throw Error(c.path() + ": decoder_embed_dim " + std::to_string(m.d_model) + " is not divisible by decoder_retention_heads " + std::to_string(m.n_heads));
  if (vd % m.n_heads != 0)
    throw Error(c.path() + ": decoder_value_embed_dim " + std::to_string(vd) + " is not divisible by decoder_retention_heads " + std::to_string(m.n_heads));
  m.head_dk = m.d_model / m.n_heads;
  m.head_dv = vd / m.n_heads;
  if (m.head_dk % 2 != 0) throw Error(c.path() + ": key dim per head " + std::to_string(m.head_dk) + " must be even (rotation pairs)");

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
  if (c.opt_bool("no_output_layer", false)) c.unsupported("no_output_layer", "a model without an output layer cannot produce logits");
  m.pairing = Pairing::Interleaved;
  m.torchscale_norm = true;
  m.scale_on_q = false;
  m.group_norm_weight = false;
  m.theta = theta_linspace(m.head_dk);
  m.theta64 = theta64_linspace(m.head_dk);
  m.log_decay = c.opt_bool("use_lm_decay", false) ? log_decay_lm(m.n_heads) : log_decay_default(m.n_heads);
  m.default_chunk_size = c.opt_int("recurrent_chunk_size", 512, 1);
  return m;
}

ModelConfig parse_fla(const Keys& c) {
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
    if (m.ffn_dim < 1) throw Error(c.path() + ": hidden_ratio " + std::to_string(ratio) + " leaves the MLP with no channels");
    if (m.ffn_dim > kMaxWidth)
      throw Error(c.path() + ": hidden_ratio " + std::to_string(ratio) + " gives an MLP of " + std::to_string(m.ffn_dim) +
                  " channels, above the limit of " + std::to_string(kMaxWidth));
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
  m.pairing = Pairing::Half;
  m.torchscale_norm = false;
  m.scale_on_q = true;
  m.theta = theta_fla(m.head_dk);
  m.theta64 = theta64_fla(m.head_dk);
  m.log_decay = log_decay_default(m.n_heads);
  m.default_chunk_size = 64;
  return m;
}

}  // namespace

std::vector<float> theta_linspace(int64_t dk) {
  // torch.linspace(0, 1, n) in fp32 fills the first half from the start and the second half from
  // the end point; then 1 / 10000 ** x, all in fp32 (retnet-reference P2).
  const int64_t n = dk / 2;
  std::vector<float> t(size_t(n), 1.0f);
  if (n == 1) return t;  // linspace(0, 1, 1) = [0]
  const float step = (1.0f - 0.0f) / float(n - 1);
  const int64_t halfway = n / 2;
  for (int64_t i = 0; i < n; ++i) {
    float x = i < halfway ? 0.0f + step * float(i) : 1.0f - step * float(n - i - 1);
    t[size_t(i)] = 1.0f / float(std::pow(10000.0, double(x)));  // pow as torch's (correctly rounded), then fp32 1/x
  }
  return t;
}

std::vector<float> theta_fla(int64_t dk) {
  std::vector<float> t(static_cast<size_t>(dk / 2));
  for (int64_t i = 0; i < dk / 2; ++i) t[size_t(i)] = 1.0f / float(std::pow(10000.0, double(float(2 * i) / float(dk))));
  return t;
}

std::vector<double> theta64_linspace(int64_t dk) {
  const int64_t n = dk / 2;
  std::vector<double> t(size_t(n), 1.0);
  for (int64_t i = 0; n > 1 && i < n; ++i) t[size_t(i)] = std::pow(10000.0, -double(i) / double(n - 1));
  return t;
}

std::vector<double> theta64_fla(int64_t dk) {
  std::vector<double> t(static_cast<size_t>(dk / 2));
  for (int64_t i = 0; i < dk / 2; ++i) t[size_t(i)] = std::pow(10000.0, -double(2 * i) / double(dk));
  return t;
}

std::vector<float> log_decay_default(int64_t H) {
  std::vector<float> d(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) d[size_t(h)] = std::log(1.0f - std::exp2(-5.0f - float(h)));
  return d;
}

std::vector<float> log_decay_lm(int64_t H) {
  // syncdoth use_lm_decay: ln(1 - exp(linspace(ln 1/32, ln 1/512, H))) in fp32.
  const float s = std::log(1.0f / 32.0f), e = std::log(1.0f / 512.0f);
  std::vector<float> d(static_cast<size_t>(H));
  const float step = H > 1 ? (e - s) / float(H - 1) : 0.0f;
  const int64_t halfway = H / 2;
  for (int64_t i = 0; i < H; ++i) {
    float x = (H == 1) ? s : (i < halfway ? s + step * float(i) : e - step * float(H - i - 1));
    d[size_t(i)] = std::log(1.0f - std::exp(x));
  }
  return d;
}

ModelConfig parse_config_text(const std::string& text, const std::string& path) {
  const json j = parse_json_text(text, path);  // nesting bounded before parsing
  if (!j.is_object()) throw Error(path + ": config is not a JSON object");
  Keys c(j, path);
  const std::string mt = c.opt_str("model_type", "retnet");
  if (mt != "retnet") throw Error(path + ": unknown model_type '" + mt + "' (expected 'retnet')");
  ModelConfig m;
  if (c.has("decoder_embed_dim") || c.has("qk_dim")) {
    m = parse_torchscale(c);
  } else if (c.has("hidden_size") && (c.has("attn_mode") || c.has("expand_v") || c.has("expand_k") || c.has("num_hidden_layers"))) {
    m = parse_fla(c);
  } else {
    throw Error(path + ": cannot tell the RetNet family: expected 'decoder_embed_dim' (torchscale/syncdoth) or 'hidden_size' with 'attn_mode' (flash-linear-attention)");
  }
  m.bos_token_id = c.opt_int("bos_token_id", -1, -1);
  m.eos_token_ids = c.int_list("eos_token_id");
  return m;
}

ModelConfig load_config(const std::string& model_dir) {
  namespace fs = std::filesystem;
  fs::path p = fs::path(model_dir) / "config.json";
  std::error_code ec;
  if (!fs::exists(model_dir, ec)) throw Error(model_dir + ": model directory does not exist");
  if (!fs::is_directory(model_dir, ec)) throw Error(model_dir + ": is not a directory (expected a model directory)");
  // status() rather than exists(): a directory without search permission must be reported as such,
  // not as a missing config.json.
  const fs::file_status st = fs::status(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw Error(p.string() + ": cannot access: " + ec.message());
  if (!fs::exists(st)) throw Error(p.string() + ": config.json is missing from the model directory");
  return parse_config_text(read_text_file(p.string()), p.string());
}

}  // namespace retnet
