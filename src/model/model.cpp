// A checkpoint directory read into a ModelDesc (model_desc.hpp): config, checkpoint, a dry binding that
// states what the model needs, then the binding of every weight by the model's family (family_*.cpp),
// the derived constants, the fingerprint and ModelInfo. Placing it on a backend is the runtime's part
// (runtime/model_placement.cpp).
#include <cmath>
#include <set>

#include "common/hash_words.hpp"
#include "common/logger.hpp"
#include "common/quant.hpp"
#include "common/saturating.hpp"
#include "model/family.hpp"
#include "model/model_desc.hpp"
#include "model/quantize_plan.hpp"
#include "model/weight_binder.hpp"
#include "retnet/error.hpp"

namespace retnet {

namespace {

void bind_weights(ModelDesc& m, WeightBinder& b) { family_of(m.cfg.family).bind(m, b); }

std::string matrix_dtype(const ModelDesc& m) {
  std::set<DType> seen;
  for (const LayerWeights& l : m.weights.layers)
    for (const WeightRef* w : {&l.q, &l.k, &l.v, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down}) seen.insert(w->dtype);
  if (seen.size() == 1) return dtype_name(*seen.begin());
  return "mixed";
}

}  // namespace

void hash_weight_bytes(ModelDesc& m, const void* host, size_t n) {
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
uint64_t model_fingerprint(const ModelDesc& m) {
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

void finalize_model(ModelDesc& m) {
  const ModelConfig& c = m.cfg;
  m.fingerprint = model_fingerprint(m);
  m.gamma.resize(size_t(c.n_heads));
  for (int64_t h = 0; h < c.n_heads; ++h) m.gamma[size_t(h)] = std::exp(c.log_decay[size_t(h)]);

  ModelInfo& i = m.info;
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
  i.weight_dtype = matrix_dtype(m);
  i.embedding_dtype = dtype_name(m.weights.embed.dtype);
  i.head_dtype = dtype_name(m.weights.lm_head.dtype);
  i.eos_token_ids = c.eos_token_ids;
  i.bos_token_id = c.bos_token_id;
  i.fingerprint = m.fingerprint;
  {
    const ModelWeights& w = m.weights;
    uint64_t read = w.lm_head.bytes() + dtype_row_bytes(w.embed.dtype, c.d_model);
    for (const LayerWeights& l : w.layers)
      for (const WeightRef* x : {&l.q, &l.k, &l.v, &l.g, &l.o, &l.ffn_act, &l.ffn_lin, &l.ffn_down}) {
        read += x->bytes();
        if (x->data) i.layer_matrix_params += uint64_t(x->rows * x->cols);
      }
    const uint64_t vectors = uint64_t(c.n_layers * (2 * c.d_model + (c.group_norm_weight ? c.head_dv : 0)) + 2 * c.d_model) * 4;
    i.decode_weight_bytes = read + vectors;
  }
}

ModelDesc open_model_desc(const std::string& dir, const std::string& dtype, const std::string& quantize) {
  ModelDesc m;
  m.cfg = load_config(dir);
  m.store = TensorStore::open_dir(dir);
  if (!dtype.empty()) {
    const std::string& d = dtype;
    if (d == "f32" || d == "F32") m.convert_to = DType::F32;
    else if (d == "f16" || d == "F16") m.convert_to = DType::F16;
    else if (d == "bf16" || d == "BF16") m.convert_to = DType::BF16;
    else throw Error("dtype: '" + d + "' is not one of f32, f16, bf16");
  }
  if (!quantize.empty()) {
    m.quantize = quant_type_from_name(quantize);
    if (!m.quantize) throw Error("quantize: '" + quantize + "' is not one of " + quant_type_names());
  }
  return m;
}

std::vector<const TensorInfo*> plan_binding(ModelDesc& m, const std::string& dir) {
  // Every name and shape is checked and what the load will allocate is added up, before anything
  // large is allocated (the mapped header sizes are validated against the file, but a sparse file may
  // declare terabytes).
  WeightBinder dry(m, dir);
  dry.convert_to_ = m.convert_to;
  dry.dry_ = true;
  bind_weights(m, dry);
  m.needs = ModelNeeds{dry.plan_.mapped, dry.plan_.owned, dry.vectors_};
  if (m.quantize) {  // LoadOptions::quantize: the plan reads the dry binding's slots (which tensor plays which role)
    QuantPlan qp = plan_quantization(m, dry.used_tensors(), *m.quantize, parse_quant_keep(kDefaultQuantKeep, "keep"),
                                     parse_head_type(kDefaultHeadType, *m.quantize, "head type"));
    for (const std::string& note : qp.notes) lib_log().info("quantize: {}", note);
    m.needs.owned = sat_add(m.needs.owned, qp.quantized_bytes());
    m.quant_plan = std::move(qp.quantize);
  }
  // Back to unbound: the real binding starts from an empty model (the config changes a binding
  // makes — stored rotation buffers, the fused fla MLP — are the same when made twice).
  m.weights = ModelWeights{};
  m.info.n_params = m.info.weight_bytes = 0;
  return dry.used_tensors();
}

void bind_model(ModelDesc& m, const std::string& dir) {
  // Binding checks names and shapes and leaves host views (placement makes them resident).
  WeightBinder b(m, dir);
  b.convert_to_ = m.convert_to;
  b.quantize_ = m.quant_plan;
  bind_weights(m, b);
  b.warn_unused();
  finalize_model(m);
}

}  // namespace retnet
