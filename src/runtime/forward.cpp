// The forward pass of a Session: the layer stack for a block of one sequence's tokens (chunkwise or
// parallel retention) or for one recurrent step of a batch of sequences, and block-wise prefill.
//
// The state of every layer is the unnormalised Z = Σ_m γ^(n-m) k_m⊗v_m ([H, dk, dv], fp32), which all
// three modes produce and consume identically. Each family's normalisation is a positive scalar ρ per
// (token, head) applied to the retention output before the group norm (docs/reference.md §1, §4):
//   fla: ρ = 1.   torchscale recurrent: ρ = sqrt(s_n), s_n = Σ_{t≤n} γ^t kept by its fp32 recursion.
//   torchscale parallel/chunkwise: ρ from the retention_chunk kernel (row norm × clamped abs-sum).
#include "runtime/session_impl.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace retnet {

void Session::Impl::free_workspace() {
  for (float** p : workspace()) {
    if (*p) be.release(*p);
    *p = nullptr;
  }
}

void Session::Impl::ensure_rows(int64_t T) {
  if (T <= cap) return;
  free_workspace();
  cap = 0;  // until every buffer below exists: an allocation that throws leaves nothing half-made
  const auto bufs = workspace();
  const auto widths = session_workspace_widths(c);  // what the loader's memory plan counts
  for (size_t i = 0; i < bufs.size(); ++i) *bufs[i] = be.alloc(size_t(T * widths[i]));
  positions.resize(size_t(T));
  cap = T;
}

void Session::Impl::ensure_logits(int64_t rows) {
  if (rows <= logits_rows) return;
  if (logits) be.release(logits);
  logits = nullptr;  // an allocation that throws must not leave the released pointer behind
  logits_rows = 0;
  logits = be.alloc(size_t(rows * c.vocab_size));  // [rows, V]
  logits_rows = rows;
}

void Session::Impl::check_ids(std::span<const int32_t> ids) const {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= c.vocab_size)
      throw Error("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                  " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
}

void Session::Impl::issue_layers(const RowInputs& in, int64_t T, RetentionNorm norm, int64_t chunk) {
  const bool recurrent = in.step_states != nullptr;
  const int64_t D = c.d_model, VD = c.value_dim(), F = c.ffn_dim, H = c.n_heads;
  const ModelWeights& mw = m.weights;
  const ModelConstants& mc = m.constants;  // backend memory, uploaded once at load
  be.embed(mw.embed, in.ids, T, c.embed_scale, x);
  if (mw.embed_norm) be.rms_norm(x, T, D, mw.embed_norm, c.norm_eps, x);
  const float q_scale = c.scale_on_q ? 1.0f / std::sqrt(float(c.head_dk)) : 1.0f;
  const float k_scale = c.scale_on_q ? 1.0f : 1.0f / std::sqrt(float(c.head_dk));
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const LayerWeights& w = mw.layers[size_t(l)];
    // ---- retention block
    const float* inp = x;
    if (c.normalize_before) {
      be.rms_norm(x, T, D, w.attn_norm, c.norm_eps, hn);
      inp = hn;
    }
    Backend::MatmulJob jobs[4] = {{&w.q, q}, {&w.k, k}, {&w.v, v}, {&w.g, g}};
    be.matmul(inp, T, D, std::span<const Backend::MatmulJob>(jobs, c.output_gate ? 4 : 3));
    be.theta_shift(q, k, T, H, c.head_dk, in.pos, mc.theta32, mc.theta64, c.pairing, m.angles, q_scale, k_scale);
    if (recurrent) {
      RetentionStepArgs a;
      a.q = q;
      a.k = k;
      a.v = v;
      a.states = in.step_states + l * T;
      a.out = o;
      a.B = T;
      a.H = H;
      a.dk = c.head_dk;
      a.dv = c.head_dv;
      a.gamma = mc.gamma;
      a.out_scale = in.step_scale;
      a.state_f16 = m.state_f16;
      be.retention_step(a);
    } else {
      RetentionChunkArgs a;
      a.q = q;
      a.k = k;
      a.v = v;
      // An f16 state is widened for the block and stored back rounded after it: a prefill block
      // computes in fp32 as the fp32 state does, and rounds once per block instead of per token.
      if (m.state_f16) be.widen_f16(chunk_state, states[size_t(l)], state_elems());
      a.state = m.state_f16 ? chunk_state : states[size_t(l)];
      a.out = o;
      a.T = T;
      a.H = H;
      a.dk = c.head_dk;
      a.dv = c.head_dv;
      a.chunk = chunk;
      a.log_decay = mc.log_decay;
      a.norm = norm;
      be.retention_chunk(a);
      if (m.state_f16) be.narrow_f16(states[size_t(l)], chunk_state, state_elems());
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
  if (mw.final_norm) be.rms_norm(x, T, D, mw.final_norm, c.norm_eps, hn);
  else be.copy(hn, x, size_t(T * D));
}

void Session::Impl::forward_block(const int32_t* ids, int64_t T, RetentionNorm norm, int64_t chunk) {
  for (int64_t t = 0; t < T; ++t) positions[size_t(t)] = pos + t;
  RowInputs in;
  in.ids = ids;
  in.pos = positions.data();
  issue_layers(in, T, norm, chunk);
  advance(T);
}

void Session::Impl::decode_step(const int32_t* ids, int64_t T, Impl* const* seqs, bool with_logits) {
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
      si.scale[t * H + h] = c.torchscale_norm ? 1.0f / std::sqrt(s.ts_scale[hh] * m.desc.gamma[hh] + 1.0f) : 1.0f;
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
      Backend::MatmulJob job{&m.weights.lm_head, logits};
      be.matmul(hn, T, c.d_model, std::span<const Backend::MatmulJob>(&job, 1));
    }
  });
  for (int64_t t = 0; t < T; ++t) seqs[t]->advance(1);
}

