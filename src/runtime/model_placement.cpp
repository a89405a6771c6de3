// Placing a model on a device: the layer above both the model layer (which reads a checkpoint into a
// backend-neutral ModelDesc) and the backends. Here the backend is made, the memory a load needs is
// planned from what each layer states (model, backend, session), and the weights, norm vectors and
// per-model constants are made resident, owned by the placed model (model_impl.hpp).
#include <algorithm>

#include "common/logger.hpp"
#include "common/public_types.hpp"  // device_kind
#include "common/saturating.hpp"
#include "model/quantize_plan.hpp"  // stored_block_type
#include "retnet/error.hpp"
#include "runtime/model_impl.hpp"
#include "runtime/session_impl.hpp"  // planned_session_host_bytes

namespace retnet {

Model::Impl::~Impl() {
  if (!backend) return;
  for (float* p : owned_f32) backend->release(p);
  for (void* p : owned_constants) backend->release_constant(p);
}

std::unique_ptr<Backend> load_backend(const LoadOptions& options, const LoadHooks& hooks) {
  if (options.threads < 0)
    throw Error("threads: must be >= 0 (0 = all hardware threads), got " + std::to_string(options.threads));
  const DeviceKind dev = device_kind(options.device);
  return hooks.make_backend ? hooks.make_backend(dev, options.threads) : make_backend(dev, options.threads);
}

bool backend_on_host(const Backend& be) {
  // The CUDA backends (real or emulated) name themselves "cuda (...)"; every other backend keeps
  // weights, states and workspaces in host memory.
  return be.name().rfind("cuda", 0) != 0;
}

MemoryPlan plan_model_memory(const ModelDesc& d, const Backend& be) {
  MemoryPlan p;
  p.owned = d.needs.owned;
  if (!backend_on_host(be)) {
    // Device backends copy the weights to the device: the host holds only the converted or
    // realigned copies, until place_model() has streamed them (device memory is not checked here).
    return p;
  }
  p.mapped = d.needs.mapped;
  for (const ModelNeeds::Vectors& v : d.needs.vectors)
    p.vectors = sat_add(p.vectors, sat_mul(v.count, be.host_alloc_bytes(v.floats)));
  const ModelConfig& c = d.cfg;
  p.session = planned_session_host_bytes(c, be);
  const bool blocks = d.quantize.has_value() || stored_block_type(d.store).has_value();
  p.scratch = be.host_scratch_bytes(
      {std::max({c.d_model, c.value_dim(), c.ffn_dim}), c.default_chunk_size, c.head_dk, c.head_dv, blocks});
  return p;
}

namespace {

// Every weight matrix of `placed` (a copy of the description's slots) made resident once: slots with
// the same host view (a tied head) share one copy. Returns whether every upload made a copy of its own
// (device backends).
bool upload_matrices(Backend& be, ModelWeights& placed, const std::function<bool(uint64_t, uint64_t)>& on_progress,
                     const std::string& what) {
  std::vector<WeightRef*> slots = {&placed.embed, &placed.lm_head};
  for (LayerWeights& l : placed.layers)
    for (WeightRef* w : {&l.q, &l.k, &l.v, &l.g, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down}) slots.push_back(w);
  struct Item {
    WeightRef host;
    std::vector<WeightRef*> slots;
  };
  std::vector<Item> items;
  uint64_t total = 0;
  for (WeightRef* w : slots) {
    if (!w->data) continue;  // absent (fla without output gate)
    auto same = [&](const Item& it) {
      return it.host.data == w->data && it.host.dtype == w->dtype && it.host.rows == w->rows && it.host.cols == w->cols;
    };
    if (auto it = std::find_if(items.begin(), items.end(), same); it != items.end()) {
      it->slots.push_back(w);
      continue;
    }
    items.push_back({*w, {w}});
    total += w->bytes();
  }

  uint64_t done = 0, next_report = 0;
  auto report = [&](bool force) {
    if (!on_progress || (!force && done < next_report)) return;
    if (!on_progress(done, total)) throw Error(what + ": load cancelled");
    next_report = done + (uint64_t(64) << 20);
  };
  report(true);
  bool copied = true;
  auto on_bytes = [&](uint64_t n) {
    done += n;
    report(false);
  };
  for (Item& it : items) {
    const WeightRef d = be.upload(it.host, on_bytes);
    copied = copied && d.data != it.host.data;
    for (WeightRef* w : it.slots) *w = d;
  }
  be.finish_uploads();
  report(true);
  return copied;
}

}  // namespace

void place_model(Model::Impl& m, const std::function<bool(uint64_t, uint64_t)>& on_progress, const std::string& what) {
  ModelDesc& d = m.desc;
  Backend& be = *m.backend;
  const ModelConfig& c = d.cfg;
  d.info.device = be.name();
  d.info.threads = be.threads();
  m.weights = d.weights;

  // The norm vectors ([D] or [dv] fp32 host buffers of the description) and the per-model constants
  // as backend buffers of the model's own. Before the matrices, whose upload reports progress last.
  // Each pointer is recorded before the next allocation, so that ~Impl frees all of them should one
  // throw (the lists have their room reserved: push_back cannot fail after an allocation).
  m.owned_f32.reserve(size_t(2 + 3 * c.n_layers));
  auto place_vector = [&](const float*& v, int64_t n) {
    if (!v) return;
    float* p = be.alloc(size_t(n));
    m.owned_f32.push_back(p);
    be.from_host(p, v, size_t(n));
    v = p;
  };
  place_vector(m.weights.embed_norm, c.d_model);
  for (LayerWeights& l : m.weights.layers) {
    place_vector(l.attn_norm, c.d_model);
    place_vector(l.ffn_norm, c.d_model);
    place_vector(l.gn_weight, c.head_dv);
  }
  place_vector(m.weights.final_norm, c.d_model);
  m.owned_constants.reserve(4);
  auto constant = [&](const auto& host) {
    void* p = be.upload_constant(host.data(), host.size() * sizeof(host[0]));
    m.owned_constants.push_back(p);
    return p;
  };
  m.constants.theta32 = static_cast<const float*>(constant(c.theta));        // [dk/2]
  m.constants.theta64 = static_cast<const double*>(constant(c.theta64));     // [dk/2]
  m.constants.log_decay = static_cast<const float*>(constant(c.log_decay));  // [H]
  m.constants.gamma = static_cast<const float*>(constant(d.gamma));          // [H]

  // Then every matrix (CPU: its pages read, so the first token does not pay for page faults; CUDA:
  // streamed to the device), which is what the load progress reports; finish_uploads() also completes
  // the copies above.
  const bool copied = upload_matrices(be, m.weights, on_progress, what);

  // The host views were placement's input: converted or realigned host buffers are only needed by a
  // backend that uses weights in place, the fp32 vectors have their backend copies.
  if (copied) d.owned_bytes.clear();
  d.owned_vectors.clear();
  d.weights = ModelWeights{};
}

bool state_dtype_is_f16(const std::string& name) {
  if (name.empty() || name == "f32") return false;
  if (name == "f16") return true;
  throw Error("state dtype '" + name + "' is not one of f32, f16");
}

void apply_state_dtype(Model::Impl& m, const std::string& name) {
  m.state_f16 = state_dtype_is_f16(name);
  ModelInfo& info = m.desc.info;
  const ModelConfig& c = m.desc.cfg;
  const uint64_t elems = uint64_t(c.n_layers * c.n_heads * c.head_dk * c.head_dv);
  info.state_dtype = m.state_f16 ? "f16" : "f32";
  info.state_bytes = elems * (m.state_f16 ? 2 : 4);
  if (m.state_f16 && !backend_on_host(*m.backend))
    throw Error("state dtype f16: the " + m.backend->name() + " backend keeps fp32 states only (use the CPU)");
}

void apply_bf16_activations(Model::Impl& m, bool requested) {
  if (!requested) return;
  const ModelWeights& mw = m.weights;
  bool any_bf16 = mw.lm_head.dtype == DType::BF16;
  for (const LayerWeights& l : mw.layers)
    for (const WeightRef* w : {&l.q, &l.k, &l.v, &l.g, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down})
      any_bf16 = any_bf16 || (w->data && w->dtype == DType::BF16);
  ModelInfo& info = m.desc.info;
  if (!any_bf16) lib_log().info("bf16 activations: ignored, no weight matrix is BF16 ({})", info.weight_dtype);
  else if (!m.backend->set_bf16_activations(true))
    lib_log().info("bf16 activations: ignored, the {} backend has no bf16 GEMM here (needs a CPU with AVX512-BF16)",
                   m.backend->name());
  else info.bf16_activations = true;
}

}  // namespace retnet
