#include "tokenizer/split_patterns.hpp"

#include <algorithm>

#include "tokenizer/unicode.hpp"

namespace retnet::tok {
namespace {

constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr std::string_view kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The only distinctions the patterns make: \p{L}, \p{N}, \s, and "anything else".
enum Cls : uint8_t { kL, kN, kS, kO };

Cls cls_of(char32_t cp) {
  if (cp < 0x80) {
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return kL;
    if (cp >= '0' && cp <= '9') return kN;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D)) return kS;
    return kO;
  }
  switch (unicode::classify(cp)) {
    case unicode::UniClass::Letter: return kL;
    case unicode::UniClass::Digit:
    case unicode::UniClass::NumberLetter:
    case unicode::UniClass::NumberOther: return kN;
    case unicode::UniClass::Space: return kS;
    default: return kO;
  }
}

struct Text {
  std::vector<char32_t> cp;
  std::vector<Cls> cls;
  std::vector<uint32_t> off;  // byte offset of each character, plus s.size() at the end
  size_t n = 0;

  explicit Text(std::string_view s) {
    cp.reserve(s.size());
    cls.reserve(s.size());
    off.reserve(s.size() + 1);
    for (size_t i = 0; i < s.size();) {
      off.push_back(uint32_t(i));
      const char32_t c = unicode::next_cp(s, i);
      cp.push_back(c);
      cls.push_back(cls_of(c));
    }
    off.push_back(uint32_t(s.size()));
    n = cp.size();
  }
  size_t run(size_t i, Cls c) const {  // end of the run of class c starting at i
    while (i < n && cls[i] == c) ++i;
    return i;
  }
};

// Length of a contraction ('s 't 're 've 'm 'll 'd) at i, 0 if none; `fold` makes it case-insensitive
// the way Oniguruma folds case (ſ, U+017F, folds to s).
size_t contraction(const Text& t, size_t i, bool fold) {
  if (t.cp[i] != '\'' || i + 1 >= t.n) return 0;
  auto low = [&](size_t k) -> char32_t {
    const char32_t c = t.cp[k];
    if (!fold) return c;
    if (c == 0x17F) return 's';
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
  };
  const char32_t a = low(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  if (i + 2 < t.n) {
    const char32_t b = low(i + 2);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  }
  return 0;
}

// \s+(?!\S) then \s+ at a whitespace character: the whole run at the end of the text, otherwise the
// run minus its last character (which is left to prefix the next word), but at least one character.
size_t whitespace_tail(const Text& t, size_t i) {
  const size_t end = t.run(i, kS);
  if (end == t.n) return end;
  return end - i >= 2 ? end - 1 : i + 1;
}

size_t match_gpt2(const Text& t, size_t i) {
  if (const size_t k = contraction(t, i, false)) return i + k;
  const Cls c = t.cls[i];
  if (t.cp[i] == ' ' && i + 1 < t.n && t.cls[i + 1] != kS) return t.run(i + 1, t.cls[i + 1]);  // " ?X+"
  if (c != kS) return t.run(i, c);
  return whitespace_tail(t, i);
}

bool is_nl(char32_t c) { return c == '\r' || c == '\n'; }

size_t match_llama3(const Text& t, size_t i, size_t max_digits) {
  if (const size_t k = contraction(t, i, true)) return i + k;
  const Cls c = t.cls[i];
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c == kL) return t.run(i, kL);
  if (c != kN && !is_nl(t.cp[i]) && i + 1 < t.n && t.cls[i + 1] == kL) return t.run(i + 1, kL);
  // \p{N}{1,3}
  if (c == kN) return std::min(t.run(i, kN), i + max_digits);
  // " ?[^\s\p{L}\p{N}]+[\r\n]*"
  size_t j = i;
  if (t.cp[i] == ' ' && i + 1 < t.n && t.cls[i + 1] == kO) j = i + 1;
  if (t.cls[j] == kO) {
    j = t.run(j, kO);
    while (j < t.n && is_nl(t.cp[j])) ++j;
    return j;
  }
  // \s*[\r\n]+ : backtracking leaves the match ending just after the last \r or \n of the run.
  const size_t end = t.run(i, kS);
  for (size_t k = end; k > i; --k)
    if (is_nl(t.cp[k - 1])) return k;
  return whitespace_tail(t, i);
}

}  // namespace

std::optional<SplitRegex> recognize_split_regex(std::string_view pattern) {
  if (pattern == kGpt2Pattern) return SplitRegex::kGpt2;
  if (pattern == kLlama3Pattern) return SplitRegex::kLlama3;
  if (pattern == kQwen2Pattern) return SplitRegex::kQwen2;
  return std::nullopt;
}

std::string_view split_regex_source(SplitRegex kind) {
  switch (kind) {
    case SplitRegex::kGpt2: return kGpt2Pattern;
    case SplitRegex::kLlama3: return kLlama3Pattern;
    case SplitRegex::kQwen2: return kQwen2Pattern;
  }
  return {};
}

void find_split_regex_matches(SplitRegex kind, std::string_view s, std::vector<uint32_t>& ends) {
  ends.clear();
  const Text t(s);
  for (size_t i = 0; i < t.n;) {
    size_t e = 0;
    switch (kind) {
      case SplitRegex::kGpt2: e = match_gpt2(t, i); break;
      case SplitRegex::kLlama3: e = match_llama3(t, i, 3); break;
      case SplitRegex::kQwen2: e = match_llama3(t, i, 1); break;
    }
    ends.push_back(t.off[e]);
    i = e;
  }
}

}  // namespace retnet::tok
