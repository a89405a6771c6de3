// Request parsing and error JSON in OpenAI's formats (api.hpp).
#include "api.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "logprobs.hpp"

namespace retnet::serve {

using nlohmann::json;

namespace {

ApiError bad(const std::string& param, const std::string& message) {
  ApiError e;
  e.status = 400;
  e.param = param;
  e.message = param.empty() ? message : param + ": " + message;
  return e;
}

// Type-checked optional fields: absent and null keep the default; any other type is a 400.
template <class T>
bool get_number(const json& b, const char* key, T& out) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) return false;
  if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) throw bad(key, "expected an integer");
    if (it->is_number_unsigned()) {
      const uint64_t v = it->get<uint64_t>();
      if (v > uint64_t(std::numeric_limits<T>::max())) throw bad(key, "out of range");
      out = T(v);
    } else {
      const int64_t v = it->get<int64_t>();
      if (v < int64_t(std::numeric_limits<T>::min()) ||
          (v > 0 && uint64_t(v) > uint64_t(std::numeric_limits<T>::max())))
        throw bad(key, "out of range");
      out = T(v);
    }
  } else {
    if (!it->is_number()) throw bad(key, "expected a number");
    const double v = it->get<double>();
    if (!std::isfinite(v) || std::fabs(v) > 1e30) throw bad(key, "out of range");
    out = T(v);
  }
  return true;
}

bool get_bool(const json& b, const char* key, bool& out) {
  auto it = b.find(key);
  if (it == b.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw bad(key, "expected a boolean");
  out = it->get<bool>();
  return true;
}

std::vector<int32_t> token_array(const json& a, const std::string& param, int64_t vocab) {
  std::vector<int32_t> ids;
  for (const auto& v : a) {
    if (!v.is_number_integer()) throw bad(param, "expected an array of token ids");
    const int64_t id = v.get<int64_t>();
    if (id < 0 || id >= vocab)
      throw bad(param,
                "token id " + std::to_string(id) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")");
    ids.push_back(int32_t(id));
  }
  return ids;
}

std::string message_content(const json& m, size_t i) {
  const std::string param = "messages[" + std::to_string(i) + "].content";
  auto it = m.find("content");
  if (it == m.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    // The parts form: [{"type": "text", "text": "..."}]; only text parts exist for this server.
    std::string s;
    for (const auto& part : *it) {
      if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
          !part["text"].is_string())
        throw bad(param, "only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
      s += part["text"].get<std::string>();
    }
    return s;
  }
  throw bad(param, "expected a string or an array of text parts");
}

}  // namespace

json parse_body(const std::string& body, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth) throw bad("", "the JSON nests deeper than " + std::to_string(max_depth) + " levels");
    } else if (c == ']' || c == '}') --depth;
  }
  try {
    json j = json::parse(body);
    if (!j.is_object()) throw bad("", "the request body must be a JSON object");
    return j;
  } catch (const json::exception& e) {
    throw bad("", std::string("invalid JSON: ") + e.what());
  }
}

std::string plain_chat_prompt(const json& messages) {
  if (!messages.is_array() || messages.empty()) throw bad("messages", "expected a non-empty array of messages");
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw bad("messages[" + std::to_string(i) + "]", "expected an object with a string role");
    const std::string role = m["role"].get<std::string>();
    std::string name;
    if (role == "system" || role == "developer") name = "System";
    else if (role == "user") name = "User";
    else if (role == "assistant") name = "Assistant";
    else throw bad("messages[" + std::to_string(i) + "].role", "unknown role '" + role + "' (system, user, assistant)");
    out += name + ": " + message_content(m, i) + "\n";
  }
  out += "Assistant:";
  return out;
}

json template_messages(const json& messages) {
  if (!messages.is_array() || messages.empty()) throw bad("messages", "expected a non-empty array of messages");
  json out = json::array();
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
      throw bad("messages[" + std::to_string(i) + "]", "expected an object with a string role");
    json c = m;
    auto content = m.find("content");
    if ((content == m.end() || content->is_null()) && m.contains("tool_calls")) c["content"] = nullptr;
    else c["content"] = message_content(m, i);
    out.push_back(std::move(c));
  }
  return out;
}

