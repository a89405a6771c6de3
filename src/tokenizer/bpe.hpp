// The BPE model of tokenizer.json: vocabulary, ranked merges, byte fallback / unk, and a bounded cache
// of already-merged words.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace retnet::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  // Parses and validates the "model" object: type BPE, vocab (unique, non-negative ids), merges as
  // "a b" strings or ["a", "b"] pairs naming vocab tokens, dropout null, no subword prefix/suffix.
  static std::unique_ptr<BpeModel> parse(const nlohmann::json& j, const std::string& where);

  // Appends the ids of one pre-tokenized word (a valid UTF-8 string in the vocab's alphabet).
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;  // nullptr when no token has that id
  int32_t max_id() const { return int32_t(tokens_.size()) - 1; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void merge_cached(std::string_view word, std::vector<int32_t>& out) const;
  bool is_char_token(std::string_view ch) const;

  TokenMap vocab_;
  std::vector<std::string> tokens_;  // by id
  std::vector<uint8_t> has_token_;
  std::unordered_map<uint64_t, Merge> merges_;  // (left id << 32 | right id) -> merge
  // (last character of a merge's left token << 32 | first character of its right token) over all
  // merges. Between two characters that form no such pair no merge can ever join, so a long word can
  // be merged piece by piece there (SentencePiece-style files hand BPE the whole text as one word).
  std::unordered_set<uint64_t> joinable_;
  std::string unk_token_;
  int32_t unk_id_ = -1;
  bool has_unk_ = false, fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  int32_t byte_ids_[256];  // id of "<0xNN>" for byte fallback, -1 if absent

  // Words repeat a lot in text, so merged words are remembered. Bounded: cleared when full.
  static constexpr size_t kCacheEntries = 1 << 16;
  static constexpr size_t kCacheMaxWord = 256;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace retnet::tok
