// Chat templates of `retnet serve` (tools/serve/jinja*.{hpp,cpp}, chat_template.{hpp,cpp}):
//  - real models' templates (tests/data/chat_templates/*.jinja) over several conversations render
//    byte for byte as Python's jinja2 renders them the way HF's apply_chat_template does (the
//    expected text: tools/make_chat_template_fixtures.py, run once; jinja2 is not needed here);
//  - malformed templates fail at load with line and column; hostile ones end with an error, fast;
//  - the server side: tokenizer_config.json's chat_template (string or named list), the
//    --chat-template override, BOS added once, added tokens in the text, end-of-turn stop ids,
//    raise_exception → 400.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>

#include "serve/api.hpp"
#include "serve/chat_template.hpp"
#include "serve/jinja.hpp"
#include "test_util.hpp"

namespace {

using namespace retnet;
using namespace retnet::serve;
using retnet::test::Contains;
using retnet::test::error_of;
using ojson = nlohmann::ordered_json;

const std::string kDir = retnet::test::data_dir() + "/chat_templates/";

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void spit(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

// Exact equality: the template output is text, and jinja2 is the reference for every byte.
TEST(ChatTemplateJinja, RealTemplatesRenderAsJinja2Does) {
  const ojson fixture = ojson::parse(slurp(kDir + "expected.json"));
  int rendered = 0, raised = 0, failed = 0;
  std::set<std::string> templates;
  for (const auto& c : fixture["cases"]) {
    const std::string name = c["template"];
    templates.insert(name);
    const std::string label = name + " / " + c["conversation"].get<std::string>() +
                              (c["add_generation_prompt"].get<bool>() ? "" : " / no generation prompt") +
                              (c["tools"].is_null() ? "" : " / tools");
    SCOPED_TRACE(label);
    const auto t = jinja::Template::parse(slurp(kDir + name), name);
    jinja::Object g;
    g.items.emplace_back("messages", to_value(fixture["conversations"][c["conversation"].get<std::string>()]));
    g.items.emplace_back("add_generation_prompt", jinja::Value::boolean(c["add_generation_prompt"].get<bool>()));
    g.items.emplace_back("tools", to_value(c["tools"]));
    g.items.emplace_back("documents", jinja::Value::none());
    g.items.emplace_back("bos_token", to_value(c["bos_token"]));
    g.items.emplace_back("eos_token", to_value(c["eos_token"]));
    if (c.contains("expected")) {
      try {
        EXPECT_EQ(t.render(g), c["expected"].get<std::string>());
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
      ++rendered;
    } else if (c.contains("error")) {
      // raise_exception(msg): the message is the template's own.
      try {
        t.render(g);
        ADD_FAILURE() << "rendered, but jinja2 raised " << c["error"];
      } catch (const jinja::RaisedError& e) {
        EXPECT_EQ(std::string(e.what()), c["error"].get<std::string>());
      }
      ++raised;
    } else {
      // jinja2 failed in Python's words (TypeError ...): a RenderError in ours.
      EXPECT_THROW(t.render(g), jinja::RenderError) << c["failure"];
      ++failed;
    }
  }
  // The fixture covers what the task names (13 model templates and the features one, each with
  // several conversations, errors included).
  EXPECT_EQ(templates.size(), 14u);
  EXPECT_GE(rendered, 60);
  EXPECT_GE(raised, 5);
  EXPECT_GE(failed, 3);
}

std::string render_src(const std::string& src, jinja::Object g = {}, const jinja::RenderLimits& lim = {}) {
  return jinja::Template::parse(src, "t.jinja").render(g, lim);
}

TEST(ChatTemplateJinja, WhitespaceControl) {
  // trim_blocks drops the newline after a block tag, lstrip_blocks the indent before it; "-" strips
  // all whitespace on its side, "+" keeps it; expressions keep their newline; one trailing newline goes.
  EXPECT_EQ(render_src("{% if true %}\na\n  {% endif %}\nb\n"), "a\nb");
  EXPECT_EQ(render_src("x  {%- if true -%}  \n y {%- endif %}"), "xy");
  EXPECT_EQ(render_src("  {%+ if true %}a{% endif +%}\nb"), "  a\nb");
  EXPECT_EQ(render_src("{{ 'a' }}\n{{ 'b' -}}\n  c"), "a\nbc");
  EXPECT_EQ(render_src("a {# note #}\nb\n  {# indented #}\nc"), "a b\nc");
  EXPECT_EQ(render_src("line\r\n{% if true %}\r\nx\r\n{% endif %}"), "line\nx\n");
}

TEST(ChatTemplateJinja, ParseErrorsNameLineAndColumn) {
  const auto err = [](const std::string& src) { return error_of([&] { jinja::Template::parse(src, "bad.jinja"); }); };
  EXPECT_TRUE(Contains(err("ab\n  {{ x"), "bad.jinja: line 2, column 3: unterminated tag"));
  EXPECT_TRUE(Contains(err("{% if x %}a"), "expected {% elif or else or endif %}"));
  EXPECT_TRUE(Contains(err("{% for x in y %}{% endif %}"), "line 1, column 17"));
  EXPECT_TRUE(Contains(err("\n\n{{ x | nosuchfilter }}"), "line 3, column 8: unknown filter 'nosuchfilter'"));
  EXPECT_TRUE(Contains(err("{{ x is nosuchtest }}"), "unknown test 'nosuchtest'"));
  EXPECT_TRUE(Contains(err("{% endfor %}"), "unexpected '{% endfor %}'"));
  EXPECT_TRUE(Contains(err("{{ 'abc }}"), "unterminated string literal"));
  EXPECT_TRUE(Contains(err("{# never closed"), "unterminated comment"));
  EXPECT_TRUE(Contains(err("{% raw %}x{% endraw %}"), "unknown or unsupported statement 'raw'"));
  EXPECT_TRUE(Contains(err("{{ a + }}"), "expected an expression"));
  EXPECT_TRUE(Contains(err("{{ a b }}"), "unexpected 'b'"));
  EXPECT_TRUE(Contains(err("{{ 1 < 2 < 3 }}"), "chained comparisons"));
  EXPECT_TRUE(Contains(err("{{ 99999999999999999999 }}"), "out of range"));
  // Nesting is bounded (no stack overflow on hostile input): brackets, blocks, and operator chains.
  EXPECT_TRUE(Contains(err("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"), "nests deeper"));
  std::string ifs;
  for (int i = 0; i < 1000; ++i) ifs += "{% if x %}";
  EXPECT_TRUE(Contains(err(ifs), "nest deeper"));
  std::string chain = "{{ 1";
  for (int i = 0; i < 100000; ++i) chain += " ~ 1";
  EXPECT_TRUE(Contains(err(chain + " }}"), "nests deeper"));
  std::string filters = "{{ 1";
  for (int i = 0; i < 100000; ++i) filters += "|string";
  EXPECT_TRUE(Contains(err(filters + " }}"), "nests deeper"));
}

// Each hostile template ends with a RenderError at one of its limits. The step budget is cut to
// 100000 here (the default is 1 M) so that the suite stays fast; the time bound only catches a hang.
TEST(ChatTemplateJinja, HostileTemplatesStopAtTheirLimits) {
  jinja::RenderLimits lim;
  lim.max_steps = 100000;
  const auto fails = [&lim](const std::string& src, const std::string& want) {
    SCOPED_TRACE(src.substr(0, 80));
    const auto t0 = std::chrono::steady_clock::now();
    try {
      render_src(src, {}, lim);
      ADD_FAILURE() << "rendered";
    } catch (const jinja::RenderError& e) {
      EXPECT_TRUE(Contains(e.what(), want));
      EXPECT_TRUE(Contains(e.what(), "t.jinja: line "));
    }
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
  };
  fails("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "step budget");
  fails("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nest deeper than 64");
  fails("{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}", "longer than");
  fails("{{ 'x' * 100000000000 }}", "output limit");
  fails("{{ range(1000000000) }}", "more than 100000 items");
  // A list shared 2^60 times over: built in 60 steps, its text would never end.
  fails("{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}{{ ns.a }}",
        "budget");
  fails(
      "{% set ns = namespace(a=[1]) %}{% for i in range(60) %}{% set ns.a = [ns.a, ns.a] %}{% endfor %}"
      "{{ ns.a == ns.a }}",
      "budget");
  fails("{% set ns = namespace(a=1) %}{% for i in range(1000) %}{% set ns.a = [ns.a] %}{% endfor %}", "nest");
  fails("{% set ns = namespace() %}{% set ns.self = ns %}", "cannot hold a namespace");
  fails("{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "longer than");
  fails("{% set x = 1 %}{% set x.a = 2 %}", "only namespace() objects");
  fails("{{ messages.content }}", "'messages' is undefined");
  fails("{{ 1 + 'a' }}", "unsupported operand types for +: 'int' and 'str'");
  fails("{{ 1 // 0 }}", "by zero");
  fails("{{ 9223372036854775807 + 1 }}", "overflow");
  fails("{% break %}", "outside a loop");
  fails("{{ foo() }}", "'foo' is undefined");
}

TEST(ChatTemplateJinja, RaiseExceptionCarriesTheMessage) {
  try {
    render_src("{{ raise_exception('Conversation roles must alternate') }}");
    ADD_FAILURE() << "rendered";
  } catch (const jinja::RaisedError& e) {
    EXPECT_EQ(std::string(e.what()), "Conversation roles must alternate");
  }
}

const char* const kChatML =
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// A model directory: the bundled tokenizer with <|im_start|> and <|im_end|> added as special tokens
// (ids after its vocabulary), and a tokenizer_config.json holding `config`.
class ChatTemplateModelDir : public retnet::test::TempDirTest {
 protected:
  void write_model(const nlohmann::json& config) {
    auto tj = retnet::test::read_json(retnet::test::bundled_dir() + "/tokenizer.json");
    const int32_t base = Tokenizer::load(retnet::test::bundled_dir()).vocab_size();
    for (int k = 0; k < 2; ++k)
      tj["added_tokens"].push_back({{"id", base + k},
                                    {"content", k == 0 ? "<|im_start|>" : "<|im_end|>"},
                                    {"single_word", false},
                                    {"lstrip", false},
                                    {"rstrip", false},
                                    {"normalized", false},
                                    {"special", true}});
    spit(dir_ / "tokenizer.json", tj.dump());
    spit(dir_ / "tokenizer_config.json", config.dump());
    im_start_ = base;
    im_end_ = base + 1;
  }
  int32_t im_start_ = -1, im_end_ = -1;
};

TEST_F(ChatTemplateModelDir, ModelTemplateSpecialTokensAndBos) {
  nlohmann::json cfg = {{"add_bos_token", true},
                        {"bos_token", {{"__type", "AddedToken"}, {"content", "<|endoftext|>"}}},
                        {"eos_token", "<|endoftext|>"},
                        {"chat_template", kChatML}};
  write_model(cfg);
  const Tokenizer tok = Tokenizer::load(dir_.string());
  const ChatTemplate ct = ChatTemplate::load(dir_.string(), "");
  ASSERT_FALSE(ct.is_plain());
  EXPECT_TRUE(Contains(ct.origin(), "tokenizer_config.json (chat_template)"));
  const auto msgs = template_messages(nlohmann::json::parse(
      R"([{"role": "user", "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}]}])"));
  const std::string text = ct.render(msgs);
  EXPECT_EQ(text, "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
  // No BOS text in the prompt: the tokenizer adds BOS (add_bos_token), once; the added tokens in the
  // text are their ids, not their characters.
  const auto ids = ct.encode(text, tok);
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids[0], tok.bos_id());
  EXPECT_EQ(ids[1], im_start_);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_start_), 2);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), im_end_), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.bos_id()), 1);
  // The reply ends at <|im_end|> (the template writes it) and at EOS.
  const auto stops = ct.stop_ids(tok);
  EXPECT_NE(std::find(stops.begin(), stops.end(), im_end_), stops.end());
  EXPECT_NE(std::find(stops.begin(), stops.end(), tok.eos_id()), stops.end());

  // A template that writes bos_token itself: BOS is not added a second time.
  cfg["chat_template"] = std::string("{{ bos_token }}") + kChatML;
  write_model(cfg);
  const ChatTemplate with_bos = ChatTemplate::load(dir_.string(), "");
  const std::string t2 = with_bos.render(msgs);
  EXPECT_EQ(t2.rfind("<|endoftext|><|im_start|>user", 0), 0u);
  const auto ids2 = with_bos.encode(t2, tok);
  EXPECT_EQ(std::count(ids2.begin(), ids2.end(), tok.bos_id()), 1);
  EXPECT_EQ(ids2, tok.encode(t2, false));
}

