// Fuzz target: the `retnet` command line (tools/cli) parsed and validated in-process through
// retnet::cli::dry_run, which stops each subcommand before it touches a file, stdin or a model.
//
// Input: the arguments after the program name, separated by NUL bytes when the input holds any,
// otherwise by newlines (so that corpus files are readable command lines, one argument per line).
// Invariant: every command line either passes (0) or fails cleanly with CLI::ParseError or
// retnet::Error; other exceptions, crashes, sanitizer reports and exit() are bugs.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "app.hpp"
#include "fuzz_check.hpp"
#include "retnet/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const char sep = in.find('\0') != std::string::npos ? '\0' : '\n';
  std::vector<std::string> args = {"retnet"};
  if (!in.empty()) {
    size_t b = 0;
    while (true) {
      const size_t e = in.find(sep, b);
      args.push_back(in.substr(b, e == std::string::npos ? std::string::npos : e - b));
      if (e == std::string::npos) break;
      b = e + 1;
    }
  }
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  try {
    const int rc = retnet::cli::dry_run(int(args.size()), argv.data());
    FUZZ_CHECK(rc == 0, "dry_run returned %d instead of succeeding or throwing", rc);
  } catch (const CLI::ParseError&) {
  } catch (const retnet::Error&) {
  }
  return 0;
}
