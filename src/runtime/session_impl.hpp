// Session::Impl: one sequence's state plus the workspace of its forward passes (session.cpp).
// Shared with state_io.cpp (snapshots).
#pragma once
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/model_impl.hpp"
#include "retnet/retnet.hpp"
#include "runtime/step_inputs.hpp"
#include "runtime/token_digest.hpp"

namespace retnet {

// Parallel retention materialises a [T, T] matrix per head; beyond this it is the wrong tool.
inline constexpr int64_t kMaxParallelTokens = 8192;
// Prefill runs in blocks of about this many tokens (a multiple of the chunk size) to bound memory.
inline constexpr int64_t kPrefillBlockTokens = 512;

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

  explicit Impl(std::shared_ptr<const Model> mr)
      : model_ref(std::move(mr)), m(model_ref->impl()), own_be(m.backend->session_backend()),
        be(own_be ? *own_be : *m.backend), c(m.cfg) {
    const size_t sz = size_t(c.n_heads * c.head_dk * c.head_dv);
    for (int64_t l = 0; l < c.n_layers; ++l) states.push_back(be.alloc(sz));
    ts_scale.assign(size_t(c.n_heads), 0.f);
    ensure_rows(1);
    ensure_logits(1);
    step_host.reserve(StepInputs::bytes(1, c.n_heads, c.n_layers) / 8 + 1);
    be.synchronize();  // the zeroed state is in place before another session's batch reads it
  }

  ~Impl() {
    for (float* s : states) be.release(s);
    free_workspace();
    if (logits) be.release(logits);
  }

  void free_workspace() {
    for (float* p : {x, hn, q, k, v, g, o, f1, f2, y})
      if (p) be.release(p);
    x = hn = q = k = v = g = o = f1 = f2 = y = nullptr;
  }

  void ensure_rows(int64_t T) {
    if (T <= cap) return;
    free_workspace();
    cap = 0;  // until every buffer below exists: an allocation that throws leaves nothing half-made
    const size_t D = size_t(c.d_model), KD = size_t(c.key_dim()), VD = size_t(c.value_dim()), F = size_t(c.ffn_dim);
    const size_t n = size_t(T);
    x = be.alloc(n * D);   // residual stream                [T, D]
    hn = be.alloc(n * D);  // normed input of a block        [T, D]
    q = be.alloc(n * KD);  //                                [T, H*dk]
    k = be.alloc(n * KD);  //                                [T, H*dk]
    v = be.alloc(n * VD);  //                                [T, H*dv]
    g = be.alloc(n * VD);  // output gate                    [T, H*dv]
    o = be.alloc(n * VD);  // retention output               [T, H*dv]
    f1 = be.alloc(n * F);  // FFN activated branch           [T, F]
    f2 = be.alloc(n * F);  // FFN linear branch              [T, F]
    y = be.alloc(n * D);   // block output before residual   [T, D]
    positions.resize(n);
    cap = T;
  }

  void ensure_logits(int64_t rows) {
    if (rows <= logits_rows) return;
    if (logits) be.release(logits);
    logits = nullptr;  // an allocation that throws must not leave the released pointer behind
    logits_rows = 0;
    logits = be.alloc(size_t(rows * c.vocab_size));  // [rows, V]
    logits_rows = rows;
  }

