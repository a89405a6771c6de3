// Model::Impl: a model placed on a backend — the backend-neutral description the model layer read
// (model/model_desc.hpp), the backend, and the copies of the weights and per-model constants the ops
// read, all owned here. Built by model_placement.cpp for the public Model::load / Model::random
// (model_entry.cpp); sessions (session_impl.hpp) read it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "model/memory_plan.hpp"
#include "model/model_desc.hpp"
#include "retnet/retnet.hpp"

namespace retnet {

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

// The per-model constants in backend memory, uploaded once when the model is placed (the ops take
// them by pointer on every call; nothing but the step inputs crosses from the host per decode step).
struct ModelConstants {
  const float* theta32 = nullptr;    // [dk/2] rotation frequencies, fp32 (AngleMode::Reference)
  const double* theta64 = nullptr;   // [dk/2] the same in fp64 (AngleMode::Exact)
  const float* log_decay = nullptr;  // [H] ln γ_h (chunkwise and parallel retention)
  const float* gamma = nullptr;      // [H] exp(ln γ_h) (the recurrent step)
};

struct Model::Impl {
  ModelDesc desc;  // config, info, tensors, host-side constants (γ for the host's scale recursion)
  std::unique_ptr<Backend> backend;
  AngleMode angles = AngleMode::Reference;
  ModelWeights weights;  // the backend's copies of desc.weights (CPU: the host views themselves)
  ModelConstants constants;
  MemoryPlan memory;       // host memory the load planned for and checked before allocating (memory_plan.hpp)
  bool state_f16 = false;  // LoadOptions::state_dtype "f16": sessions keep their states as f16 bits

  // Backend buffers this model owns: its norm vectors and constants (the backend frees the weight
  // copies it made itself).
  std::vector<float*> owned_f32;
  std::vector<void*> owned_constants;

  ~Impl();

  // Model::load / Model::random with internal hooks (members of the nested class, which may call
  // Model's private constructor; model_entry.cpp).
  static std::shared_ptr<const Model> load(const std::string& dir, const LoadOptions& options, const LoadHooks& hooks);
  static std::shared_ptr<const Model> random(const RandomModelSpec& spec, const LoadOptions& options,
                                             const LoadHooks& hooks);
};

// ---- model_placement.cpp

// The backend a load runs on: hooks.make_backend if set, else make_backend(). Error for threads < 0.
// The same for every weight type: both backends have kernels for the block-quantized ones.
std::unique_ptr<Backend> load_backend(const LoadOptions& options, const LoadHooks& hooks);
// Whether the backend keeps weights, states and workspaces in host memory (everything but CUDA).
bool backend_on_host(const Backend& be);
// The host memory a model of these needs will hold on `be` with one session running: the model's own
// figures, the backend's padding of the norm vectors and its scratch, the runtime's session. A device
// backend holds the mapping, the vectors, the session and the scratch on the device: only the copies
// made at load count.
MemoryPlan plan_model_memory(const ModelDesc& d, const Backend& be);
// Makes m.desc resident on m.backend: every weight matrix once (a tied head shares the embedding's
// copy), reporting on_progress(bytes done, bytes total) about every 64 MiB and at both ends (false
// cancels with Error "<what>: load cancelled"); the norm vectors and the per-model constants as
// backend buffers m owns. Host copies made at load (conversions) are dropped when the backend keeps
// its own; m.desc.weights are cleared (placement's input).
void place_model(Model::Impl& m, const std::function<bool(uint64_t, uint64_t)>& on_progress, const std::string& what);
// LoadOptions::state_dtype: whether the name asks for f16 states ("" and "f32": no); Error naming the
// option for anything else. Checked before the load does anything else.
bool state_dtype_is_f16(const std::string& name);
// Sets m.state_f16 and the info's state_dtype and state_bytes; Error when f16 is asked of a backend
// that keeps states off the host (CUDA has no f16-state kernels).
void apply_state_dtype(Model::Impl& m, const std::string& name);
// LoadOptions::bf16_activations: turns it on in m.backend when it applies (some matrix is BF16 and
// the backend can), else logs why not; sets info.bf16_activations.
void apply_bf16_activations(Model::Impl& m, bool requested);

}  // namespace retnet
