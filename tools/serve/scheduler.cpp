// Continuous batching (scheduler.hpp).
#include "scheduler.hpp"

#include <algorithm>
#include <chrono>
#include <optional>

#include "echo.hpp"
#include "logprobs.hpp"

namespace retnet::serve {

struct Scheduler::Slot {
  explicit Slot(std::shared_ptr<const Model> m) : session(std::move(m)) {}
  enum class Phase { Idle, Prefill, Decode, Closing };
  Session session;
  Phase phase = Phase::Idle;
  std::shared_ptr<Job> job;
  uint64_t order = 0;           // admission order: the oldest prompt is prefilled first
  std::vector<int32_t> tokens;  // everything absorbed or about to be: prompt, then generated ids
  int64_t prompt_len = 0;
  int64_t cached = 0;    // prompt tokens resumed from the prefix cache
  std::string state_id;  // the deepest snapshot of this job stored so far (JobUsage::state_id)
  int64_t state_tokens = 0;
  int64_t generated = 0;
  int32_t pending = -1;       // sampled, emitted, to be decoded at the next step
  std::vector<int32_t> stop;  // sorted ids that end generation
  std::optional<Sampler> sampler;
  std::optional<Tokenizer::StreamDecoder> decoder;
  std::string held;                                  // text held back while it may be the start of a stop string
  std::chrono::steady_clock::time_point last_token;  // when the previous token was emitted
  // Logprob entries (jobs that ask for them only). The decoder's output is one byte stream: `decoded`
  // counts its bytes, `sent` those pushed to the job (a prefix of it: the rest is held back as the
  // possible start of a stop string). An entry is sent with the text holding its first byte.
  std::vector<LogprobEntry> undecoded;  // tokens whose text the decoder still holds back
  std::deque<LogprobEntry> unsent;      // tokens with an offset, their first byte not sent yet
  size_t decoded = 0, sent = 0;
  // echo with logprobs: the prompt is prefilled from position 0 with every position's logits, and its
  // entries (echo.hpp) wait here until the prompt's text is sent with them.
  bool echo_logprobs = false;
  std::vector<LogprobEntry> prompt_entries;
};

Scheduler::Scheduler(std::shared_ptr<const Model> model, Tokenizer tok, SchedulerOptions opt)
    : model_(std::move(model)), tok_(std::move(tok)), opt_(opt), cache_(opt.cache_bytes, model_->info().fingerprint) {
  if (opt_.parallel < 1) throw Error("--parallel: must be >= 1, got " + std::to_string(opt_.parallel));
  const ModelInfo& info = model_->info();
  if (tok_.vocab_size() > info.vocab_size)
    throw Error("serve: the tokenizer has " + std::to_string(tok_.vocab_size()) + " tokens but the model only " +
                std::to_string(info.vocab_size));
  // The ids that end generation, as Session::generate picks them.
  for (int64_t e : info.eos_token_ids) eos_.push_back(int32_t(e));
  if (eos_.empty() && tok_.eos_id() >= 0) eos_.push_back(tok_.eos_id());
  block_ = prefill_block_tokens(info);
  for (int i = 0; i < opt_.parallel; ++i) slots_.push_back(std::make_unique<Slot>(model_));
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() { shutdown(); }

Scheduler::Submit Scheduler::submit(const std::vector<std::shared_ptr<Job>>& jobs) {
  {
    std::lock_guard lk(mu_);
    if (stop_) return Submit::ShuttingDown;
    // Jobs beyond the free slots wait; the queue limit counts those.
    const size_t free_slots = size_t(opt_.parallel) - std::min(size_t(opt_.parallel), active_.load());
    const size_t waiting = queue_.size() + jobs.size();
    if (waiting > free_slots + opt_.queue_limit) return Submit::QueueFull;
    for (const auto& j : jobs) queue_.push_back(j);
  }
  cv_.notify_all();
  return Submit::Ok;
}

void Scheduler::shutdown() {
  {
    std::lock_guard lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lk(mu_);
  for (auto& j : queue_) j->fail(503, "the server is shutting down");
  queue_.clear();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  {
    std::lock_guard lk(metrics_mu_);
    s = metrics_;
  }
  {
    std::lock_guard lk(mu_);
    s.queued = queue_.size();
  }
  s.active = active_.load();
  s.steps = steps_.load();
  s.decoded_tokens = decoded_.load();
  s.prefilled_tokens = prefilled_.load();
  s.cache_bytes = cache_.bytes();
  s.cache_entries = cache_.entries();
  s.cache_hits = cache_.hits();
  s.cache_hit_tokens = cache_.hit_tokens();
  s.jobs_cancelled = cancelled_.load();
  return s;
}

void Scheduler::loop() {
  for (;;) {
    std::vector<std::pair<Slot*, std::shared_ptr<Job>>> admitted;
    {
      std::unique_lock lk(mu_);
      const auto busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const auto& s) { return s->phase != Slot::Phase::Idle; });
      };
      cv_.wait(lk, [&] { return stop_ || !queue_.empty() || busy(); });
      if (stop_) break;
      for (auto& s : slots_) {
        if (s->phase != Slot::Phase::Idle) continue;
        while (!queue_.empty() && queue_.front()->cancelled) {
          queue_.pop_front();
          cancelled_++;
        }
        if (queue_.empty()) break;
        admitted.emplace_back(s.get(), std::move(queue_.front()));
        queue_.pop_front();
        s->phase = Slot::Phase::Prefill;  // claimed under the lock, so that submit() counts it busy
        active_++;
      }
    }
    for (auto& [s, job] : admitted) start(*s, std::move(job));

    // A client that went away frees its slot now.
    for (auto& s : slots_)
      if (s->phase != Slot::Phase::Idle && s->phase != Slot::Phase::Closing && s->job && s->job->cancelled) {
        release(*s);
        cancelled_++;
      }

    // Prompts being prefilled, oldest first, up to one block's worth of tokens: the next block of the
    // oldest, and then of the next ones while their blocks still fit. Running streams so wait at most
    // one block, and short prompts that arrive together (a few tokens each) all start decoding at the
    // next step, not one per step: staggered starts and ends left the batch part-empty for as many
    // steps as prompts had arrived at once.
    std::vector<Slot*> pre;
    for (auto& s : slots_)
      if (s->phase == Slot::Phase::Prefill) pre.push_back(s.get());
    std::sort(pre.begin(), pre.end(), [](const Slot* a, const Slot* b) { return a->order < b->order; });
    int64_t budget = block_;
    for (Slot* s : pre) {
      const int64_t next = std::min(s->prompt_len - s->session.position(), block_);
      if (budget < block_ && next > budget) break;
      budget -= next;
      prefill_block(*s);
    }

    // One token for every decoding stream, in one batched step.
    std::vector<Slot*> step;
    std::vector<Session*> sessions;
    std::vector<int32_t> ids;
    for (auto& s : slots_)
      if (s->phase == Slot::Phase::Decode || s->phase == Slot::Phase::Closing) {
        step.push_back(s.get());
        sessions.push_back(&s->session);
        ids.push_back(s->pending);
      }
    if (step.empty()) continue;
    try {
      Session::decode_batch(sessions, ids);
    } catch (const std::exception& e) {
      for (Slot* s : step) {
        if (s->job) s->job->fail(500, std::string("decode: ") + e.what());
        release(*s);
      }
      continue;
    }
    steps_++;
    decoded_ += step.size();
    for (Slot* s : step) {
      s->tokens.push_back(s->pending);
      s->pending = -1;
      try {
        if (s->phase == Slot::Phase::Closing) {
          // The reply is complete: keep its state for the next turn, then answer, naming that state.
          snapshot(*s, s->session.logits());
          finish(*s, "length");
          release(*s);
        } else {
          on_logits(*s, s->session.logits());
        }
      } catch (const std::exception& e) {
        if (s->job) s->job->fail(500, e.what());
        release(*s);
      }
    }
  }
  // Shutting down: running jobs are cancelled cleanly (their HTTP threads answer 503).
  for (auto& s : slots_) {
    // A reply that is complete but for its last snapshot is answered; the others fail.
    if (s->job && s->phase == Slot::Phase::Closing) finish(*s, "length");
    if (s->job) s->job->fail(503, "the server is shutting down");
    release(*s);
  }
}

