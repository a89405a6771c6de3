// The chat template `retnet serve` renders /v1/chat/completions messages with: the model's
// tokenizer_config.json "chat_template" (run by the Jinja subset of jinja.hpp, as HF's
// apply_chat_template renders it), a Jinja file given with --chat-template FILE, or the plain
// template (api.hpp: plain_chat_prompt) for models without one and with --chat-template plain.
#pragma once
#include <nlohmann/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "jinja.hpp"
#include "retnet/retnet.hpp"

namespace retnet::serve {

class ChatTemplate {
 public:
  ChatTemplate() = default;  // the plain template

  // override_arg: "" (the model's template, else plain), "plain", or a Jinja file. Throws Error
  // naming the file for an unreadable or malformed tokenizer_config.json or template (parse errors
  // with line and column).
  static ChatTemplate load(const std::string& model_dir, const std::string& override_arg);
  // A template from its source; bos/eos: the special tokens' text the template sees (nullopt:
  // undefined there, as HF leaves tokens the config does not set). Throws Error as load().
  static ChatTemplate from_source(const std::string& source, const std::string& origin, std::optional<std::string> bos,
                                  std::optional<std::string> eos);

  bool is_plain() const { return !tmpl_; }
  // Where the template came from, for the startup log and /v1/models: "plain", or e.g.
  // "models/x/tokenizer_config.json (chat_template)".
  const std::string& origin() const { return origin_; }

  // The prompt text for `messages` (an array of objects with a string "role"; "content" already
  // a string, or null beside tool_calls), as HF's apply_chat_template(tokenize=False) gives it.
  // Throws jinja::RaisedError (the template's raise_exception: a 400) or jinja::RenderError.
  std::string render(const nlohmann::json& messages, bool add_generation_prompt = true) const;
  // The prompt's tokens: without BOS/EOS added when the text holds the BOS token's text (the
  // template put it there: llama.cpp's and HF's rule), else as the tokenizer adds them. Added
  // tokens in the text (<|im_start|>) come out as their ids (Tokenizer::encode splits them first).
  std::vector<int32_t> encode(const std::string& prompt, const Tokenizer& tok) const;
  // What ends a reply besides the model's EOS: the ids of end-of-turn tokens the template writes
  // that the tokenizer has as single tokens (<|im_end|>, <|eot_id|>, <end_of_turn>, <|end|>, ...).
  std::vector<int32_t> stop_ids(const Tokenizer& tok) const;

 private:
  std::optional<jinja::Template> tmpl_;
  std::string origin_ = "plain";
  std::string source_;
  std::optional<std::string> bos_, eos_;
};

// json → the template's values. Objects keep the order the json type has: nlohmann::json sorts
// keys, ordered_json keeps the document's. Depth is bounded by the caller (request bodies:
// parse_body's limit).
template <class Json>
jinja::Value to_value(const Json& j) {
  using jinja::Value;
  if (j.is_null()) return Value::none();
  if (j.is_boolean()) return Value::boolean(j.template get<bool>());
  if (j.is_number_unsigned() && j.template get<uint64_t>() > uint64_t(INT64_MAX))
    return Value::number(j.template get<double>());
  if (j.is_number_integer()) return Value::integer(j.template get<int64_t>());
  if (j.is_number()) return Value::number(j.template get<double>());
  if (j.is_string()) return Value::string(j.template get<std::string>());
  if (j.is_array()) {
    jinja::Array a;
    for (const auto& x : j) a.push_back(to_value(x));
    return Value::array(std::move(a));
  }
  jinja::Object o;
  for (auto it = j.begin(); it != j.end(); ++it) o.items.emplace_back(it.key(), to_value(it.value()));
  return Value::object(std::move(o));
}

}  // namespace retnet::serve
