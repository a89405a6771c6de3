// Hand-written matchers for the few pre-tokenizer regexes that real BPE tokenizers use, so that no
// regex engine is needed: GPT-2's ByteLevel pattern and the Llama-3 / Qwen2 `Split` patterns.
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace retnet::tok {

enum class SplitRegex : uint8_t {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kLlama3,  // (?i:'s|...|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,   // the Llama-3 pattern with \p{N} instead of \p{N}{1,3}
};

// The matcher for a `Split` regex written exactly as in a known tokenizer.json, or nullopt.
std::optional<SplitRegex> recognize_split_regex(std::string_view pattern);
std::string_view split_regex_source(SplitRegex kind);

// Byte offsets where the successive regex matches of s end (leftmost-first alternation, as
// Oniguruma does). These patterns match every character, so the matches tile s and the last end is
// s.size(); s must be valid UTF-8.
void find_split_regex_matches(SplitRegex kind, std::string_view s, std::vector<uint32_t>& ends);

}  // namespace retnet::tok
