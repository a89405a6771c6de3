// The few device-runtime services the CUDA backend needs: memory, copies, a stream, events, an fp32
// GEMM. Two implementations behind one header:
//   * real (RETNET_WITH_CUDA, not RETNET_SIMT): CUDA runtime + cuBLAS;
//   * emulated (RETNET_SIMT): host memory, synchronous copies and a host sgemm, so that the whole
//     CUDA backend runs on a machine without a GPU, its kernels in the SIMT emulator (tests).
// Stream work (copies, memsets, GEMMs, kernels) may be captured into a graph (device_graph.hpp); the
// calls that a capture forbids (allocation, synchronisation, copies to the host) fail while the calling
// thread captures, in both implementations, so the emulator enforces the device's capture rules.
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
int device_major();        // compute capability major of the current device (9 = Hopper; 0 emulated)

// Device allocations (malloc_device) and page-locked host allocations (malloc_pinned) made so far by
// this process, a monotonic count (a decode step must leave it unchanged), and those not yet freed
// (a cancelled load must leave it unchanged). For tests.
uint64_t allocation_count();
int64_t live_allocations();
// Host-to-device copies issued so far (copy_h2d calls), a monotonic count: a decode step issues one,
// its step-input block (per-model constants were uploaded at load). For tests.
uint64_t h2d_copy_count();

void* malloc_device(size_t bytes);  // not initialised; throws on failure
void free_device(void* p);          // null is fine
void* malloc_pinned(size_t bytes);  // page-locked host memory (emulated: plain host memory)
void free_pinned(void* p);          // null is fine
// From pageable memory the copy is staged before the call returns (src may be reused at once); from
// pinned memory it is asynchronous and reads src when it runs (as a captured copy does on replay).
void copy_h2d(void* dst, const void* src, size_t bytes, cudaStream_t s);
void copy_d2h(void* dst, const void* src, size_t bytes, cudaStream_t s);  // synchronous: dst is ready
void copy_d2d(void* dst, const void* src, size_t bytes, cudaStream_t s);  // async on s
void zero_device(void* dst, size_t bytes, cudaStream_t s);                // async on s
cudaStream_t create_stream();
void destroy_stream(cudaStream_t s);
void sync_stream(cudaStream_t s);

// A completion marker on a stream (cudaEvent_t without timing; emulated: always complete).
class Event {
 public:
  Event();
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(cudaStream_t s);
  void wait();  // host waits until the work before the last record() is done

 private:
  void* event_ = nullptr;  // cudaEvent_t
};

// fp32 GEMM on the device, row-major: y[T, ldy] (columns 0..n-1) = x[T, k] · W[n, k]ᵀ.
// cuBLAS without TF32 (CUBLAS_DEFAULT_MATH keeps full fp32 products) / a host loop when emulated.
// The handle gets its own workspace (cublasSetWorkspace), so that GEMMs can be captured into a graph
// without cuBLAS allocating during the capture.
class Blas {
 public:
  explicit Blas(cudaStream_t s);
  ~Blas();
  Blas(const Blas&) = delete;
  Blas& operator=(const Blas&) = delete;
  void sgemm_xwt(const float* x, int64_t T, int64_t k, const float* w, int64_t n, float* y, int64_t ldy);

 private:
  void* handle_ = nullptr;  // cublasHandle_t (kept opaque: no cuBLAS types in this header)
  void* workspace_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace gpu
}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
