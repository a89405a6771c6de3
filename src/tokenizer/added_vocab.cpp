#include "tokenizer/added_vocab.hpp"

#include <algorithm>

#include "tokenizer/unicode.hpp"

namespace retnet::tok {
namespace {

// The character ending just before byte offset `end` of valid UTF-8 text.
char32_t cp_before(std::string_view s, size_t end) {
  size_t b = end - 1;
  while (b > 0 && (static_cast<uint8_t>(s[b]) & 0xC0) == 0x80) --b;
  return unicode::next_cp(s, b);
}

}  // namespace

uint32_t AddedMatcher::child(uint32_t node, uint8_t byte) const {
  const auto& nx = nodes_[node].next;
  const auto it = std::lower_bound(nx.begin(), nx.end(), byte, [](const auto& e, uint8_t b) { return e.first < b; });
  return it != nx.end() && it->first == byte ? it->second : 0;
}

void AddedMatcher::add(std::string_view pattern, int32_t token_index) {
  if (pattern.empty()) return;
  first_byte_[static_cast<uint8_t>(pattern[0])] = true;
  uint32_t node = 0;
  for (const char c : pattern) {
    const auto byte = static_cast<uint8_t>(c);
    uint32_t nx = child(node, byte);
    if (nx == 0) {
      nx = uint32_t(nodes_.size());
      nodes_.emplace_back();
      auto& v = nodes_[node].next;
      v.insert(std::lower_bound(v.begin(), v.end(), byte, [](const auto& e, uint8_t b) { return e.first < b; }),
               {byte, nx});
    }
    node = nx;
  }
  nodes_[node].token_index = token_index;  // a later token with the same pattern wins
}

void AddedMatcher::split(std::string_view text, const std::vector<AddedToken>& tokens, std::vector<Span>& out) const {
  out.clear();
  size_t done = 0;  // end of the last emitted span
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[static_cast<uint8_t>(text[i])]) {
      ++i;
      continue;
    }
    // Longest pattern starting at i.
    int32_t best = -1;
    size_t best_end = 0;
    uint32_t node = 0;
    for (size_t k = i; k < text.size(); ++k) {
      node = child(node, static_cast<uint8_t>(text[k]));
      if (node == 0) break;
      if (nodes_[node].token_index >= 0) best = nodes_[node].token_index, best_end = k + 1;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = tokens[size_t(best)];
    size_t start = i, stop = best_end;
    i = best_end;  // matches never overlap, and a rejected one is not searched again
    if (tok.single_word) {
      const bool free_left = start == 0 || !unicode::is_word(cp_before(text, start));
      size_t after = stop;
      const bool free_right = stop == text.size() || !unicode::is_word(unicode::next_cp(text, after));
      if (!free_left || !free_right) continue;
    }
    if (tok.lstrip) {
      size_t b = start;
      while (b > done && unicode::is_space(cp_before(text, b))) {
        size_t k = b - 1;
        while (k > 0 && (static_cast<uint8_t>(text[k]) & 0xC0) == 0x80) --k;
        b = k;
      }
      start = b;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        size_t k = stop;
        if (!unicode::is_space(unicode::next_cp(text, k))) break;
        stop = k;
      }
      i = std::max(i, stop);
    }
    if (done < start) out.push_back({done, start, -1});
    out.push_back({start, stop, best});
    done = stop;
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
}

}  // namespace retnet::tok
