// Device-runtime services of the CUDA backend: CUDA runtime + cuBLAS, or host stand-ins under the
// SIMT emulator (see device_runtime.hpp). Compiled into libretnet (real, when CUDA is found; empty
// otherwise) and into the emulated test library (RETNET_SIMT).
#include "backend/cuda/device_runtime.hpp"

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <atomic>
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

namespace {
std::atomic<uint64_t> g_allocations{0};
std::atomic<int64_t> g_live{0};
std::atomic<uint64_t> g_h2d_copies{0};
void count_alloc() {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  g_live.fetch_add(1, std::memory_order_relaxed);
}
void count_free(void* p) {
  if (p) g_live.fetch_sub(1, std::memory_order_relaxed);
}
}  // namespace
uint64_t allocation_count() { return g_allocations.load(std::memory_order_relaxed); }
int64_t live_allocations() { return g_live.load(std::memory_order_relaxed); }
uint64_t h2d_copy_count() { return g_h2d_copies.load(std::memory_order_relaxed); }

#if defined(RETNET_SIMT)

namespace {
// What a capture forbids fails here as the runtime refuses it on the device (thread-local capture).
void refuse_while_capturing(const char* what) {
  if (simt::capturing()) fail(what, "operation not permitted when stream is capturing", __FILE__, __LINE__);
}
}  // namespace

int device_count() { return 1; }
std::string device_name() { return "SIMT emulator (host)"; }
int device_major() { return 0; }

void* malloc_device(size_t bytes) {
  refuse_while_capturing("malloc_device");
  void* p = std::aligned_alloc(256, (bytes + 255) / 256 * 256 + 256);
  if (!p) fail("malloc_device", "out of host memory", __FILE__, __LINE__);
  count_alloc();
  return p;
}
void free_device(void* p) {
  if (p) refuse_while_capturing("free_device");
  count_free(p);
  std::free(p);
}
void* malloc_pinned(size_t bytes) { return malloc_device(bytes); }
void free_pinned(void* p) { free_device(p); }
// Stream work runs at once, or is recorded while capturing (simt::submit) and then reads its source
// when replayed, as a graph's copy node does.
void copy_h2d(void* dst, const void* src, size_t bytes, cudaStream_t) {
  g_h2d_copies.fetch_add(1, std::memory_order_relaxed);
  simt::submit([=] { std::memmove(dst, src, bytes); });
}
void copy_d2h(void* dst, const void* src, size_t bytes, cudaStream_t) {
  refuse_while_capturing("copy_d2h");
  std::memmove(dst, src, bytes);
}
void copy_d2d(void* dst, const void* src, size_t bytes, cudaStream_t) {
  simt::submit([=] { std::memmove(dst, src, bytes); });
}
void zero_device(void* dst, size_t bytes, cudaStream_t) {
  simt::submit([=] { std::memset(dst, 0, bytes); });
}
cudaStream_t create_stream() { return nullptr; }
void destroy_stream(cudaStream_t) {}
void sync_stream(cudaStream_t) {
  refuse_while_capturing("sync_stream");
  RETNET_CUDA_CHECK(cudaGetLastError());
}

Event::Event() = default;
Event::~Event() = default;
void Event::record(cudaStream_t) {}
void Event::wait() { refuse_while_capturing("Event::wait"); }

Blas::Blas(cudaStream_t s) : stream_(s) { refuse_while_capturing("Blas"); }
Blas::~Blas() = default;
void Blas::sgemm_xwt(const float* x, int64_t T, int64_t k, const float* w, int64_t n, float* y, int64_t ldy) {
  // Plain fp32 dot products: the emulated build runs small test models only.
  simt::submit([=] {
    for (int64_t t = 0; t < T; ++t)
      for (int64_t r = 0; r < n; ++r) {
        const float* a = x + t * k;
        const float* b = w + r * k;
        float s = 0.f;
        for (int64_t i = 0; i < k; ++i) s += a[i] * b[i];
        y[t * ldy + r] = s;
      }
  });
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

int device_major() {
  int dev = 0, major = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return major;
}

void* malloc_device(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail(("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str(), cudaGetErrorString(e), __FILE__, __LINE__);
  }
  count_alloc();
  return p;
}
void free_device(void* p) {
  count_free(p);
  if (p) cudaFree(p);  // errors here (e.g. at process exit) are not actionable
}
void* malloc_pinned(size_t bytes) {
  void* p = nullptr;
  const cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 1, cudaHostAllocDefault);
  if (e != cudaSuccess) {
    cudaGetLastError();
    fail(("cudaHostAlloc of " + std::to_string(bytes) + " bytes").c_str(), cudaGetErrorString(e), __FILE__, __LINE__);
  }
  count_alloc();
  return p;
}
void free_pinned(void* p) {
  count_free(p);
  if (p) cudaFreeHost(p);
}
void copy_h2d(void* dst, const void* src, size_t bytes, cudaStream_t s) {
  g_h2d_copies.fetch_add(1, std::memory_order_relaxed);
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

Event::Event() {
  cudaEvent_t e = nullptr;
  RETNET_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  event_ = e;
}
Event::~Event() {
  if (event_) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}
void Event::record(cudaStream_t s) { RETNET_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), s)); }
void Event::wait() { RETNET_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_))); }

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
  try {
    // cuBLAS recommends 32 MiB of workspace on Hopper and 4 MiB elsewhere. A workspace of our own
    // means cuBLAS never allocates inside a stream capture. cublasSetStream resets the workspace to
    // the default pool, so the workspace is set after it.
    const size_t ws = device_major() >= 9 ? (size_t(32) << 20) : (size_t(4) << 20);
    workspace_ = malloc_device(ws);
    RETNET_CUBLAS_CHECK(cublasSetStream(h, s));
    RETNET_CUBLAS_CHECK(cublasSetWorkspace(h, workspace_, ws));
    // Full fp32 products (no TF32): the CPU backend is the reference and computes in fp32. Host
    // pointer mode (the default): alpha and beta are read at the call, and baked into a captured graph.
    RETNET_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));
    RETNET_CUBLAS_CHECK(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST));
  } catch (...) {
    cublasDestroy(h);
    free_device(workspace_);
    throw;
  }
}
Blas::~Blas() {
  if (handle_) cublasDestroy(static_cast<cublasHandle_t>(handle_));
  free_device(workspace_);  // after the handle: cuBLAS may still use it until then
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
