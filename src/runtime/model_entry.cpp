// The library's entry points that build a Model: the model layer reads the checkpoint (or makes a
// random one) into a ModelDesc (model/model_desc.hpp), and this layer, above both it and the backends,
// makes the backend, checks the memory plan (model, backend and one session of the size the runtime
// states) and places the model on the backend (model_placement.cpp). The steps run in this order so
// that each refusal comes before anything large is allocated.
#include <chrono>

#include "common/public_types.hpp"  // angle_mode
#include "model/generation_config.hpp"
#include "model/weight_check.hpp"
#include "runtime/model_impl.hpp"

namespace retnet {

std::shared_ptr<const Model> Model::load(const std::string& dir, const LoadOptions& options) {
  return Impl::load(dir, options, LoadHooks{});
}

std::shared_ptr<const Model> Model::Impl::load(const std::string& dir, const LoadOptions& options,
                                               const LoadHooks& hooks) {
  const auto t0 = std::chrono::steady_clock::now();
  state_dtype_is_f16(options.state_dtype);  // a bad name is refused before anything is read
  auto m = std::make_unique<Impl>();
  m->desc = open_model_desc(dir, options.dtype, options.quantize);
  m->backend = load_backend(options, hooks);
  apply_state_dtype(*m, options.state_dtype);  // f16 on a device backend is refused before any reading
  m->angles = angle_mode(options.angles);
  // A dry binding first (names, shapes, what the load will take), then the memory check, then the
  // optional NaN/Inf scan of the mapped weights, then the real binding and the placement.
  const std::vector<const TensorInfo*> used = plan_binding(m->desc, dir);
  m->memory = plan_model_memory(m->desc, *m->backend);
  check_memory_plan(m->memory, dir, hooks.available_memory);
  if (options.check_weights)
    for (const TensorInfo* t : used) check_tensor_finite(*t);
  bind_model(m->desc, dir);
  apply_state_dtype(*m, options.state_dtype);  // again: binding recomputed the info (fp32 state bytes)
  place_model(*m, options.on_progress, dir);
  apply_bf16_activations(*m, options.bf16_activations);
  read_generation_config(dir, m->desc.cfg.vocab_size, m->desc.info);
  m->desc.info.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return std::shared_ptr<const Model>(new Model(std::move(m)));
}

std::shared_ptr<const Model> Model::random(const RandomModelSpec& sp, const LoadOptions& options) {
  return Impl::random(sp, options, LoadHooks{});
}

std::shared_ptr<const Model> Model::Impl::random(const RandomModelSpec& sp, const LoadOptions& options,
                                                 const LoadHooks& hooks) {
  state_dtype_is_f16(options.state_dtype);
  auto m = std::make_unique<Impl>();
  m->desc = random_model_desc(sp);
  m->backend = load_backend(options, hooks);
  apply_state_dtype(*m, options.state_dtype);
  m->angles = angle_mode(options.angles);
  // Every matrix is generated into host memory before upload, whatever the backend: checked first.
  const ModelConfig& c = m->desc.cfg;
  m->memory = plan_model_memory(m->desc, *m->backend);
  check_memory_plan(m->memory,
                    "random model " + std::to_string(c.vocab_size) + "x" + std::to_string(c.d_model) + "x" +
                        std::to_string(c.n_layers),
                    hooks.available_memory);
  generate_random_weights(m->desc, sp, options.on_progress);
  place_model(*m, nullptr, "random model");  // progress was reported while generating
  apply_bf16_activations(*m, options.bf16_activations);
  return std::shared_ptr<const Model>(new Model(std::move(m)));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;
const ModelInfo& Model::info() const { return impl_->desc.info; }

}  // namespace retnet
