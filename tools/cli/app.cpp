// Builds the CLI11 app with every subcommand, parses, and runs (or dry-runs) the chosen one.
#include "app.hpp"

#include <cerrno>
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "std_streams.hpp"

namespace retnet::cli {

namespace {

constexpr const char* kVersion = "retnet 0.1.0";

// One command line's app: its options write into the runners' argument structs, so it is built
// afresh for every parse (dry_run may be called many times in one process).
struct CliApp {
  CLI::App app{"retnet: inference engine for RetNet language models"};
  std::vector<Runner> runners;

  CliApp() {
    app.require_subcommand(1);
    app.set_version_flag("--version", kVersion);
    app.add_flag("-v,--verbose", global_flags().verbose, "Verbose logging on stderr");
    app.add_flag("-q,--quiet", global_flags().quiet, "Only errors on stderr");
    app.fallthrough();  // -v/-q may also follow the subcommand
    runners = {add_generate_command(app), add_perplexity_command(app), add_tokenize_command(app),
               add_bench_command(app),    add_logits_command(app),     add_info_command(app),
               add_quantize_command(app), add_serve_command(app)};
  }

  // The runner of the parsed subcommand (the others return -1).
  int run_subcommand() {
    for (auto& r : runners) {
      const int rc = r();
      if (rc >= 0) return rc;
    }
    return 1;
  }
};

}  // namespace

namespace {
// Parses and runs; every write to stdout on the way is checked (std_streams.hpp), and so is the final
// flush, so that output lost to a full disk or a closed stdout is an error.
int parse_and_run(CliApp& a, int argc, const char* const* argv) {
  try {
    a.app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out(a.app.help());
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    out(a.app.help("", CLI::AppFormatMode::All));
    return 0;
  } catch (const CLI::CallForVersion&) {
    out(std::string(kVersion) + "\n");
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  const GlobalFlags& g = global_flags();
  set_log_level(g.quiet ? LogLevel::Error : g.verbose ? LogLevel::Debug : LogLevel::Warn);
  return a.run_subcommand();
}
}  // namespace

int run(int argc, const char* const* argv) {
  global_flags() = GlobalFlags{};
  guard_standard_descriptors();
  CliApp a;
  try {
    const int rc = parse_and_run(a, argc, argv);
    if (rc == 0) finish_stdout();
    return rc;
  } catch (const StdoutError& e) {
    if (e.err() == EPIPE) return kClosedPipeExitCode;  // the reader left (`| head`): not an error
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // retnet::Error, and e.g. std::bad_alloc on a huge request
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}

int dry_run(int argc, const char* const* argv) {
  global_flags() = GlobalFlags{};
  global_flags().dry_run = true;
  CliApp a;
  try {
    a.app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return a.app.help().empty() ? 1 : 0;  // formatted as run() would, so that path is exercised too
  } catch (const CLI::CallForAllHelp&) {
    return a.app.help("", CLI::AppFormatMode::All).empty() ? 1 : 0;
  } catch (const CLI::CallForVersion&) {
    return 0;
  }
  return a.run_subcommand();
}

}  // namespace retnet::cli
