// Noticing that a non-streaming client went away (tools/serve/peer.hpp): the socket lookup by
// addresses and the poll, on a real loopback connection. Through HTTP:
// test_non_streaming_client_that_leaves_frees_its_slot (tests/serve/test_hostile.py).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "serve/peer.hpp"

namespace {

using namespace retnet::serve;

// The socket of a connection is found by its addresses, and its peer's close is noticed (pending
// request bytes are not a close, and they are left unread).
TEST(ServePeer, FindsTheConnectionAndNoticesItsPeerLeaving) {
  const int lst = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(lst, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(lst, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lst, 1), 0);
  socklen_t al = sizeof a;
  ASSERT_EQ(getsockname(lst, reinterpret_cast<sockaddr*>(&a), &al), 0);
  const int cli = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_EQ(connect(cli, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const int srv = accept(lst, nullptr, nullptr);
  ASSERT_GE(srv, 0);
  sockaddr_in c{};
  socklen_t cl = sizeof c;
  ASSERT_EQ(getsockname(cli, reinterpret_cast<sockaddr*>(&c), &cl), 0);

  EXPECT_EQ(find_connection_socket(ntohs(a.sin_port), "127.0.0.1", ntohs(c.sin_port)), srv);
  EXPECT_EQ(find_connection_socket(ntohs(a.sin_port), "127.0.0.1", ntohs(c.sin_port) == 1 ? 2 : 1), -1);
  EXPECT_EQ(find_connection_socket(ntohs(a.sin_port), "10.9.8.7", ntohs(c.sin_port)), -1);
  EXPECT_FALSE(peer_closed(srv));
  ASSERT_EQ(write(cli, "GET", 3), 3);
  EXPECT_FALSE(peer_closed(srv));
  char buf[3];
  EXPECT_EQ(read(srv, buf, 3), 3);  // still there: the poll only peeked
  close(cli);
  bool closed = false;
  for (int i = 0; i < 100 && !closed; ++i) {
    closed = peer_closed(srv);
    if (!closed) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(closed);
  EXPECT_FALSE(peer_closed(-1));
  close(srv);
  close(lst);
}

}  // namespace
