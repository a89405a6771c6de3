// The CUDA backend (see cuda_backend.hpp): memory, staging, and each Backend op mapped onto a launcher
// of kernels/. Weight uploads: cuda_upload.cpp; decode-step inputs and graphs: cuda_decode_step.cpp.
#include "backend/cuda/cuda_backend.hpp"

#if defined(RETNET_WITH_CUDA) || defined(RETNET_SIMT)

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "retnet/error.hpp"

namespace retnet {
inline namespace RETNET_KERNEL_ABI {

static_assert(kGemvMaxRows >= kDecodeBatchRows, "decode_batch's parts must stay GEMVs");

namespace {
// Widened fp32 panel for prefill products against F16/BF16 and block-quantized weights: bounded so that
// a 32k-vocab LM head does not need its whole fp32 copy at once (64 MiB).
constexpr size_t kPanelFloats = size_t(16) << 20;
}  // namespace

CudaBackend::CudaBackend(CudaOptions options, std::shared_ptr<CudaStepStats> stats)
    : opt_(options), stats_(stats ? std::move(stats) : std::make_shared<CudaStepStats>()) {
  if (gpu::device_count() <= 0) throw Error("device 'cuda': no CUDA device is available (use --device cpu)");
  if (opt_.upload_chunk == 0) throw Error("cuda backend: upload chunk of 0 bytes");
  // The event first: it is a member that frees itself if create_stream() throws, while the raw
  // stream would leak (no destructor runs for a constructor that throws) if the event failed after it.
  step_copied_ = std::make_unique<gpu::Event>();
  stream_ = gpu::create_stream();
}

CudaBackend::~CudaBackend() {
  try {
    gpu::sync_stream(stream_);
  } catch (...) {
    // destructor: a failed stream cannot be reported; the frees below are still attempted
  }
  for (StepGraph& g : graphs_) g.graph.reset();
  for (void* p : uploads_) gpu::free_device(p);
  for (Staging* s : {&ids_, &pos_, &ptrs_, &scale_, &workspace_, &panel_}) gpu::free_device(s->p);
  for (void* p : pinned_) gpu::free_pinned(p);
  gpu::free_pinned(step_host_);
  gpu::free_device(step_dev_);
  blas_.reset();
  gpu::destroy_stream(stream_);
}

std::string CudaBackend::name() const {
#if defined(RETNET_SIMT)
  return "cuda (simt emulator)";
#else
  return "cuda (" + gpu::device_name() + ")";
#endif
}
std::string CudaBackend::device_name() const { return gpu::device_name(); }

std::unique_ptr<Backend> CudaBackend::session_backend() {
  // Device pointers are valid on every stream: the session's backend uses the weights uploaded here.
  return std::make_unique<CudaBackend>(opt_, stats_);
}

void CudaBackend::refuse_while_capturing(const char* what) const {
  if (capturing_) throw Error(std::string("cuda graph capture: ") + what + " is not allowed while capturing a decode step");
}

void CudaBackend::buffers_moved() {
  refuse_while_capturing("moving a buffer");
  ++layout_;
}

void* CudaBackend::ensure(Staging& s, size_t bytes) {
  if (bytes <= s.cap) return s.p;
  buffers_moved();
  const size_t cap = std::max(bytes, s.cap * 2);
  gpu::free_device(s.p);  // cudaFree waits for the kernels that may still read it
  // Empty until the new allocation exists: were cap kept while malloc_device throws (out of device
  // memory), a later call fitting in it would hand the kernels a null buffer.
  s.p = nullptr;
  s.cap = 0;
  s.p = gpu::malloc_device(cap);
  s.cap = cap;
  return s.p;
}

const void* CudaBackend::stage(Staging& s, const void* host, size_t bytes) {
  const auto* h = static_cast<const unsigned char*>(host);
  const auto* base = static_cast<const unsigned char*>(step_host_);
  if (base && h >= base && h + bytes <= base + step_cap_)
    return static_cast<const unsigned char*>(step_dev_) + (h - base);  // uploaded with the step inputs
  refuse_while_capturing("a per-call host array outside the step inputs");
  void* d = ensure(s, bytes);
  // Same stream as the kernels: the copy waits for earlier readers of the buffer.
  gpu::copy_h2d(d, host, bytes, stream_);
  return d;
}

gpu::Blas& CudaBackend::blas() {
  if (!blas_) {
    refuse_while_capturing("creating the cuBLAS handle");
    blas_ = std::make_unique<gpu::Blas>(stream_);
  }
  return *blas_;
}

void CudaBackend::synchronize() { gpu::sync_stream(stream_); }

// ---- memory ------------------------------------------------------------------------------------------
float* CudaBackend::alloc(size_t n) {
  buffers_moved();
  void* p = gpu::malloc_device(n * sizeof(float));
  gpu::zero_device(p, n * sizeof(float), stream_);
  return static_cast<float*>(p);
}
void CudaBackend::release(float* p) {
  buffers_moved();
  gpu::free_device(p);
}
void CudaBackend::to_host(float* dst, const float* src, size_t n) {
  refuse_while_capturing("copying to the host");
  gpu::copy_d2h(dst, src, n * 4, stream_);
}
void CudaBackend::from_host(float* dst, const float* src, size_t n) {
  refuse_while_capturing("copying from pageable host memory");
  gpu::copy_h2d(dst, src, n * 4, stream_);
}
void CudaBackend::copy(float* dst, const float* src, size_t n) {
  if (dst != src) gpu::copy_d2d(dst, src, n * 4, stream_);
}
void CudaBackend::zero(float* dst, size_t n) { gpu::zero_device(dst, n * 4, stream_); }

// ---- ops ---------------------------------------------------------------------------------------------
void CudaBackend::embed(const WeightRef& table, const int32_t* ids_host, int64_t T, float scale, float* out) {
  if (T <= 0) return;
  const auto* ids = static_cast<const int32_t*>(stage(ids_, ids_host, size_t(T) * sizeof(int32_t)));
  RETNET_CUDA_CHECK(launch_embed(table.data, table.dtype, ids, T, table.cols, scale, out, stream_));
}

void CudaBackend::rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y) {
  RETNET_CUDA_CHECK(launch_rms_norm(x, T, D, w, eps, y, stream_));
}

void CudaBackend::matmul(const float* x, int64_t T, int64_t in, std::span<const MatmulJob> jobs) {
  if (T <= 0) return;
  for (const MatmulJob& job : jobs) {
    const WeightRef& w = *job.w;
    if (w.rows <= 0) continue;
    if (T <= kGemvMaxRows) {  // decode: bandwidth-bound, weights streamed once in their own dtype (block
                              // types dequantized in registers, fp32 activations: gemv_quant.cuh)
      RETNET_CUDA_CHECK(launch_gemv(x, T, in, w.data, w.dtype, w.rows, job.y, w.rows, stream_));
    } else if (w.dtype == DType::F32) {
      blas().sgemm_xwt(x, T, in, static_cast<const float*>(w.data), w.rows, job.y, w.rows);
    } else {
      // Prefill against 16-bit or block-quantized weights: widen (dequantize) a panel of whole rows to
      // fp32, then an fp32 GEMM, so results match the CPU backend's prefill (which also computes with
      // the widened / dequantized weights and fp32 activations).
      const int64_t panel_rows = std::max<int64_t>(1, std::min<int64_t>(w.rows, int64_t(kPanelFloats) / in));
      auto* panel = static_cast<float*>(ensure(panel_, size_t(panel_rows * in) * sizeof(float)));
      for (int64_t r0 = 0; r0 < w.rows; r0 += panel_rows) {
        const int64_t n = std::min(panel_rows, w.rows - r0);
        RETNET_CUDA_CHECK(launch_widen(w.row(r0), w.dtype, size_t(n * in), panel, stream_));
        blas().sgemm_xwt(x, T, in, panel, n, job.y + r0, w.rows);
      }
    }
  }
}

void CudaBackend::theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos_host,
                              const float* theta32, const double* theta64, Pairing pairing, AngleMode angles,
                              float q_scale, float k_scale) {
  if (T <= 0) return;
  const auto* pos = static_cast<const int64_t*>(stage(pos_, pos_host, size_t(T) * sizeof(int64_t)));
  // The launcher picks the angles by which table it gets: theta64 null means AngleMode::Reference.
  RETNET_CUDA_CHECK(launch_theta_shift(q, k, T, H, dk, pos, angles == AngleMode::Exact ? nullptr : theta32,
                                       angles == AngleMode::Exact ? theta64 : nullptr, pairing, q_scale, k_scale,
                                       stream_));
}

