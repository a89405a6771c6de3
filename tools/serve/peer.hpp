// Noticing that an HTTP client went away while it waits for a non-streaming reply. cpp-httplib
// 0.11.4 gives a handler neither its socket nor a "connection closed" query (later versions have
// Request::is_connection_closed), so the socket is found by its addresses and polled. Linux only
// (/proc/self/fd); elsewhere nothing is found and nothing is noticed, as before.
#pragma once
#include <string>

namespace retnet::serve {

// This process's TCP socket whose local port is `local_port` and whose peer is `peer_addr` (numeric,
// as httplib's Request::remote_addr) port `peer_port`; -1 when there is none. A connection's socket
// stays open while its handler runs, so the answer stays valid that long.
int find_connection_socket(int local_port, const std::string& peer_addr, int peer_port);

// Whether the peer of connected socket `fd` closed its side (or the connection failed): poll without
// waiting, and an end of stream seen with MSG_PEEK (nothing is consumed). A client that only shut
// down its sending side counts as gone.
bool peer_closed(int fd);

}  // namespace retnet::serve
