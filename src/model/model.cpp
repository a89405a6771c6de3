// Binds a checkpoint's tensors to the model's weight slots, per family naming
// (retnet-reference §1.3 torchscale, §2.1 syncdoth, §3.2 fla), checking every shape.
#include "common/logger.hpp"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/hash_words.hpp"
#include "common/json_file.hpp"
#include "model/memory_plan.hpp"
#include "model/model_impl.hpp"
#include "model/weight_check.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

class Binder {
 public:
  Binder(Model::Impl& m, std::string dir) : m_(m), dir_(std::move(dir)) {}

  const TensorInfo* find(const std::string& name) const { return m_.store.find(name); }

  const TensorInfo& need(const std::string& name, const std::vector<int64_t>& shape) {
    const TensorInfo* t = find(name);
    if (!t) throw Error(dir_ + ": missing tensor '" + name + "'");
    if (t->shape != shape)
      throw Error(t->file + ": tensor '" + name + "' has shape " + t->shape_str() + ", expected " + shape_str(shape));
    if (used_.insert(name).second) {
      m_.info.n_params += uint64_t(t->numel());
      m_.info.weight_bytes += t->nbytes;
      used_tensors_.push_back(t);
    }
    return *t;
  }

  WeightRef matrix(const std::string& name, int64_t rows, int64_t cols) {
    return view(need(name, {rows, cols}), rows, cols);
  }
  // Rows [r0, r0 + rows) of a [total_rows, cols] tensor (old fla fused gate|up projection).
  WeightRef matrix_rows(const std::string& name, int64_t total_rows, int64_t cols, int64_t r0, int64_t rows) {
    const TensorInfo& t = need(name, {total_rows, cols});
    WeightRef w = view(t, total_rows, cols);
    WeightRef part = w;
    part.data = static_cast<const uint8_t*>(w.data) + size_t(r0 * cols) * dtype_size(w.dtype);
    part.rows = rows;
    return part;
  }

  const float* vector(const std::string& name, int64_t n) {
    const TensorInfo& t = need(name, {n});
    if (dry_) {
      plan_.vectors = sat_add(plan_.vectors, cpu_alloc_bytes(uint64_t(n)));
      return nullptr;
    }
    hash_weight_bytes(m_, t.data, t.nbytes);
    std::vector<float> host(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) host[size_t(i)] = load_as_f32(t.data, t.dtype, size_t(i));
    float* dev = m_.backend->alloc(size_t(n));
    m_.owned_f32.push_back(dev);
    m_.backend->from_host(dev, host.data(), size_t(n));
    return dev;
  }

  void refuse_if_present(const std::string& name, const std::string& why) const {
    if (find(name)) throw Error(dir_ + ": tensor '" + name + "' is present: " + why);
  }

  void warn_unused() const {
    std::vector<std::string> unused;
    for (const auto& [name, t] : m_.store.all())
      if (!used_.count(name) && !ignored_.count(name)) unused.push_back(name);
    if (!unused.empty())
      lib_log().warn("{}: {} tensor(s) in the checkpoint are not used, e.g. '{}'", dir_, unused.size(), unused.front());
  }
  void ignore(const std::string& name) { ignored_.insert(name); }
  const std::string& dir() const { return dir_; }
  // Every tensor bound so far, once each, in binding order.
  const std::vector<const TensorInfo*>& used_tensors() const { return used_tensors_; }

