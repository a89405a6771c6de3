// Launcher of theta_shift (device code in rotary.cuh).
#include "rotary.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

cudaError_t launch_theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos,
                               const float* theta32, const double* theta64, Pairing pairing, float q_scale,
                               float k_scale, cudaStream_t stream) {
  if (T <= 0 || H <= 0 || dk < 2) return cudaSuccess;
  if (dk % 2 != 0) return cudaErrorInvalidValue;
  const auto kernel = &dev::theta_shift_kernel;
  const size_t smem = size_t(dk) * sizeof(float);  // sin and cos of dk/2 pairs
  RETNET_LAUNCH(kernel, dim3(unsigned(T)), dim3(dev::kRotaryThreads), smem, stream, q, k, H, dk, pos, theta32, theta64,
                pairing, q_scale, k_scale);
  return cudaGetLastError();
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
