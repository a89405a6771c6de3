// The few device-runtime services the CUDA backend needs: memory, copies, a stream, an fp32 GEMM.
// Two implementations behind one header:
//   * real (RETNET_WITH_CUDA, not RETNET_SIMT): CUDA runtime + cuBLAS;
//   * emulated (RETNET_SIMT): host memory, synchronous copies and a host sgemm, so that the whole
//     CUDA backend runs on a machine without a GPU, its kernels in the SIMT emulator (tests).
// Every failure throws retnet::Error naming the call, file and line.
#pragma once

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <cstddef>
#include <cstdint>
#include <string>

#include "launchers.cuh"  // cudaStream_t, cudaError_t, RETNET_KERNEL_ABI

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace gpu {

[[noreturn]] void fail(const char* what, const char* detail, const char* file, int line);
inline void check(cudaError_t e, const char* what, const char* file, int line) {
  if (e != cudaSuccess) fail(what, cudaGetErrorString(e), file, line);
}
#define RETNET_CUDA_CHECK(call) ::retnet::gpu::check((call), #call, __FILE__, __LINE__)

int device_count();        // 0 without a driver/device (never throws)
std::string device_name(); // of the current device ("SIMT emulator" when emulated)

void* malloc_device(size_t bytes);  // not initialised; throws on failure
void free_device(void* p);          // null is fine
void copy_h2d(void* dst, const void* src, size_t bytes, cudaStream_t s);  // returns once src may be reused
void copy_d2h(void* dst, const void* src, size_t bytes, cudaStream_t s);  // synchronous: dst is ready
void copy_d2d(void* dst, const void* src, size_t bytes, cudaStream_t s);  // async on s
void zero_device(void* dst, size_t bytes, cudaStream_t s);                // async on s
cudaStream_t create_stream();
void destroy_stream(cudaStream_t s);
void sync_stream(cudaStream_t s);

// fp32 GEMM on the device, row-major: y[T, ldy] (columns 0..n-1) = x[T, k] · W[n, k]ᵀ.
// cuBLAS without TF32 (CUBLAS_DEFAULT_MATH keeps full fp32 products) / a host loop when emulated.
class Blas {
 public:
  explicit Blas(cudaStream_t s);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  void sgemm_xwt(const float* x, int64_t T, int64_t k, const float* w, int64_t n, float* y, int64_t ldy);

 private:
  void* handle_ = nullptr;  // cublasHandle_t (kept opaque: no cuBLAS types in this header)
  cudaStream_t stream_;
};

}  // namespace gpu
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
