#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "tokenizer/unicode_tables.hpp"

namespace retnet::unicode {
namespace {

// Index of the last run whose first code point is <= cp, in a run table of (cp << shift) | value.
uint32_t run_value(const uint32_t* runs, size_t n, unsigned shift, char32_t cp) {
  const uint32_t key = (uint32_t(cp) << shift) | ((1u << shift) - 1);
  const uint32_t* it = std::upper_bound(runs, runs + n, key);
  return *(it - 1) & ((1u << shift) - 1);
}

// The BMP holds nearly all text, and the pre-tokenizers classify every character, so the BMP gets a
// flat table (64 KiB, built once) and only astral code points pay for the binary search.
const std::array<uint8_t, 0x10000>& bmp_classes() {
  static const auto table = [] {
    std::array<uint8_t, 0x10000> t{};
    for (size_t r = 0; r < kCategoryRunsSize; ++r) {
      const uint32_t first = kCategoryRuns[r] >> 4;
      if (first >= 0x10000) break;
      const uint32_t last = r + 1 < kCategoryRunsSize ? std::min<uint32_t>(kCategoryRuns[r + 1] >> 4, 0x10000) : 0x10000;
      std::fill(t.begin() + first, t.begin() + last, uint8_t(kCategoryRuns[r] & 0xF));
    }
    return t;
  }();
  return table;
}

uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;  // nothing below the combining diacritics block has a nonzero class
  return uint8_t(run_value(kCombiningRuns, kCombiningRunsSize, 8, cp));
}

// Hangul syllables decompose and compose arithmetically (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  if (cp >= 0xC0) {
    const size_t n = kCanonDecompSize / 3;
    size_t lo = 0, hi = n;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (kCanonDecomp[mid * 3] < cp) lo = mid + 1; else hi = mid;
    }
    if (lo < n && kCanonDecomp[lo * 3] == cp) {
      decompose(kCanonDecomp[lo * 3 + 1], out);
      if (kCanonDecomp[lo * 3 + 2]) decompose(kCanonDecomp[lo * 3 + 2], out);
      return;
    }
  }
  out.push_back(cp);
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const size_t n = kComposePairsSize / 3;
  size_t lo = 0, hi = n;
  while (lo < hi) {
    const size_t mid = (lo + hi) / 2;
    const uint32_t ma = kComposePairs[mid * 3], mb = kComposePairs[mid * 3 + 1];
    if (ma < a || (ma == a && mb < b)) lo = mid + 1; else hi = mid;
  }
  if (lo < n && kComposePairs[lo * 3] == a && kComposePairs[lo * 3 + 1] == b) return kComposePairs[lo * 3 + 2];
  return 0;
}

// Full canonical decomposition followed by the canonical ordering of each run of non-starters.
std::vector<char32_t> canonical_decomposition(std::string_view s) {
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t i = 0; i < s.size();) decompose(next_cp(s, i), cps);
  // Stable insertion sort by combining class inside runs of nonzero classes (runs are short).
  for (size_t i = 1; i < cps.size(); ++i) {
    const uint8_t cc = combining_class(cps[i]);
    if (cc == 0) continue;
    size_t j = i;
    while (j > 0) {
      const uint8_t prev = combining_class(cps[j - 1]);
      if (prev == 0 || prev <= cc) break;
      std::swap(cps[j], cps[j - 1]);
      --j;
    }
  }
  return cps;
}

// True when no code point of s is at or above U+0300: below that nothing is a combining mark, and
// every decomposable letter recomposes, so NFC and NFD are identities for NFC (not for NFD).
bool below_combining_block(std::string_view s) {
  for (const char c : s) {
    const auto b = static_cast<uint8_t>(c);
    if (b >= 0xCC) return false;  // lead byte of U+0300 or above
  }
  return true;
}

}  // namespace

UniClass classify(char32_t cp) {
  if (cp < 0x10000) return UniClass(bmp_classes()[cp]);
  if (cp > 0x10FFFF) return UniClass::Other;
  return UniClass(run_value(kCategoryRuns, kCategoryRunsSize, 4, cp));
}

