// The CUDA backend: fp32 activations and states in device memory, weights uploaded once in their
// stored dtype, every op a kernel of kernels/ (or cuBLAS for prefill-sized products), all on one
// stream. Host arrays the Backend interface passes per call (token ids, positions, per-row scales,
// state pointers) go through small device staging buffers that grow and never shrink, so a decode
// step allocates nothing once warm; per-model constants (θ, ln γ, γ) are uploaded once.
//
// Compiled into libretnet when CUDA is found (namespace retnet::cuda), and into the emulated test
// library with RETNET_SIMT (retnet::emu: kernels in the SIMT emulator, host memory as device memory),
// which lets CI run the whole backend, model families end to end, without a GPU.
// Not thread-safe: one backend serves one thread at a time (as the CPU backend's scratch).
#pragma once

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cuda/device_runtime.hpp"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

class CudaBackend final : public Backend {
 public:
  CudaBackend();  // the current CUDA device; throws Error when there is none
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override;
  std::string device_name() const;

  float* alloc(size_t n) override;
  void release(float* p) override;
  void to_host(float* dst, const float* src, size_t n) override;
  void from_host(float* dst, const float* src, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override;
  void zero(float* dst, size_t n) override;
  WeightRef upload(const WeightRef& host) override;

  void embed(const WeightRef& table, const int32_t* ids_host, int64_t T, float scale, float* out) override;
  void rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y) override;
  void matmul(const float* x, int64_t T, int64_t in, std::span<const MatmulJob> jobs) override;
  void theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos_host,
                   const float* theta32_host, const double* theta64_host, Pairing pairing, AngleMode angles,
                   float q_scale, float k_scale) override;
  void retention_chunk(const RetentionChunkArgs& a) override;
  void retention_step(const RetentionStepArgs& a) override;
  void group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                       float eps) override;
  void glu(const float* a, const float* b, float* out, size_t n, Activation act) override;
  void residual(float* x, const float* y, float alpha, size_t n) override;

  // Waits for every queued kernel (the Backend interface's to_host does this implicitly).
  void synchronize();

 private:
  // A device buffer for per-call data; grows (after a stream sync, as cudaFree does) and never shrinks.
  struct Staging {
    void* p = nullptr;
    size_t cap = 0;
    void* ensure(size_t bytes);
    ~Staging();
  };
  // Copies a per-call host array to a staging buffer and returns its device address.
  const void* stage(Staging& s, const void* host, size_t bytes);
  // Device copy of a per-model constant host array, uploaded when first seen or when it changed.
  const void* constant(const void* host, size_t bytes);

  cudaStream_t stream_ = nullptr;
  std::unique_ptr<gpu::Blas> blas_;
  std::vector<void*> uploads_;  // weights made resident by upload(), freed with the backend
  Staging ids_, pos_, ptrs_, scale_, workspace_, panel_;
  struct Constant {
    const void* host;
    std::vector<unsigned char> copy;  // content when uploaded
    void* dev;
  };
  std::vector<Constant> constants_;
};

// The factory make_backend() will call for DeviceKind::Cuda.
std::unique_ptr<Backend> make_cuda_backend();

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
