// The scheduler of `retnet serve`: one thread owns the model's sessions (one per slot) and runs
// continuous batching. Each iteration it admits queued jobs into free slots, prefills up to one
// block's worth of new prompts' tokens (the next block of the oldest, or several short prompts whole;
// so running streams wait at most one block), then advances every decoding stream
// by one token with Session::decode_batch, which reads the weights once for all of them.
//
// Results never depend on the batching: decode_batch equals decoding each session alone bit for
// bit, a prompt is prefilled in the same blocks as Session::prefill makes (a prefill cancelled after
// its first block continues exactly as the uncancelled call), and each job samples with its own
// Sampler exactly as Session::generate does. So greedy and seeded outputs equal `retnet generate`'s.
#pragma once
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "disk_cache.hpp"
#include "job.hpp"
#include "prefix_cache.hpp"
#include "retnet/retnet.hpp"

namespace retnet::serve {

struct SchedulerOptions {
  int parallel = 4;                     // slots: streams decoded together
  size_t queue_limit = 64;              // jobs waiting for a slot; more are refused (HTTP 503)
  uint64_t cache_bytes = 256ull << 20;  // prefix-state cache budget (0: off)
  DiskCache* disk = nullptr;            // the on-disk tier (--cache-dir), not owned; may be null
};

// A latency histogram in seconds with fixed bucket bounds (Prometheus' cumulative form is made when
// it is printed).
struct Histogram {
  std::vector<double> bounds;  // upper bounds, ascending; +Inf is implicit
  std::vector<uint64_t> counts = std::vector<uint64_t>(bounds.size() + 1, 0);  // per bucket, not cumulative
  double sum = 0;
  uint64_t count = 0;
  void observe(double seconds) {
    size_t i = 0;
    while (i < bounds.size() && seconds > bounds[i]) ++i;
    ++counts[i];
    sum += seconds;
    ++count;
  }
};

struct SchedulerStats {
  size_t queued = 0, active = 0;
  uint64_t cache_bytes = 0, cache_entries = 0, cache_hits = 0, cache_hit_tokens = 0;
  uint64_t steps = 0, decoded_tokens = 0, prefilled_tokens = 0;
  uint64_t jobs_done = 0, prompt_tokens = 0, completion_tokens = 0;
  uint64_t jobs_cancelled = 0;  // dropped unfinished (queued or running) because their client went away
  Histogram ttft{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};  // queued → first token
  Histogram itl{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}};    // between tokens of a job
};

class Scheduler {
 public:
  Scheduler(std::shared_ptr<const Model> model, Tokenizer tok, SchedulerOptions opt);
  ~Scheduler();  // shutdown()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  enum class Submit { Ok, QueueFull, ShuttingDown };
  // Queues all of `jobs` or none of them (a request with n choices is admitted whole).
  Submit submit(const std::vector<std::shared_ptr<Job>>& jobs);
  // Stops the thread: queued and running jobs fail with 503 (their HTTP threads then answer).
  void shutdown();
  SchedulerStats stats() const;
  // The RAM tier, which HTTP threads export from and import into (it is thread-safe).
  PrefixCache& cache() { return cache_; }

 private:
  struct Slot;
  void loop();
  void start(Slot& s, std::shared_ptr<Job> job);
  void prefill_block(Slot& s);
  void on_logits(Slot& s, std::span<const float> logits);
  bool emit(Slot& s, const std::string& piece);  // true when a stop string ended the job
  // stop_string: emit() found one (the text is complete; what the decoder still holds is dropped).
  void finish(Slot& s, const std::string& reason, bool stop_string = false);
  // The logprob entries' side of the text: decoded() gives the tokens held so far their offsets in
  // the decoder's output (`piece` is its next part); push() sends text with the entries it begins.
  void decoded(Slot& s, const std::string& piece);
  void push(Slot& s, const std::string& text);
  void echo(Slot& s);  // the prompt's text (and entries) first, for a job that asks for echo
  std::string token_bytes(int32_t id, bool first) const;
  void release(Slot& s);
  void snapshot(Slot& s, std::span<const float> logits);
  bool resume(Slot& s, std::span<const uint8_t> state, int64_t tokens);
  bool caching() const { return cache_.enabled() || opt_.disk; }

  std::shared_ptr<const Model> model_;
  Tokenizer tok_;
  SchedulerOptions opt_;
  std::vector<int32_t> eos_;
  // Tokens per prefill block (echo.hpp): the prefill budget of one loop iteration, and the tokens per
  // prefill call of echo's prompt logprobs.
  int64_t block_ = 0;
  std::vector<std::unique_ptr<Slot>> slots_;
  PrefixCache cache_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  bool stop_ = false;
  std::atomic<size_t> active_{0};
  std::atomic<uint64_t> steps_{0}, decoded_{0}, prefilled_{0};
  std::atomic<uint64_t> cancelled_{0};  // jobs dropped unfinished because their client went away
  uint64_t admitted_ = 0;
  mutable std::mutex metrics_mu_;  // guards metrics_ (written by the scheduler thread, read by /metrics)
  SchedulerStats metrics_;         // its job counters and histograms
  std::thread thread_;
};

}  // namespace retnet::serve
