// Model::Impl: the parsed config, the mapped tensors, and the weights bound per layer.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "model/config.hpp"
#include "model/safetensors.hpp"
#include "retnet/retnet.hpp"

namespace retnet {

struct LayerWeights {
  WeightRef q, k;        // [H*dk, D]
  WeightRef v, g;        // [H*dv, D] (g absent when the fla output gate is off)
  WeightRef o;           // [D, H*dv]
  WeightRef ffn_act;     // [F, D]  activated branch: torchscale fc1, fla gate_proj
  WeightRef ffn_lin;     // [F, D]  linear branch: torchscale gate, fla up_proj
  WeightRef ffn_down;    // [D, F]  torchscale fc2, fla down_proj
  const float* attn_norm = nullptr;  // [D] backend memory
  const float* ffn_norm = nullptr;   // [D]
  const float* gn_weight = nullptr;  // [dv] or null
};

struct Model::Impl {
  ModelConfig cfg;
  ModelInfo info;
  TensorStore store;
  std::unique_ptr<Backend> backend;
  AngleMode angles = AngleMode::Reference;

  WeightRef embed;    // [V, D]
  WeightRef lm_head;  // [V, D]
  const float* embed_norm = nullptr;  // [D] or null
  const float* final_norm = nullptr;  // [D] or null
  std::vector<LayerWeights> layers;
  std::vector<float> gamma;  // [H] exp(ln γ) in fp32: the per-step decay of the recurrent form
  uint64_t fingerprint = 0;  // identifies config + weights (state snapshots refuse other models)
  uint64_t weight_hash = 0xcbf29ce484222325ull;  // running hash of weight samples, taken from host views

  // Backend buffers owned by the model (norm vectors, realigned or uploaded weights).
  std::vector<float*> owned_f32;
  std::vector<std::unique_ptr<uint8_t[]>> owned_bytes;

  ~Impl();
};

// Builds Impl from a directory (model.cpp).
std::unique_ptr<Model::Impl> load_model_impl(const std::string& dir, const LoadOptions& options);
// Derived constants (γ), the fingerprint and ModelInfo once cfg and the weights are bound (model.cpp).
void finalize_model(Model::Impl& m);
DeviceKind device_kind(Device d);
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull);
// Adds the first and last 256 bytes of a weight (host memory, before upload) to m.weight_hash.
void hash_weight_sample(Model::Impl& m, const void* host, size_t bytes);

}  // namespace retnet