void Scheduler::start(Slot& s, std::shared_ptr<Job> job) {
  s.job = std::move(job);
  s.order = admitted_++;
  const JobParams& p = s.job->params;
  s.tokens = p.prompt;
  s.prompt_len = int64_t(p.prompt.size());
  s.cached = 0;
  s.generated = 0;
  s.pending = -1;
  s.held.clear();
  s.undecoded.clear();
  s.unsent.clear();
  s.decoded = s.sent = 0;
  s.echo_logprobs = p.echo && p.logprobs >= 0;
  s.prompt_entries.clear();
  s.stop = p.stop_ids;
  if (!p.ignore_eos) s.stop.insert(s.stop.end(), eos_.begin(), eos_.end());
  std::sort(s.stop.begin(), s.stop.end());
  try {
    s.sampler.emplace(p.sampler, int32_t(model_->info().vocab_size));
    for (int32_t id : p.prompt) s.sampler->accept(id);  // the penalties see the prompt, as generate's do
    s.decoder.emplace(tok_.stream_decoder());
    s.session.reset();
    s.state_id.clear();
    s.state_tokens = 0;
    if (s.echo_logprobs) s.prompt_entries.push_back(first_prompt_entry(p.prompt, tok_));
    else if (p.echo) echo(s);
    // The deepest snapshot of a prefix: in RAM, or deeper on disk (read now: a file read costs less
    // than prefilling what it holds). A snapshot that does not load only costs the prefill.
    // Not for echo's prompt logprobs: they need the logits of every prompt position, which no snapshot
    // holds (its snapshots are still stored, for later requests).
    const PrefixCache::EntryPtr e = s.echo_logprobs ? nullptr : cache_.lookup(p.prompt);
    std::optional<StateBlob> d;
    if (opt_.disk && !s.echo_logprobs) d = opt_.disk->lookup(p.prompt, e ? e->tokens : 0);
    std::vector<float> logits;
    if (d && resume(s, d->state, int64_t(d->tokens.size()))) {
      logits = d->logits;
      s.state_id = state_id(model_->info().fingerprint, d->tokens);
      cache_.put(d->tokens, std::move(d->state), std::move(d->logits));  // promoted to the RAM tier
    } else if (e && resume(s, e->state, e->tokens)) {
      logits = e->logits;
      s.state_id = e->id;
    }
    s.state_tokens = s.cached;
    if (s.cached > 0 && s.cached == s.prompt_len) {
      // The whole prompt was absorbed before: its logits came with the snapshot.
      s.phase = Slot::Phase::Decode;
      on_logits(s, logits);
      return;
    }
    s.phase = Slot::Phase::Prefill;
  } catch (const std::exception& e) {
    s.job->fail(400, e.what());
    release(s);
  }
}

