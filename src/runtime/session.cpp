// Session: one sequence's recurrent state: the public member functions and Impl's lifecycle (the
// forward pass they run is in forward.cpp).
#include "runtime/session_impl.hpp"

#include <algorithm>
#include <chrono>

namespace retnet {

namespace {
std::shared_ptr<const Model> non_null(std::shared_ptr<const Model> model) {
  if (!model) throw Error("Session: the model is null");
  return model;
}
}  // namespace

Session::Impl::Impl(std::shared_ptr<const Model> mr)
    : model_ref(std::move(mr)),
      m(model_ref->impl()),
      own_be(m.backend->session_backend()),
      be(own_be ? *own_be : *m.backend),
      c(m.desc.cfg) {
  for (int64_t l = 0; l < c.n_layers; ++l) states.push_back(be.alloc(state_floats()));
  if (m.state_f16) chunk_state = be.alloc(state_elems());
  ts_scale.assign(size_t(c.n_heads), 0.f);
  ensure_rows(1);
  ensure_logits(1);
  step_host.reserve(StepInputs::bytes(1, c.n_heads, c.n_layers) / 8 + 1);
  be.synchronize();  // the zeroed state is in place before another session's batch reads it
}

Session::Impl::~Impl() {
  for (float* s : states) be.release(s);
  if (chunk_state) be.release(chunk_state);
  free_workspace();
  if (logits) be.release(logits);
}

Session::Session(std::shared_ptr<const Model> model) : impl_(std::make_unique<Impl>(non_null(std::move(model)))) {}
Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

Session::Impl& Session::live() const {
  if (!impl_) throw Error("Session: this session was moved from (assign a new session to it before using it)");
  return *impl_;
}

std::span<const float> Session::prefill(std::span<const int32_t> tokens, const PrefillOptions& options) {
  Impl& s = live();
  const std::lock_guard<std::mutex> lk(s.be.exclusive());  // the backend serves one pass at a time
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t pos0 = s.pos;
  auto r = s.prefill(tokens, options);
  s.stats.prompt_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  s.stats.prompt_tokens += s.pos - pos0;              // all of them unless cancelled
  s.history.add(tokens.first(size_t(s.pos - pos0)));  // the tokens absorbed (a cancel stops between blocks)
  return r;
}

SessionStats Session::stats() const {
  const Impl& s = live();
  SessionStats st = s.stats;
  st.load_ms = s.m.desc.info.load_ms;
  return st;
}

std::span<const float> Session::decode(int32_t token) {
  Impl* self = &live();
  const std::lock_guard<std::mutex> lk(self->be.exclusive());
  const auto t0 = std::chrono::steady_clock::now();
  self->check_ids(std::span<const int32_t>(&token, 1));
  self->logits_host.resize(size_t(self->c.vocab_size));
  self->decode_step(&token, 1, &self, /*with_logits=*/true);
  self->be.to_host(self->logits_host.data(), self->logits, size_t(self->c.vocab_size));
  self->stats.eval_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  self->stats.eval_tokens += 1;
  self->history.add(std::span<const int32_t>(&token, 1));
  return self->logits_host;
}

void Session::decode_batch(std::span<Session* const> sessions, std::span<const int32_t> tokens) {
  if (sessions.size() != tokens.size())
    throw Error("decode_batch: " + std::to_string(sessions.size()) + " sessions but " + std::to_string(tokens.size()) +
                " tokens");
  if (sessions.empty()) return;
  std::vector<Impl*> seqs;
  seqs.reserve(sessions.size());
  for (size_t i = 0; i < sessions.size(); ++i) {
    if (!sessions[i]) throw Error("decode_batch: session " + std::to_string(i) + " is null");
    Impl* s = &sessions[i]->live();
    if (&s->m != &sessions[0]->live().m)
      throw Error("decode_batch: session " + std::to_string(i) + " belongs to another model");
    for (size_t j = 0; j < i; ++j)
      if (seqs[j] == s) throw Error("decode_batch: session " + std::to_string(i) + " appears twice");
    seqs.push_back(s);
  }
  // The lead's backend runs the batch (CPU: the model's, shared by all; CUDA: the lead session's own,
  // reading the other sessions' states, which their calls left complete).
  const std::lock_guard<std::mutex> lk(seqs[0]->be.exclusive());
  const auto t0 = std::chrono::steady_clock::now();
  Impl& lead = *seqs[0];
  lead.check_ids(tokens);
  const int64_t B = int64_t(sessions.size()), V = lead.c.vocab_size;
  // In parts of at most kDecodeBatchRows sessions, each one step that reads the weights once, with the
  // logits of its rows in one product; then each session gets its own row. A wider product would
  // take the backends' GEMM and change the rows' sums (BatchDecode.EqualsDecodingEachAlone, B = 12).
  for (int64_t b0 = 0; b0 < B; b0 += kDecodeBatchRows) {
    const int64_t n = std::min(kDecodeBatchRows, B - b0);
    lead.decode_step(tokens.data() + b0, n, seqs.data() + b0, /*with_logits=*/true);
    for (int64_t b = 0; b < n; ++b) {
      Impl& s = *seqs[size_t(b0 + b)];
      s.logits_host.resize(size_t(V));
      lead.be.to_host(s.logits_host.data(), lead.logits + b * V, size_t(V));
    }
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (Impl* s : seqs) {
    s->stats.eval_ms += ms;
    s->stats.eval_tokens += 1;
  }
  for (size_t b = 0; b < seqs.size(); ++b) seqs[b]->history.add(tokens.subspan(b, 1));
}

std::span<const float> Session::logits() const { return live().logits_host; }

int64_t Session::position() const { return live().pos; }
const Model& Session::model() const { return *live().model_ref; }

bool Session::history_matches(std::span<const int32_t> tokens) const {
  const Impl& s = live();
  if (s.history.count != uint64_t(s.pos) || tokens.size() != uint64_t(s.pos)) return false;
  TokenDigest d;
  d.add(tokens);
  return d == s.history;
}

void Session::reset() {
  Impl& s = live();
  const std::lock_guard<std::mutex> lk(s.be.exclusive());
  for (float* st : s.states) s.be.zero(st, s.state_floats());
  std::fill(s.ts_scale.begin(), s.ts_scale.end(), 0.f);
  s.pos = 0;
  s.history = TokenDigest{};
  s.stats = SessionStats{};
  s.logits_host.clear();  // keeps the capacity: decode still does not allocate
  s.be.synchronize();     // every call leaves the state complete (batches of other sessions read it)
}

Session Session::clone() const {
  const Impl& s = live();
  auto copy = std::make_unique<Impl>(s.model_ref);
  const std::lock_guard<std::mutex> lk(s.be.exclusive());
  for (size_t l = 0; l < copy->states.size(); ++l) copy->be.copy(copy->states[l], s.states[l], s.state_floats());
  copy->ts_scale = s.ts_scale;
  copy->pos = s.pos;
  copy->history = s.history;
  copy->be.synchronize();
  return Session(std::move(copy));
}

}  // namespace retnet
