// OpenAI's request and response formats for `retnet serve`: parsing a request body into jobs'
// parameters (every type and bound checked, naming the field), the plain chat template, and the
// JSON of responses, stream chunks and errors.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat_template.hpp"
#include "job.hpp"
#include "retnet/retnet.hpp"

namespace retnet::serve {

// A request the server refuses, with its HTTP status and OpenAI error fields.
struct ApiError {
  int status = 400;
  std::string message, type = "invalid_request_error", param, code;
};

struct Limits {
  int64_t max_prompt_tokens = 8192;
  int64_t max_tokens = 4096;  // per choice: the largest max_tokens a request may ask (and the default for chat)
  int64_t max_n = 8;          // choices per request: n, times the prompts of a batch
  int max_json_depth = 64;
};

// What a completion request asks, parsed.
struct CompletionRequest {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  int64_t n = 1;
  JobParams job;  // seed of choice i: job.sampler.seed + i
  // Each prompt's tokens and echo text: one, or a batch (`prompt` as an array of prompts), whose
  // prompt q makes choices q * n .. q * n + n - 1; job holds the first.
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> echo_texts;
};

// Everything the parsers need from the server.
struct ApiContext {
  const Tokenizer* tok = nullptr;
  const ModelInfo* info = nullptr;
  const ChatTemplate* chat_template = nullptr;  // null: the plain template
  std::string model_name;
  Limits limits;
};

// Parses a JSON body, refusing nesting deeper than `max_depth` before the parser sees it (so that
// hostile nesting costs nothing) and invalid JSON or UTF-8 (ApiError 400).
nlohmann::json parse_body(const std::string& body, int max_depth);

// POST /v1/completions (chat = false) and /v1/chat/completions. Throws ApiError.
CompletionRequest parse_completion(const nlohmann::json& body, bool chat, const ApiContext& ctx);

// The messages a Jinja chat template sees: each an object with a string role; content a string
// (OpenAI's list of text parts joined; absent or null: "", or null kept beside tool_calls); other
// keys (name, tool_calls, tool_call_id) as sent. Throws ApiError 400 naming the message.
nlohmann::json template_messages(const nlohmann::json& messages);

// The plain chat template used when a model has none (the bundled model has none):
//   "System: <content>\n" "User: <content>\n" "Assistant: <content>\n" for each message, then
//   "Assistant:" — the reply follows it; "\nUser:" is added to the stop strings.
std::string plain_chat_prompt(const nlohmann::json& messages);

nlohmann::json error_json(const ApiError& e);
// The status an ApiError for an HTTP status should carry when the library gave none.
ApiError error_for_status(int status);

}  // namespace retnet::serve
