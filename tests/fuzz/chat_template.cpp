// Fuzz target: a chat template (tools/serve/jinja.hpp), as a model directory's tokenizer_config.json
// could hold it. Input: the template's source. It is parsed; when that succeeds it is rendered over a
// fixed conversation with small limits (so that each input runs in milliseconds under ASan).
// Invariants: parsing throws only retnet::Error; rendering only RaisedError or RenderError; the
// output never exceeds max_output; no crash, hang, leak or sanitizer report (deep nesting, runaway
// loops and recursion, shared-list blow-ups and namespace cycles end at their limits).
#include <cstdint>
#include <optional>
#include <string>

#include "fuzz_check.hpp"
#include "retnet/error.hpp"
#include "serve/jinja.hpp"

namespace {
retnet::serve::jinja::Object conversation() {
  using retnet::serve::jinja::Object;
  using retnet::serve::jinja::Value;
  const auto message = [](const char* role, const char* content) {
    Object m;
    m.items = {{"role", Value::string(role)}, {"content", Value::string(content)}};
    return Value::object(std::move(m));
  };
  Object g;
  g.items = {{"messages", Value::array({message("system", "Be brief."), message("user", "Hi  "),
                                        message("assistant", " Hello."), message("user", "ünï 🦙")})},
             {"add_generation_prompt", Value::boolean(true)},
             {"tools", Value::none()},
             {"bos_token", Value::string("<s>")},
             {"eos_token", Value::string("</s>")}};
  return g;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace jinja = retnet::serve::jinja;
  const std::string src(reinterpret_cast<const char*>(data), size);
  std::optional<jinja::Template> t;
  try {
    t = jinja::Template::parse(src, "fuzz.jinja");
  } catch (const retnet::Error&) {
    return 0;
  }
  static const jinja::Object globals = conversation();
  jinja::RenderLimits lim;
  lim.max_steps = 200000;
  lim.max_string_bytes = 8 << 20;
  lim.max_output = 64 << 10;
  lim.max_call_depth = 32;
  try {
    const std::string out = t->render(globals, lim);
    FUZZ_CHECK(out.size() <= lim.max_output, "output of %zu bytes", out.size());
  } catch (const jinja::RaisedError&) {
  } catch (const jinja::RenderError&) {
  }
  return 0;
}
