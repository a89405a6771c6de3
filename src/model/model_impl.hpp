// Model::Impl: the parsed config, the mapped tensors, and the weights bound per layer.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "common/public_types.hpp"
#include "model/config.hpp"
#include "model/memory_plan.hpp"
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

// What a load can be told beyond the public LoadOptions; internal (tests). make_backend, when set,
// replaces make_backend() (backend.cpp): tests construct the emulated CUDA backend of tests/simt —
// which libretnet does not contain — or a CUDA backend with non-default options this way, and the
// model and its sessions then use it exactly as they use the backends the library picks itself.
struct LoadHooks {
  std::function<std::unique_ptr<Backend>(DeviceKind device, int threads)> make_backend;
  // Host memory the load may plan to use, replacing what the system reports (memory_plan.hpp):
  // tests check the estimate against a given figure this way.
  std::optional<uint64_t> available_memory;
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
  uint64_t weight_hash = 0xcbf29ce484222325ull;  // running hash of every weight byte, taken from host views
  MemoryPlan memory;  // host memory the load planned for and checked before allocating (memory_plan.hpp)

  // Backend buffers owned by the model (norm vectors, realigned or uploaded weights).
  std::vector<float*> owned_f32;
  std::vector<AlignedBytes> owned_bytes;

  ~Impl();

  // Model::load / Model::random with internal hooks (members of the nested class, which may call
  // Model's private constructor).
  static std::shared_ptr<const Model> load(const std::string& dir, const LoadOptions& options, const LoadHooks& hooks);
  static std::shared_ptr<const Model> random(const RandomModelSpec& spec, const LoadOptions& options,
                                             const LoadHooks& hooks);
};

// Host bytes of the one Session a load plans for, on a model of config c and backend be. The
// runtime states it (planned_session_host_bytes, runtime/session_impl.hpp); the model layer does not know sessions, so
// the library's entry points (runtime/model_entry.cpp) pass it in.
using SessionHostBytes = uint64_t (*)(const ModelConfig& c, const Backend& be);

// Builds Impl from a directory (model.cpp), planning its memory with one session of session_bytes.
std::unique_ptr<Model::Impl> load_model_impl(const std::string& dir, const LoadOptions& options, const LoadHooks& hooks,
                                             SessionHostBytes session_bytes);
// Builds a random-weight Impl (random_model.cpp), planning its memory likewise.
std::unique_ptr<Model::Impl> random_model_impl(const RandomModelSpec& spec, const LoadOptions& options,
                                               const LoadHooks& hooks, SessionHostBytes session_bytes);
// When be works in host memory: p.session = one session, p.scratch = be's scratch for a model of
// config c (device backends keep both on the device: 0).
void plan_session_and_scratch(MemoryPlan& p, const ModelConfig& c, const Backend& be, SessionHostBytes session_bytes);
// The backend a load runs on: hooks.make_backend if set, else make_backend() (model.cpp).
std::unique_ptr<Backend> load_backend(const LoadOptions& options, const LoadHooks& hooks);
// load_backend for weights of block_type (when set): Device::Auto picks the CPU, a device backend is
// refused with Error "<what>: q4_0 weights: ... use --device cpu" (no CUDA kernels for them yet).
std::unique_ptr<Backend> load_backend_for(const LoadOptions& options, const LoadHooks& hooks,
                                          std::optional<DType> block_type, const std::string& what);
// Makes every weight matrix resident on m.backend once (a tied head shares the embedding's copy),
// reporting on_progress(bytes done, bytes total) about every 64 MiB and at both ends; false from it
// cancels with Error "<what>: load cancelled" (weight_upload.cpp). Host copies made at load
// (conversions) are dropped when the backend keeps its own.
void upload_weights(Model::Impl& m, const std::function<bool(uint64_t, uint64_t)>& on_progress,
                    const std::string& what);
// Derived constants (γ), the fingerprint and ModelInfo once cfg and the weights are bound (model.cpp).
void finalize_model(Model::Impl& m);
// LoadOptions::bf16_activations: turns it on in m.backend when it applies (some matrix is BF16 and
// the backend can), else logs why not; sets info.bf16_activations (model.cpp).
void apply_bf16_activations(Model::Impl& m, bool requested);
// Whether the backend keeps weights, states and workspaces in host memory (everything but CUDA).
bool backend_on_host(const Backend& be);
uint64_t fnv1a(const void* data, size_t n, uint64_t h = 0xcbf29ce484222325ull);
// Adds every byte of a weight as stored (host memory, before conversion and upload) to m.weight_hash.
void hash_weight_bytes(Model::Impl& m, const void* host, size_t bytes);

}  // namespace retnet
