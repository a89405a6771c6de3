// Checked accessors for tokenizer.json, so that every malformed field becomes a retnet::Error naming
// the file and the field instead of a nlohmann exception.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "retnet/error.hpp"

namespace retnet::tok {

// The "type" of a component object; `what` says which component ("normalizer", "decoder", ...).
inline std::string json_type(const nlohmann::json& j, const std::string& where, const char* what) {
  if (!j.is_object()) throw Error(where + ": " + what + " must be an object or null");
  const auto it = j.find("type");
  if (it == j.end() || !it->is_string()) throw Error(where + ": " + what + " has no string \"type\"");
  return it->get<std::string>();
}

inline const nlohmann::json& json_array(const nlohmann::json& j, const char* key, const std::string& ctx) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_array()) throw Error(ctx + ": \"" + key + "\" must be an array");
  return *it;
}

inline std::string json_string(const nlohmann::json& j, const char* key, const std::string& ctx) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) throw Error(ctx + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

inline bool json_bool(const nlohmann::json& j, const char* key, bool dflt, const std::string& ctx) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) throw Error(ctx + ": \"" + key + "\" must be true or false");
  return it->get<bool>();
}

inline int64_t json_int(const nlohmann::json& j, const char* key, int64_t dflt, const std::string& ctx) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_number_integer()) throw Error(ctx + ": \"" + key + "\" must be an integer");
  return it->get<int64_t>();
}

// The {"String": "..."} form of a "pattern"; {"Regex": ...} is refused, since there is no regex engine.
inline std::string string_pattern(const nlohmann::json& j, const std::string& ctx) {
  const auto it = j.find("pattern");
  if (it == j.end() || !it->is_object()) throw Error(ctx + ": \"pattern\" must be an object");
  if (it->contains("Regex"))
    throw Error(ctx + ": regex pattern " + (*it)["Regex"].dump() + " is not supported (only {\"String\": ...})");
  const auto s = it->find("String");
  if (s == it->end() || !s->is_string()) throw Error(ctx + ": \"pattern\" must be {\"String\": ...}");
  std::string p = s->get<std::string>();
  if (p.empty()) throw Error(ctx + ": empty pattern");
  return p;
}

// A single character given as a JSON string (Metaspace replacement, Strip content).
inline std::string json_char(const nlohmann::json& j, const char* key, const std::string& ctx) {
  std::string s = json_string(j, key, ctx);
  size_t n = 0;
  for (const char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  if (n != 1) throw Error(ctx + ": \"" + key + "\" must be a single character");
  return s;
}

}  // namespace retnet::tok
