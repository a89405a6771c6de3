// Loading tokenizer.json and tokenizer_config.json into a Tokenizer::Impl.
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "common/json_file.hpp"  // read_json_file: size and nesting bounded, errors carry the reason
#include "retnet/error.hpp"
#include "tokenizer/json_util.hpp"
#include "tokenizer/tokenizer_impl.hpp"

namespace retnet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tok::json_string;

const json& member(const json& j, const char* key) {
  static const json null_value;
  const auto it = j.find(key);
  return it == j.end() ? null_value : *it;
}

void parse_added_tokens(const json& j, Tokenizer::Impl& t) {
  if (j.is_null()) return;
  const std::string ctx = t.path + ": added_tokens";
  if (!j.is_array()) throw Error(ctx + " must be an array");
  for (const json& a : j) {
    if (!a.is_object()) throw Error(ctx + ": every entry must be an object");
    tok::AddedToken tok;
    tok.content = json_string(a, "content", ctx);
    const int64_t id = tok::json_int(a, "id", -1, ctx + " \"" + tok.content + "\"");
    if (id < 0 || id >= (int64_t(1) << 24))
      throw Error(ctx + ": token \"" + tok.content + "\" has a missing or out-of-range id");
    if (tok.content.empty()) continue;  // ignored by the Rust library too
    tok.special = tok::json_bool(a, "special", false, ctx);
    tok.single_word = tok::json_bool(a, "single_word", false, ctx);
    tok.lstrip = tok::json_bool(a, "lstrip", false, ctx);
    tok.rstrip = tok::json_bool(a, "rstrip", false, ctx);
    tok.normalized = tok::json_bool(a, "normalized", !tok.special, ctx);
    // A content the model already knows keeps the model's id, whatever the file says.
    tok.id = t.model->token_to_id(tok.content).value_or(int32_t(id));
    tok.pattern = tok.normalized && !t.normalizer.empty() ? t.normalizer.apply(tok.content) : tok.content;
    t.added.push_back(std::move(tok));
  }
}

// The ids a post_processor puts before and after a single sequence.
void parse_post_processor(const json& j, const std::string& where, std::vector<int32_t>& pre, std::vector<int32_t>& post) {
  if (j.is_null()) return;
  const std::string type = tok::json_type(j, where, "post_processor");
  const std::string ctx = where + ": post_processor " + type;
  if (type == "ByteLevel") return;  // only adjusts offsets
  if (type == "Sequence") {
    for (const json& sub : tok::json_array(j, "processors", ctx)) parse_post_processor(sub, where, pre, post);
    return;
  }
  std::vector<int32_t> p, s;
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto id_of = [&](const char* key) {
      const json& v = member(j, key);
      if (!v.is_array() || v.size() != 2 || !v[1].is_number_integer())
        throw Error(ctx + ": \"" + key + "\" must be [token, id]");
      return v[1].get<int32_t>();
    };
    p.push_back(id_of("cls"));
    s.push_back(id_of("sep"));
  } else if (type == "TemplateProcessing") {
    const json& specials = member(j, "special_tokens");
    auto special_ids = [&](const std::string& name) {
      const json& e = specials.is_object() ? member(specials, name.c_str()) : json();
      const json& ids = e.is_object() ? member(e, "ids") : json();
      if (!ids.is_array()) throw Error(ctx + ": special token \"" + name + "\" is not in special_tokens");
      std::vector<int32_t> out;
      for (const json& v : ids) {
        if (!v.is_number_integer()) throw Error(ctx + ": special token \"" + name + "\" has a non-integer id");
        out.push_back(v.get<int32_t>());
      }
      return out;
    };
    json single = member(j, "single");
    if (single.is_string()) {  // "<s> $A </s>" shorthand
      std::istringstream words(single.get<std::string>());
      json arr = json::array();
      for (std::string w; words >> w;) arr.push_back(w);
      single = arr;
    }
    if (!single.is_array()) throw Error(ctx + ": \"single\" must be a template list");
    bool seen_a = false;
    for (const json& piece : single) {
      std::string special;
      if (piece.is_string()) {
        const std::string w = piece.get<std::string>();
        if (w.empty() || w[0] == '$') {
          if (w.size() > 1 && w[1] != 'A' && w[1] != ':' && w[1] != '0') throw Error(ctx + ": \"single\" uses " + w);
          seen_a = true;
          continue;
        }
        special = w.substr(0, w.rfind(':') == std::string::npos ? w.size() : w.rfind(':'));
      } else if (piece.is_object() && piece.contains("Sequence")) {
        const json& seq = piece["Sequence"];
        if (member(seq, "id") != "A") throw Error(ctx + ": \"single\" uses sequence " + member(seq, "id").dump());
        seen_a = true;
        continue;
      } else if (piece.is_object() && piece.contains("SpecialToken")) {
        special = json_string(piece["SpecialToken"], "id", ctx);
      } else {
        throw Error(ctx + ": unknown template piece " + piece.dump());
      }
      const std::vector<int32_t> ids = special_ids(special);
      (seen_a ? s : p).insert((seen_a ? s : p).end(), ids.begin(), ids.end());
    }
    if (!seen_a) throw Error(ctx + ": \"single\" has no $A");
  } else {
    throw Error(where + ": unsupported post_processor type '" + type +
                "' (supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence)");
  }
  // A later processor wraps what the earlier ones produced.
  pre.insert(pre.begin(), p.begin(), p.end());
  post.insert(post.end(), s.begin(), s.end());
}

