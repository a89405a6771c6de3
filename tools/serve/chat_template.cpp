// Choosing, loading and rendering the chat template of `retnet serve` (chat_template.hpp).
#include "chat_template.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace retnet::serve {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr uintmax_t kMaxTemplateBytes = 1 << 20;

std::string read_file(const fs::path& p, const char* what) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(p, ec);
  if (ec) throw Error(p.string() + ": cannot read the " + what + ": " + ec.message());
  if (size > kMaxTemplateBytes)
    throw Error(p.string() + ": the " + what + " is larger than " + std::to_string(kMaxTemplateBytes) + " bytes");
  std::ifstream f(p, std::ios::binary);
  if (!f) throw Error(p.string() + ": cannot open the " + what);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A special token in tokenizer_config.json: a string, or the AddedToken dict {"content": ...}.
std::optional<std::string> special_token(const json& cfg, const char* key, const std::string& file) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  throw Error(file + ": " + key + ": expected a string or an object with a string \"content\"");
}

// "chat_template": a string, or HF's list of {"name", "template"} (the one named "default").
std::optional<std::string> config_template(const json& cfg, const std::string& file) {
  auto it = cfg.find("chat_template");
  if (it == cfg.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string names;
    for (const auto& e : *it) {
      if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || !e.contains("template") ||
          !e["template"].is_string())
        throw Error(file + ": chat_template: expected a string or a list of {\"name\", \"template\"} strings");
      if (e["name"] == "default") return e["template"].get<std::string>();
      names += (names.empty() ? "" : ", ") + e["name"].get<std::string>();
    }
    throw Error(file + ": chat_template: no template named \"default\" (it has: " + names +
                "); choose one with --chat-template FILE");
  }
  throw Error(file + ": chat_template: expected a string or a list of {\"name\", \"template\"}");
}

}  // namespace

ChatTemplate ChatTemplate::from_source(const std::string& source, const std::string& origin,
                                       std::optional<std::string> bos, std::optional<std::string> eos) {
  ChatTemplate t;
  t.tmpl_ = jinja::Template::parse(source, origin);
  t.origin_ = origin;
  t.source_ = source;
  t.bos_ = std::move(bos);
  t.eos_ = std::move(eos);
  return t;
}

ChatTemplate ChatTemplate::load(const std::string& model_dir, const std::string& override_arg) {
  const fs::path cfg_path = fs::path(model_dir) / "tokenizer_config.json";
  json cfg = json::object();
  if (fs::exists(cfg_path)) {
    try {
      cfg = json::parse(read_file(cfg_path, "tokenizer config"));
    } catch (const json::exception& e) {
      throw Error(cfg_path.string() + ": invalid JSON: " + e.what());
    }
    if (!cfg.is_object()) throw Error(cfg_path.string() + ": expected a JSON object");
  }
  const std::string cfg_name = cfg_path.string();
  auto bos = special_token(cfg, "bos_token", cfg_name), eos = special_token(cfg, "eos_token", cfg_name);
  if (override_arg == "plain") {
    ChatTemplate t;
    t.origin_ = "plain (--chat-template plain)";
    return t;
  }
  if (!override_arg.empty()) {
    if (!fs::is_regular_file(override_arg))
      throw Error("--chat-template: '" + override_arg + "' is not a file (give a Jinja file, or 'plain')");
    return from_source(read_file(override_arg, "chat template"), override_arg, bos, eos);
  }
  // Newer transformers save the template beside the config, where it takes precedence.
  const fs::path jinja_file = fs::path(model_dir) / "chat_template.jinja";
  if (fs::is_regular_file(jinja_file))
    return from_source(read_file(jinja_file, "chat template"), jinja_file.string(), bos, eos);
  if (auto src = config_template(cfg, cfg_name)) return from_source(*src, cfg_name + " (chat_template)", bos, eos);
  ChatTemplate t;
  t.origin_ = "plain (the model has no chat_template)";
  return t;
}

std::string ChatTemplate::render(const json& messages, bool add_generation_prompt) const {
  if (!tmpl_) throw Error("ChatTemplate::render: the plain template renders in api.cpp");
  jinja::Object globals;
  globals.items.emplace_back("messages", to_value(messages));
  globals.items.emplace_back("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  // As HF's apply_chat_template: tools and documents are None when the request has none.
  globals.items.emplace_back("tools", jinja::Value::none());
  globals.items.emplace_back("documents", jinja::Value::none());
  if (bos_) globals.items.emplace_back("bos_token", jinja::Value::string(*bos_));
  if (eos_) globals.items.emplace_back("eos_token", jinja::Value::string(*eos_));
  return tmpl_->render(globals);
}

std::vector<int32_t> ChatTemplate::encode(const std::string& prompt, const Tokenizer& tok) const {
  const bool has_bos = bos_ && !bos_->empty() && prompt.find(*bos_) != std::string::npos;
  return tok.encode(prompt, /*add_special=*/!has_bos);
}

std::vector<int32_t> ChatTemplate::stop_ids(const Tokenizer& tok) const {
  std::vector<int32_t> ids;
  if (!tmpl_) return ids;
  static const char* const enders[] = {"<|im_end|>",    "<|eot_id|>",      "<|eom_id|>",
                                       "<end_of_turn>", "<|end|>",         "<|endoftext|>",
                                       "</s>",          "<|end_of_text|>", "<｜end▁of▁sentence｜>"};
  std::vector<std::string> cands(std::begin(enders), std::end(enders));
  if (eos_) cands.push_back(*eos_);
  for (const auto& c : cands) {
    if (c.empty() || (source_.find(c) == std::string::npos && !(eos_ && c == *eos_))) continue;
    if (auto id = tok.token_to_id(c); id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  }
  return ids;
}

}  // namespace retnet::serve
