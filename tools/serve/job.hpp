// One generation request as the scheduler runs it (one choice of an OpenAI request: n > 1 makes n
// jobs). The HTTP thread that made it waits on it; the scheduler thread fills it. Thread-safe.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "retnet/sampler.hpp"

namespace retnet::serve {

struct JobParams {
  std::vector<int32_t> prompt;  // tokens, BOS included as Tokenizer::encode(text, true) gives them
  int64_t max_tokens = 16;      // >= 0
  SamplerParams sampler;
  std::vector<std::string> stop_strings;  // end the text before the first match (not included)
  std::vector<int32_t> stop_ids;          // end generation (not emitted), besides the model's EOS
  bool ignore_eos = false;
  // Log-probabilities of each generated token with this many alternatives (0..20); -1: none, and
  // the scheduler computes nothing.
  int logprobs = -1;
  // echo (completions): the choice's text starts with the prompt's text, `echo_text`; with logprobs
  // >= 0 its entries start with the prompt's tokens (the first without a logprob), which needs the
  // logits of every prompt position: such a job prefills its prompt from position 0 (README: echo).
  bool echo = false;
  std::string echo_text;
};

// One token with its log-probability (logprobs.hpp: the raw logits' log_softmax).
struct TokenLogprob {
  int32_t id = -1;
  float logprob = 0;
  std::string bytes;  // Tokenizer::token_bytes: may hold part of a UTF-8 character
};

// A generated token's entry: the token, its alternatives, and where its text starts in the choice's
// text (bytes). Sent with the text that carries the token's first byte.
struct LogprobEntry {
  TokenLogprob chosen;
  std::vector<TokenLogprob> top;  // the most likely first
  size_t offset = 0;
  // The first prompt token of an echo: nothing precedes it, so it has no logprob and no
  // alternatives (null in the JSON, as OpenAI's).
  bool unconditioned = false;
};

struct JobUsage {
  int64_t prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  // The deepest state of this conversation the cache holds when the job ends (GET /v1/states/{id}):
  // prompt and reply, or the prompt alone when a stop string cut the reply (the tokens after the
  // cut are not the conversation's). Empty when nothing was stored (cache off, entry too large).
  std::string state_id;
  int64_t state_tokens = 0;
};

class Job {
 public:
  explicit Job(JobParams p) : params(std::move(p)) {}
  const JobParams params;

  // ---- HTTP side
  // Set when the client went away or the request is abandoned: the scheduler frees the slot at its
  // next step.
  std::atomic<bool> cancelled{false};
  struct Update {
    std::string text;                    // new text since the last call (whole UTF-8 characters)
    std::vector<LogprobEntry> logprobs;  // the entries of the tokens whose text begins in `text`
    bool finished = false;
    std::string finish_reason;  // "stop" or "length" when finished without error
    int error_status = 0;       // non-zero: failed with this HTTP status and message
    std::string error;
    JobUsage usage;
  };
  // Waits up to `timeout` for news, then returns what there is (possibly nothing).
  // whole: wake only when the job finished (a non-streaming reply), not for every token: on a small
  // model a decode step takes a fraction of a millisecond, and waking one HTTP thread per stream per
  // token took the cores from the scheduler (8 streams of the bundled model: 0.6x of `retnet bench -b 8`).
  Update next(std::chrono::milliseconds timeout, bool whole = false) {
    std::unique_lock lk(mu_);
    if (whole) {
      cv_.wait_for(lk, timeout, [&] { return finished_; });
    } else {
      ++text_waiters_;
      cv_.wait_for(lk, timeout, [&] { return !text_.empty() || !logprobs_.empty() || finished_; });
      --text_waiters_;
    }
    Update u;
    u.text = std::move(text_);
    text_.clear();
    u.logprobs = std::move(logprobs_);
    logprobs_.clear();
    u.finished = finished_;
    u.finish_reason = reason_;
    u.error_status = error_status_;
    u.error = error_;
    u.usage = usage_;
    return u;
  }

  // ---- scheduler side
  // Text and the logprob entries that go with it, published together.
  void push_text(const std::string& s, std::vector<LogprobEntry> entries = {}) {
    if (s.empty() && entries.empty()) return;
    bool wake = false;
    {
      std::lock_guard lk(mu_);
      text_ += s;
      for (auto& e : entries) logprobs_.push_back(std::move(e));
      wake = text_waiters_ > 0;
    }
    if (wake) cv_.notify_all();
  }
  void finish(const std::string& reason, const JobUsage& usage) {
    {
      std::lock_guard lk(mu_);
      if (finished_) return;
      finished_ = true;
      reason_ = reason;
      usage_ = usage;
    }
    cv_.notify_all();
  }
  void fail(int status, const std::string& message) {
    {
      std::lock_guard lk(mu_);
      if (finished_) return;
      finished_ = true;
      error_status_ = status;
      error_ = message;
    }
    cv_.notify_all();
  }
  bool finished() const {
    std::lock_guard lk(mu_);
    return finished_;
  }

  // Timings (scheduler thread writes, read after finish).
  std::chrono::steady_clock::time_point queued_at = std::chrono::steady_clock::now();

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  std::vector<LogprobEntry> logprobs_;
  bool finished_ = false;
  int text_waiters_ = 0;  // threads in next() waiting for text (not whole): push_text wakes only these
  std::string reason_;
  int error_status_ = 0;
  std::string error_;
  JobUsage usage_;
};

}  // namespace retnet::serve
