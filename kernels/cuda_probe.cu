// Device discovery for the backend factory. Plain C++17 launcher-side code: no third-party types.
#include <cuda_runtime.h>

namespace retnet {

// Number of usable CUDA devices; 0 when the driver or a device is missing (never throws).
int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device/driver" error
    return 0;
  }
  return n;
}

}  // namespace retnet
