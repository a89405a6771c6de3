// tokenizer.json "pre_tokenizer": splits each normalized piece of text into the words BPE merges
// within, and (ByteLevel) rewrites their bytes into the printable characters the vocabulary uses.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "tokenizer/split_patterns.hpp"

namespace retnet::tok {

// A piece of text on its way through the pipeline. `at_origin` is true when the piece starts at
// offset 0 of the caller's input, which Metaspace's prepend_scheme "first" needs to know.
struct Piece {
  std::string text;
  bool at_origin = false;
};

// GPT-2's reversible byte -> character map: printable Latin-1 bytes map to themselves, the other 68
// bytes to U+0100.. in order.
char32_t byte_to_char(uint8_t b);
int char_to_byte(char32_t c);  // -1 for characters outside the map

class PreTokenizer {
 public:
  // Parses a pre_tokenizer object (or null). Supported: Sequence, ByteLevel, Metaspace, Split (string
  // patterns, or the GPT-2 / Llama-3 / Qwen2 regexes), Digits, WhitespaceSplit; anything else throws
  // retnet::Error naming the type.
  static PreTokenizer parse(const nlohmann::json& j, const std::string& where);

  // Splits `in` into words, appended to `out` (empty words are dropped, as in the Rust library).
  void apply(Piece in, std::vector<Piece>& out) const;

  enum class Behavior : uint8_t { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
  enum class Prepend : uint8_t { kAlways, kFirst, kNever };
  struct Step {
    enum Kind : uint8_t { kByteLevel, kMetaspace, kSplitString, kSplitRegex, kDigits, kWhitespaceSplit } kind;
    bool flag_a = false;  // ByteLevel: add_prefix_space. Metaspace: split. Split: invert. Digits: individual.
    bool flag_b = false;  // ByteLevel: use_regex
    Prepend prepend = Prepend::kAlways;
    Behavior behavior = Behavior::kIsolated;
    SplitRegex regex = SplitRegex::kGpt2;
    std::string text;  // Metaspace replacement, Split string pattern
  };

 private:
  std::vector<Step> steps_;
};

}  // namespace retnet::tok
