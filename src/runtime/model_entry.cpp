// The library's entry points that build a Model: the model layer builds it (model.cpp,
// random_model.cpp) and checks its memory plan with one session of the size the runtime states
// (planned_session_host_bytes, runtime/session_impl.hpp), which only this layer knows.
#include <chrono>

#include "model/model_impl.hpp"
#include "runtime/session_impl.hpp"

namespace retnet {

std::shared_ptr<const Model> Model::load(const std::string& dir, const LoadOptions& options) {
  return Impl::load(dir, options, LoadHooks{});
}

std::shared_ptr<const Model> Model::Impl::load(const std::string& dir, const LoadOptions& options,
                                               const LoadHooks& hooks) {
  const auto t0 = std::chrono::steady_clock::now();
  auto impl = load_model_impl(dir, options, hooks, &planned_session_host_bytes);
  impl->info.load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return std::shared_ptr<const Model>(new Model(std::move(impl)));
}

std::shared_ptr<const Model> Model::random(const RandomModelSpec& sp, const LoadOptions& options) {
  return Impl::random(sp, options, LoadHooks{});
}

std::shared_ptr<const Model> Model::Impl::random(const RandomModelSpec& sp, const LoadOptions& options,
                                                 const LoadHooks& hooks) {
  return std::shared_ptr<const Model>(new Model(random_model_impl(sp, options, hooks, &planned_session_host_bytes)));
}

}  // namespace retnet
