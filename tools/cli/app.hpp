// The `retnet` command line as a library (retnet_cli_lib): main.cpp is only `return run(argc, argv)`,
// and the fuzz target tests/fuzz/cli_args.cpp drives the very same parsing through dry_run().
#pragma once

namespace retnet::cli {

// Parses the command line and runs the chosen subcommand; returns the process exit code. Help and
// version go to stdout; every error is one line "error: ..." on stderr with exit code 1, a failed
// write to stdout included ("error: writing to stdout: No space left on device"); a closed pipe on
// stdout ends the command quietly (std_streams.hpp).
int run(int argc, const char* const* argv);

// Parses and validates the command line exactly as run() does, then stops before any subcommand
// reads a file, stdin or a model, or installs a signal handler. Returns 0 when the command line is
// valid (--help and --version included). Throws CLI::ParseError (bad syntax, unknown or missing
// options, values of the wrong type) or retnet::Error (values the subcommands reject); anything else
// escaping is a bug. Prints nothing.
int dry_run(int argc, const char* const* argv);

}  // namespace retnet::cli
