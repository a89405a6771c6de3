// Decoding must not touch the heap once a Session is warm (design rule: no allocation per token).
// This binary's global operator new counts allocations while `counting` is set.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "test_util.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace retnet::test {
namespace {

TEST(Allocation, DecodeDoesNotAllocate) {
  for (const std::string f : {"ts_swish_scaled", "fla_bf16_tied"}) {
    for (int threads : {1, 2}) {
      auto model = load_fixture(f, threads);
      const auto ids = golden_ids(f);
      Session s(model);
      s.prefill(std::span<const int32_t>(ids.data(), 5), PrefillOptions{});
      s.decode(ids[5]);  // warm-up: workspaces reach their decode size
      allocations = 0;
      counting = true;
      for (size_t t = 6; t < ids.size(); ++t) s.decode(ids[t]);
      counting = false;
      EXPECT_EQ(allocations.load(), 0) << f << " threads=" << threads;
    }
  }
}

}  // namespace
}  // namespace retnet::test
