#include "tokenizer/normalizer.hpp"

#include <nlohmann/json.hpp>

#include "retnet/error.hpp"
#include "tokenizer/json_util.hpp"
#include "tokenizer/unicode.hpp"

namespace retnet::tok {
namespace {

void parse_into(const nlohmann::json& j, const std::string& where, std::vector<Normalizer::Step>& out) {
  const std::string type = json_type(j, where, "normalizer");
  using Step = Normalizer::Step;
  if (type == "Sequence") {
    for (const auto& sub : json_array(j, "normalizers", where + ": normalizer Sequence")) parse_into(sub, where, out);
  } else if (type == "NFC") {
    out.push_back({Step::kNfc, {}, {}});
  } else if (type == "NFD") {
    out.push_back({Step::kNfd, {}, {}});
  } else if (type == "Lowercase") {
    out.push_back({Step::kLowercase, {}, {}});
  } else if (type == "Prepend") {
    out.push_back({Step::kPrepend, json_string(j, "prepend", where + ": normalizer Prepend"), {}});
  } else if (type == "Replace") {
    const std::string pattern = string_pattern(j, where + ": normalizer Replace");
    out.push_back({Step::kReplace, pattern, json_string(j, "content", where + ": normalizer Replace")});
  } else if (type == "Strip") {
    Step s{Step::kStrip, {}, {}};
    s.left = json_bool(j, "strip_left", false, where + ": normalizer Strip");
    s.right = json_bool(j, "strip_right", false, where + ": normalizer Strip");
    out.push_back(s);
  } else {
    throw Error(where + ": unsupported normalizer type '" + type +
                "' (supported: Sequence, NFC, NFD, Lowercase, Prepend, Replace, Strip)");
  }
}

std::string strip_spaces(std::string_view s, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e) {
      size_t i = b;
      if (!unicode::is_space(unicode::next_cp(s, i))) break;
      b = i;
    }
  }
  if (right) {
    while (e > b) {
      size_t start = e - 1;
      while (start > b && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
      size_t i = start;
      if (!unicode::is_space(unicode::next_cp(s, i))) break;
      e = start;
    }
  }
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::string replace_all(std::string_view s, std::string_view pattern, std::string_view content) {
  std::string out;
  size_t pos = 0;
  for (;;) {
    const size_t hit = s.find(pattern, pos);
    if (hit == std::string_view::npos) break;
    out.append(s.substr(pos, hit - pos));
    out.append(content);
    pos = hit + pattern.size();
  }
  out.append(s.substr(pos));
  return out;
}

Normalizer Normalizer::parse(const nlohmann::json& j, const std::string& where) {
  Normalizer n;
  if (!j.is_null()) parse_into(j, where, n.steps_);
  return n;
}

std::string Normalizer::apply(std::string_view s) const {
  std::string cur(s);
  for (const Step& st : steps_) {
    switch (st.kind) {
      case Step::kNfc: cur = unicode::nfc(cur); break;
      case Step::kNfd: cur = unicode::nfd(cur); break;
      case Step::kLowercase: cur = unicode::to_lower(cur); break;
      case Step::kPrepend:
        // Rust's Prepend leaves an empty string empty (the text between two added tokens may be).
        if (!cur.empty()) cur.insert(0, st.a);
        break;
      case Step::kReplace: cur = replace_all(cur, st.a, st.b); break;
      case Step::kStrip: cur = strip_spaces(cur, st.left, st.right); break;
    }
  }
  return cur;
}

}  // namespace retnet::tok
