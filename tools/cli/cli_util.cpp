#include "cli_util.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <vector>

#include "retnet/error.hpp"
#include "std_streams.hpp"

#ifndef RETNET_SOURCE_MODEL_DIR
#define RETNET_SOURCE_MODEL_DIR ""
#endif

namespace retnet::cli {

namespace fs = std::filesystem;

std::string resolve_model_dir(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("RETNET_MODEL"); env && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share/retnet/models/kjv-retnet");
  if (*RETNET_SOURCE_MODEL_DIR) candidates.emplace_back(RETNET_SOURCE_MODEL_DIR);
  for (const auto& c : candidates)
    if (fs::exists(c / "config.json", ec)) return c.string();
  throw Error("no model given (-m DIR) and the bundled model was not found (set RETNET_MODEL or pass -m)");
}

std::string read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path + ": is a directory, expected a text file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));  // the reason: missing, unreadable...
  std::string text;
  char buf[65536];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, size_t(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {  // a read error is an error, not the end of the text
      const int err = errno;
      ::close(fd);
      throw Error(path + ": read failed: " + std::strerror(err));
    }
  }
  ::close(fd);
  return text;
}

void check_prompt_source(bool prompt_given, const std::string& file) {
  if (prompt_given && !file.empty()) throw Error("give the prompt with -p or -f, not both");
}

std::string read_prompt(const std::string& prompt, bool prompt_given, const std::string& file) {
  check_prompt_source(prompt_given, file);
  if (!file.empty()) return read_file(file);
  if (prompt_given && prompt == "-") return read_stdin("-p -");
  return prompt;
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

std::function<bool(uint64_t, uint64_t)> progress_bar(const std::string& label) {
  if (!stderr_is_tty()) return {};
  return [label](uint64_t done, uint64_t total) {
    const int width = 40;
    const double f = total ? double(done) / double(total) : 1.0;
    const int fill = int(f * width);
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %.1f/%.1f MB", label.c_str(), fill,
                 "########################################", width - fill, "", int(f * 100), double(done) / 1e6,
                 double(total) / 1e6);
    if (done >= total) std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    return !interrupted();
  };
}

namespace {
std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  if (g_interrupted.exchange(true)) std::_Exit(130);
}
}  // namespace

void install_sigint_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
}

bool interrupted() { return g_interrupted.load(std::memory_order_relaxed); }

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace retnet::cli
