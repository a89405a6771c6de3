#include "backend/backend.hpp"

#include "common/logger.hpp"

#include <string>
#include <thread>

#include "backend/cpu/cpu_backend.hpp"
#ifdef RETNET_WITH_CUDA
#include "backend/cuda/cuda_backend.hpp"
#endif
#include "retnet/error.hpp"
#include "retnet/system.hpp"  // kMaxThreads

namespace retnet {

#ifdef RETNET_WITH_CUDA
int cuda_device_count();                // kernels/cuda_probe.cu
std::string cuda_kernels_unsupported();  // kernels/cuda_probe.cu
#endif

bool cuda_available() {
#ifdef RETNET_WITH_CUDA
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

void Backend::widen_f16(float*, const void*, size_t) {
  throw Error("f16 state storage: the " + name() + " backend keeps fp32 states only");
}
void Backend::narrow_f16(void*, const float*, size_t) {
  throw Error("f16 state storage: the " + name() + " backend keeps fp32 states only");
}

std::unique_ptr<Backend> make_backend(DeviceKind device, int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > kMaxThreads)
    throw Error("threads: " + std::to_string(threads) + " is more than " + std::to_string(kMaxThreads));
  switch (device) {
    case DeviceKind::Cuda:
#ifdef RETNET_WITH_CUDA
      if (!cuda_available()) throw Error("device 'cuda': no CUDA device is available (use --device cpu)");
      if (const std::string why = cuda_kernels_unsupported(); !why.empty()) throw Error("device 'cuda': " + why);
      return make_cuda_backend();
#else
      throw Error("device 'cuda': this build has no CUDA support (use --device cpu)");
#endif
    case DeviceKind::Auto: {
      // CUDA when this build has it and a device is present, else the CPU.
#ifdef RETNET_WITH_CUDA
      // A device this build cannot use (an architecture it has no kernels for, a device that is
      // busy or out of memory) is not an error under auto: the CPU runs the model, with a warning.
      if (cuda_available()) {
        std::string why = cuda_kernels_unsupported();
        if (why.empty()) {
          try {
            auto be = make_cuda_backend();
            lib_log().info("device auto: {} (CUDA device found)", be->name());
            return be;
          } catch (const std::exception& e) {
            why = e.what();
          }
        }
        lib_log().warn("device auto: cpu, because the CUDA device cannot be used: {}", why);
        return std::make_unique<CpuBackend>(threads);
      }
      lib_log().info("device auto: cpu (this build has CUDA, but no CUDA device is available)");
#else
      lib_log().info("device auto: cpu (this build has no CUDA support)");
#endif
      return std::make_unique<CpuBackend>(threads);
    }
    case DeviceKind::Cpu:
      return std::make_unique<CpuBackend>(threads);
  }
  throw Error("unknown device");
}

}  // namespace retnet