 private:
  // A host view of the tensor (converted or realigned into an owned buffer when needed); the backend
  // copies are made after binding, by upload_weights().
  WeightRef view(const TensorInfo& t, int64_t rows, int64_t cols) {
    WeightRef w{t.data, t.dtype, rows, cols};
    if (dry_) {  // count what the real binding below will copy, or use in place
      if (convert_to_ && *convert_to_ != t.dtype)
        plan_.owned = sat_add(plan_.owned, sat_mul(uint64_t(rows * cols), dtype_size(*convert_to_)));
      else if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0)
        plan_.owned = sat_add(plan_.owned, t.nbytes);
      else if (mapped_seen_.insert(&t).second)
        plan_.mapped = sat_add(plan_.mapped, t.nbytes);
      return w;
    }
    hash_weight_bytes(m_, t.data, t.nbytes);  // as stored: a conversion below does not change the identity
    if (convert_to_ && *convert_to_ != t.dtype) {
      // Requested storage dtype differs: convert once at load into an owned buffer.
      const size_t n = size_t(rows * cols), es = dtype_size(*convert_to_);
      AlignedBytes buf = alloc_aligned_bytes(n * es);
      for (size_t i = 0; i < n; ++i) {
        const float v = load_as_f32(t.data, t.dtype, i);
        if (*convert_to_ == DType::F32) std::memcpy(buf.get() + 4 * i, &v, 4);
        else {
          const uint16_t h = *convert_to_ == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
          std::memcpy(buf.get() + 2 * i, &h, 2);
        }
      }
      w.data = buf.get();
      w.dtype = *convert_to_;
      m_.owned_bytes.push_back(std::move(buf));
      return w;
    }
    // safetensors does not promise alignment; kernels may assume element alignment, so realign.
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0) {
      AlignedBytes buf = alloc_aligned_bytes(t.nbytes);
      std::memcpy(buf.get(), t.data, t.nbytes);
      w.data = buf.get();
      m_.owned_bytes.push_back(std::move(buf));
    }
    return w;
  }

  Model::Impl& m_;
  std::string dir_;
  std::set<std::string> used_, ignored_;
  std::vector<const TensorInfo*> used_tensors_;
  std::set<const TensorInfo*> mapped_seen_;

 public:
  std::optional<DType> convert_to_;
  // Dry binding: names and shapes are checked and plan_ adds up what the real binding will allocate
  // (conversions, realigned copies, norm vectors) and use in place, but nothing is allocated,
  // converted or hashed; the weight slots get views into the mapping (or null vectors).
  bool dry_ = false;
  MemoryPlan plan_;
};

