#include "backend/backend.hpp"

#include <thread>

#include "backend/cpu/cpu_backend.hpp"
#include "retnet/error.hpp"

namespace retnet {

#ifdef RETNET_WITH_CUDA
int cuda_device_count();  // kernels/cuda_probe.cu
#endif

bool cuda_available() {
#ifdef RETNET_WITH_CUDA
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(DeviceKind device, int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > 512) throw Error("threads: " + std::to_string(threads) + " is more than 512");
  switch (device) {
    case DeviceKind::Cuda:
      // The CUDA kernels and backend are their own piece of work; until they land, say so plainly.
      throw Error(std::string("device 'cuda': ") +
                  (cuda_available() ? "the CUDA backend is not implemented yet (use --device cpu)"
                                    : "no CUDA device is available (use --device cpu)"));
    case DeviceKind::Auto:
    case DeviceKind::Cpu:
      return std::make_unique<CpuBackend>(threads);
  }
  throw Error("unknown device");
}

}  // namespace retnet
