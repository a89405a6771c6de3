// write_file_atomically (include/retnet/atomic_write.hpp): resolve what the path names, then write it
// in place (devices, FIFOs, open descriptors) or through a synced temporary renamed over it.
#include "retnet/atomic_write.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "retnet/error.hpp"

namespace retnet {

namespace {

// Symbolic links followed before giving up (the kernel's own limit for a path is 40).
constexpr int kMaxLinks = 40;

// What a path finally names.
struct Target {
  std::string path;  // the file itself, every link of the last component followed
  int fd = -1;       // >= 0: an open descriptor of this process (/dev/stdout, /dev/fd/N, ...)
  bool exists = false;
  struct stat st {};
};

// The descriptor a path names through the /proc magic links (/dev/stdout -> /proc/self/fd/1), else -1.
// Such a link's own target ("pipe:[123]", a deleted file) is no path to write to: the descriptor is.
int descriptor_of(const std::string& p) {
  if (p == "/dev/stdout") return 1;
  if (p == "/dev/stderr") return 2;
  const std::string prefixes[] = {"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/",
                                  "/proc/" + std::to_string(::getpid()) + "/fd/"};
  for (const std::string& prefix : prefixes) {
    if (p.size() <= prefix.size() || p.compare(0, prefix.size(), prefix) != 0 || p.size() - prefix.size() > 9) continue;
    int n = 0;
    for (size_t i = prefix.size(); i < p.size(); ++i) {
      if (p[i] < '0' || p[i] > '9') return -1;
      n = n * 10 + (p[i] - '0');
    }
    return n;
  }
  return -1;
}

class Writer {
 public:
  Writer(const std::string& path, std::string_view what) : path_(path), what_(what), shown_(path) {}

  [[noreturn]] void fail(const std::string& doing, int err) const {
    throw Error(shown_ + ": " + doing + ": " + std::strerror(err));
  }

  Target resolve() {
    Target t;
    t.path = path_;
    for (int hops = 0;; ++hops) {
      t.fd = descriptor_of(t.path);
      if (t.fd >= 0) return t;
      if (::lstat(t.path.c_str(), &t.st) != 0) {
        if (errno != ENOENT) fail("cannot write " + what_, errno);
        t.exists = false;  // written as a new file (also the target of a dangling link, as a shell's > does)
        break;
      }
      if (!S_ISLNK(t.st.st_mode)) {
        t.exists = true;
        break;
      }
      if (hops == kMaxLinks) fail("cannot write " + what_, ELOOP);
      std::string link(size_t(t.st.st_size > 0 ? t.st.st_size : 255) + 1, '\0');
      const ssize_t n = ::readlink(t.path.c_str(), link.data(), link.size());
      if (n < 0) fail("cannot write " + what_, errno);
      if (size_t(n) >= link.size()) fail("cannot write " + what_, ENAMETOOLONG);  // changed under us
      link.resize(size_t(n));
      // A relative link is relative to the directory holding it.
      const std::filesystem::path parent = std::filesystem::path(t.path).parent_path();
      t.path = link.front() == '/' || parent.empty() ? link : (parent / link).string();
    }
    if (t.path != path_) shown_ = path_ + " (-> " + t.path + ")";
    return t;
  }

