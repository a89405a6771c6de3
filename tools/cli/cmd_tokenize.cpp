// retnet tokenize: the everyday tokenizer debugging tool (like llama-tokenize).
#include <cstdio>
#include <memory>

#include "cli_util.hpp"
#include "commands.hpp"
#include "retnet/tokenizer.hpp"
#include "std_streams.hpp"

namespace retnet::cli {

namespace {
struct TokArgs {
  std::string model, prompt, file;
  bool ids_only = false, no_special = false;
};

// Control bytes and quotes escaped so every token prints on one line.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char ch : s) {
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (ch == '\r') out += "\\r";
    else if (ch == '\'') out += "\\'";
    else if (ch == '\\') out += "\\\\";
    else if (ch < 0x20 || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    } else out += char(ch);
  }
  return out;
}
}  // namespace

Runner add_tokenize_command(CLI::App& app) {
  auto a = std::make_shared<TokArgs>();
  CLI::App* c = app.add_subcommand("tokenize", "Show how a text is tokenized");
  c->add_option("-m,--model", a->model, "Model directory with tokenizer.json (default: the bundled model)");
  c->add_option("-p,--prompt", a->prompt, "Text ('-' reads stdin)");
  c->add_option("-f,--file", a->file, "Read the text from a file");
  c->add_flag("--ids", a->ids_only, "Print only the ids, separated by spaces");
  c->add_flag("--no-special", a->no_special, "Do not add BOS/EOS");
  return [a, c]() -> int {
    if (!c->parsed()) return -1;
    if (!c->count("--prompt") && a->file.empty()) throw Error("tokenize: give the text with -p or -f");
    check_prompt_source(c->count("--prompt") > 0, a->file);
    if (global_flags().dry_run) return 0;
    const std::string dir = resolve_model_dir(a->model);
    const std::string text = read_prompt(a->prompt, c->count("--prompt") > 0, a->file);
    const Tokenizer tok = Tokenizer::load(dir);
    const std::vector<int32_t> ids = tok.encode(text, !a->no_special);
    if (a->ids_only) {
      for (size_t i = 0; i < ids.size(); ++i) outf(i ? " %d" : "%d", ids[i]);
      out("\n");
    } else {
      for (int32_t id : ids) {
        const std::string piece = tok.decode(std::span<const int32_t>(&id, 1), false);
        outf("%6d -> '%s'\n", id, printable(piece).c_str());
      }
    }
    return 0;
  };
}

}  // namespace retnet::cli
