// The CUDA backend: fp32 activations and states in device memory, weights uploaded once in their
// stored dtype (streamed through pinned memory, cuda_upload.cpp), every op a kernel of kernels/ (or
// cuBLAS for prefill-sized products) on one stream.
//
// A model's backend uploads the weights; each Session gets a backend of its own (session_backend):
// its own stream, cuBLAS handle (created at its first prefill-sized product), staging buffers and
// captured decode steps. Host arrays that the Backend interface passes per call (token ids,
// positions, per-row scales, state pointers) go through small device staging buffers that grow and
// never shrink — or, in a decode step, through the step-input mirror (cuda_decode_step.cpp): one
// pinned host block copied to the device once per step, whose device addresses stay fixed, so that
// the whole step can be captured into a CUDA graph once per (session, batch size) and replayed.
// Per-model constants (θ, ln γ, γ) are device buffers the placed model owns (upload_constant), made
// once at load; the ops take them by device pointer.
//
// Compiled into libretnet when CUDA is found (namespace retnet::cuda), and into the emulated test
// library with RETNET_SIMT (retnet::emu: kernels in the SIMT emulator, host memory as device memory,
// graphs recorded and replayed by the emulator), which lets CI run the whole backend, model families
// end to end, without a GPU.
// Not thread-safe: one backend serves one thread at a time.
#pragma once

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <array>
#include <atomic>
#include <memory>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cuda/device_graph.hpp"
#include "backend/cuda/device_runtime.hpp"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

struct CudaOptions {
  // Capture each decode step into a CUDA graph and replay it (make_cuda_backend: environment
  // RETNET_CUDA_GRAPH=0 turns it off). Off: every step is launched op by op.
  bool graphs = true;
  // Weight uploads are copied through two pinned buffers of this many bytes, used in turn.
  size_t upload_chunk = size_t(64) << 20;
};

// What the decode steps of a model's sessions did; shared by the model's backend and its sessions'
// backends (logs, tests).
struct CudaStepStats {
  std::atomic<uint64_t> plain{0};     // steps launched op by op (graphs off, first step of a shape, fallback)
  std::atomic<uint64_t> captures{0};  // graphs captured
  std::atomic<uint64_t> replays{0};   // steps run as one graph launch (the capturing step included)
  std::atomic<uint64_t> failures{0};  // captures that failed (the session then launches op by op)
};

class CudaBackend final : public Backend {
 public:
  // The current CUDA device; throws Error when there is none.
  explicit CudaBackend(CudaOptions options = {}, std::shared_ptr<CudaStepStats> stats = nullptr);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  std::string name() const override;  // "cuda (<device name>)"
  std::string device_name() const;
  const CudaOptions& options() const { return opt_; }
  const CudaStepStats& step_stats() const { return *stats_; }

  float* alloc(size_t n) override;
  void release(float* p) override;
  void to_host(float* dst, const float* src, size_t n) override;
  void from_host(float* dst, const float* src, size_t n) override;
  void copy(float* dst, const float* src, size_t n) override;
  void zero(float* dst, size_t n) override;
  WeightRef upload(const WeightRef& host, FnRef<void(uint64_t)> on_bytes) override;  // cuda_upload.cpp
  uint64_t host_alloc_bytes(uint64_t) const override { return 0; }                   // device memory
  void finish_uploads() override;
  void* upload_constant(const void* host, size_t bytes) override;  // cuda_upload.cpp
  void release_constant(void* p) override;

  std::unique_ptr<Backend> session_backend() override;
  void synchronize() override;
  void* step_inputs(size_t bytes) override;  // cuda_decode_step.cpp
  void upload_step_inputs(size_t bytes) override;
  void run_step(uint64_t key, FnRef<void()> enqueue) override;

  void embed(const WeightRef& table, const int32_t* ids_host, int64_t T, float scale, float* out) override;
  void rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y) override;
  void matmul(const float* x, int64_t T, int64_t in, std::span<const MatmulJob> jobs) override;
  void theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos_host, const float* theta32,
                   const double* theta64, Pairing pairing, AngleMode angles, float q_scale, float k_scale) override;
  void retention_chunk(const RetentionChunkArgs& a) override;
  void retention_step(const RetentionStepArgs& a) override;
  void group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                       float eps) override;
  void glu(const float* a, const float* b, float* out, size_t n, Activation act) override;
  void residual(float* x, const float* y, float alpha, size_t n) override;

 private:
  // A device buffer for per-call data; grows and never shrinks.
  struct Staging {
    void* p = nullptr;
    size_t cap = 0;
  };
  // A decode step of one key: warmed up, then captured, then replayed while the layout holds.
  struct StepGraph {
    uint64_t key = 0;
    uint64_t layout = 0;  // layout_ when warmed up / captured
    uint64_t last_use = 0;
    bool warm = false;    // ran once plainly with this layout: lazy allocations are done
    gpu::Graph graph;
  };
  void* ensure(Staging& s, size_t bytes);
  // Device address of a per-call host array: inside the step-input mirror, its device copy (already
  // uploaded); elsewhere, a copy into the staging buffer s (refused while capturing).
  const void* stage(Staging& s, const void* host, size_t bytes);
  gpu::Blas& blas();
  // Throws Error when called during a capture: `what` would bake a host value or allocate.
  void refuse_while_capturing(const char* what) const;
  // A buffer moved (alloc, release, staging growth): recorded steps may use its old address.
  void buffers_moved();
  void capture_step(StepGraph& g, FnRef<void()> enqueue);

  CudaOptions opt_;
  std::shared_ptr<CudaStepStats> stats_;
  cudaStream_t stream_ = nullptr;
  std::unique_ptr<gpu::Blas> blas_;  // created at the first prefill-sized product
  std::vector<void*> uploads_;       // weights made resident by upload(), freed with the backend
  Staging ids_, pos_, ptrs_, scale_, workspace_, panel_;

  // Weight upload staging (cuda_upload.cpp): two pinned chunks used in turn; free_[i] is recorded
  // after the copy that reads pinned_[i], so the host refills it only once that copy is done.
  void* pinned_[2] = {nullptr, nullptr};
  std::unique_ptr<gpu::Event> pinned_free_[2];
  int next_pinned_ = 0;

  // Step inputs (cuda_decode_step.cpp): pinned host block and its device copy.
  void* step_host_ = nullptr;
  void* step_dev_ = nullptr;
  size_t step_cap_ = 0;
  std::unique_ptr<gpu::Event> step_copied_;  // after the last step-input copy: the host block is free

  // Captured decode steps, one per key (batch size), least recently used replaced.
  std::array<StepGraph, 4> graphs_;
  uint64_t layout_ = 1;  // bumped whenever a buffer moves
  uint64_t clock_ = 0;
  bool capturing_ = false;
  bool graphs_failed_ = false;  // a capture failed: plain launches from then on
};

// The factory make_backend() calls for DeviceKind::Cuda (options from the environment).
std::unique_ptr<Backend> make_cuda_backend();

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
