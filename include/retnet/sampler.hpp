// retnet sampler — turns one step's logits into the next token.
//
// The chain follows llama.cpp's semantics for the stages it has in common with it
// (repetition/frequency/presence penalties, top-k, top-p, min-p, temperature), in an
// order the caller chooses. Every draw comes from retnet::Rng, a generator fully specified
// here, so the same seed gives the same tokens on every machine and compiler.
//
// Threads: a Sampler holds mutable state (history, PRNG, scratch buffers); use one per
// sequence and per thread. Only standard types appear here.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "retnet/export.h"

namespace retnet {

// xoshiro256** 1.0 (Blackman & Vigna), its 256-bit state filled from a seed by SplitMix64.
// Both algorithms are defined bit for bit, unlike std::mt19937's distributions, so a
// recorded seed replays exactly anywhere. A value type with mutable state: one thread at a time.
class RETNET_API Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  // Sets the state to the next four outputs of SplitMix64 started at `seed`.
  void reseed(uint64_t seed);
  // Sets the raw state (for reproducing published test vectors). The all-zero state is a
  // fixed point of xoshiro and is refused with Error.
  void set_state(const std::array<uint64_t, 4>& s);
  const std::array<uint64_t, 4>& state() const { return s_; }

  uint64_t next_u64();
  // Uniform in [0, 1): the top 24 bits of next_u64() times 2^-24, so every value is exact
  // in float and the result does not depend on the platform's float rounding.
  float next_float();

  // One SplitMix64 step: advances `state` by the golden-ratio increment and returns the mix.
  static uint64_t splitmix64(uint64_t& state);

  friend bool operator==(const Rng& a, const Rng& b) { return a.s_ == b.s_; }

 private:
  std::array<uint64_t, 4> s_{};
};

enum class SamplerStage { Penalties, TopK, TopP, MinP, Temperature };

// Bounds that validate() enforces. Values outside them are far past anything useful and are
// taken as typos (e.g. top_p given as a percentage) rather than silently clamped.
//  * temperature: finite and <= 100. Zero or negative means greedy (llama.cpp's convention),
//    so "--temp -1" is accepted and picks the argmax. Above 100 every realistic logit span
//    (tens of nats) is flattened to within a few percent of uniform, so it is refused.
//  * top_k: any value; <= 0 disables the stage, k >= number of candidates keeps all.
//  * top_p: in (0, 1]; 1 disables. 0 would keep nothing before the "at least one" rule, so
//    it is refused rather than being a disguised greedy.
//  * min_p: in [0, 1]; 0 disables, 1 keeps only the tokens tied with the maximum.
//  * repeat_penalty: finite, in (0, 100]; 1 disables, < 1 favours repeats.
//  * frequency_penalty, presence_penalty: finite, in [-100, 100] (negative favours repeats).
//  * repeat_last_n: >= -1; 0 disables all penalties, -1 means the whole history.
//  * order: each stage at most once. A stage missing from it is not applied (so without
//    Temperature listed, a positive temperature has no effect); greedy decoding
//    (temperature <= 0) applies Penalties if and only if they are listed.
struct RETNET_API SamplerParams {
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = 0;  // used as given; the CLI chooses and prints one when the user gives none
  std::vector<SamplerStage> order = {SamplerStage::Penalties, SamplerStage::TopK, SamplerStage::TopP,
                                     SamplerStage::MinP, SamplerStage::Temperature};

  // Throws Error naming the first field outside the bounds above. Thread-safe (reads only).
  void validate() const;
};

// The canonical name of a stage: "penalties", "top_k", "top_p", "min_p", "temperature" (a view of
// a static string, valid for the program's lifetime). Thread-safe.
RETNET_API std::string_view sampler_stage_name(SamplerStage s);

// Parses a stage order. Two spellings:
//  * names separated by ';' or ',' (spaces around them ignored, '-' accepted for '_'),
//    e.g. "penalties;top_k;top_p;min_p;temperature";
//  * llama.cpp's one-letter form: e=penalties k=top_k p=top_p m=min_p t=temperature, e.g. "kpmt".
// A lone word is read as a name first, so "temperature" is one stage, not letters.
// Throws Error for an empty string, an unknown name or letter, or a repeated stage. Thread-safe.
RETNET_API std::vector<SamplerStage> parse_sampler_order(std::string_view text);

class RETNET_API Sampler {
 public:
  // Validates `p` and vocab_size (> 0). Allocates every buffer the hot path needs.
  Sampler(SamplerParams p, int32_t vocab_size);
  ~Sampler();
  Sampler(Sampler&&) noexcept;
  Sampler& operator=(Sampler&&) noexcept;
  Sampler(const Sampler&) = delete;
  Sampler& operator=(const Sampler&) = delete;

  // Runs the chain on a copy of `logits` (size vocab_size) and draws one token with the Rng.
  // Does not record the token: call accept() for it. -inf marks a token as impossible; NaN
  // or +inf anywhere is an Error naming the token, as is every token being -inf.
  // With temperature <= 0 it returns greedy() and consumes no random number.
  int32_t sample(std::span<const float> logits);

  // The chain with the Temperature stage left out, then the argmax (lowest id among equal
  // maxima). The filters always keep the argmax, so this is the argmax after Penalties when
  // they are listed (and after any filter listed before them). Consumes no random number,
  // whatever the temperature.
  int32_t greedy(std::span<const float> logits);

  // Records a token in the penalty history (prompt tokens too). Throws Error when the token
  // is outside [0, vocab_size).
  void accept(int32_t token);

  // Clears the history and re-seeds the Rng with params().seed.
  void reset();

  // The candidates that survive the chain with their final probabilities, sorted by
  // probability descending, ties by token id. With temperature <= 0 it is the greedy token
  // with probability 1. Does not touch the Rng or the history (allocates; for tests/tools).
  std::vector<std::pair<int32_t, float>> distribution(std::span<const float> logits) const;

  // Views of this sampler's members, valid as long as the sampler (and its state at the time).
  const SamplerParams& params() const;
  int32_t vocab_size() const;
  const Rng& rng() const;

 private:
  struct RETNET_LOCAL Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace retnet
