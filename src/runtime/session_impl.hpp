// Session::Impl: one sequence's state plus the workspace of its forward passes. Data and
// declarations only: the lifecycle is in session.cpp, the forward pass in forward.cpp. Shared with
// generate.cpp and state_io.cpp (snapshots).
#pragma once
#include <algorithm>
#include <array>
#include <memory>
#include <span>
#include <vector>

#include "common/limits.hpp"
#include "common/saturating.hpp"
#include "runtime/model_impl.hpp"
#include "retnet/retnet.hpp"
#include "runtime/step_inputs.hpp"
#include "runtime/token_digest.hpp"

namespace retnet {

// ---- What a session allocates, stated beside the code that allocates it (Session::Impl::ensure_rows,
// ensure_logits), so that the loader's memory plan (Model::load) counts one session from it.

// Widths of the workspace buffers, each [T, width] for up to T rows, in the order of
// Session::Impl::workspace().
inline std::array<int64_t, 10> session_workspace_widths(const ModelConfig& c) {
  const int64_t D = c.d_model, KD = c.key_dim(), VD = c.value_dim(), F = c.ffn_dim;
  return {D,   // x   residual stream                [T, D]
          D,   // hn  normed input of a block        [T, D]
          KD,  // q                                  [T, H*dk]
          KD,  // k                                  [T, H*dk]
          VD,  // v                                  [T, H*dv]
          VD,  // g   output gate                    [T, H*dv]
          VD,  // o   retention output               [T, H*dv]
          F,   // f1  FFN activated branch           [T, F]
          F,   // f2  FFN linear branch              [T, F]
          D};  // y   block output before residual   [T, D]
}

// Rows of a chunkwise prefill block: about kPrefillBlockTokens, a whole number of chunks (at least one).
inline int64_t prefill_block_rows(int64_t chunk) {
  chunk = std::max<int64_t>(1, chunk);
  if (chunk > kPrefillBlockTokens) return chunk;
  return std::max<int64_t>(1, (kPrefillBlockTokens + chunk - 1) / chunk) * chunk;
}

// Host bytes a session of a model of config c on backend be holds with a workspace of `rows` rows
// and logits of `rows` rows (the largest a prefill of blocks of `rows` makes them): its states
// and torchscale scales, ensure_rows' buffers and positions, ensure_logits' buffer and the host
// copy of the logits. Saturating.
inline uint64_t session_host_bytes(const ModelConfig& c, const Backend& be, int64_t rows) {
  auto u = [](int64_t x) { return x > 0 ? uint64_t(x) : uint64_t(0); };
  const uint64_t R = u(rows);
  uint64_t b = sat_mul(u(c.n_layers), be.host_alloc_bytes(sat_mul(sat_mul(u(c.n_heads), u(c.head_dk)), u(c.head_dv))));
  b = sat_add(b, sat_mul(u(c.n_heads), sizeof(float)));  // ts_scale
  for (int64_t width : session_workspace_widths(c)) b = sat_add(b, be.host_alloc_bytes(sat_mul(R, u(width))));
  b = sat_add(b, sat_mul(R, sizeof(int64_t)));                          // positions
  b = sat_add(b, be.host_alloc_bytes(sat_mul(R, u(c.vocab_size))));     // logits
  b = sat_add(b, sat_mul(sat_mul(R, u(c.vocab_size)), sizeof(float)));  // logits_host
  return b;
}
// The session the loader plans for (Model::load's memory check): one that prefilled a block of
// the default chunk size with all_logits, the largest a session grows outside parallel mode.
inline uint64_t planned_session_host_bytes(const ModelConfig& c, const Backend& be) {
  return session_host_bytes(c, be, prefill_block_rows(c.default_chunk_size));
}

struct Session::Impl {
  std::shared_ptr<const Model> model_ref;
  const Model::Impl& m;
  std::unique_ptr<Backend> own_be;  // this session's execution resources (CUDA: stream, cuBLAS, graphs)
  Backend& be;                      // own_be, or the model's backend when it has none per session (CPU)
  const ModelConfig& c;

