// Helpers shared by the CLI subcommands: model lookup, prompt input, progress, Ctrl-C, timings.
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace retnet::cli {

// -m given → as is. Otherwise $RETNET_MODEL, else the bundled model (source tree or installed share/).
std::string resolve_model_dir(const std::string& given);

// Prompt text from -p (or "-" for stdin) or -f FILE; exactly one may be given. Bytes are passed on
// unchanged (invalid UTF-8 is the tokenizer's business).
std::string read_prompt(const std::string& prompt, bool prompt_given, const std::string& file);
// The argument check read_prompt starts with (both -p and -f given), without reading anything.
void check_prompt_source(bool prompt_given, const std::string& file);
std::string read_file(const std::string& path);

// A load-progress callback that draws a bar on stderr when it is a terminal, else does nothing.
std::function<bool(uint64_t, uint64_t)> progress_bar(const std::string& label);

// Ctrl-C: the first SIGINT sets the flag (generation stops cleanly); a second one exits at once.
void install_sigint_handler();
bool interrupted();

double ms_since(std::chrono::steady_clock::time_point t0);
bool stderr_is_tty();

}  // namespace retnet::cli
