// retnet — command-line front end. Errors: one line on stderr, exit code 1.
#include <cstdio>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
  using namespace retnet;
  CLI::App app{"retnet: inference engine for RetNet language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "retnet 0.1.0");
  bool& verbose = cli::global_flags().verbose;
  bool& quiet = cli::global_flags().quiet;
  app.add_flag("-v,--verbose", verbose, "Verbose logging on stderr");
  app.add_flag("-q,--quiet", quiet, "Only errors on stderr");
  app.fallthrough();  // -v/-q may also follow the subcommand
  std::vector<cli::Runner> runners = {cli::add_generate_command(app), cli::add_perplexity_command(app),
                                      cli::add_tokenize_command(app),  cli::add_bench_command(app),
                                      cli::add_logits_command(app),    cli::add_info_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::fputs(app.help().c_str(), stdout);
    return 0;
  } catch (const CLI::CallForAllHelp& e) {
    std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::puts("retnet 0.1.0");
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  set_log_level(quiet ? LogLevel::Error : verbose ? LogLevel::Debug : LogLevel::Warn);
  try {
    for (auto& r : runners) {
      int rc = r();
      if (rc >= 0) return rc;
    }
  } catch (const retnet::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;
}
