// Launcher of the recurrent retention step (device code in retention_step.cuh).
#include "retention_step.cuh"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

cudaError_t launch_retention_step(const float* q, const float* k, const float* v, float* const* states, float* out,
                                  int64_t B, int64_t H, int64_t dk, int64_t dv, const float* gamma,
                                  const float* out_scale, cudaStream_t stream) {
  if (B <= 0 || H <= 0 || dk <= 0 || dv <= 0) return cudaSuccess;
  if (H > 65535 || B > 65535) return cudaErrorInvalidValue;
  const auto kernel = &dev::retention_step_kernel;
  const dim3 grid = dim3(unsigned((dv + dev::kStepCols - 1) / dev::kStepCols), unsigned(H), unsigned(B));
  const size_t smem = 2 * size_t(dk) * sizeof(float);
  RETNET_LAUNCH(kernel, grid, dim3(dev::kStepWarps * 32), smem, stream, q, k, v, states, out, H, dk, dv, gamma,
                out_scale);
  return cudaGetLastError();
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet
