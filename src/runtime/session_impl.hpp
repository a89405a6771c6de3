// Session::Impl: one sequence's state plus the workspace of its forward passes. Data and
// declarations only: the lifecycle is in session.cpp, the forward pass in forward.cpp. Shared with
// generate.cpp and state_io.cpp (snapshots).
#pragma once
#include <memory>
#include <span>
#include <vector>

#include "common/limits.hpp"
#include "model/model_impl.hpp"
#include "retnet/retnet.hpp"
#include "runtime/step_inputs.hpp"

namespace retnet {

struct Session::Impl {
  std::shared_ptr<const Model> model_ref;
  const Model::Impl& m;
  std::unique_ptr<Backend> own_be;  // this session's execution resources (CUDA: stream, cuBLAS, graphs)
  Backend& be;                      // own_be, or the model's backend when it has none per session (CPU)
  const ModelConfig& c;

  int64_t pos = 0;
  SessionStats stats;
  std::vector<float*> states;   // [L] each [H, dk, dv] fp32
  std::vector<float> ts_scale;  // [H] s_n = Σ_{t<pos} γ^t (torchscale recurrent bookkeeping)

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

  // ---- forward.cpp

  void free_workspace();
  void ensure_rows(int64_t T);          // workspace for T rows; nothing half-made if it throws
  void ensure_logits(int64_t rows);     // backend logits [rows, V]
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