  void check_ids(std::span<const int32_t> ids) const {
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= c.vocab_size)
        throw Error("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                    " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
  }

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
  void issue_layers(const RowInputs& in, int64_t T, RetentionNorm norm, int64_t chunk) {
    const bool recurrent = in.step_states != nullptr;
    const int64_t D = c.d_model, VD = c.value_dim(), F = c.ffn_dim, H = c.n_heads;
    be.embed(m.embed, in.ids, T, c.embed_scale, x);
    if (m.embed_norm) be.rms_norm(x, T, D, m.embed_norm, c.norm_eps, x);
    const float q_scale = c.scale_on_q ? 1.0f / std::sqrt(float(c.head_dk)) : 1.0f;
    const float k_scale = c.scale_on_q ? 1.0f : 1.0f / std::sqrt(float(c.head_dk));
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const LayerWeights& w = m.layers[size_t(l)];
      // ---- retention block
      const float* inp = x;
      if (c.normalize_before) {
        be.rms_norm(x, T, D, w.attn_norm, c.norm_eps, hn);
        inp = hn;
      }
      Backend::MatmulJob jobs[4] = {{&w.q, q}, {&w.k, k}, {&w.v, v}, {&w.g, g}};
      be.matmul(inp, T, D, std::span<const Backend::MatmulJob>(jobs, c.output_gate ? 4 : 3));
      be.theta_shift(q, k, T, H, c.head_dk, in.pos, c.theta.data(), c.theta64.data(), c.pairing, m.angles, q_scale,
                     k_scale);
      if (recurrent) {
        RetentionStepArgs a;
        a.q = q; a.k = k; a.v = v; a.states = in.step_states + l * T; a.out = o;
        a.B = T; a.H = H; a.dk = c.head_dk; a.dv = c.head_dv;
        a.gamma = m.gamma.data(); a.out_scale = in.step_scale;
        be.retention_step(a);
      } else {
        RetentionChunkArgs a;
        a.q = q; a.k = k; a.v = v; a.state = states[size_t(l)]; a.out = o;
        a.T = T; a.H = H; a.dk = c.head_dk; a.dv = c.head_dv;
        a.chunk = chunk; a.log_decay = c.log_decay.data(); a.norm = norm;
        be.retention_chunk(a);
      }
      be.group_norm_gate(o, c.output_gate ? g : nullptr, T, H, c.head_dv, w.gn_weight, c.group_norm_eps);
      Backend::MatmulJob out_job{&w.o, y};
      be.matmul(o, T, VD, std::span<const Backend::MatmulJob>(&out_job, 1));
      be.residual(x, y, c.residual_alpha, size_t(T * D));
      if (!c.normalize_before) be.rms_norm(x, T, D, w.attn_norm, c.norm_eps, x);
      // ---- feed-forward block (GLU: act(ffn_act·h) ⊙ ffn_lin·h, then down)
      inp = x;
      if (c.normalize_before) {
        be.rms_norm(x, T, D, w.ffn_norm, c.norm_eps, hn);
        inp = hn;
      }
      Backend::MatmulJob ffn_jobs[2] = {{&w.ffn_act, f1}, {&w.ffn_lin, f2}};
      be.matmul(inp, T, D, ffn_jobs);
      be.glu(f1, f2, f1, size_t(T * F), c.ffn_activation);
      Backend::MatmulJob down_job{&w.ffn_down, y};
      be.matmul(f1, T, F, std::span<const Backend::MatmulJob>(&down_job, 1));
      be.residual(x, y, c.residual_alpha, size_t(T * D));
      if (!c.normalize_before) be.rms_norm(x, T, D, w.ffn_norm, c.norm_eps, x);
    }
    if (m.final_norm) be.rms_norm(x, T, D, m.final_norm, c.norm_eps, hn);
    else be.copy(hn, x, size_t(T * D));
  }

  // T consecutive tokens of this session (chunkwise or parallel retention, chunk C); the final-normed
  // hidden rows [T, D] are left in hn. T <= cap.
  void forward_block(const int32_t* ids, int64_t T, RetentionNorm norm, int64_t chunk) {
    for (int64_t t = 0; t < T; ++t) positions[size_t(t)] = pos + t;
    RowInputs in;
    in.ids = ids;
    in.pos = positions.data();
    issue_layers(in, T, norm, chunk);
    advance(T);
  }

  // One recurrent step of T rows, row t a token of session seqs[t] (all of this model; this session's
  // workspace is used): weights are read once for the batch. With logits, the rows' logits [T, V] are
  // left in `logits` (device memory of this session's backend). The step's per-row inputs go into
  // the backend's step-input block (one upload), and its ops through run_step, which may replay them
  // as one recorded graph: nothing in them may depend on host state other than the key and the block.
  void decode_step(const int32_t* ids, int64_t T, Impl* const* seqs, bool with_logits) {
    const int64_t H = c.n_heads, L = c.n_layers;
    ensure_rows(T);
    if (with_logits) ensure_logits(T);
    const size_t bytes = StepInputs::bytes(T, H, L);
    void* base = be.step_inputs(bytes);
    if (!base) {
      if (step_host.size() * 8 < bytes) step_host.resize(bytes / 8 + 1);
      base = step_host.data();
    }
    const StepInputs si = StepInputs::in(base, T, H, L);
    for (int64_t t = 0; t < T; ++t) {
      const Impl& s = *seqs[t];
      si.ids[t] = ids[t];
      si.pos[t] = s.pos;
      for (int64_t h = 0; h < H; ++h) {
        const size_t hh = size_t(h);
        // torchscale recurrent: ρ = sqrt(s_n) with s_n = s_{n-1}·γ + 1 (fla: ρ = 1)
        si.scale[t * H + h] = c.torchscale_norm ? 1.0f / std::sqrt(s.ts_scale[hh] * m.gamma[hh] + 1.0f) : 1.0f;
      }
      for (int64_t l = 0; l < L; ++l) si.states[l * T + t] = s.states[size_t(l)];
    }
    be.upload_step_inputs(bytes);
    RowInputs in;
    in.ids = si.ids;
    in.pos = si.pos;
    in.step_scale = si.scale;
    in.step_states = si.states;
    // Everything else the ops use is fixed per (T, with_logits) while this backend's buffers stay put.
    const uint64_t key = uint64_t(T) << 1 | (with_logits ? 1u : 0u);
    be.run_step(key, [&] {
      issue_layers(in, T, RetentionNorm::None, 1);
      if (with_logits) {
        Backend::MatmulJob job{&m.lm_head, logits};
        be.matmul(hn, T, c.d_model, std::span<const Backend::MatmulJob>(&job, 1));
      }
    });
    for (int64_t t = 0; t < T; ++t) seqs[t]->advance(1);
  }

  void advance(int64_t T) {
    // s_{n+1} = s_n·γ + 1 in fp32, exactly the recursion torchscale's recurrent mode runs.
    if (c.torchscale_norm)
      for (int64_t t = 0; t < T; ++t)
        for (size_t h = 0; h < ts_scale.size(); ++h) ts_scale[h] = ts_scale[h] * m.gamma[h] + 1.0f;
    pos += T;
  }

  // Logits of rows [r0, r0 + n) of hn into logits_host at row offset dst_row.
  void emit_logits(int64_t r0, int64_t n, int64_t dst_row) {
    ensure_logits(n);
    Backend::MatmulJob job{&m.lm_head, logits};
    be.matmul(hn + r0 * c.d_model, n, c.d_model, std::span<const Backend::MatmulJob>(&job, 1));
    be.to_host(logits_host.data() + dst_row * c.vocab_size, logits, size_t(n * c.vocab_size));
  }

  std::span<const float> prefill(std::span<const int32_t> ids, const PrefillOptions& opt) {
    check_ids(ids);
    const int64_t T = int64_t(ids.size());
    const int64_t V = c.vocab_size;
    if (T == 0) throw Error("prefill: no tokens given");
    const int64_t out_rows = opt.all_logits ? T : 1;
    logits_host.resize(size_t(out_rows * V));
    if (opt.mode == Mode::Recurrent) {
      Impl* self = this;
      for (int64_t t = 0; t < T; ++t) {
        const bool want = opt.all_logits || t == T - 1;
        decode_step(ids.data() + t, 1, &self, want);
        if (want) be.to_host(logits_host.data() + (opt.all_logits ? t : 0) * V, logits, size_t(V));
      }
      return logits_host;
    }
    int64_t chunk = opt.chunk_size > 0 ? opt.chunk_size : c.default_chunk_size;
    if (opt.chunk_size < 0) throw Error("chunk size must be positive, got " + std::to_string(opt.chunk_size));
    RetentionNorm norm = RetentionNorm::None;
    int64_t block = T;
    if (opt.mode == Mode::Parallel) {
      if (T > kMaxParallelTokens)
        throw Error("parallel mode materialises T×T scores; " + std::to_string(T) + " tokens exceed its limit of " +
                    std::to_string(kMaxParallelTokens) + " (use chunkwise)");
      chunk = T;
      if (c.torchscale_norm) norm = RetentionNorm::TorchscaleParallel;
    } else {
      if (c.torchscale_norm) norm = RetentionNorm::TorchscaleChunk;
      block = std::max<int64_t>(1, (kPrefillBlockTokens + chunk - 1) / chunk) * chunk;
      if (chunk > kPrefillBlockTokens) block = chunk;
      block = std::min(block, T);
    }
    ensure_rows(std::min(block, T));
    for (int64_t s = 0; s < T; s += block) {
      const int64_t n = std::min(block, T - s);
      forward_block(ids.data() + s, n, norm, std::min(chunk, n));
      if (opt.all_logits) emit_logits(0, n, s);
      else if (s + n == T) emit_logits(n - 1, 1, 0);
    }
    return logits_host;
  }
};


}  // namespace retnet