TEST_F(ChatTemplateModelDir, NamedTemplatesOverridesAndErrors) {
  nlohmann::json cfg = {
      {"eos_token", "<|im_end|>"},
      {"chat_template", {{{"name", "tool_use"}, {"template", "TOOLS"}}, {{"name", "default"}, {"template", kChatML}}}}};
  write_model(cfg);
  const auto one = template_messages(nlohmann::json::parse(R"([{"role": "user", "content": "x"}])"));
  EXPECT_EQ(ChatTemplate::load(dir_.string(), "").render(one),
            "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
  // --chat-template plain / FILE win over the model's.
  EXPECT_TRUE(ChatTemplate::load(dir_.string(), "plain").is_plain());
  spit(dir_ / "mine.jinja", "{{ messages[0].content | upper }}{{ eos_token }}\n");
  const ChatTemplate file = ChatTemplate::load(dir_.string(), (dir_ / "mine.jinja").string());
  EXPECT_EQ(file.render(one), "X<|im_end|>");
  EXPECT_TRUE(Contains(file.origin(), "mine.jinja"));
  // chat_template.jinja beside the config (newer transformers) takes precedence.
  spit(dir_ / "chat_template.jinja", "J{{ messages | length }}");
  EXPECT_EQ(ChatTemplate::load(dir_.string(), "").render(one), "J1");
  std::filesystem::remove(dir_ / "chat_template.jinja");

  EXPECT_TRUE(Contains(error_of([&] { ChatTemplate::load(dir_.string(), (dir_ / "none.jinja").string()); }),
                       "--chat-template: '"));
  spit(dir_ / "broken.jinja", "ok\n{% for m in messages %}");
  EXPECT_TRUE(Contains(error_of([&] { ChatTemplate::load(dir_.string(), (dir_ / "broken.jinja").string()); }),
                       "broken.jinja: line 2, column 24: unexpected end of template"));
  cfg["chat_template"] = {{{"name", "tool_use"}, {"template", "TOOLS"}}};
  write_model(cfg);
  EXPECT_TRUE(Contains(error_of([&] { ChatTemplate::load(dir_.string(), ""); }), "no template named \"default\""));
  cfg["chat_template"] = 5;
  write_model(cfg);
  EXPECT_TRUE(Contains(error_of([&] { ChatTemplate::load(dir_.string(), ""); }), "chat_template: expected a string"));
  cfg.erase("chat_template");
  write_model(cfg);
  EXPECT_TRUE(ChatTemplate::load(dir_.string(), "").is_plain());
}

TEST_F(ChatTemplateModelDir, RequestsThroughTheTemplate) {
  write_model({{"bos_token", "<|endoftext|>"},
               {"eos_token", "<|endoftext|>"},
               {"chat_template",
                "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
                "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content }}<|im_end|>{% endfor %}"
                "{% if messages | length > 3 %}{{ messages | map(attribute='nope') | join(1 + 'a') }}{% endif %}"}});
  const Tokenizer tok = Tokenizer::load(dir_.string());
  const ChatTemplate ct = ChatTemplate::load(dir_.string(), "");
  ModelInfo info;
  info.vocab_size = tok.vocab_size();
  ApiContext ctx;
  ctx.tok = &tok;
  ctx.info = &info;
  ctx.chat_template = &ct;
  ctx.model_name = "m";
  const auto req = [&](const std::string& body) { return parse_completion(parse_body(body, 64), true, ctx); };
  const CompletionRequest r = req(R"({"messages": [{"role": "user", "content": "Hi"}], "seed": 1})");
  EXPECT_EQ(r.job.prompt, tok.encode("<|endoftext|>user: Hi<|im_end|>", false));
  EXPECT_EQ(std::count(r.job.prompt.begin(), r.job.prompt.end(), tok.bos_id()), 1);
  EXPECT_TRUE(r.job.stop_strings.empty());  // no "\nUser:" of the plain template
  EXPECT_NE(std::find(r.job.stop_ids.begin(), r.job.stop_ids.end(), im_end_), r.job.stop_ids.end());
  // raise_exception is the client's fault: 400 with the template's message.
  try {
    req(R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]})");
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_TRUE(Contains(e.message, "System role not supported"));
  }
  // A template that fails otherwise is the server's: 500 naming the template's line.
  try {
    req(R"({"messages": [{"role": "user", "content": "1"}, {"role": "assistant", "content": "2"},
                         {"role": "user", "content": "3"}, {"role": "assistant", "content": "4"}]})");
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 500);
    EXPECT_EQ(e.type, "server_error");
    EXPECT_TRUE(Contains(e.message, "the chat template failed: "));
    EXPECT_TRUE(Contains(e.message, "line 1: unsupported operand types"));
  }
  // Messages are checked before the template sees them.
  try {
    req(R"({"messages": [{"role": 5, "content": "x"}]})");
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.param, "messages[0]");
  }
}

}  // namespace
