// Shared by the CUDA backend tests (cuda_backend_test.cpp, cuda_graph_test.cpp, cuda_load_test.cpp):
// models loaded the normal way (Model::Impl::load) onto this build's CudaBackend — emulated or real —
// through the internal load hook, and what the backend reports about itself.
#pragma once

#include "runtime/model_impl.hpp"
#include "test_util.hpp"
// after the library headers: in the emulated build this defines the CUDA built-in macros
#include "backend/cuda/cuda_backend.hpp"
#include "kernel_test_util.hpp"

namespace ktest {
inline namespace RETNET_KERNEL_ABI {

// max|Δlogit| ≤ 2e-5 × max|logit| against the CPU backend (see cuda_backend_test.cpp).
inline constexpr double kLogitTol = 2e-5;

// Small pinned chunks, so that a fixture's weights cross chunk boundaries and alternate buffers.
inline retnet::CudaOptions test_cuda_options(bool graphs = true) {
  retnet::CudaOptions o;
  o.graphs = graphs;
  o.upload_chunk = 1000;
  return o;
}

inline retnet::LoadHooks cuda_hooks(const retnet::CudaOptions& o) {
  retnet::LoadHooks h;
  h.make_backend = [o](retnet::DeviceKind, int) -> std::unique_ptr<retnet::Backend> {
    return std::make_unique<retnet::CudaBackend>(o);
  };
  return h;
}

inline std::shared_ptr<const retnet::Model> load_cuda_fixture(const std::string& name,
                                                              const retnet::CudaOptions& o = test_cuda_options(),
                                                              retnet::LoadOptions lo = {}) {
  lo.device = retnet::Device::Cuda;
  lo.threads = 1;
  return retnet::Model::Impl::load(retnet::test::fixture_dir(name), lo, cuda_hooks(o));
}

// The model's backend, whose step statistics its sessions' backends share.
inline const retnet::CudaBackend& cuda_backend_of(const retnet::Model& m) {
  return dynamic_cast<const retnet::CudaBackend&>(*m.impl().backend);
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace ktest
