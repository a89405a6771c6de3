// Device-runtime services of the CUDA backend: CUDA runtime + cuBLAS, or host stand-ins under the
// SIMT emulator (see device_runtime.hpp). Compiled into libretnet (real, when CUDA is found; empty
// otherwise) and into the emulated test library (RETNET_SIMT).
#include "backend/cuda/device_runtime.hpp"

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <cstdlib>
#include <cstring>
#include <string>

#include "retnet/error.hpp"

#if !defined(RETNET_SIMT)
#include <cublas_v2.h>
#include <cuda_runtime.h>
#endif

namespace retnet {
inline namespace RETNET_KERNEL_ABI {
namespace gpu {

void fail(const char* what, const char* detail, const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  throw Error(std::string("cuda: ") + what + ": " + detail + " (" + (base ? base + 1 : file) + ":" +
              std::to_string(line) + ")");
}

#if defined(RETNET_SIMT)

int device_count() { return 1; }
std::string device_name() { return "SIMT emulator (host)"; }

void* malloc_device(size_t bytes) {
  void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!p) fail("malloc_device", "out of host memory", __FILE__, __LINE__);
  return p;
}
void free_device(void* p) { std::free(p); }
void copy_h2d(void* dst, const void* src, size_t bytes, cudaStream_t) { std::memmove(dst, src, bytes); }
void copy_d2h(void* dst, const void* src, size_t bytes, cudaStream_t) { std::memmove(dst, src, bytes); }
void copy_d2d(void* dst, const void* src, size_t bytes, cudaStream_t) { std::memmove(dst, src, bytes); }
void zero_device(void* dst, size_t bytes, cudaStream_t) { std::memset(dst, 0, bytes); }
cudaStream_t create_stream() { return nullptr; }
void destroy_stream(cudaStream_t) {}
void sync_stream(cudaStream_t) { RETNET_CUDA_CHECK(cudaGetLastError()); }

Blas::Blas(cudaStream_t s) : stream_(s) {}
Blas::~Blas() = default;
void Blas::sgemm_xwt(const float* x, int64_t T, int64_t k, const float* w, int64_t n, float* y, int64_t ldy) {
  // Plain fp32 dot products: the emulated build runs small test models only.
  for (int64_t t = 0; t < T; ++t)
    for (int64_t r = 0; r < n; ++r) {
      const float* a = x + t * k;
      const float* b = w + r * k;
      float s = 0.f;
      for (int64_t i = 0; i < k; ++i) s += a[i] * b[i];
      y[t * ldy + r] = s;
    }
}

#else  // real device

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string device_name() {
  int dev = 0;
  cudaDeviceProp p{};
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&p, dev) != cudaSuccess) {
    cudaGetLastError();
    return "unknown CUDA device";
  }
  return p.name;
}

void* malloc_device(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail(("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str(), cudaGetErrorString(e), __FILE__, __LINE__);
  }
  return p;
}
void free_device(void* p) {
  if (p) cudaFree(p);  // errors here (e.g. at process exit) are not actionable
}
void copy_h2d(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  // From pageable memory the copy is staged before the call returns, so src may be reused at once.
  RETNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, s));
}
void copy_d2h(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  RETNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, s));
  RETNET_CUDA_CHECK(cudaStreamSynchronize(s));
}
void copy_d2d(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  RETNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s));
}
void zero_device(void* dst, size_t bytes, cudaStream_t s) { RETNET_CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, s)); }
cudaStream_t create_stream() {
  cudaStream_t s = nullptr;
  RETNET_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}
void destroy_stream(cudaStream_t s) {
  if (s) cudaStreamDestroy(s);
}
void sync_stream(cudaStream_t s) { RETNET_CUDA_CHECK(cudaStreamSynchronize(s)); }

namespace {
const char* cublas_status(cublasStatus_t st) {
  switch (st) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "alloc failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "arch mismatch";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
  }
}
#define RETNET_CUBLAS_CHECK(call)                                                 \
  do {                                                                            \
    const cublasStatus_t st_ = (call);                                            \
    if (st_ != CUBLAS_STATUS_SUCCESS) fail(#call, cublas_status(st_), __FILE__, __LINE__); \
  } while (0)
}  // namespace

Blas::Blas(cudaStream_t s) : stream_(s) {
  cublasHandle_t h = nullptr;
  RETNET_CUBLAS_CHECK(cublasCreate(&h));
  handle_ = h;
  RETNET_CUBLAS_CHECK(cublasSetStream(h, s));
  // Full fp32 products (no TF32): the CPU backend is the reference and computes in fp32.
  RETNET_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
}
Blas::~Blas() {
  if (handle_) cublasDestroy(static_cast<cublasHandle_t>(handle_));
}
void Blas::sgemm_xwt(const float* x, int64_t T, int64_t k, const float* w, int64_t n, float* y, int64_t ldy) {
  // Row-major y[T, n] = x[T, k]·Wᵀ is column-major yᶜ[n, T] = Wᶜᵀ[n, k]·xᶜ[k, T], where Wᶜ = W viewed
  // column-major is [k, n] (lda = k) and xᶜ is [k, T] (ldb = k).
  const float one = 1.0f, zero = 0.0f;
  RETNET_CUBLAS_CHECK(cublasSgemm(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N, int(n), int(T), int(k),
                                  &one, w, int(k), x, int(k), &zero, y, int(ldy)));
}

#endif

}  // namespace gpu
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
