#include "backend/backend.hpp"

#include <thread>

#include "backend/cpu/cpu_backend.hpp"
#include "retnet/error.hpp"

namespace retnet {

bool cuda_available() {
  // The CUDA backend lands with its own issue; until then no device is ever reported.
  return false;
}

std::unique_ptr<Backend> make_backend(DeviceKind device, int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  if (threads > 512) throw Error("threads: " + std::to_string(threads) + " is more than 512");
  switch (device) {
    case DeviceKind::Cuda:
      throw Error("device 'cuda': this build has no CUDA backend yet (use --device cpu)");
    case DeviceKind::Auto:
    case DeviceKind::Cpu:
      return std::make_unique<CpuBackend>(threads);
  }
  throw Error("unknown device");
}

}  // namespace retnet
