#include "common/json_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "retnet/error.hpp"

namespace retnet {

std::string read_text_file(const std::string& path, uint64_t max_bytes) {
  // POSIX calls rather than std::ifstream, so that the message carries the reason (EACCES, EISDIR...)
  // instead of a bare "cannot open".
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": is a directory, expected a JSON file");
  }
  if (S_ISREG(st.st_mode) && uint64_t(st.st_size) > max_bytes) {
    ::close(fd);
    throw Error(path + ": is " + std::to_string(st.st_size) + " bytes, over the limit of " + std::to_string(max_bytes) +
                " for a JSON file");
  }
  std::string text;
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int e = errno;
      ::close(fd);
      throw Error(path + ": read failed: " + std::strerror(e));
    }
    if (n == 0) break;
    // A FIFO or a file growing while read has no trustworthy st_size: bound what is read, too.
    if (text.size() + size_t(n) > max_bytes) {
      ::close(fd);
      throw Error(path + ": is more than " + std::to_string(max_bytes) + " bytes, over the limit for a JSON file");
    }
    text.append(buf, size_t(n));
  }
  ::close(fd);
  return text;
}

void check_json_nesting(std::string_view text, const std::string& path, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw Error(path + ": JSON nests deeper than " + std::to_string(max_depth) + " levels");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;  // unbalanced closers are the parser's to report
    }
  }
}

nlohmann::json parse_json_text(std::string_view text, const std::string& path) {
  check_json_nesting(text, path);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON (" + e.what() + ")");
  }
}

nlohmann::json read_json_file(const std::string& path) { return parse_json_text(read_text_file(path), path); }

}  // namespace retnet
