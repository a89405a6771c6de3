// UTF-8 and Unicode helpers for the tokenizer: decoding with the "maximal subpart" replacement rule,
// coarse general categories (\p{L}, \p{N}, \s, \w), lowercase, and NFC/NFD.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace retnet::unicode {

inline constexpr char32_t kReplacementChar = 0xFFFD;
inline constexpr std::string_view kReplacementUtf8 = "\xEF\xBF\xBD";

// Must match the class numbers written by tools/gen_unicode_tables.py.
enum class UniClass : uint8_t { Other, Letter, Digit, NumberLetter, NumberOther, Space, Mark, Connector };

UniClass classify(char32_t cp);
inline bool is_letter(char32_t cp) { return classify(cp) == UniClass::Letter; }  // \p{L}
inline bool is_number(char32_t cp) {                                            // \p{N}
  const UniClass c = classify(cp);
  return c == UniClass::Digit || c == UniClass::NumberLetter || c == UniClass::NumberOther;
}
// Rust char::is_numeric, which the Digits pre-tokenizer uses (a newer Unicode than \p{N} above).
bool is_numeric_std(char32_t cp);
// Unicode White_Space: regex \s and Rust char::is_whitespace.
inline bool is_space(char32_t cp) { return classify(cp) == UniClass::Space; }
// Rust regex \w (Alphabetic, marks, decimal digits, connector punctuation, joiners), approximated by
// general categories: Other_Alphabetic symbols such as circled letters are not included.
bool is_word(char32_t cp);

// One step of UTF-8 decoding at the start of [p, p + n), n > 0.
struct Utf8Step {
  enum Status : uint8_t { kOk, kInvalid, kIncomplete };
  char32_t cp;   // valid only for kOk
  uint32_t len;  // bytes consumed: the character, or the maximal ill-formed subpart (kInvalid, >= 1),
                 // or the valid-so-far prefix that the end of the input cut short (kIncomplete)
  Status status;
};
Utf8Step decode_utf8(const uint8_t* p, size_t n);

bool is_valid_utf8(std::string_view s);
// Each maximal ill-formed subpart (and a truncated sequence at the end) becomes one U+FFFD, as
// Python's bytes.decode("utf-8", "replace") and Rust's String::from_utf8_lossy do.
std::string sanitize_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
size_t utf8_len(char32_t cp);

// Decodes the character at s[i] of a string known to be valid UTF-8 and advances i past it.
inline char32_t next_cp(std::string_view s, size_t& i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + i;
  if (b0 < 0xE0) {
    i += 2;
    return (char32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
  }
  if (b0 < 0xF0) {
    i += 3;
    return (char32_t(b0 & 0x0F) << 12) | (char32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
  }
  i += 4;
  return (char32_t(b0 & 0x07) << 18) | (char32_t(p[1] & 0x3F) << 12) | (char32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
}

// Per-character full lowercase (Rust char::to_lowercase), no context rules (Σ always becomes σ).
std::string to_lower(std::string_view s);
// Canonical normalization forms of a valid UTF-8 string.
std::string nfd(std::string_view s);
std::string nfc(std::string_view s);

}  // namespace retnet::unicode