bool Scheduler::resume(Slot& s, std::span<const uint8_t> state, int64_t tokens) {
  try {
    s.session.load_state(state);
    if (!s.session.history_matches(std::span<const int32_t>(s.job->params.prompt).first(size_t(tokens))))
      throw Error("history mismatch");
    s.cached = tokens;
    return true;
  } catch (const Error&) {
    s.session.reset();
    return false;
  }
}

void Scheduler::prefill_block(Slot& s) {
  PrefillOptions po;
  // Stop after the first block: the rest of the prompt follows between later decode steps, and
  // continues exactly as one uninterrupted prefill would (PrefillOptions::on_progress).
  po.on_progress = [](int64_t done, int64_t) { return done == 0; };
  const int64_t pos = s.session.position();
  try {
    std::span<const int32_t> rest = std::span<const int32_t>(s.tokens).subspan(size_t(pos), size_t(s.prompt_len - pos));
    std::span<const float> logits;
    if (s.echo_logprobs) {
      // One block per call with every position's logits (echo.hpp), not a longer call cancelled after
      // its first block, which would hold the logits of the whole rest; the rows become entries here.
      PrefillOptions all;
      all.all_logits = true;
      rest = rest.first(std::min(rest.size(), size_t(block_)));
      const std::span<const float> rows = s.session.prefill(rest, all);
      const int64_t vocab = model_->info().vocab_size;
      append_prompt_logprobs(rows, vocab, s.job->params.prompt, pos, s.job->params.logprobs, tok_, s.prompt_entries);
      if (pos + int64_t(rest.size()) == s.prompt_len) logits = rows.last(size_t(vocab));
    } else {
      logits = s.session.prefill(rest, po);
    }
    prefilled_ += uint64_t(s.session.position() - pos);
    if (logits.empty()) {
      // A block boundary: resuming here later is exact.
      if (cache_.enabled()) {
        cache_.put(std::span<const int32_t>(s.tokens).first(size_t(s.session.position())), s.session.save_state(), {});
      }
      return;
    }
    snapshot(s, logits);  // the whole prompt, with its logits: an identical prompt needs no prefill
    if (s.echo_logprobs) echo(s);
    s.phase = Slot::Phase::Decode;
    on_logits(s, logits);
  } catch (const std::exception& e) {
    s.job->fail(500, std::string("prefill: ") + e.what());
    release(s);
  }
}

