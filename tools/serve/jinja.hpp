// A Jinja2 subset interpreter for chat templates (tokenizer_config.json's "chat_template"), rendering
// as Hugging Face's apply_chat_template does: jinja2's ImmutableSandboxedEnvironment with
// trim_blocks and lstrip_blocks, the loopcontrols extension, and its raise_exception, strftime_now
// and tojson (ensure_ascii=False). docs/chat-templates.md lists what is supported.
//
// Templates come from model directories, which may be hostile: parsing bounds nesting depth, and a
// render bounds work (evaluation steps), bytes of string built, call depth and output size, so that
// any template ends with an answer or an error. Neither ever crashes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "jinja_value.hpp"

namespace retnet::serve::jinja {

struct Stmt;

struct RenderLimits {
  uint64_t max_steps = 1'000'000;         // evaluations, iterations, visits (1000 messages: 32k to 57k)
  uint64_t max_string_bytes = 256 << 20;  // bytes of all strings built (a quadratic ~ loop ends here)
  size_t max_output = 4 << 20;            // bytes of the rendered text (and of any one string)
  int max_call_depth = 64;                // nested macro calls
};

class Template {
 public:
  // Throws Error "<name>: line L, column C: <what>" for a template this subset cannot run (syntax
  // errors, unterminated tags, unknown filters or tests, nesting beyond 128 levels).
  static Template parse(const std::string& source, const std::string& name);
  // Renders with `globals` as the template's variables (besides range, namespace, raise_exception,
  // strftime_now). Throws RaisedError for raise_exception(msg), RenderError for anything else.
  // Thread-safe: a Template is immutable.
  std::string render(const Object& globals, const RenderLimits& limits = {}) const;
  const std::string& name() const { return name_; }

 private:
  std::shared_ptr<const std::vector<std::unique_ptr<Stmt>>> body_;
  std::string name_;
};

}  // namespace retnet::serve::jinja
