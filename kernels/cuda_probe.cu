// Device discovery for the backend factory. Plain C++17 launcher-side code: no third-party types.
#include <cuda_runtime.h>

#include <string>

namespace retnet {

namespace {
// Compiled for the same architectures as every other kernel of the build: whether the device can
// load it tells whether it can run them (no SASS for its architecture and no PTX it can JIT: a
// build for sm_80/sm_90 on a T4 or V100).
__global__ void probe_kernel(int* p) {
  if (p) *p = 0;
}
}  // namespace

// Number of usable CUDA devices; 0 when the driver or a device is missing (never throws).
int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device/driver" error
    return 0;
  }
  return n;
}

// Empty when the current device can run this build's kernels, else why not (never throws).
std::string cuda_kernels_unsupported() {
  cudaFuncAttributes attr{};
  const cudaError_t e = cudaFuncGetAttributes(&attr, probe_kernel);
  if (e == cudaSuccess) return {};
  cudaGetLastError();
  int dev = 0, major = 0, minor = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
  cudaGetLastError();
  return "the device (compute capability " + std::to_string(major) + "." + std::to_string(minor) +
         ") cannot run this build's kernels (" + cudaGetErrorString(e) +
         "); rebuild with -DRETNET_CUDA_ARCHITECTURES=" + std::to_string(major) + std::to_string(minor);
}

}  // namespace retnet
