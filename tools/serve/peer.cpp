// Finding and polling a handler's connection (peer.hpp).
#include "peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace retnet::serve {

namespace {

// The port and numeric address of a socket address; false for anything but IPv4 and IPv6.
bool address_of(const sockaddr_storage& ss, int& port, std::string& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    port = ntohs(a->sin_port);
    if (!inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf)) return false;
  } else if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    port = ntohs(a->sin6_port);
    if (!inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf)) return false;
  } else {
    return false;
  }
  addr = buf;
  return true;
}

}  // namespace

int find_connection_socket(int local_port, const std::string& peer_addr, int peer_port) {
  if (local_port <= 0 || peer_port <= 0) return -1;
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc/self/fd", ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    char* stop = nullptr;
    const std::string name = it->path().filename().string();
    const long fd = std::strtol(name.c_str(), &stop, 10);
    if (stop == name.c_str() || *stop != '\0' || fd < 0) continue;
    sockaddr_storage local{}, peer{};
    socklen_t ll = sizeof local, pl = sizeof peer;
    if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&local), &ll) != 0) continue;  // not a socket
    if (getpeername(int(fd), reinterpret_cast<sockaddr*>(&peer), &pl) != 0) continue;   // not connected
    int lport = 0, pport = 0;
    std::string laddr, paddr;
    if (!address_of(local, lport, laddr) || !address_of(peer, pport, paddr)) continue;
    // An IPv4 peer on an IPv6 socket reads "::ffff:a.b.c.d" here; httplib may give either form.
    const bool same_addr = paddr == peer_addr || paddr == "::ffff:" + peer_addr || "::ffff:" + paddr == peer_addr;
    if (lport == local_port && pport == peer_port && same_addr) return int(fd);
  }
  return -1;
}

bool peer_closed(int fd) {
  if (fd < 0) return false;
#ifdef POLLRDHUP
  const short rdhup = POLLRDHUP;  // Linux: the peer's FIN, also while unread data is queued before it
#else
  const short rdhup = 0;
#endif
  pollfd p{fd, short(POLLIN | rdhup), 0};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLHUP | POLLERR | POLLNVAL | rdhup)) return true;
  if (p.revents & POLLIN) {
    // Readable: either more requests (pipelined: still there) or the end of the stream (gone).
    char c;
    const ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  }
  return false;
}

}  // namespace retnet::serve