// bos_token / eos_token in tokenizer_config.json: a string or {"content": ...}.
std::string config_token(const json& cfg, const char* key) {
  const json& v = member(cfg, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && member(v, "content").is_string()) return v["content"].get<std::string>();
  return {};
}

int32_t find_token(const Tokenizer::Impl& t, const std::string& name) {
  if (name.empty()) return -1;
  for (auto it = t.added.rbegin(); it != t.added.rend(); ++it)
    if (it->content == name) return it->id;
  return t.model->token_to_id(name).value_or(-1);
}

void apply_config(const std::string& cfg_path, Tokenizer::Impl& t) {
  const json cfg = read_json_file(cfg_path);
  if (!cfg.is_object()) throw Error(cfg_path + ": must be a JSON object");
  const std::string bos_name = config_token(cfg, "bos_token"), eos_name = config_token(cfg, "eos_token");
  if (!bos_name.empty()) t.bos = find_token(t, bos_name);
  if (!eos_name.empty()) t.eos = find_token(t, eos_name);
  const bool has_bos_flag = member(cfg, "add_bos_token").is_boolean(), has_eos_flag = member(cfg, "add_eos_token").is_boolean();
  if (!has_bos_flag && !has_eos_flag) return;
  // Explicit flags replace the post_processor's specials, as transformers' Llama tokenizers rebuild it.
  t.prefix_ids.clear();
  t.suffix_ids.clear();
  if (has_bos_flag && cfg["add_bos_token"].get<bool>()) {
    if (t.bos < 0) throw Error(cfg_path + ": add_bos_token is true but bos_token \"" + bos_name + "\" is not a token");
    t.prefix_ids.push_back(t.bos);
  }
  if (has_eos_flag && cfg["add_eos_token"].get<bool>()) {
    if (t.eos < 0) throw Error(cfg_path + ": add_eos_token is true but eos_token \"" + eos_name + "\" is not a token");
    t.suffix_ids.push_back(t.eos);
  }
}

