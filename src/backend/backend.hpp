// The one interface every compute backend implements (CPU, CUDA). The runtime speaks only to this;
// the choice of backend is made in make_backend() (backend.cpp), the only place that knows which
// backends exist.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>

#include "common/types.hpp"
#include "common/weight_ref.hpp"  // WeightRef: the weights the ops read (backend memory)

namespace retnet {

// A non-owning reference to a callable (no allocation, unlike std::function): what the backend calls
// back during uploads and decode steps, which must not touch the heap.
template <class Sig>
class FnRef;
template <class R, class... A>
class FnRef<R(A...)> {
 public:
  FnRef() = default;
  template <class F>
  FnRef(const F& f)  // NOLINT: implicit, as std::function
      : obj_(&f), call_([](const void* o, A... a) -> R { return (*static_cast<const F*>(o))(std::forward<A>(a)...); }) {}
  explicit operator bool() const { return call_ != nullptr; }
  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  const void* obj_ = nullptr;
  R (*call_)(const void*, A...) = nullptr;
};

struct RetentionChunkArgs {
  const float* q = nullptr;  // [T, H*dk] rotated and scaled
  const float* k = nullptr;  // [T, H*dk]
  const float* v = nullptr;  // [T, H*dv]
  float* state = nullptr;    // [H, dk, dv] fp32, Σ_m γ^(n-m) k_m⊗v_m; in: before the block, out: after it
  float* out = nullptr;      // [T, H*dv] retention output divided by the row scalar ρ
  int64_t T = 0, H = 0, dk = 0, dv = 0;
  int64_t chunk = 0;                 // C; chunk boundaries at multiples of C from the block start
  const float* log_decay = nullptr;  // backend [H] ln γ_h (a per-model constant, upload_constant)
  RetentionNorm norm = RetentionNorm::None;
};

struct RetentionStepArgs {
  const float* q = nullptr;  // [B, H*dk]
  const float* k = nullptr;  // [B, H*dk]
  const float* v = nullptr;  // [B, H*dv]
  float* const* states = nullptr;  // host [B] pointers to [H, dk, dv] states
  // The states hold f16 bits (uint16) instead of fp32 (LoadOptions::state_dtype; host backends only):
  // each value is widened, stepped in fp32 (the read-out uses that fp32 value) and stored rounded to
  // f16, nearest even.
  bool state_f16 = false;
  float* out = nullptr;            // [B, H*dv] = (q·S_new) · out_scale
  int64_t B = 0, H = 0, dk = 0, dv = 0;
  const float* gamma = nullptr;      // backend [H] per-step decay exp(ln γ_h), fp32 as the references
  const float* out_scale = nullptr;  // host [B*H] 1/ρ of this step
};

// The most rows a matmul runs as a GEMV (each activation row summed in one order, alone or batched)
// on every backend; wider products take a GEMM, whose summation order differs. Session::decode_batch
// runs wider batches in parts of this many rows, so that a batched row stays bit-identical to
// decoding it alone. The backends check theirs against it (static_assert).
inline constexpr int64_t kDecodeBatchRows = 8;

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual int threads() const { return 1; }

  // ---- memory: fp32 activations/states owned by the backend
  virtual float* alloc(size_t n_floats) = 0;  // zero-initialised
  virtual void release(float* p) = 0;
  virtual void to_host(float* dst, const float* src, size_t n) = 0;
  virtual void from_host(float* dst, const float* src, size_t n) = 0;
  virtual void copy(float* dst, const float* src, size_t n) = 0;
  virtual void zero(float* dst, size_t n) = 0;
  // f16 state storage (LoadOptions::state_dtype): n values between f16 bits (uint16, at src / dst)
  // and fp32. narrow_f16 rounds to nearest even; values beyond ±65504 become infinite. The base
  // class throws Error: only host backends keep f16 states (the load refuses f16 elsewhere).
  virtual void widen_f16(float* dst, const void* src, size_t n);
  virtual void narrow_f16(void* dst, const float* src, size_t n);
  // Makes a weight resident, once per model. on_bytes(n) is called after each part of n bytes has
  // been read from `host` (so that the loader can report progress); it may throw to cancel, and then
  // upload() frees what it allocated and lets the exception through. CPU: reads every page of the
  // host view (used in place afterwards) and returns it. CUDA: a device copy, streamed through
  // pinned memory.
  virtual WeightRef upload(const WeightRef& host, FnRef<void(uint64_t)> on_bytes = {}) = 0;
  // Ends a series of upload() calls: waits for copies in flight, frees the upload staging memory.
  virtual void finish_uploads() {}
  // A per-model constant (θ in fp32 and fp64, ln γ, γ): `bytes` bytes of backend memory holding a copy
  // of host[0, bytes), aligned for any scalar type, made once when a model is placed and owned by it
  // (release_constant frees it). The ops then take it by pointer; no constant crosses per call. CUDA:
  // copied on this backend's stream, done by finish_uploads() (as the weights).
  virtual void* upload_constant(const void* host, size_t bytes) = 0;
  virtual void release_constant(void* p) = 0;