bool is_numeric_std(char32_t cp) {
  if (is_number(cp)) return true;
  for (size_t i = 0; i + 1 < kRustOnlyNumbersSize; i += 2)
    if (cp >= kRustOnlyNumbers[i] && cp <= kRustOnlyNumbers[i + 1]) return true;
  return false;
}

bool is_word(char32_t cp) {
  switch (classify(cp)) {
    case UniClass::Letter:
    case UniClass::Digit:
    case UniClass::NumberLetter:
    case UniClass::Mark:
    case UniClass::Connector:
      return true;
    default:
      return cp == 0x200C || cp == 0x200D;  // Join_Control
  }
}

Utf8Step decode_utf8(const uint8_t* p, size_t n) {
  const uint8_t b0 = p[0];
  if (b0 < 0x80) return {b0, 1, Utf8Step::kOk};
  // Per lead byte: number of continuation bytes and the allowed range of the first one (Unicode
  // Table 3-7); the ranges exclude overlong forms, surrogates and code points above U+10FFFF.
  uint32_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {0, 1, Utf8Step::kInvalid};
  }
  for (uint32_t k = 1; k <= need; ++k) {
    if (k >= n) return {0, k, Utf8Step::kIncomplete};
    const uint8_t b = p[k];
    if (b < lo || b > hi) return {0, k, Utf8Step::kInvalid};
    cp = (cp << 6) | (b & 0x3F);
    lo = 0x80, hi = 0xBF;
  }
  return {cp, need + 1, Utf8Step::kOk};
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    if (p[i] < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step st = decode_utf8(p + i, s.size() - i);
    if (st.status != Utf8Step::kOk) return false;
    i += st.len;
  }
  return true;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t i = 0;
  while (i < s.size()) {
    const Utf8Step st = decode_utf8(p + i, s.size() - i);
    if (st.status == Utf8Step::kOk) out.append(s.substr(i, st.len));
    else out.append(kReplacementUtf8);
    i += st.len;
  }
  return out;
}

size_t utf8_len(char32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string to_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  const size_t n = kLowerPairsSize / 2;
  for (size_t i = 0; i < s.size();) {
    const char32_t cp = next_cp(s, i);
    if (cp < 0x80) {
      out.push_back(char(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
      continue;
    }
    if (cp == 0x130) {  // İ lowercases to i + combining dot above
      out.append("i\xCC\x87");
      continue;
    }
    size_t lo = 0, hi = n;
    while (lo < hi) {
      const size_t mid = (lo + hi) / 2;
      if (kLowerPairs[mid * 2] < cp) lo = mid + 1; else hi = mid;
    }
    append_utf8(out, lo < n && kLowerPairs[lo * 2] == cp ? char32_t(kLowerPairs[lo * 2 + 1]) : cp);
  }
  return out;
}

std::string nfd(std::string_view s) {
  bool ascii = true;
  for (const char c : s) ascii = ascii && static_cast<uint8_t>(c) < 0x80;
  if (ascii) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (const char32_t cp : canonical_decomposition(s)) append_utf8(out, cp);
  return out;
}

std::string nfc(std::string_view s) {
  if (below_combining_block(s)) return std::string(s);
  const std::vector<char32_t> cps = canonical_decomposition(s);
  // Canonical composition: a character joins the last starter unless a character between them is a
  // starter or has a combining class >= its own ("blocked").
  std::vector<char32_t> res;
  res.reserve(cps.size());
  ptrdiff_t starter = -1;
  int last_cc = -1;  // class of the last character kept after the starter; -1 when there is none
  for (const char32_t cp : cps) {
    const int cc = combining_class(cp);
    if (starter >= 0 && (last_cc == -1 || (last_cc != 0 && last_cc < cc))) {
      if (const char32_t comp = compose_pair(res[size_t(starter)], cp)) {
        res[size_t(starter)] = comp;
        continue;
      }
    }
    if (cc == 0) {
      starter = ptrdiff_t(res.size());
      last_cc = -1;
    } else {
      last_cc = cc;
    }
    res.push_back(cp);
  }
  std::string out;
  out.reserve(s.size());
  for (const char32_t cp : res) append_utf8(out, cp);
  return out;
}

}  // namespace retnet::unicode