  // 0, or the errno of the write that failed.
  static int write_all(int fd, std::span<const std::span<const uint8_t>> parts) {
    for (const std::span<const uint8_t> part : parts)
      for (size_t done = 0; done < part.size();) {
        const ssize_t n = ::write(fd, part.data() + done, part.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? errno : EIO;
        done += size_t(n);
      }
    return 0;
  }

  // Devices, FIFOs and descriptors: no temporary (there is nothing to rename over), no sync.
  void write_in_place(const Target& t, std::span<const std::span<const uint8_t>> parts) {
    if (t.fd >= 0) {
      struct stat st;
      if (::fstat(t.fd, &st) != 0) fail("cannot write " + what_, errno);
      if (const int e = write_all(t.fd, parts)) fail("writing the " + what_ + " failed", e);
      return;
    }
    const int fd = ::open(t.path.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) fail("cannot write " + what_, errno);
    if (const int e = write_all(fd, parts)) {
      ::close(fd);
      fail("writing the " + what_ + " failed", e);
    }
    if (::close(fd) != 0) fail("closing the " + what_ + " failed", errno);
  }

  void write_replacing(const Target& t, std::span<const std::span<const uint8_t>> parts) {
    const std::filesystem::path parent = std::filesystem::path(t.path).parent_path();
    const std::string dir = parent.empty() ? "." : parent.string();
    // A short name of its own, unique per process and call: a long target name cannot make it too
    // long, and saves to one path at the same time cannot write into each other's temporary.
    static std::atomic<uint64_t> counter{0};
    const std::string tmp = dir + "/.retnet-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".tmp";
    // An existing file's permissions are set on the temporary before any byte is written to it; until
    // then it is readable by the owner only.
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, t.exists ? 0600 : 0666);
    if (fd < 0) fail("cannot write " + what_, errno);
    if (t.exists) {
      struct stat mine;
      if (::fstat(fd, &mine) == 0 && (mine.st_uid != t.st.st_uid || mine.st_gid != t.st.st_gid))
        (void)!::fchown(fd, t.st.st_uid, t.st.st_gid);  // allowed to root (or for a group of ours) only
      if (::fchmod(fd, t.st.st_mode & 0777) != 0) {
        const int e = errno;
        abandon(fd, tmp);
        fail("cannot set the permissions of the " + what_, e);
      }
    }
    if (const int e = write_all(fd, parts)) {
      abandon(fd, tmp);
      fail("writing the " + what_ + " failed", e);
    }
    if (::fsync(fd) != 0) {
      const int e = errno;
      abandon(fd, tmp);
      fail("syncing the " + what_ + " failed", e);
    }
    if (::close(fd) != 0) {
      const int e = errno;
      ::unlink(tmp.c_str());
      fail("closing the " + what_ + " failed", e);
    }
    if (std::rename(tmp.c_str(), t.path.c_str()) != 0) {
      const int e = errno;
      ::unlink(tmp.c_str());
      fail("cannot move the " + what_ + " into place", e);
    }
    // The rename is durable once the directory is synced (some file systems refuse: EINVAL).
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      const int r = ::fsync(dfd), e = errno;
      ::close(dfd);
      if (r != 0 && e != EINVAL) fail("syncing the directory of the " + what_ + " failed", e);
    }
  }

  void run(std::span<const std::span<const uint8_t>> parts) {
    if (path_.empty()) throw Error("cannot write " + what_ + ": the path is empty");
    const Target t = resolve();
    if (t.fd >= 0) return write_in_place(t, parts);
    if (t.exists) {
      const mode_t m = t.st.st_mode;
      if (S_ISDIR(m)) fail("cannot write " + what_, EISDIR);
      if (S_ISBLK(m)) throw Error(shown_ + ": cannot write " + what_ + ": is a block device (refused)");
      if (S_ISSOCK(m)) throw Error(shown_ + ": cannot write " + what_ + ": is a socket (refused)");
      if (S_ISCHR(m) || S_ISFIFO(m)) return write_in_place(t, parts);
    }
    write_replacing(t, parts);
  }

 private:
  static void abandon(int fd, const std::string& tmp) {
    ::close(fd);
    ::unlink(tmp.c_str());
  }

  const std::string& path_;
  std::string what_;
  std::string shown_;  // the path as given, and the file it resolves to when that differs
};

}  // namespace

void write_file_atomically(const std::string& path, std::span<const std::span<const uint8_t>> parts,
                           std::string_view what) {
  Writer(path, what).run(parts);
}

void write_file_atomically(const std::string& path, std::span<const uint8_t> bytes, std::string_view what) {
  write_file_atomically(path, std::span<const std::span<const uint8_t>>(&bytes, 1), what);
}

}  // namespace retnet