void CudaBackend::retention_chunk(const RetentionChunkArgs& a) {
  if (a.T <= 0) return;
  void* ws = ensure(workspace_, retention_chunk_workspace_bytes(a.T, a.H, a.dk, a.dv, a.chunk, a.norm));
  RETNET_CUDA_CHECK(launch_retention_chunk(a.q, a.k, a.v, a.state, a.out, a.T, a.H, a.dk, a.dv, a.chunk, a.log_decay,
                                           a.norm, ws, stream_));
}

void CudaBackend::retention_step(const RetentionStepArgs& a) {
  if (a.state_f16) throw Error("f16 state storage: the CUDA backend keeps fp32 states only");  // refused at load
  if (a.B <= 0) return;
  const auto* states = static_cast<float* const*>(stage(ptrs_, a.states, size_t(a.B) * sizeof(float*)));
  const float* scale =
      a.out_scale ? static_cast<const float*>(stage(scale_, a.out_scale, size_t(a.B * a.H) * sizeof(float))) : nullptr;
  RETNET_CUDA_CHECK(launch_retention_step(a.q, a.k, a.v, states, a.out, a.B, a.H, a.dk, a.dv, a.gamma, scale, stream_));
}

void CudaBackend::group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                                  float eps) {
  RETNET_CUDA_CHECK(launch_group_norm_gate(o, g, T, H, dv, w, eps, stream_));
}

void CudaBackend::glu(const float* a, const float* b, float* out, size_t n, Activation act) {
  RETNET_CUDA_CHECK(launch_glu(a, b, out, n, act, stream_));
}

void CudaBackend::residual(float* x, const float* y, float alpha, size_t n) {
  RETNET_CUDA_CHECK(launch_residual(x, y, alpha, n, stream_));
}

std::unique_ptr<Backend> make_cuda_backend() {
  CudaOptions o;
  if (const char* g = std::getenv("RETNET_CUDA_GRAPH"); g && std::strcmp(g, "0") == 0) o.graphs = false;
  return std::make_unique<CudaBackend>(o);
}

}  // namespace RETNET_KERNEL_ABI
}  // namespace retnet

#endif