// A snapshot with logits (the end of a prompt or of a reply): into the RAM tier, and queued for the
// disk tier; it becomes the state the job's response names.
void Scheduler::snapshot(Slot& s, std::span<const float> logits) {
  if (!caching()) return;
  const std::span<const int32_t> prefix = std::span<const int32_t>(s.tokens).first(size_t(s.session.position()));
  std::vector<uint8_t> state = s.session.save_state();
  std::vector<float> lg(logits.begin(), logits.end());
  PrefixCache::EntryPtr e = cache_.put(prefix, opt_.disk ? state : std::move(state), opt_.disk ? lg : std::move(lg));
  if (opt_.disk) {
    if (!e) {  // not kept in RAM (off, or larger than its budget): the disk tier still takes it
      auto own = std::make_shared<PrefixCache::Entry>();
      own->state = std::move(state);
      own->logits = std::move(lg);
      own->tokens = int64_t(prefix.size());
      own->id = state_id(model_->info().fingerprint, prefix);
      e = std::move(own);
    }
    opt_.disk->store_async(e->id, std::vector<int32_t>(prefix.begin(), prefix.end()), e);
  }
  if (!e) return;
  s.state_id = e->id;
  s.state_tokens = e->tokens;
}

// echo: the prompt's text, with its entries when logprobs are asked, before anything generated; the
// generated tokens' offsets then count from its end.
void Scheduler::echo(Slot& s) {
  const JobParams& p = s.job->params;
  std::vector<LogprobEntry> entries = std::move(s.prompt_entries);
  s.prompt_entries.clear();
  if (s.echo_logprobs) set_prompt_offsets(p.prompt, tok_, entries, p.echo_text.size());
  s.job->push_text(p.echo_text, std::move(entries));
  s.decoded = s.sent = p.echo_text.size();
}

// The body of Session::generate's loop for one token: sample, stop or emit.
void Scheduler::on_logits(Slot& s, std::span<const float> logits) {
  const JobParams& p = s.job->params;
  if (s.generated >= p.max_tokens) {  // max_tokens = 0: the prompt only
    finish(s, "length");
    release(s);
    return;
  }
  const int32_t next = s.sampler->sample(logits);
  s.sampler->accept(next);
  if (std::binary_search(s.stop.begin(), s.stop.end(), next)) {
    // The state holds the prompt and the reply: what the next chat turn starts with.
    snapshot(s, logits);
    finish(s, "stop");
    release(s);
    return;
  }
  ++s.generated;
  {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lk(metrics_mu_);
    if (s.generated == 1) metrics_.ttft.observe(std::chrono::duration<double>(now - s.job->queued_at).count());
    else metrics_.itl.observe(std::chrono::duration<double>(now - s.last_token).count());
    s.last_token = now;
  }
  if (p.logprobs >= 0) {
    // Only for jobs that ask: a pass over the vocabulary, and the bytes of k + 1 tokens.
    const LogSoftmaxTop lt = log_softmax_top(logits, next, p.logprobs);
    const bool first = s.generated == 1;  // the decoder applies start-of-text rules to it
    LogprobEntry e;
    e.chosen = TokenLogprob{next, lt.chosen, token_bytes(next, first)};
    for (const TokenLogprob& t : lt.top) e.top.push_back(TokenLogprob{t.id, t.logprob, token_bytes(t.id, first)});
    s.undecoded.push_back(std::move(e));
  }
  const std::string piece = s.decoder->push(next);
  decoded(s, piece);
  if (emit(s, piece)) {
    release(s);
    return;
  }
  s.pending = next;
  if (s.generated >= p.max_tokens) {
    // With a cache, decode the last token too, so that the snapshot holds the whole reply, and answer
    // after it (one decode step later), so that the state the response names exists when it arrives.
    if (caching()) {
      s.phase = Slot::Phase::Closing;
      return;
    }
    finish(s, "length");
    release(s);
    return;
  }
  s.phase = Slot::Phase::Decode;
}

