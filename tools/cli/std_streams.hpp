// The CLI's standard streams. Output on stdout is checked: a full disk or a closed stdout is an error
// (exit code 1), not output silently lost; a closed pipe (`| head`) stays a quiet exit. stdin is read
// for `-p -` with its errors reported (a directory or a closed stdin is not an empty prompt).
#pragma once
#include <string>
#include <string_view>

#include "retnet/error.hpp"

namespace retnet::cli {

// A failed write to stdout, thrown by the writers below. run() (app.cpp) prints it as
// "error: writing to stdout: <reason>" with exit code 1, except a closed pipe (EPIPE, which a process
// only sees when SIGPIPE is ignored; by default SIGPIPE ends it quietly): that exits quietly with
// kClosedPipeExitCode, the status a shell shows for a process ended by SIGPIPE.
class StdoutError : public Error {
 public:
  explicit StdoutError(int err);
  int err() const { return err_; }

 private:
  int err_;
};
constexpr int kClosedPipeExitCode = 141;  // 128 + SIGPIPE

// Every byte a subcommand prints on stdout goes through these; each throws StdoutError on failure.
void out(std::string_view text);
void outf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
// fflush(stdout), checked: streamed output (generate) calls it after each piece, so that a failed
// write stops the work at once rather than when the buffer fills.
void out_flush();
// The end of every command that succeeded: flushes stdout and closes a duplicate of its descriptor.
// Some errors (NFS, quotas) surface only when a descriptor is closed; closing a duplicate reports them
// while stdout itself stays usable for a caller of run() in the same process.
void finish_stdout();

// At the start of run(): a standard descriptor (0, 1, 2) that the caller left closed is occupied by
// /dev/null opened for the other direction, so that no file the command opens later becomes its
// stdin or stdout (writes then fail with EBADF, reads likewise, as on the closed descriptor), and
// stdin's being closed is remembered for read_stdin().
void guard_standard_descriptors();

// All of stdin, for the prompt source `what` ("-p -"). Throws Error "-p -: stdin is closed" or
// "-p -: reading stdin: <reason>" (e.g. "Is a directory"); an empty stdin gives "".
std::string read_stdin(const std::string& what);

}  // namespace retnet::cli
