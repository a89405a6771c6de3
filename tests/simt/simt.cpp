// The SIMT emulator's scheduler: fibers per block, barriers, warp collectives, shared storage.
#include "simt.hpp"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <random>
#include <vector>

// AddressSanitizer keeps shadow state per stack and must be told when execution moves to another
// one; otherwise the first exception thrown on a fiber (or any stack unwinding there) makes it
// mis-attribute frames and report false stack-buffer-overflows (tools/sanitize.sh runs these tests).
#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif
#ifdef SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace {
thread_local cudaError_t g_last_error = cudaSuccess;
}

// ---- context switch ---------------------------------------------------------------------------------
// glibc's swapcontext saves and restores the signal mask with a system call on every switch, which
// made the emulator spend most of its time in the kernel. On x86-64 a fiber switch only has to keep
// the callee-saved registers, the stack pointer and the FP control words (SysV ABI); elsewhere (or
// with SIMT_UCONTEXT defined) the portable ucontext path is used.
#if defined(__x86_64__) && !defined(SIMT_UCONTEXT)
#define SIMT_FAST_SWITCH 1
extern "C" void simt_switch_x86_64(void** save_sp, void* load_sp);
asm(R"(
  .text
  .globl simt_switch_x86_64
  .type simt_switch_x86_64,@function
simt_switch_x86_64:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size simt_switch_x86_64, .-simt_switch_x86_64
  .section .note.GNU-stack,"",@progbits
  .text
)");
#endif

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNotSupported:
      return "operation not supported";
  }
  return "unknown error";
}
cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last_error; }

