// Decoding must not touch the heap once a Session is warm (design rule: no allocation per token).
// This binary's global operator new counts allocations while `counting` is set.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

#include "test_util.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

// Every replaceable allocation form is replaced, aligned and nothrow ones included: an allocation
// through a form left out would not be counted, and under AddressSanitizer (which interposes every
// form it is not given) memory from its nothrow/aligned new would reach the free() below, an
// alloc-dealloc mismatch. aligned_alloc memory is released by free() as well.
namespace {
void* counted_alloc(std::size_t n, std::size_t align) noexcept {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(n);
  return std::aligned_alloc(align, (n + align - 1) / align * align);
}
void* counted_alloc_or_throw(std::size_t n, std::size_t align) {
  if (void* p = counted_alloc(n, align)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new[](std::size_t n) { return counted_alloc_or_throw(n, 0); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_alloc_or_throw(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_alloc_or_throw(n, std::size_t(a)); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return counted_alloc(n, std::size_t(a)); }
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept { return counted_alloc(n, std::size_t(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

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
