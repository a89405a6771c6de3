// tokenizer.json "normalizer": the string rewrites applied to each piece of text between added tokens.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace retnet::tok {

class Normalizer {
 public:
  // Parses a normalizer object (or null: no normalizer). `where` names the file for error messages.
  // Supported: Sequence, NFC, NFD, Lowercase, Prepend, Replace (string pattern), Strip. Any other
  // type throws retnet::Error naming it.
  static Normalizer parse(const nlohmann::json& j, const std::string& where);

  bool empty() const { return steps_.empty(); }
  std::string apply(std::string_view s) const;

  struct Step {
    enum Kind { kNfc, kNfd, kLowercase, kPrepend, kReplace, kStrip } kind;
    std::string a, b;  // Prepend: a = prefix. Replace: a = pattern, b = content.
    bool left = false, right = false;  // Strip
  };

 private:
  std::vector<Step> steps_;
};

// Replaces every non-overlapping occurrence of `pattern` (non-empty), scanning left to right.
std::string replace_all(std::string_view s, std::string_view pattern, std::string_view content);

}  // namespace retnet::tok
