// Subcommands of the `retnet` command-line tool. Each registers its options on the app and
// returns the function that runs it.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

#include "retnet/log.hpp"
#include "retnet/retnet.hpp"

namespace retnet::cli {

using Runner = std::function<int()>;

Runner add_logits_command(CLI::App& app);
Runner add_info_command(CLI::App& app);
Runner add_generate_command(CLI::App& app);
Runner add_perplexity_command(CLI::App& app);
Runner add_tokenize_command(CLI::App& app);
Runner add_bench_command(CLI::App& app);
Runner add_quantize_command(CLI::App& app);
Runner add_serve_command(CLI::App& app);  // cmd_serve.cpp (the server: tools/serve/)

struct GlobalFlags {
  bool verbose = false;
  bool quiet = false;
  // dry_run() (app.hpp): each runner returns 0 once its arguments are validated, before it reads a
  // file, stdin or a model. Runners therefore validate every argument first.
  bool dry_run = false;
};
GlobalFlags& global_flags();

// --check-weights on every subcommand that loads a model: LoadOptions::check_weights (common.cpp).
void add_check_weights_flag(CLI::App* c, bool& flag);
// --bf16-activations on generate/perplexity/logits/bench: LoadOptions::bf16_activations (common.cpp).
void add_bf16_activations_flag(CLI::App* c, bool& flag);

// --quantize TYPE on generate/perplexity/logits/info/bench: LoadOptions::quantize (common.cpp); check_quantize
// throws Error "--quantize: ..." unless the value is empty or q8_0, q4_0, q4_k.
void add_quantize_option(CLI::App* c, std::string& value);
void check_quantize(const std::string& value);
// --state-type f32|f16 on generate/perplexity/logits/bench/serve (LoadOptions::state_dtype); check_state_type
// throws Error "--state-type: ..." unless the value is empty, f32 or f16.
void add_state_type_option(CLI::App* c, std::string& value);
void check_state_type(const std::string& value);

// --angles on generate/perplexity/logits/bench, default reference: LoadOptions::angles (common.cpp).
void add_angles_option(CLI::App* c, std::string& value);

// Shared option parsing helpers (common.cpp).
std::vector<int32_t> parse_id_list(const std::string& text);  // "5,17,3" -> ids; throws Error
Device parse_device(const std::string& s);
Mode parse_mode(const std::string& s);
Angles parse_angles(const std::string& s);

}  // namespace retnet::cli
