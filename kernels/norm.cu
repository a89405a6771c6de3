// Launchers of the RMS norm kernels (device code in norm.cuh).
#include "norm.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

cudaError_t launch_rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y,
                            cudaStream_t stream) {
  if (T <= 0 || D <= 0) return cudaSuccess;
  const auto kernel = &dev::rms_norm_kernel;
  RETNET_LAUNCH(kernel, dim3(unsigned(T)), dim3(dev::kNormThreads), 0, stream, x, D, w, eps, y);
  return cudaGetLastError();
}

cudaError_t launch_group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                                   float eps, cudaStream_t stream) {
  const int64_t rows = T * H;
  if (rows <= 0 || dv <= 0) return cudaSuccess;
  const auto kernel = &dev::group_norm_gate_kernel;
  const unsigned blocks = unsigned((rows + dev::kGroupNormWarps - 1) / dev::kGroupNormWarps);
  RETNET_LAUNCH(kernel, dim3(blocks), dim3(dev::kGroupNormWarps * 32), 0, stream, o, g, rows, dv, w, eps);
  return cudaGetLastError();
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
