// Model::load: config, checkpoint, backend, a dry binding and the memory check, then the binding of
// every weight by the model's family (family_*.cpp), the upload and ModelInfo.
#include "common/logger.hpp"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/hash_words.hpp"
#include "common/json_file.hpp"
#include "common/quant.hpp"
#include "model/family.hpp"
#include "model/generation_config.hpp"
#include "model/memory_plan.hpp"
#include "model/model_impl.hpp"
#include "model/quantize_plan.hpp"
#include "model/weight_binder.hpp"
#include "model/weight_check.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

void bind_weights(Model::Impl& m, WeightBinder& b) { family_of(m.cfg.family).bind(m, b); }

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
  i.embedding_dtype = dtype_name(m->embed.dtype);
  i.head_dtype = dtype_name(m->lm_head.dtype);
  i.device = m->backend->name();
  i.threads = m->backend->threads();
  i.eos_token_ids = c.eos_token_ids;
  i.bos_token_id = c.bos_token_id;
  i.fingerprint = m->fingerprint;
  {
    uint64_t read = m->lm_head.bytes() + dtype_row_bytes(m->embed.dtype, c.d_model);
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

std::unique_ptr<Backend> load_backend_for(const LoadOptions& options, const LoadHooks& hooks,
                                          std::optional<DType> block_type, const std::string& what) {
  if (!block_type) return load_backend(options, hooks);
  // Block-typed weights have CPU kernels only (CUDA kernels are still to come): auto picks the CPU,
  // an explicit CUDA request is refused with the way out.
  LoadOptions o = options;
  if (o.device == Device::Auto) {
#ifdef RETNET_WITH_CUDA
    lib_log().info("{}: {} weights run on the CPU only for now (no CUDA kernels yet): --device auto picks the CPU",
                   what, dtype_name(*block_type));
#endif
    o.device = Device::Cpu;
  }
  std::unique_ptr<Backend> be = load_backend(o, hooks);
  if (!backend_on_host(*be))
    throw Error(what + ": " + dtype_name(*block_type) + " weights: the " + be->name() +
                " backend has no kernels for quantized weight types yet; load it with --device cpu (Device::Cpu)");
  return be;
}

bool backend_on_host(const Backend& be) {
  // The CUDA backends (real or emulated) name themselves "cuda (...)"; every other backend keeps
  // weights, states and workspaces in host memory.
  return be.name().rfind("cuda", 0) != 0;
}

void plan_session_and_scratch(MemoryPlan& p, const ModelConfig& c, const Backend& be, SessionHostBytes session_bytes) {
  if (!backend_on_host(be)) return;
  p.session = session_bytes(c, be);
  p.scratch = be.host_scratch_bytes(
      {std::max({c.d_model, c.value_dim(), c.ffn_dim}), c.default_chunk_size, c.head_dk, c.head_dv});
}

namespace {
// The dry binding's counts plus one session and the backend scratch, as far as they live in host memory.
MemoryPlan load_memory_plan(const Model::Impl& m, const MemoryPlan& bound, SessionHostBytes session_bytes) {
  MemoryPlan p = bound;
  plan_session_and_scratch(p, m.cfg, *m.backend, session_bytes);
  if (!backend_on_host(*m.backend)) {
    // Device backends copy the weights to the device: the host holds only the converted or
    // realigned copies, until upload_weights() has streamed them (device memory is not checked here).
    p.mapped = p.vectors = 0;
  }
  return p;
}
}  // namespace

std::unique_ptr<Model::Impl> load_model_impl(const std::string& dir, const LoadOptions& options, const LoadHooks& hooks,
                                             SessionHostBytes session_bytes) {
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
  std::optional<DType> quantize;
  if (!options.quantize.empty()) {
    quantize = quant_type_from_name(options.quantize);
    if (!quantize) throw Error("quantize: '" + options.quantize + "' is not one of " + quant_type_names());
  }
  const std::optional<DType> stored_blocks = stored_block_type(m->store);
  m->backend = load_backend_for(options, hooks, quantize ? quantize : stored_blocks, dir);
  m->angles = angle_mode(options.angles);

  // A dry binding first: every name and shape is checked and what the load will allocate is added
  // up, before anything large is allocated (the mapped header sizes are validated against the file,
  // but a sparse file may declare terabytes). Then the memory check, then the optional NaN/Inf scan
  // of the mapped weights, then the real binding.
  std::map<const TensorInfo*, DType> quant_plan;  // LoadOptions::quantize: what the binding quantizes
  {
    WeightBinder dry(*m, dir);
    dry.convert_to_ = convert_to;
    dry.dry_ = true;
    bind_weights(*m, dry);
    if (quantize) {
      QuantPlan qp = plan_quantization(*m, dry.used_tensors(), *quantize, parse_quant_keep(kDefaultQuantKeep, "keep"));
      for (const std::string& note : qp.notes) lib_log().info("quantize: {}", note);
      dry.plan_.owned = sat_add(dry.plan_.owned, qp.quantized_bytes());
      quant_plan = std::move(qp.quantize);
    }
    m->memory = load_memory_plan(*m, dry.plan_, session_bytes);
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
  WeightBinder b(*m, dir);
  b.convert_to_ = convert_to;
  b.quantize_ = std::move(quant_plan);
  bind_weights(*m, b);
  b.warn_unused();
  upload_weights(*m, options.on_progress, dir);

  finalize_model(*m);
  apply_bf16_activations(*m, options.bf16_activations);
  read_generation_config(dir, m->cfg.vocab_size, m->info);
  return m;
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const ModelInfo& Model::info() const { return impl_->info; }

}  // namespace retnet