// Without a config naming them, BOS/EOS come from the post_processor or from well-known names.
void guess_bos_eos(Tokenizer::Impl& t) {
  if (t.bos < 0 && !t.prefix_ids.empty()) t.bos = t.prefix_ids.front();
  if (t.eos < 0 && !t.suffix_ids.empty()) t.eos = t.suffix_ids.back();
  for (const char* name : {"<s>", "<|begin_of_text|>", "<bos>", "<|startoftext|>", "<|endoftext|>"}) {
    if (t.bos >= 0) break;
    t.bos = find_token(t, name);
  }
  for (const char* name : {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", "<|im_end|>"}) {
    if (t.eos >= 0) break;
    t.eos = find_token(t, name);
  }
}

}  // namespace

std::shared_ptr<Tokenizer::Impl> load_tokenizer_impl(const std::string& path) {
  std::string file = path, cfg_path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    file = (fs::path(path) / "tokenizer.json").string();
    const fs::file_status st = fs::status(file, ec);  // EACCES is not "missing"
    if (ec && ec != std::errc::no_such_file_or_directory) throw Error(file + ": cannot access: " + ec.message());
    if (!fs::exists(st)) throw Error(path + ": no tokenizer.json in this directory");
  }
  const fs::path cfg = fs::path(file).parent_path() / "tokenizer_config.json";
  if (fs::is_regular_file(cfg, ec)) cfg_path = cfg.string();

  auto t = std::make_shared<Tokenizer::Impl>();
  t->path = file;
  const json j = read_json_file(file);
  if (!j.is_object()) throw Error(file + ": must be a JSON object");
  const json& version = member(j, "version");
  if (!version.is_null() && version != "1.0") throw Error(file + ": unknown tokenizer.json version " + version.dump());
  if (!j.contains("model")) throw Error(file + ": missing \"model\"");

  t->model = tok::BpeModel::parse(j["model"], file);
  // Without a vocab every ordinary piece of text would encode to nothing: refused, not dropped.
  if (t->model->max_id() < 0) throw Error(file + ": model.vocab is empty: no text could be encoded");
  t->normalizer = tok::Normalizer::parse(member(j, "normalizer"), file);
  t->pre_tokenizer = tok::PreTokenizer::parse(member(j, "pre_tokenizer"), file);
  t->decoder = tok::DecoderSpec::parse(member(j, "decoder"), file);
  parse_added_tokens(member(j, "added_tokens"), *t);
  parse_post_processor(member(j, "post_processor"), file, t->prefix_ids, t->suffix_ids);

  for (size_t i = 0; i < t->added.size(); ++i)
    (t->added[i].normalized ? t->norm_matcher : t->raw_matcher).add(t->added[i].pattern, int32_t(i));

  int32_t max_id = t->model->max_id();
  for (const auto& a : t->added) max_id = std::max(max_id, a.id);
  t->vocab_size = max_id + 1;
  t->id_text.assign(size_t(t->vocab_size), nullptr);
  for (int32_t id = 0; id <= t->model->max_id(); ++id) t->id_text[size_t(id)] = t->model->id_to_token(id);
  // Added tokens take precedence, decoded as their normalized form (as the Rust library does).
  for (const auto& a : t->added) t->id_text[size_t(a.id)] = &a.pattern;
  std::unordered_set<std::string_view> specials;
  for (const auto& a : t->added)
    if (a.special) specials.insert(a.content);
  t->id_special.assign(size_t(t->vocab_size), 0);
  for (int32_t id = 0; id < t->vocab_size; ++id)
    if (const std::string* s = t->id_text[size_t(id)]) t->id_special[size_t(id)] = specials.count(*s) > 0;

  for (const int32_t id : t->prefix_ids)
    if (id < 0 || id >= t->vocab_size) throw Error(file + ": post_processor adds id " + std::to_string(id) + ", outside the vocab");
  for (const int32_t id : t->suffix_ids)
    if (id < 0 || id >= t->vocab_size) throw Error(file + ": post_processor adds id " + std::to_string(id) + ", outside the vocab");

  if (!cfg_path.empty()) apply_config(cfg_path, *t);
  guess_bos_eos(*t);
  return t;
}

}  // namespace retnet