namespace simt {
namespace detail {

namespace {

constexpr size_t kMaxStaticShared = 48 * 1024;    // what a __shared__ declaration may use on sm_80/90
constexpr size_t kMaxTotalShared = 227 * 1024;    // opt-in maximum per block on sm_90 (sm_80: 163 KiB)
constexpr int kMaxThreads = 1024;
constexpr uint64_t kPoison = ~uint64_t(0);

enum class Wait : uint8_t { Running, Block, Warp, Done };

struct Fiber {
#ifdef SIMT_FAST_SWITCH
  void* sp = nullptr;
#else
  ucontext_t ctx;
#endif
  char* stack = nullptr;  // lowest usable address of its stack, and its size (for ASan)
  size_t stack_size = 0;
  void* fake_stack = nullptr;  // ASan's use-after-return frames of this fiber while it is switched out
  uint3 tid{};
  unsigned lane = 0, warp = 0;
  Wait wait = Wait::Running;
  // block barrier
  BlockOp bop = BlockOp::Sync;
  int pred = 0;
  // warp collective
  WarpOp wop = WarpOp::Sync;
  uint32_t mask = 0;
  uint64_t value = 0;
  int param = 0, width = 32;
  uint64_t result = 0;
};

// Fiber stacks, mapped once per host thread and reused by every launch.
struct StackPool {
  size_t size = 0;  // usable bytes per stack
  std::vector<char*> stacks;
  ~StackPool() {
    for (char* s : stacks) munmap(s, size + page());
  }
  static size_t page() { return size_t(sysconf(_SC_PAGESIZE)); }
  char* get(size_t i) {
    if (size == 0) {
      size_t kb = 128;
      if (const char* e = std::getenv("SIMT_STACK_KB")) kb = std::max<size_t>(16, std::strtoul(e, nullptr, 10));
      size = kb * 1024;
    }
    while (stacks.size() <= i) {
      void* p = mmap(nullptr, size + page(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p == MAP_FAILED) throw Error("simt: cannot map a fiber stack");
      mprotect(p, page(), PROT_NONE);  // guard page: stacks grow down into it
      stacks.push_back(static_cast<char*>(p));
    }
    return stacks[i] + page();
  }
};

struct Block {
  uint3 bid{};
  dim3 bdim, gdim;
  std::vector<Fiber> fibers;
#ifdef SIMT_FAST_SWITCH
  void* sched_sp = nullptr;
#else
  ucontext_t sched;
#endif
  const void* sched_stack = nullptr;  // the scheduler's (host thread's) stack, learnt by ASan annotations
  size_t sched_stack_size = 0;
  void* sched_fake_stack = nullptr;
  void (*body)(void*) = nullptr;
  void* body_ctx = nullptr;
  std::exception_ptr error;
  // shared storage: [dynamic | static allocations ...]
  std::vector<unsigned char> shared;
  size_t dynamic_bytes = 0, used = 0, static_used = 0;
  std::vector<std::pair<const void*, size_t>> statics;  // declaration tag → offset
};

thread_local Block* g_block = nullptr;
thread_local Fiber* g_fiber = nullptr;
thread_local StackPool g_stacks;
thread_local Schedule g_schedule = Schedule::Forward;
thread_local uint64_t g_seed = 0;
Stats g_stats;

Fiber& current() {
  if (!g_fiber) {
    std::fputs("simt: a device built-in was used outside a kernel launched by simt::launch\n", stderr);
    std::abort();
  }
  return *g_fiber;
}

void run_body() {
  Block& b = *g_block;
  try {
    b.body(b.body_ctx);
  } catch (...) {
    if (!b.error) b.error = std::current_exception();
  }
  g_fiber->wait = Wait::Done;
}

// ASan fiber protocol: start_switch before every switch (naming the destination stack; a null
// fake-stack slot when the leaving fiber is finished for good), finish_switch first thing after
// arriving. A fiber's first arrival also learns the scheduler's stack bounds.
#ifdef SIMT_ASAN
void asan_leave_fiber(Fiber* f) {
  __sanitizer_start_switch_fiber(f ? &f->fake_stack : nullptr, g_block->sched_stack, g_block->sched_stack_size);
}
void asan_enter_fiber(Fiber& f, bool first) {
  __sanitizer_finish_switch_fiber(first ? nullptr : f.fake_stack, &g_block->sched_stack, &g_block->sched_stack_size);
}
void asan_leave_scheduler(Block& b, Fiber& f) { __sanitizer_start_switch_fiber(&b.sched_fake_stack, f.stack, f.stack_size); }
void asan_enter_scheduler(Block& b) { __sanitizer_finish_switch_fiber(b.sched_fake_stack, nullptr, nullptr); }
#else
void asan_leave_fiber(Fiber*) {}
void asan_enter_fiber(Fiber&, bool) {}
void asan_leave_scheduler(Block&, Fiber&) {}
void asan_enter_scheduler(Block&) {}
#endif

#ifdef SIMT_FAST_SWITCH
[[noreturn]] void fiber_entry() {
  asan_enter_fiber(*g_fiber, true);
  run_body();
  void* dead;
  asan_leave_fiber(nullptr);
  simt_switch_x86_64(&dead, g_block->sched_sp);  // never resumed
  __builtin_unreachable();
}
void suspend(Fiber& f) {
  asan_leave_fiber(&f);
  simt_switch_x86_64(&f.sp, g_block->sched_sp);
  asan_enter_fiber(f, false);
}
void resume(Block& b, Fiber& f) {
  asan_leave_scheduler(b, f);
  simt_switch_x86_64(&b.sched_sp, f.sp);
  asan_enter_scheduler(b);
}
#else
void fiber_entry() {  // uc_link returns to the scheduler
  asan_enter_fiber(*g_fiber, true);
  run_body();
  asan_leave_fiber(nullptr);
}
void suspend(Fiber& f) {
  asan_leave_fiber(&f);
  swapcontext(&f.ctx, &g_block->sched);
  asan_enter_fiber(f, false);
}
void resume(Block& b, Fiber& f) {
  asan_leave_scheduler(b, f);
  swapcontext(&b.sched, &f.ctx);
  asan_enter_scheduler(b);
}
#endif

std::string where(const Block& b) {
  return "block (" + std::to_string(b.bid.x) + "," + std::to_string(b.bid.y) + "," + std::to_string(b.bid.z) + ")";
}

// Source lane of a shuffle for `lane`, or -1 for "own value" (CUDA's out-of-segment rule).
int shuffle_source(WarpOp op, int lane, int param, int width) {
  const int seg = lane & ~(width - 1);
  switch (op) {
    case WarpOp::Idx: return seg + (param & (width - 1));
    case WarpOp::Xor: {
      const int s = lane ^ param;
      return s < seg + width && s >= 0 && s < 32 && (s & ~(width - 1)) <= seg ? s : -1;
    }
    case WarpOp::Down: return (lane - seg) + param < width ? lane + param : -1;
    case WarpOp::Up: return (lane - seg) >= param ? lane - param : -1;
    default: return -1;
  }
}

// Tries to complete the warp collectives of warp w. Returns true if some lanes were released.
bool resolve_warp(Block& b, unsigned w, size_t nthreads) {
  const size_t first = size_t(w) * 32;
  const size_t n = std::min<size_t>(32, nthreads - first);
  const uint32_t exists = n == 32 ? 0xffffffffu : ((1u << n) - 1u);
  bool released = false;
  for (size_t i = 0; i < n; ++i) {
    Fiber& f = b.fibers[first + i];
    if (f.wait != Wait::Warp) continue;
    const uint32_t group = f.mask & exists;
    if (!(group >> i & 1u))
      throw Error("simt: " + where(b) + " warp " + std::to_string(w) + " lane " + std::to_string(i) +
                  ": warp collective with a mask that excludes the calling lane");
    bool ready = true;
    for (size_t j = 0; j < n && ready; ++j) {
      if (!(group >> j & 1u)) continue;
      const Fiber& g = b.fibers[first + j];
      if (g.wait == Wait::Done)
        throw Error("simt: " + where(b) + " warp " + std::to_string(w) + ": lane " + std::to_string(j) +
                    " exited but is named in the mask of a warp collective");
      if (g.wait == Wait::Block)
        throw Error("simt: " + where(b) + " warp " + std::to_string(w) + ": lane " + std::to_string(j) +
                    " waits at __syncthreads while lane " + std::to_string(i) + " waits at a warp collective");
      if (g.wait != Wait::Warp) ready = false;
      else if (g.mask != f.mask || g.wop != f.wop)
        throw Error("simt: " + where(b) + " warp " + std::to_string(w) +
                    ": lanes reached different warp collectives (mask or operation differ)");
    }
    if (!ready) continue;
    // Every lane of the group is here: compute all results before anyone resumes.
    uint64_t ballot = 0;
    for (size_t j = 0; j < n; ++j)
      if (group >> j & 1u) ballot |= uint64_t(b.fibers[first + j].value != 0) << j;
    for (size_t j = 0; j < n; ++j) {
      if (!(group >> j & 1u)) continue;
      Fiber& g = b.fibers[first + j];
      switch (g.wop) {
        case WarpOp::Sync: g.result = 0; break;
        case WarpOp::Ballot: g.result = ballot; break;
        case WarpOp::Any: g.result = ballot != 0; break;
        case WarpOp::All: g.result = ballot == group; break;
        default: {
          const int src = shuffle_source(g.wop, int(j), g.param, g.width);
          if (src < 0) g.result = g.value;
          else if (size_t(src) < n && (group >> src & 1u)) g.result = b.fibers[first + size_t(src)].value;
          else g.result = kPoison;  // source lane inactive or absent: undefined on the device
        }
      }
    }
    for (size_t j = 0; j < n; ++j)
      if (group >> j & 1u) b.fibers[first + j].wait = Wait::Running;
    ++g_stats.warp_barriers;
    released = true;
  }
  return released;
}

// Kept out of line: getcontext "returns twice" in the compiler's eyes, which would otherwise make it
// assume the caller's locals may be clobbered (the context is only ever entered via makecontext).
__attribute__((noinline)) void init_fiber(Block& b, size_t i) {
  Fiber& f = b.fibers[i];
  f = Fiber{};
  f.tid = {unsigned(i % b.bdim.x), unsigned(i / b.bdim.x % b.bdim.y), unsigned(i / (size_t(b.bdim.x) * b.bdim.y))};
  f.lane = unsigned(i % 32);
  f.warp = unsigned(i / 32);
  char* stack = g_stacks.get(i);
  f.stack = stack;
  f.stack_size = g_stacks.size;
#ifdef SIMT_ASAN
  // A reused stack may still carry the shadow of frames a previous launch abandoned (a block stopped
  // by an error leaves its other fibers suspended mid-kernel): start from clean shadow.
  ASAN_UNPOISON_MEMORY_REGION(stack, g_stacks.size);
#endif
#ifdef SIMT_FAST_SWITCH
  // Initial frame as simt_switch_x86_64 leaves it: [mxcsr | fpu cw] r15 r14 r13 r12 rbx rbp, then the
  // return address (fiber_entry) on a 16-byte boundary so that fiber_entry starts as if called.
  auto top = reinterpret_cast<uintptr_t>(stack + g_stacks.size) & ~uintptr_t(15);
  auto* slot = reinterpret_cast<uint64_t*>(top - 16);
  slot[0] = reinterpret_cast<uint64_t>(&fiber_entry);
  slot[1] = 0;
  uint64_t* regs = slot - 6;
  for (int r = 0; r < 6; ++r) regs[r] = 0;
  auto* ctl = reinterpret_cast<uint32_t*>(regs - 1);
  uint32_t mxcsr;
  uint16_t fcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fcw));
  ctl[0] = mxcsr;
  ctl[1] = fcw;
  f.sp = ctl;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stack;
  f.ctx.uc_stack.ss_size = g_stacks.size;
  f.ctx.uc_link = &b.sched;
  makecontext(&f.ctx, fiber_entry, 0);
#endif
}

void run_block(Block& b) {
  const size_t n = b.fibers.size();
  for (size_t i = 0; i < n; ++i) init_fiber(b, i);
  b.used = b.dynamic_bytes;
  b.static_used = 0;
  b.statics.clear();
  std::memset(b.shared.data(), 0xff, b.dynamic_bytes);

  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = g_schedule == Schedule::Reverse ? n - 1 - i : i;
  std::mt19937_64 rng(g_seed ^ (uint64_t(b.bid.x) << 32 | uint64_t(b.bid.y) << 16 | b.bid.z));
  size_t live = n;
  while (live > 0) {
    if (g_schedule == Schedule::Shuffled) std::shuffle(order.begin(), order.end(), rng);
    bool ran = false;
    for (size_t i : order) {
      Fiber& f = b.fibers[i];
      if (f.wait != Wait::Running) continue;
      g_fiber = &f;
      resume(b, f);
      g_fiber = nullptr;
      ran = true;
      if (b.error) std::rethrow_exception(b.error);
      if (f.wait == Wait::Done) --live;
    }
    if (live == 0) break;
    // Warp collectives first (a lane waiting at one cannot also be at __syncthreads).
    bool released = false;
    for (unsigned w = 0; w < unsigned((n + 31) / 32); ++w) released |= resolve_warp(b, w, n);
    if (released) continue;
    size_t at_block = 0, done = 0;
    for (const Fiber& f : b.fibers) {
      at_block += f.wait == Wait::Block;
      done += f.wait == Wait::Done;
    }
    if (at_block > 0 && at_block + done == n) {
      if (done > 0)
        throw Error("simt: " + where(b) + ": __syncthreads reached after " + std::to_string(done) +
                    " thread(s) of the block exited");
      const BlockOp op = b.fibers[0].bop;
      int count = 0;
      for (const Fiber& f : b.fibers) {
        if (f.bop != op) throw Error("simt: " + where(b) + ": threads reached different __syncthreads variants");
        count += f.pred;
      }
      const int r = op == BlockOp::Count ? count : op == BlockOp::And ? int(count == int(n)) : op == BlockOp::Or ? int(count > 0) : 0;
      for (Fiber& f : b.fibers) {
        f.wait = Wait::Running;
        f.result = uint64_t(r);
      }
      ++g_stats.block_barriers;
      continue;
    }
    if (!ran) {
      size_t at_warp = n - at_block - done;
      throw Error("simt: " + where(b) + ": deadlock (" + std::to_string(at_block) + " threads at __syncthreads, " +
                  std::to_string(at_warp) + " at warp collectives, " + std::to_string(done) + " exited)");
    }
  }
  ++g_stats.blocks;
}

}  // namespace

uint3 thread_idx() { return current().tid; }
uint3 block_idx() {
  current();
  return g_block->bid;
}
dim3 block_dim() {
  current();
  return g_block->bdim;
}
dim3 grid_dim() {
  current();
  return g_block->gdim;
}

int block_barrier(BlockOp op, int pred) {
  Fiber& f = current();
  f.bop = op;
  f.pred = pred;
  f.wait = Wait::Block;
  suspend(f);
  return int(f.result);
}

uint64_t warp_collective(WarpOp op, uint32_t mask, uint64_t value, int param, int width) {
  Fiber& f = current();
  if (width <= 0 || width > 32 || (width & (width - 1)))
    throw Error("simt: warp collective width " + std::to_string(width) + " is not a power of two in [1, 32]");
  f.wop = op;
  f.mask = mask;
  f.value = value;
  f.param = param;
  f.width = width;
  f.wait = Wait::Warp;
  suspend(f);
  return f.result;
}

void* shared_alloc(const void* tag, size_t bytes, size_t align) {
  current();
  Block& b = *g_block;
  for (const auto& [t, off] : b.statics)
    if (t == tag) return b.shared.data() + off;
  const size_t off = (b.used + align - 1) / align * align;
  if (b.static_used + bytes > kMaxStaticShared)
    throw Error("simt: static shared memory above " + std::to_string(kMaxStaticShared) + " bytes");
  if (off + bytes > kMaxTotalShared) throw Error("simt: shared memory above the per-block maximum");
  std::memset(b.shared.data() + off, 0xff, bytes);
  b.statics.emplace_back(tag, off);
  b.used = off + bytes;
  b.static_used += bytes;
  return b.shared.data() + off;
}

void* dynamic_shared_base() {
  current();
  return g_block->shared.data();
}

void run_grid(dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* ctx) {
  const size_t nthreads = size_t(block.x) * block.y * block.z;
  if (nthreads == 0 || nthreads > size_t(kMaxThreads) || block.z > 64 || grid.x == 0 || grid.y == 0 ||
      grid.z == 0 || grid.y > 65535 || grid.z > 65535 || shared_bytes > kMaxTotalShared) {
    g_last_error = cudaErrorInvalidConfiguration;
    return;
  }
  if (g_block) throw Error("simt: nested launch from inside a kernel is not supported");
  Block b;
  b.bdim = block;
  b.gdim = grid;
  b.body = body;
  b.body_ctx = ctx;
  b.fibers.resize(nthreads);
  b.shared.resize(kMaxTotalShared);
  b.dynamic_bytes = (shared_bytes + 15) / 16 * 16;
  g_block = &b;
  try {
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          b.bid = {x, y, z};
          b.error = nullptr;
          run_block(b);
        }
  } catch (...) {
    g_block = nullptr;
    g_fiber = nullptr;
    throw;
  }
  g_block = nullptr;
}

}  // namespace detail

void set_schedule(Schedule s, uint64_t seed) {
  detail::g_schedule = s;
  detail::g_seed = seed;
}
Schedule schedule() { return detail::g_schedule; }
Stats stats() { return detail::g_stats; }
void reset_stats() { detail::g_stats = Stats{}; }

}  // namespace simt

unsigned __activemask() {
  // Fibers do not diverge inside a warp the way hardware does; report the lanes still running.
  using namespace simt::detail;
  Fiber& f = current();
  const size_t first = size_t(f.warp) * 32;
  unsigned m = 0;
  for (size_t j = 0; j < 32 && first + j < g_block->fibers.size(); ++j)
    if (g_block->fibers[first + j].wait != Wait::Done) m |= 1u << j;
  return m;
}