void Session::Impl::advance(int64_t T) {
  // s_{n+1} = s_n·γ + 1 in fp32, exactly the recursion torchscale's recurrent mode runs.
  if (c.torchscale_norm)
    for (int64_t t = 0; t < T; ++t)
      for (size_t h = 0; h < ts_scale.size(); ++h) ts_scale[h] = ts_scale[h] * m.desc.gamma[h] + 1.0f;
  pos += T;
}

void Session::Impl::emit_logits(int64_t r0, int64_t n, int64_t dst_row) {
  ensure_logits(n);
  Backend::MatmulJob job{&m.weights.lm_head, logits};
  be.matmul(hn + r0 * c.d_model, n, c.d_model, std::span<const Backend::MatmulJob>(&job, 1));
  be.to_host(logits_host.data() + dst_row * c.vocab_size, logits, size_t(n * c.vocab_size));
}

std::span<const float> Session::Impl::prefill(std::span<const int32_t> ids, const PrefillOptions& opt) {
  check_ids(ids);
  const int64_t T = int64_t(ids.size());
  const int64_t V = c.vocab_size;
  if (T == 0) throw Error("prefill: no tokens given");
  const int64_t out_rows = opt.all_logits ? T : 1;
  logits_host.resize(size_t(out_rows * V));
  // Polled before each block (a token in recurrent mode): a cancelled prefill leaves whole blocks in
  // the state, as a prefill of only those tokens would, and returns an empty view (never returned
  // otherwise, as T > 0).
  const auto cancelled = [&](int64_t done) {
    if (!opt.on_progress || opt.on_progress(done, T)) return false;
    logits_host.clear();  // keeps the capacity
    return true;
  };
  if (opt.mode == Mode::Recurrent) {
    Impl* self = this;
    for (int64_t t = 0; t < T; ++t) {
      if (cancelled(t)) return {};
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
    block = std::min(prefill_block_rows(chunk), T);
  }
  ensure_rows(std::min(block, T));
  for (int64_t s = 0; s < T; s += block) {
    if (cancelled(s)) return {};
    const int64_t n = std::min(block, T - s);
    forward_block(ids.data() + s, n, norm, std::min(chunk, n));
    if (opt.all_logits) emit_logits(0, n, s);
    else if (s + n == T) emit_logits(n - 1, 1, 0);
  }
  return logits_host;
}

}  // namespace retnet
