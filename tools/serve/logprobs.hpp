// Log-probabilities for `retnet serve` (OpenAI's `logprobs` / `top_logprobs`): the distribution, the
// top-k choice, and the two JSON shapes (legacy completions and chat).
//
// The distribution is the model's own: log_softmax of the raw logits of the step, before temperature,
// penalties, top-k/top-p/min-p (what OpenAI and llama.cpp's n_probs with post_sampling_probs = false
// report). So a sampled token's logprob does not depend on the sampling settings.
#pragma once
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "job.hpp"

namespace retnet::serve {

// The most a request may ask (OpenAI's bound for both `logprobs` and `top_logprobs`).
inline constexpr int kMaxTopLogprobs = 20;

// What OpenAI reports for an impossible token (-inf is not JSON).
inline constexpr float kImpossibleLogprob = -9999.0f;

struct LogSoftmaxTop {
  float chosen = 0;               // log p(chosen)
  std::vector<TokenLogprob> top;  // the k most likely, most likely first; ties: lower id first
};

// log_softmax(logits)[chosen] and the top `k` (0..kMaxTopLogprobs) of logits [vocab], in one pass
// over the vocabulary plus one for the log-sum-exp (max-subtracted, summed in double, so the result is
// the fp32 logits' exact log-softmax to float rounding). NaN logits rank last; -inf and NaN give
// kImpossibleLogprob. Bytes are left empty (the caller knows the tokenizer).
LogSoftmaxTop log_softmax_top(std::span<const float> logits, int32_t chosen, int k);

// How a token's raw bytes read as a JSON string: valid UTF-8 as it is, each byte of an ill-formed or
// incomplete sequence (a token holding part of a character) as the 4 characters "\xNN"; `bytes` in
// the JSON carries the exact bytes.
std::string token_display(std::string_view bytes);

// The index, in characters (code points), of the character holding byte `byte_offset` of `text`
// (its length in characters when the offset is at or past the end). `text` is valid UTF-8.
size_t utf8_char_index(std::string_view text, size_t byte_offset);

// Insertion-ordered JSON, so that top_logprobs objects list the most likely token first.
// Chat: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}], "refusal": null}.
nlohmann::ordered_json chat_logprobs_json(const std::vector<LogprobEntry>& entries);

// Completions (legacy): {tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}. The
// entries' offsets are bytes of the choice's text; `text` is that text from byte `byte_base` on
// (a stream chunk's text, or the whole text with byte_base = 0), which starts at character
// `char_base`. Each top_logprobs object also holds the chosen token (OpenAI: up to logprobs + 1).
// An unconditioned entry (echo's first prompt token) has null in token_logprobs and top_logprobs.
nlohmann::ordered_json completion_logprobs_json(const std::vector<LogprobEntry>& entries, std::string_view text,
                                                size_t byte_base, size_t char_base);

}  // namespace retnet::serve