  int64_t pos = 0;
  SessionStats stats;
  std::vector<float*> states;    // [L] each [H, dk, dv] fp32, or f16 bits when m.state_f16 (state_floats())
  float* chunk_state = nullptr;  // f16 states: [H, dk, dv] fp32 copy of one layer's state for a prefill block
  std::vector<float> ts_scale;  // [H] s_n = Σ_{t<pos} γ^t (torchscale recurrent bookkeeping)
  // The tokens absorbed (Session's prefill/decode/decode_batch, and so generate; snapshots carry it).
  // history.count != pos: not known (a call that failed part way).
  TokenDigest history;

  // Workspace for up to cap rows (grown by prefill; decode never allocates).
  int64_t cap = 0;
  float *x = nullptr, *hn = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *g = nullptr, *o = nullptr,
        *f1 = nullptr, *f2 = nullptr, *y = nullptr, *logits = nullptr;
  int64_t logits_rows = 0;
  std::vector<float> logits_host;
  std::vector<int64_t> positions;   // [rows] of a block (prefill)
  std::vector<uint64_t> step_host;  // step inputs when the backend has no block of its own (CPU)

  // session.cpp: a zeroed state at position 0 and a one-row workspace on the model's backend.
  explicit Impl(std::shared_ptr<const Model> mr);
  ~Impl();
  // Values of one layer's state (H·dk·dv), and the floats its buffer takes (half as many, rounded up,
  // for f16 states: alloc, copy and zero count floats).
  size_t state_elems() const { return size_t(c.n_heads * c.head_dk * c.head_dv); }
  size_t state_floats() const { return m.state_f16 ? (state_elems() + 1) / 2 : state_elems(); }

  // ---- forward.cpp

  // The workspace buffers, each [T, width] for up to T = cap rows (session_workspace_widths).
  std::array<float**, 10> workspace() { return {&x, &hn, &q, &k, &v, &g, &o, &f1, &f2, &y}; }
  void free_workspace();
  void ensure_rows(int64_t T);                         // workspace for T rows; nothing half-made if it throws
  void ensure_logits(int64_t rows);                    // backend logits [rows, V]
  void check_ids(std::span<const int32_t> ids) const;  // Error for an id outside [0, V)

  // Per-row host inputs of the layer stack; in a decode step they lie in the step-input block.
  struct RowInputs {
    const int32_t* ids = nullptr;          // [T]
    const int64_t* pos = nullptr;          // [T] absolute positions
    const float* step_scale = nullptr;     // [T, H] 1/ρ (step form)
    float* const* step_states = nullptr;   // [L, T] states (step form); null: block form
  };

  // Issues the ops that run T rows through every layer and leave the final-normed hidden rows
  // [T, D] in hn. Ops only (no host bookkeeping): a decode step's ops may be recorded and replayed.
  // Block form: T consecutive tokens of this session, retention_chunk on its state.
  // Step form: row t is one token of its own session, advanced by one recurrent step.
  void issue_layers(const RowInputs& in, int64_t T, RetentionNorm norm, int64_t chunk);

  // T consecutive tokens of this session (chunkwise or parallel retention, chunk C); the final-normed
  // hidden rows [T, D] are left in hn. T <= cap.
  void forward_block(const int32_t* ids, int64_t T, RetentionNorm norm, int64_t chunk);

  // One recurrent step of T rows, row t a token of session seqs[t] (all of this model; this session's
  // workspace is used): weights are read once for the batch. With logits, the rows' logits [T, V] are
  // left in `logits` (device memory of this session's backend). The step's per-row inputs go into
  // the backend's step-input block (one upload), and its ops through run_step, which may replay them
  // as one recorded graph: nothing in them may depend on host state other than the key and the block.
  void decode_step(const int32_t* ids, int64_t T, Impl* const* seqs, bool with_logits);

  // Host bookkeeping of T absorbed tokens: the position and torchscale's scale recursion.
  void advance(int64_t T);

  // Logits of rows [r0, r0 + n) of hn into logits_host at row offset dst_row.
  void emit_logits(int64_t r0, int64_t n, int64_t dst_row);

  // Session::prefill without the lock and the stats.
  std::span<const float> prefill(std::span<const int32_t> ids, const PrefillOptions& opt);
};

}  // namespace retnet
