// tokenizer.json "added_tokens": strings cut out of the text before the model sees it. Tokens with
// normalized=false are matched in the raw text; the others in each normalized piece, by their own
// normalized form (as the Rust library does).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace retnet::tok {

struct AddedToken {
  std::string content;
  std::string pattern;  // what is matched: content, or its normalized form when normalized is true
  int32_t id = -1;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = true;
};

// One side (raw or normalized) of the added-token matcher: leftmost-longest search with a byte trie.
class AddedMatcher {
 public:
  void add(std::string_view pattern, int32_t token_index);
  bool empty() const { return nodes_.size() <= 1; }

  // A cut of `text`: [begin, end) is either an added token (token_index >= 0) or text between them.
  struct Span {
    size_t begin, end;
    int32_t token_index;
  };
  // Cuts text as the Rust AddedVocabulary::find_matches does, applying single_word / lstrip / rstrip.
  void split(std::string_view text, const std::vector<AddedToken>& tokens, std::vector<Span>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, uint32_t>> next;  // sorted by byte
    int32_t token_index = -1;
  };
  uint32_t child(uint32_t node, uint8_t byte) const;
  std::vector<Node> nodes_{Node{}};
  bool first_byte_[256] = {};
};

}  // namespace retnet::tok
