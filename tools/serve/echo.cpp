// The prompt's log-probabilities for echo (echo.hpp).
#include "echo.hpp"

#include <algorithm>
#include <string>

#include "logprobs.hpp"

namespace retnet::serve {

namespace {

// retnet.hpp's prefill block (PrefillOptions::on_progress), as src/common/limits.hpp sizes it.
constexpr int64_t kBlockTokens = 512;

// A token's bytes; the model's vocabulary may be larger than the tokenizer's (padding rows): such
// ids have no text.
std::string bytes_of(const Tokenizer& tok, int32_t id, bool first) {
  return id >= 0 && id < tok.vocab_size() ? tok.token_bytes(id, first) : std::string();
}

// Whether prompt[j] opens the decoded text: only special tokens (skipped by the decoder) precede it.
bool opens_text(std::span<const int32_t> prompt, const Tokenizer& tok, size_t j) {
  for (size_t i = 0; i < j; ++i)
    if (!tok.is_special(prompt[i])) return false;
  return true;
}

}  // namespace

int64_t prefill_block_tokens(const ModelInfo& info) {
  const int64_t chunk = std::max<int64_t>(1, info.default_chunk_size);
  if (chunk > kBlockTokens) return chunk;
  return std::max<int64_t>(1, (kBlockTokens + chunk - 1) / chunk) * chunk;
}

LogprobEntry first_prompt_entry(std::span<const int32_t> prompt, const Tokenizer& tok) {
  LogprobEntry e;
  e.chosen = TokenLogprob{prompt[0], 0.0f, bytes_of(tok, prompt[0], true)};
  e.unconditioned = true;
  return e;
}

void append_prompt_logprobs(std::span<const float> logits, int64_t vocab, std::span<const int32_t> prompt, int64_t pos,
                            int k, const Tokenizer& tok, std::vector<LogprobEntry>& entries) {
  const int64_t rows = int64_t(logits.size()) / vocab;
  // Only the first rows can open the text (after leading special tokens): check those alone.
  bool first = opens_text(prompt, tok, size_t(pos + 1));
  for (int64_t r = 0; r < rows && pos + r + 1 < int64_t(prompt.size()); ++r) {
    const size_t j = size_t(pos + r + 1);  // the token row r predicts
    const LogSoftmaxTop lt = log_softmax_top(logits.subspan(size_t(r * vocab), size_t(vocab)), prompt[j], k);
    LogprobEntry e;
    e.chosen = TokenLogprob{prompt[j], lt.chosen, bytes_of(tok, prompt[j], first)};
    for (const TokenLogprob& t : lt.top) e.top.push_back(TokenLogprob{t.id, t.logprob, bytes_of(tok, t.id, first)});
    entries.push_back(std::move(e));
    first = first && tok.is_special(prompt[j]);
  }
}

void set_prompt_offsets(std::span<const int32_t> prompt, const Tokenizer& tok, std::vector<LogprobEntry>& entries,
                        size_t text_bytes) {
  Tokenizer::StreamDecoder dec = tok.stream_decoder();
  size_t done = 0;  // bytes of the decoder's output so far
  size_t held = 0;  // entries [held, i] wait for the decoder's next text
  const auto place = [&](size_t end, size_t piece) {
    if (piece == 0) return;
    // As Scheduler::decoded: the held tokens' bytes, when they make up the piece, give each its
    // place in it; otherwise (the decoder repaired or skipped something) they all start with it.
    size_t total = 0;
    for (size_t i = held; i < end; ++i) total += entries[i].chosen.bytes.size();
    size_t at = done;
    for (size_t i = held; i < end; ++i) {
      entries[i].offset = std::min(at, done + piece - 1);
      if (total == piece) at += entries[i].chosen.bytes.size();
    }
    held = end;
    done += piece;
  };
  const size_t n = std::min(prompt.size(), entries.size());
  for (size_t i = 0; i < n; ++i) place(i + 1, dec.push(prompt[i]).size());
  place(n, dec.flush().size());
  for (size_t i = held; i < n; ++i) entries[i].offset = done;  // no text after them
  for (size_t i = 0; i < n; ++i) entries[i].offset = std::min(entries[i].offset, text_bytes);
}

}  // namespace retnet::serve