// Stored rotation/decay buffers of torchscale/syncdoth checkpoints (P2, P11): preferred over our
// reconstruction because PyTorch's fp32 linspace/pow can differ from ours in the last ulp.
void read_rel_pos_buffers(Binder& b, ModelConfig& cfg, const std::string& prefix) {
  const std::string an = prefix + "retnet_rel_pos.angle", dn = prefix + "retnet_rel_pos.decay";
  if (const TensorInfo* a = b.find(an)) {
    b.ignore(an);
    if (a->shape != std::vector<int64_t>{cfg.head_dk})
      throw Error(a->file + ": tensor '" + an + "' has shape " + a->shape_str() + ", expected [" + std::to_string(cfg.head_dk) + "]");
    if (a->dtype != DType::F32) {
      if (!b.dry_) lib_log().warn("{}: '{}' is stored as {} (model saved after casting); recomputing the angles in fp32", b.dir(), an, dtype_name(a->dtype));
    } else {
      for (int64_t p = 0; p < cfg.head_dk / 2; ++p) {
        const float x0 = load_as_f32(a->data, a->dtype, size_t(2 * p)), x1 = load_as_f32(a->data, a->dtype, size_t(2 * p + 1));
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
      throw Error(d->file + ": tensor '" + dn + "' has shape " + d->shape_str() + ", expected [" + std::to_string(cfg.n_heads) + "]");
    if (d->dtype != DType::F32) {
      if (!b.dry_) lib_log().warn("{}: '{}' is stored as {}; recomputing the decays in fp32", b.dir(), dn, dtype_name(d->dtype));
    } else {
      for (int64_t h = 0; h < cfg.n_heads; ++h) {
        const float x = load_as_f32(d->data, d->dtype, size_t(h));
        if (!(x <= 0.f) || !std::isfinite(x)) throw Error(d->file + ": tensor '" + dn + "' holds a decay that is not ln γ ≤ 0");
        cfg.log_decay[size_t(h)] = x;
      }
    }
  }
}

void bind_torchscale(Model::Impl& m, Binder& b) {
  ModelConfig& c = m.cfg;
  std::string p;
  if (b.find("embed_tokens.weight")) p = "";
  else if (b.find("model.embed_tokens.weight")) p = "model.";
  else if (b.find("decoder.embed_tokens.weight")) p = "decoder.";
  else throw Error(b.dir() + ": missing tensor 'embed_tokens.weight' (looked for it with no prefix and with 'model.' and 'decoder.')");
  const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim, V = c.vocab_size;
  m.embed = b.matrix(p + "embed_tokens.weight", V, D);
  if (c.embed_norm) m.embed_norm = b.vector(p + "layernorm_embedding.weight", D);
  b.refuse_if_present(p + "layers.0.retention.q_proj.bias", "projection biases (torchscale before 2023-09-28) are not supported");
  b.refuse_if_present(p + "layers.0.retention_layer_norm.bias", "LayerNorm block norms (torchscale before 2023-09-28) are not supported");
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

void bind_fla(Model::Impl& m, Binder& b) {
  ModelConfig& c = m.cfg;
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
      // Before 2025-02 fla fused [gate; up] into one gate_proj [2F, D] (retnet-reference §3.2).
      m.cfg.fused_gate_up = true;
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

void bind_weights(Model::Impl& m, Binder& b) {
  if (m.cfg.family == Family::Torchscale) bind_torchscale(m, b);
  else bind_fla(m, b);
}

std::string matrix_dtype(const Model::Impl& m) {
  std::set<DType> seen;
  for (const LayerWeights& l : m.layers)
    for (const WeightRef* w : {&l.q, &l.k, &l.v, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down}) seen.insert(w->dtype);
  if (seen.size() == 1) return dtype_name(*seen.begin());
  return "mixed";
}

}  // namespace

Model::Impl::~Impl() {
  if (backend)
    for (float* p : owned_f32) backend->release(p);
}

namespace {
// generation_config.json's eos_token_id (int or list) joins config.json's: generation stops at any.
void merge_generation_config(Model::Impl& m, const std::string& dir) {
  const std::filesystem::path p = std::filesystem::path(dir) / "generation_config.json";
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(p, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) throw Error(p.string() + ": cannot access: " + ec.message());
  if (!std::filesystem::exists(st)) return;  // optional file
  // Bounded read and nesting; an unreadable file is reported with its reason, not as invalid JSON.
  const nlohmann::json j = read_json_file(p.string());
  if (!j.is_object()) throw Error(p.string() + ": not a valid JSON object");
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return;
  const auto& e = j["eos_token_id"];
  std::vector<int64_t> ids;
  if (e.is_number_integer()) ids.push_back(e.get<int64_t>());
  else if (e.is_array())
    for (const auto& x : e) {
      if (!x.is_number_integer()) throw Error(p.string() + ": eos_token_id must hold integers");
      ids.push_back(x.get<int64_t>());
    }
  else throw Error(p.string() + ": eos_token_id must be an integer or a list of integers");
  for (int64_t id : ids) {
    if (id < 0 || id >= m.cfg.vocab_size) throw Error(p.string() + ": eos_token_id " + std::to_string(id) + " is outside the vocabulary");
    if (std::find(m.info.eos_token_ids.begin(), m.info.eos_token_ids.end(), id) == m.info.eos_token_ids.end())
      m.info.eos_token_ids.push_back(id);
  }
}
}  // namespace

DeviceKind device_kind(Device d) {
  return d == Device::Cpu ? DeviceKind::Cpu : d == Device::Cuda ? DeviceKind::Cuda : DeviceKind::Auto;
}

void hash_weight_bytes(Model::Impl& m, const void* host, size_t n) {
  if (!host) return;
  // Chained: the order of the weights counts, and so does where one ends and the next begins.
  m.weight_hash = hash_words(host, n, m.weight_hash);
}

uint64_t fnv1a(const void* data, size_t n, uint64_t h) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

namespace {
// Hash of the architecture and of every weight byte as stored (ModelInfo::fingerprint).
uint64_t model_fingerprint(const Model::Impl& m) {
  const ModelConfig& c = m.cfg;
  uint64_t h = 0xcbf29ce484222325ull;
  const int64_t dims[] = {int64_t(c.family), c.vocab_size, c.d_model, c.n_layers, c.n_heads, c.head_dk, c.head_dv, c.ffn_dim};
  h = fnv1a(dims, sizeof dims, h);
  h = fnv1a(c.theta.data(), c.theta.size() * 4, h);
  h = fnv1a(c.log_decay.data(), c.log_decay.size() * 4, h);
  // The weights were hashed from host memory as they were bound (the backend's copies may live on a
  // device, converted).
  return fnv1a(&m.weight_hash, sizeof m.weight_hash, h);
}
}  // namespace

void finalize_model(Model::Impl& mi) {
  Model::Impl* m = &mi;
  const ModelConfig& c = m->cfg;
  m->fingerprint = model_fingerprint(*m);
  m->gamma.resize(size_t(c.n_heads));
  for (int64_t h = 0; h < c.n_heads; ++h) m->gamma[size_t(h)] = std::exp(c.log_decay[size_t(h)]);

  ModelInfo& i = m->info;
  i.family = c.source;
  i.vocab_size = c.vocab_size;
  i.hidden_size = c.d_model;
  i.layers = c.n_layers;
  i.heads = c.n_heads;
  i.key_head_dim = c.head_dk;
  i.value_head_dim = c.head_dv;
  i.ffn_dim = c.ffn_dim;
  i.default_chunk_size = c.default_chunk_size;
  i.state_bytes = uint64_t(c.n_layers * c.n_heads * c.head_dk * c.head_dv) * 4;
  i.weight_dtype = matrix_dtype(*m);
  i.device = m->backend->name();
  i.threads = m->backend->threads();
  i.eos_token_ids = c.eos_token_ids;
  i.bos_token_id = c.bos_token_id;
  i.fingerprint = m->fingerprint;
  {
    uint64_t read = m->lm_head.bytes() + uint64_t(c.d_model) * dtype_size(m->embed.dtype);
    for (const LayerWeights& l : m->layers)
      for (const WeightRef* w : {&l.q, &l.k, &l.v, &l.g, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down}) {
        read += w->bytes();
        if (w->data) i.layer_matrix_params += uint64_t(w->rows * w->cols);
      }
    const uint64_t vectors = uint64_t(c.n_layers * (2 * c.d_model + (c.group_norm_weight ? c.head_dv : 0)) + 2 * c.d_model) * 4;
    i.decode_weight_bytes = read + vectors;
  }
}

void apply_bf16_activations(Model::Impl& m, bool requested) {
  if (!requested) return;
  bool any_bf16 = m.lm_head.dtype == DType::BF16;
  for (const LayerWeights& l : m.layers)
    for (const WeightRef* w : {&l.q, &l.k, &l.v, &l.g, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down})
      any_bf16 = any_bf16 || (w->data && w->dtype == DType::BF16);
  if (!any_bf16)
    lib_log().info("bf16 activations: ignored, no weight matrix is BF16 ({})", m.info.weight_dtype);
  else if (!m.backend->set_bf16_activations(true))
    lib_log().info("bf16 activations: ignored, the {} backend has no bf16 GEMM here (needs a CPU with AVX512-BF16)",
                   m.backend->name());
  else
    m.info.bf16_activations = true;
}

std::unique_ptr<Backend> load_backend(const LoadOptions& options, const LoadHooks& hooks) {
  if (options.threads < 0) throw Error("threads: must be >= 0 (0 = all hardware threads), got " + std::to_string(options.threads));
  const DeviceKind dev = device_kind(options.device);
  return hooks.make_backend ? hooks.make_backend(dev, options.threads) : make_backend(dev, options.threads);
}

bool backend_on_host(const Backend& be) {
  // The CUDA backends (real or emulated) name themselves "cuda (...)"; every other backend keeps
  // weights, states and workspaces in host memory.
  return be.name().rfind("cuda", 0) != 0;
}

namespace {
// The dry binding's counts plus one session and the backend scratch, as far as they live in host memory.
MemoryPlan load_memory_plan(const Model::Impl& m, const MemoryPlan& bound) {
  MemoryPlan p = bound;
  if (backend_on_host(*m.backend)) {
    p.session = session_bytes(m.cfg);
    p.scratch = cpu_scratch_bytes(m.cfg, m.backend->threads());
  } else {
    // Device backends copy the weights to the device: the host holds only the converted or
    // realigned copies, until upload_weights() has streamed them (device memory is not checked here).
    p.mapped = p.vectors = 0;
  }
  return p;
}
}  // namespace

std::unique_ptr<Model::Impl> load_model_impl(const std::string& dir, const LoadOptions& options, const LoadHooks& hooks) {
  auto m = std::make_unique<Model::Impl>();
  m->cfg = load_config(dir);
  m->store = TensorStore::open_dir(dir);
  std::optional<DType> convert_to;
  if (!options.dtype.empty()) {
    const std::string& d = options.dtype;
    if (d == "f32" || d == "F32") convert_to = DType::F32;
    else if (d == "f16" || d == "F16") convert_to = DType::F16;
    else if (d == "bf16" || d == "BF16") convert_to = DType::BF16;
    else throw Error("dtype: '" + d + "' is not one of f32, f16, bf16");
  }
  m->backend = load_backend(options, hooks);
  m->angles = options.angles == Angles::Exact ? AngleMode::Exact : AngleMode::Reference;

  // A dry binding first: every name and shape is checked and what the load will allocate is added
  // up, before anything large is allocated (the mapped header sizes are validated against the file,
  // but a sparse file may declare terabytes). Then the memory check, then the optional NaN/Inf scan
  // of the mapped weights, then the real binding.
  {
    Binder dry(*m, dir);
    dry.convert_to_ = convert_to;
    dry.dry_ = true;
    bind_weights(*m, dry);
    m->memory = load_memory_plan(*m, dry.plan_);
    check_memory_plan(m->memory, dir, hooks.available_memory);
    if (options.check_weights)
      for (const TensorInfo* t : dry.used_tensors()) check_tensor_finite(*t);
    // Back to unbound: the real binding starts from an empty model (the config changes a binding
    // makes — stored rotation buffers, the fused fla MLP — are the same when made twice).
    m->layers.clear();
    m->embed = m->lm_head = WeightRef{};
    m->embed_norm = m->final_norm = nullptr;
    m->info.n_params = m->info.weight_bytes = 0;
  }

  // Binding checks names and shapes and leaves host views; then every matrix is made resident once
  // (CPU: its pages read, so the first token does not pay for page faults; CUDA: streamed to the
  // device), which is what the load progress reports.
  Binder b(*m, dir);
  b.convert_to_ = convert_to;
  bind_weights(*m, b);
  b.warn_unused();
  upload_weights(*m, options.on_progress, dir);

  finalize_model(*m);
  apply_bf16_activations(*m, options.bf16_activations);
  merge_generation_config(*m, dir);
  return m;
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const ModelInfo& Model::info() const { return impl_->info; }

std::shared_ptr<const Model> Model::load(const std::string& dir, const LoadOptions& options) {
  return Impl::load(dir, options, LoadHooks{});
}

std::shared_ptr<const Model> Model::Impl::load(const std::string& dir, const LoadOptions& options,
                                               const LoadHooks& hooks) {
  const auto t0 = std::chrono::steady_clock::now();
  auto impl = load_model_impl(dir, options, hooks);
  impl->info.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

}  // namespace retnet
