// echo on POST /v1/completions: the prompt's own log-probabilities (what lm-evaluation-harness and
// other scorers read: `"echo": true, "logprobs": k, "max_tokens": 0`).
//
// Each prompt token's entry is the log-softmax of the logits after the tokens before it, so a job
// that asks prefills its prompt from position 0 with PrefillOptions::all_logits, one prefill block per
// call: the logits held at a time are one block's [block, vocab] (the size the model's memory plan
// already counts a session for), turned into entries and dropped before the next block.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "job.hpp"
#include "retnet/retnet.hpp"

namespace retnet::serve {

// The tokens of one chunkwise prefill block of this model, as retnet.hpp documents it
// (PrefillOptions::on_progress: about 512 tokens, a whole number of chunks; one chunk when the chunk
// is longer). Prefilling a prompt one such block per call leaves the state an uninterrupted prefill
// leaves, bit for bit, and computes each block's logits as one [block, vocab] product, as
// `retnet logits` (one all_logits prefill) does.
int64_t prefill_block_tokens(const ModelInfo& info);

// The entry of prompt[0]: nothing precedes it, so no logprob and no alternatives.
LogprobEntry first_prompt_entry(std::span<const int32_t> prompt, const Tokenizer& tok);

// After a prefill of prompt[pos, pos + rows) with all_logits: `logits` [rows, vocab], row r the
// distribution after prompt[pos + r]. Appends the entries of prompt[pos + 1, pos + rows] (those that
// exist: the last row of the prompt predicts the first generated token, not a prompt token), each with
// its top k alternatives (log_softmax_top) and the tokens' bytes. Offsets are set later
// (set_prompt_offsets).
void append_prompt_logprobs(std::span<const float> logits, int64_t vocab, std::span<const int32_t> prompt, int64_t pos,
                            int k, const Tokenizer& tok, std::vector<LogprobEntry>& entries);

// The entries' offsets in the echoed text, found as the generated tokens' are (Scheduler::decoded): a
// stream decoder reads the prompt, and each token starts where its text starts in the decoder's
// output (tokens the decoder holds back until a later one completes a character start where that
// text starts; tokens with no text, such as BOS, where the next text starts). Offsets are clamped to
// `text_bytes`, the echoed text's size (a prompt string that its tokens do not decode back to exactly).
void set_prompt_offsets(std::span<const int32_t> prompt, const Tokenizer& tok, std::vector<LogprobEntry>& entries,
                        size_t text_bytes);

}  // namespace retnet::serve