CompletionRequest parse_completion(const json& b, bool chat, const ApiContext& ctx) {
  CompletionRequest r;
  r.chat = chat;
  if (auto it = b.find("model"); it != b.end() && !it->is_null()) {
    if (!it->is_string()) throw bad("model", "expected a string");
    if (it->get<std::string>() != ctx.model_name) {
      ApiError e;
      e.status = 404;
      e.type = "invalid_request_error";
      e.code = "model_not_found";
      e.param = "model";
      e.message =
          "The model '" + it->get<std::string>() + "' does not exist (this server has '" + ctx.model_name + "')";
      throw e;
    }
  }
  for (const char* unsupported : {"suffix", "best_of", "logit_bias", "tools", "functions", "response_format"}) {
    auto it = b.find(unsupported);
    if (it == b.end() || it->is_null() || (it->is_boolean() && !it->get<bool>()) ||
        (it->is_number() && it->get<double>() == 0))
      continue;
    throw bad(unsupported, "not supported by this server yet");
  }
  // echo: the completion's text starts with the prompt (and its logprobs with the prompt's). OpenAI's
  // chat completions have no echo: asked there, it is refused rather than ignored.
  bool echo = false;
  get_bool(b, "echo", echo);
  if (echo && chat) throw bad("echo", "only /v1/completions takes echo (chat completions have none)");

  // logprobs: completions take the number of alternatives (0..20); chat takes a boolean plus
  // top_logprobs (0..20), which needs logprobs: true.
  const std::string top_max = std::to_string(kMaxTopLogprobs);
  if (chat) {
    bool want = false;
    get_bool(b, "logprobs", want);
    int64_t top = 0;
    const bool has_top = get_number(b, "top_logprobs", top);
    if (has_top && !want) throw bad("top_logprobs", "needs \"logprobs\": true");
    if (top < 0 || top > kMaxTopLogprobs)
      throw bad("top_logprobs", "must be in [0, " + top_max + "], got " + std::to_string(top));
    if (want) r.job.logprobs = int(top);
  } else {
    if (auto it = b.find("top_logprobs"); it != b.end() && !it->is_null())
      throw bad("top_logprobs", "is a chat completions field; completions take \"logprobs\": <number of alternatives>");
    int64_t k = -1;
    if (get_number(b, "logprobs", k)) {
      if (k < 0 || k > kMaxTopLogprobs)
        throw bad("logprobs", "must be in [0, " + top_max + "], got " + std::to_string(k));
      r.job.logprobs = int(k);
    }
  }

  // The prompt's tokens, as `retnet generate` makes them: encode with BOS, or BOS alone when empty.
  const Tokenizer& tok = *ctx.tok;
  const int64_t vocab = ctx.info->vocab_size;
  const auto checked = [&](std::vector<int32_t> v, const std::string& param) {
    if (v.empty()) {
      if (tok.bos_id() < 0) throw bad(param, "empty, and the tokenizer has no BOS token to start from");
      v.push_back(tok.bos_id());
    }
    if (int64_t(v.size()) > ctx.limits.max_prompt_tokens)
      throw bad(param, "the prompt has " + std::to_string(v.size()) + " tokens, more than this server's limit of " +
                           std::to_string(ctx.limits.max_prompt_tokens));
    return v;
  };
  std::vector<int32_t> ids;
  std::vector<std::string> default_stops;
  std::vector<int32_t> template_stops;  // end-of-turn tokens of the chat template
  if (chat) {
    auto it = b.find("messages");
    if (it == b.end()) throw bad("messages", "required");
    const ChatTemplate* ct = ctx.chat_template;
    if (!ct || ct->is_plain()) {
      ids = tok.encode(plain_chat_prompt(*it), true);
      default_stops.push_back("\nUser:");
    } else {
      std::string prompt;
      try {
        prompt = ct->render(template_messages(*it));
      } catch (const jinja::RaisedError& e) {
        throw bad("messages", e.what());  // the template refuses the conversation (e.g. role order)
      } catch (const jinja::RenderError& e) {
        ApiError err;
        err.status = 500;
        err.type = "server_error";
        err.message = std::string("the chat template failed: ") + e.what();
        throw err;
      }
      ids = ct->encode(prompt, tok);
      template_stops = ct->stop_ids(tok);
    }
    r.prompts.push_back(checked(std::move(ids), "messages"));
    r.echo_texts.emplace_back();
  } else {
    auto it = b.find("prompt");
    if (it == b.end() || it->is_null()) throw bad("prompt", "required");
    const json& p = *it;
    // A batch: an array of strings or of token-id arrays, each a prompt of its own (OpenAI's; one
    // element is the plain request).
    std::vector<json> items;
    if (p.is_array() && !p.empty() && (p[0].is_string() || p[0].is_array())) items.assign(p.begin(), p.end());
    else items.push_back(p);
    for (const json& item : items) {
      // echo repeats a prompt string as sent (OpenAI's), and token ids as their text.
      std::string text;
      if (item.is_string()) {
        ids = tok.encode(item.get<std::string>(), true);
        text = item.get<std::string>();
      } else if (item.is_array()) {
        ids = token_array(item, "prompt", vocab);
        if (echo) text = tok.decode(ids);
      } else {
        throw bad("prompt", "expected a string, an array of token ids, or an array of those");
      }
      r.prompts.push_back(checked(std::move(ids), "prompt"));
      r.echo_texts.push_back(echo ? std::move(text) : std::string());
    }
  }
  r.job.prompt = r.prompts[0];
  r.job.echo = echo;
  r.job.echo_text = r.echo_texts[0];

  // Sampling: the model's generation_config.json defaults (as `retnet generate`), then the request.
  SamplerParams& sp = r.job.sampler;
  sp = ctx.info->generation.apply_to(SamplerParams{});
  get_number(b, "temperature", sp.temperature);
  get_number(b, "top_p", sp.top_p);
  get_number(b, "top_k", sp.top_k);
  get_number(b, "min_p", sp.min_p);
  get_number(b, "frequency_penalty", sp.frequency_penalty);
  get_number(b, "presence_penalty", sp.presence_penalty);
  get_number(b, "repeat_penalty", sp.repeat_penalty);
  get_number(b, "repeat_last_n", sp.repeat_last_n);
  int64_t seed = 0;
  if (get_number(b, "seed", seed)) sp.seed = uint64_t(seed);
  else sp.seed = uint64_t(std::random_device{}()) << 32 | std::random_device{}();
  try {
    sp.validate();
  } catch (const Error& e) {
    throw bad("", e.what());
  }

  int64_t max_tokens = chat ? ctx.limits.max_tokens : 16;  // OpenAI's completions default is 16
  const char* mt_key = chat && b.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  get_number(b, mt_key, max_tokens);
  if (max_tokens < 0) throw bad(mt_key, "must be >= 0, got " + std::to_string(max_tokens));
  if (max_tokens > ctx.limits.max_tokens)
    throw bad(mt_key, std::to_string(max_tokens) + " is more than this server's limit of " +
                          std::to_string(ctx.limits.max_tokens));
  r.job.max_tokens = max_tokens;

  get_number(b, "n", r.n);
  if (r.n < 1 || r.n > ctx.limits.max_n)
    throw bad("n", "must be in [1, " + std::to_string(ctx.limits.max_n) + "], got " + std::to_string(r.n));
  if (int64_t(r.prompts.size()) * r.n > ctx.limits.max_n)
    throw bad("prompt", "a batch of " + std::to_string(r.prompts.size()) + " prompts with n = " + std::to_string(r.n) +
                            " makes " + std::to_string(int64_t(r.prompts.size()) * r.n) +
                            " choices, more than this server's limit of " + std::to_string(ctx.limits.max_n));
  get_bool(b, "stream", r.stream);
  get_bool(b, "ignore_eos", r.job.ignore_eos);
  if (auto it = b.find("stream_options"); it != b.end() && !it->is_null()) {
    if (!it->is_object()) throw bad("stream_options", "expected an object");
    get_bool(*it, "include_usage", r.include_usage);
  }

  // stop: a string or an array of strings (OpenAI), stop_token_ids: an array of ids (vLLM's name).
  if (auto it = b.find("stop"); it != b.end() && !it->is_null()) {
    json s = *it;
    if (s.is_string()) s = json::array({s});
    if (!s.is_array() || s.size() > 16) throw bad("stop", "expected a string or an array of at most 16 strings");
    for (const auto& v : s) {
      if (!v.is_string()) throw bad("stop", "expected a string or an array of strings");
      if (v.get<std::string>().empty()) throw bad("stop", "a stop string is empty");
      r.job.stop_strings.push_back(v.get<std::string>());
    }
  }
  if (auto it = b.find("stop_token_ids"); it != b.end() && !it->is_null()) {
    if (!it->is_array()) throw bad("stop_token_ids", "expected an array of token ids");
    r.job.stop_ids = token_array(*it, "stop_token_ids", vocab);
  }
  for (auto& s : default_stops) r.job.stop_strings.push_back(s);
  // ignore_eos (benchmarks) also lets the reply run past the template's end of turn.
  if (!r.job.ignore_eos)
    for (int32_t id : template_stops)
      if (std::find(r.job.stop_ids.begin(), r.job.stop_ids.end(), id) == r.job.stop_ids.end())
        r.job.stop_ids.push_back(id);
  return r;
}

json error_json(const ApiError& e) {
  return json{{"error",
               {{"message", e.message},
                {"type", e.type},
                {"param", e.param.empty() ? json(nullptr) : json(e.param)},
                {"code", e.code.empty() ? json(nullptr) : json(e.code)}}}};
}

ApiError error_for_status(int status) {
  ApiError e;
  e.status = status;
  switch (status) {
    case 400:
      e.message = "malformed request";
      break;
    case 401:
      e.message = "invalid or missing API key (Authorization: Bearer <key>)";
      e.type = "authentication_error";
      e.code = "invalid_api_key";
      break;
    case 404:
      e.message = "no such route";
      e.type = "not_found_error";
      break;
    case 405:
      e.message = "method not allowed";
      break;
    case 408:
      e.message = "the request was not received in time";
      break;
    case 413:
      e.message = "the request body is larger than this server's limit";
      e.code = "request_too_large";
      break;
    case 414:
      e.message = "the request URI is too long";
      break;
    case 503:
      e.message = "the server is busy: too many requests queued";
      e.type = "server_error";
      break;
    default:
      e.message = "HTTP status " + std::to_string(status);
      e.type = status >= 500 ? "server_error" : "invalid_request_error";
  }
  return e;
}

}  // namespace retnet::serve
