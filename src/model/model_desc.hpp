// ModelDesc: a checkpoint read into a backend-neutral description — the parsed config and ModelInfo, the
// mapped tensors, the weights bound per layer as host views, the derived constants (θ, ln γ, γ), the
// fingerprint and the memory the model needs. The model layer builds it (model.cpp, random_model.cpp)
// and knows nothing of backends or sessions; the runtime places it on a backend
// (runtime/model_placement.cpp), which makes the copies the ops read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "common/weight_ref.hpp"
#include "model/config.hpp"
#include "model/safetensors.hpp"
#include "retnet/retnet.hpp"

namespace retnet {

// One layer's weights: host views in a ModelDesc, the backend's copies in a placed model.
struct LayerWeights {
  WeightRef q, k;                    // [H*dk, D]
  WeightRef v, g;                    // [H*dv, D] (g absent when the fla output gate is off)
  WeightRef o;                       // [D, H*dv]
  WeightRef ffn_act;                 // [F, D]  activated branch: torchscale fc1, fla gate_proj
  WeightRef ffn_lin;                 // [F, D]  linear branch: torchscale gate, fla up_proj
  WeightRef ffn_down;                // [D, F]  torchscale fc2, fla down_proj
  const float* attn_norm = nullptr;  // [D] fp32
  const float* ffn_norm = nullptr;   // [D]
  const float* gn_weight = nullptr;  // [dv] or null
};

// Every weight slot of a model (the same in both places as LayerWeights).
struct ModelWeights {
  WeightRef embed;                    // [V, D]
  WeightRef lm_head;                  // [V, D]
  const float* embed_norm = nullptr;  // [D] or null
  const float* final_norm = nullptr;  // [D] or null
  std::vector<LayerWeights> layers;
};

// A 64-byte aligned host buffer (converted or realigned weights). Memory from the aligned operator
// new[] must go back through the aligned operator delete[]: a plain unique_ptr<uint8_t[]> would call
// the unaligned one, which is undefined behaviour (ASan: new-delete-type-mismatch).
struct AlignedDelete {
  void operator()(uint8_t* p) const noexcept { ::operator delete[](p, std::align_val_t(64)); }
};
using AlignedBytes = std::unique_ptr<uint8_t[], AlignedDelete>;
inline AlignedBytes alloc_aligned_bytes(size_t n) {
  return AlignedBytes(static_cast<uint8_t*>(::operator new[](n, std::align_val_t(64))));
}

// What the model itself needs in host memory, as the dry binding (or the random model's shape) states
// it; placement adds the backend's padding and scratch and one session (memory_plan.hpp).
struct ModelNeeds {
  uint64_t mapped = 0;  // checkpoint bytes used in place (while a backend uses them there)
  uint64_t owned = 0;   // matrices copied at load: conversions, realigned tensors, random weights
  // Norm vectors, each an fp32 backend buffer once placed: `count` vectors of `floats` floats per entry.
  struct Vectors {
    uint64_t floats = 0, count = 0;
  };
  std::vector<Vectors> vectors;
};

struct ModelDesc {
  ModelConfig cfg;
  ModelInfo info;  // all but what placement adds (device, threads, bf16_activations, load_ms)
  TensorStore store;
  std::optional<DType> convert_to;  // LoadOptions::dtype: every matrix converted to it at binding
  std::optional<DType> quantize;    // LoadOptions::quantize: the block type matrices are quantized to at binding
  std::map<const TensorInfo*, DType> quant_plan;  // which tensors, from the dry binding (quantize_plan.hpp)

  // Host views: into the mapping, owned_bytes (matrices) or owned_vectors (norm vectors widened to
  // fp32). Placement's input: it clears them once the backend holds its copies (runtime/model_placement.cpp).
  ModelWeights weights;
  std::vector<AlignedBytes> owned_bytes;
  std::vector<std::vector<float>> owned_vectors;

  std::vector<float> gamma;  // [H] exp(ln γ) in fp32: the per-step decay of the recurrent form (θ and ln γ: cfg)
  uint64_t fingerprint = 0;  // identifies config + weights (state snapshots refuse other models)
  uint64_t weight_hash = 0xcbf29ce484222325ull;  // running hash of every weight byte, taken from host views
  ModelNeeds needs;
};

// ---- model.cpp: a checkpoint directory, in the order Model::load runs the steps (runtime/model_entry.cpp)

// Reads config.json (family, keys), maps the weight files and validates their headers; `dtype` is
// LoadOptions::dtype ("" keeps the stored types), `quantize` LoadOptions::quantize ("" quantizes nothing).
// Nothing is bound yet.
ModelDesc open_model_desc(const std::string& dir, const std::string& dtype, const std::string& quantize);
// The dry binding: every name and shape is checked and m.needs filled, before anything large is
// allocated; m is left unbound. Returns every tensor the binding uses (for LoadOptions::check_weights).
std::vector<const TensorInfo*> plan_binding(ModelDesc& m, const std::string& dir);
// The binding: host views of every weight (converted or realigned where needed), each weight byte
// hashed as stored, then finalize_model. Warns about tensors left unused.
void bind_model(ModelDesc& m, const std::string& dir);

// ---- random_model.cpp: Model::random

// The config of a random-weight model of that spec and what it needs; no weights yet.
ModelDesc random_model_desc(const RandomModelSpec& spec);
// Generates its weights (host buffers) from spec.seed, reporting on_progress(bytes, total) per matrix
// (false cancels with Error "random model: cancelled"), then finalize_model.
void generate_random_weights(ModelDesc& m, const RandomModelSpec& spec,
                             const std::function<bool(uint64_t, uint64_t)>& on_progress);

// ---- model.cpp: shared by both
// Derived constants (γ), the fingerprint and ModelInfo once cfg and the weights are bound.
void finalize_model(ModelDesc& m);
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull);
// Adds every byte of a weight as stored (host memory, before conversion and upload) to m.weight_hash.
void hash_weight_bytes(ModelDesc& m, const void* host, size_t bytes);

}  // namespace retnet