bool Scheduler::emit(Slot& s, const std::string& piece) {
  const auto& stops = s.job->params.stop_strings;
  if (stops.empty()) {
    push(s, piece);
    return false;
  }
  s.held += piece;
  size_t first = std::string::npos;
  for (const auto& st : stops) first = std::min(first, s.held.find(st));
  if (first != std::string::npos) {
    push(s, s.held.substr(0, first));
    s.held.clear();
    finish(s, "stop", true);
    return true;
  }
  // Hold back the longest tail that may begin a stop string (it starts on a character boundary: a
  // stop string is valid UTF-8, so it starts with a lead byte).
  size_t keep = 0;
  for (const auto& st : stops)
    for (size_t k = std::min(st.size() - 1, s.held.size()); k > keep; --k)
      if (s.held.compare(s.held.size() - k, k, st, 0, k) == 0) {
        keep = k;
        break;
      }
  push(s, s.held.substr(0, s.held.size() - keep));
  s.held.erase(0, s.held.size() - keep);
  return false;
}

std::string Scheduler::token_bytes(int32_t id, bool first) const {
  // The model's vocabulary may be larger than the tokenizer's (padding rows): such ids have no text.
  return id >= 0 && id < tok_.vocab_size() ? tok_.token_bytes(id, first) : std::string();
}

void Scheduler::decoded(Slot& s, const std::string& piece) {
  if (s.job->params.logprobs < 0 || piece.empty()) return;
  // The tokens held so far complete this piece. Their bytes concatenate to it unless the decoder
  // repaired something (U+FFFD) or skipped a special token; then they all start where it starts.
  size_t total = 0;
  for (const auto& e : s.undecoded) total += e.chosen.bytes.size();
  size_t at = s.decoded;
  for (auto& e : s.undecoded) {
    e.offset = std::min(at, s.decoded + piece.size() - 1);  // never past the piece's last byte
    if (total == piece.size()) at += e.chosen.bytes.size();
    s.unsent.push_back(std::move(e));
  }
  s.undecoded.clear();
  s.decoded += piece.size();
}

void Scheduler::push(Slot& s, const std::string& text) {
  s.sent += text.size();
  std::vector<LogprobEntry> entries;
  while (!s.unsent.empty() && s.unsent.front().offset < s.sent) {
    entries.push_back(std::move(s.unsent.front()));
    s.unsent.pop_front();
  }
  s.job->push_text(text, std::move(entries));
}

void Scheduler::finish(Slot& s, const std::string& reason, bool stop_string) {
  // What the stream decoder held back (an incomplete character, as U+FFFD) ends the text, unless a
  // stop string already ended it: what the decoder holds then comes after the stop string.
  std::string rest = s.held;
  const std::string tail = s.decoder->flush();
  if (!stop_string) {
    decoded(s, tail);
    rest += tail;
  }
  s.held.clear();
  if (!rest.empty()) {
    if (reason == "length" || s.job->params.stop_strings.empty()) {
      push(s, rest);
    } else {
      const auto& stops = s.job->params.stop_strings;
      size_t first = std::string::npos;
      for (const auto& st : stops) first = std::min(first, rest.find(st));
      push(s, rest.substr(0, first));
    }
  }
  // Tokens with no text at the end (special tokens, which the text skips) go too when nothing was
  // cut; tokens after a stop string's cut are dropped with their text.
  if (!stop_string && s.sent == s.decoded && !s.undecoded.empty()) {
    for (auto& e : s.undecoded) e.offset = s.decoded;
    s.job->push_text("", std::move(s.undecoded));
  }
  s.undecoded.clear();
  s.unsent.clear();
  s.job->finish(reason, JobUsage{s.prompt_len, s.generated, s.cached, s.state_id, s.state_tokens});
  std::lock_guard lk(metrics_mu_);
  metrics_.jobs_done++;
  metrics_.prompt_tokens += uint64_t(s.prompt_len);
  metrics_.completion_tokens += uint64_t(s.generated);
}

void Scheduler::release(Slot& s) {
  if (s.job) {
    s.job.reset();
    active_--;
  }
  s.phase = Slot::Phase::Idle;
  s.pending = -1;
  s.prompt_entries = {};  // a cancelled echo's entries are not kept while the slot idles
}

}  // namespace retnet::serve
