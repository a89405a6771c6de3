#include "std_streams.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace retnet::cli {

namespace {
bool g_stdin_closed = false;

// errno of the failure just seen, or EIO where stdio reports one without setting errno.
[[noreturn]] void fail(int err) { throw StdoutError(err ? err : EIO); }
}  // namespace

StdoutError::StdoutError(int err) : Error(std::string("writing to stdout: ") + std::strerror(err)), err_(err) {}

void out(std::string_view text) {
  errno = 0;
  if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::ferror(stdout)) fail(errno);
}

void outf(const char* fmt, ...) {
  std::va_list ap;
  va_start(ap, fmt);
  errno = 0;
  const int n = std::vfprintf(stdout, fmt, ap);
  const int err = errno;
  va_end(ap);
  if (n < 0 || std::ferror(stdout)) fail(err);
}

void out_flush() {
  errno = 0;
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) fail(errno);
}

void finish_stdout() {
  out_flush();
  const int fd = ::dup(STDOUT_FILENO);
  if (fd < 0) {
    if (errno == EBADF) fail(EBADF);  // stdout closed by the caller and not guarded: nothing was written
    return;                           // e.g. EMFILE: the check cannot be made; what was written is flushed
  }
  if (::close(fd) != 0 && errno != EINTR) fail(errno);
}

void guard_standard_descriptors() {
  g_stdin_closed = false;
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    if (fd == STDIN_FILENO) g_stdin_closed = true;
    // open() returns the lowest free descriptor: fd itself, as the lower ones are open by now.
    const int got = ::open("/dev/null", fd == STDIN_FILENO ? O_WRONLY : O_RDONLY);
    if (got >= 0 && got != fd) ::close(got);
  }
}

std::string read_stdin(const std::string& what) {
  if (g_stdin_closed) throw Error(what + ": stdin is closed");
  std::string text;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, size_t(n));
    } else if (n == 0) {
      return text;
    } else if (errno != EINTR) {
      if (errno == EBADF) throw Error(what + ": stdin is closed");
      throw Error(what + ": reading stdin: " + std::strerror(errno));
    }
  }
}

}  // namespace retnet::cli