  // ---- memory planning: what a load adds up before allocating anything large (model/memory_plan.hpp)
  // Host bytes that alloc(n_floats) takes, padding included (saturating at UINT64_MAX); 0 where
  // alloc() gives device memory.
  virtual uint64_t host_alloc_bytes(uint64_t n_floats) const = 0;
  // What the ops of a model size their scratch by.
  struct ScratchShape {
    int64_t widest_input = 0;  // the largest `in` of a matmul: max(D, H*dv, F)
    int64_t chunk = 1;         // chunk length of chunkwise prefill
    int64_t head_dk = 0, head_dv = 0;
    bool block_weights = false;  // some matrices are block-quantized (their decode quantizes activations)
  };
  // Host bytes of the scratch the backend keeps for ops of this shape once a chunkwise prefill has
  // run (it grows to its largest then); 0 where the scratch lives on a device.
  virtual uint64_t host_scratch_bytes(const ScratchShape& shape) const { return 0; }

  // ---- sessions
  // Execution resources for one Session, or null when sessions use this backend itself (CPU: the
  // model's thread pool). CUDA: a backend of its own per session — one stream, one cuBLAS handle,
  // staging buffers and captured decode graphs — using the weights this backend uploaded.
  virtual std::unique_ptr<Backend> session_backend() { return nullptr; }
  // Waits until the work issued so far has finished (device backends run asynchronously). A Session
  // leaves its backend idle at the end of every call, so that another session's backend may read
  // its state (batched decoding, clone).
  virtual void synchronize() {}

  // ---- decode steps
  // Host memory of at least `bytes` for the per-step host arrays of a recurrent step (token ids,
  // positions, 1/ρ, state pointers), or null when the backend reads host arrays wherever they are
  // (CPU). A device backend mirrors it: after upload_step_inputs(bytes) — one copy per step — ops
  // given pointers into it read the device copy, at addresses that stay the same from step to step.
  // The memory may move when `bytes` grows; the caller rewrites its content every step.
  virtual void* step_inputs(size_t bytes) { return nullptr; }
  virtual void upload_step_inputs(size_t bytes) {}
  // Runs one decode step whose ops enqueue() issues — only ops: it is not called at all when a
  // recorded step is replayed. `key` names everything the ops depend on apart from the step inputs
  // and the buffers allocated through this backend (whose moves the backend notices itself): equal
  // keys must issue the same ops with the same arguments. A device backend may record the ops of a
  // key once (a CUDA graph) and replay them.
  virtual void run_step(uint64_t key, FnRef<void()> enqueue) { enqueue(); }

  // ---- ops
  // out[t,:] = scale · table[ids[t], :]                         table [V, D], out [T, D]
  virtual void embed(const WeightRef& table, const int32_t* ids_host, int64_t T, float scale, float* out) = 0;
  // y[t,:] = x[t,:] · rsqrt(mean(x[t,:]²) + eps) (· w)            x, y [T, D] (may alias), w [D] or null
  virtual void rms_norm(const float* x, int64_t T, int64_t D, const float* w, float eps, float* y) = 0;
  // For each job: y[T, rows] = x[T, in] · Wᵀ (W [rows, in]). Jobs share x; fused so weights stream once.
  struct MatmulJob {
    const WeightRef* w;
    float* y;
  };
  virtual void matmul(const float* x, int64_t T, int64_t in, std::span<const MatmulJob> jobs) = 0;
  // LoadOptions::bf16_activations: from now on, products with many rows (prefill) against BF16
  // weights may round x to bf16 and multiply in bf16 (fp32 sums). Returns whether this backend does
  // (CPU: only with AVX512-BF16); false leaves every product as it was.
  virtual bool set_bf16_activations(bool on) { return false; }
  // Rotates q and k ([T, H*dk]) at absolute positions pos_host[t]. k is multiplied by k_scale
  // before the rotation (torchscale), q by q_scale after it (fla), as the references do.
  // theta32 [dk/2] is used by AngleMode::Reference, theta64 [dk/2] by AngleMode::Exact: both backend
  // memory (upload_constant), the other may be null.
  virtual void theta_shift(float* q, float* k, int64_t T, int64_t H, int64_t dk, const int64_t* pos_host,
                           const float* theta32, const double* theta64, Pairing pairing, AngleMode angles,
                           float q_scale, float k_scale) = 0;
  virtual void retention_chunk(const RetentionChunkArgs& a) = 0;
  virtual void retention_step(const RetentionStepArgs& a) = 0;
  // Per head: o = rmsnorm_dv(o)(· w) (· silu(g))                 o, g [T, H*dv], w [dv] or null, g may be null
  virtual void group_norm_gate(float* o, const float* g, int64_t T, int64_t H, int64_t dv, const float* w,
                               float eps) = 0;
  // out = act(a) ⊙ b                                              a, b, out [n]
  virtual void glu(const float* a, const float* b, float* out, size_t n, Activation act) = 0;
  // x = x·alpha + y                                                x, y [n]
  virtual void residual(float* x, const float* y, float alpha, size_t n) = 0;

  // A backend's compute state serves one caller at a time (the CPU thread pool's job slot and
  // per-thread scratch). Every Session call that runs ops or copies state holds this for its
  // duration, so sessions sharing a backend (all sessions of a CPU model; see session_backend())
  // take turns instead of corrupting each other; alloc() and release() are thread-safe without it.
  std::mutex& exclusive() { return exclusive_; }

 private:
  std::mutex exclusive_;
};

// threads <= 0: all hardware threads. Throws Error if the device is not available.
std::unique_ptr<Backend> make_backend(DeviceKind device, int threads);
bool cuda_available();

}  // namespace retnet
