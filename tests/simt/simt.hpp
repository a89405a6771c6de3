// SIMT emulator: compiles CUDA kernel source as host C++ and runs it on the CPU, one block at a
// time, every thread of the block a fiber, so that kernels can be tested bit-for-bit against the CPU
// backend on a machine without a GPU (CI). It is a test tool, not a performance path.
//
// ---- Supported subset -------------------------------------------------------------------------
// Execution model
//   * simt::launch(grid, block, shared_bytes, kernel, args...) runs every block of the grid in order
//     (z, y, x); inside a block every thread is a fiber with its own stack (default 128 KiB,
//     SIMT_STACK_KB overrides; a guard page turns an overflow into SIGSEGV). Fibers switch with a
//     few instructions on x86-64 and with ucontext (makecontext/swapcontext) elsewhere or when
//     simt.cpp is built with SIMT_UCONTEXT.
//   * Fibers are cooperative: a thread runs until it reaches a barrier or returns. Between barriers the
//     threads of a block run one after another in the order simt::set_schedule() picks (forward,
//     reverse or a seeded shuffle). A kernel whose result depends on that order has a data race:
//     the tests run kernels under several orders and compare the outputs bit for bit.
//   * Launch-configuration errors (block > 1024 threads, empty grid, too much shared memory) set the
//     error that cudaGetLastError()/cudaPeekAtLastError() return, as the runtime does.
//   * Barrier misuse is reported by throwing simt::Error from launch(): __syncthreads() reached by
//     some threads while others have exited or wait at a warp barrier (divergence), a warp
//     collective whose mask names an exited lane, deadlock. (CUDA leaves these undefined.)
// Built-ins
//   threadIdx, blockIdx, blockDim, gridDim (uint3/dim3), warpSize (32).
//   __syncthreads, __syncthreads_count/_and/_or, __syncwarp, __threadfence(_block).
//   __shfl_sync, __shfl_xor_sync, __shfl_up_sync, __shfl_down_sync (any trivially copyable type of at
//   most 8 bytes, width 1..32 power of two), __ballot_sync, __any_sync, __all_sync, __activemask.
//   Every warp collective is a real barrier over the lanes of its mask that exist in the block. Reading
//   a lane outside the mask or beyond the block returns a poison value (all bits set: NaN for floats).
//   atomicAdd (int, unsigned, unsigned long long, float, double), atomicMax/atomicMin (int, unsigned),
//   atomicExch, atomicCAS, through std::atomic_ref.
//   __ldg, __float_as_uint, __uint_as_float, __float_as_int, __int_as_float, rsqrtf (= 1/sqrtf),
//   __fdividef, __fmul_rn, __fadd_rn, __fmaf_rn, __saturatef. Accurate libm functions (sinf, cosf,
//   expf, erff, ...) are the host's: identical to what the CPU backend calls.
//   float2/float4/int2/int4/uint2/uint4 (CUDA alignment) and make_*; dim3, uint3.
//   __half, __half2, __nv_bfloat16, __nv_bfloat162 with __float2half(_rn), __half2float,
//   __float2bfloat16(_rn), __bfloat162float, __half22float2, __bfloat1622float2, __ushort_as_half,
//   __half_as_ushort, __ushort_as_bfloat16, __bfloat16_as_ushort: round-to-nearest-even, NaN as the
//   CUDA host path returns it (0x7fff).
// Shared memory
//   RETNET_SHARED(type, name, count) declares block-shared storage: `__shared__ type name[count]` on
//   the device, a pointer into per-block storage here. RETNET_DYNAMIC_SHARED(type, name) is the
//   `extern __shared__` array sized by the launch. Use those macros, never `__shared__` directly (it is
//   deliberately not defined here). Shared storage starts filled with 0xFF bytes (NaN) to expose reads
//   of uninitialised shared memory; static use above 48 KiB and totals above 227 KiB are rejected.
// Stream capture (emulated CUDA graphs, simt_capture.cpp)
//   Between simt::begin_capture() and simt::end_capture() on a host thread, launch() and simt::submit()
//   record their work instead of running it (launch arguments copied, as a graph's kernel node keeps
//   them); Graph::replay() runs the recorded work in order, as cudaGraphLaunch would. Capture is per
//   host thread, like cudaStreamCaptureModeThreadLocal. Work recorded this way reads its inputs when
//   replayed, so a graph that baked a stale value shows it in the emulator as on the device.
// Not supported: cooperative groups, dynamic parallelism, textures, __constant__, warp-level matrix ops
//   (wmma/mma), inline PTX, streams/events semantics (cudaStream_t is a dummy; launches are synchronous).
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <math.h>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define RETNET_SIMT_EMULATOR 1

// ---- execution-space keywords ------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

#define RETNET_SHARED(type, name, count)  \
  static char name##_simt_tag;            \
  type* const name = ::simt::detail::shared_array<type>(&name##_simt_tag, size_t(count))
#define RETNET_DYNAMIC_SHARED(type, name) type* const name = ::simt::detail::dynamic_shared<type>()

// ---- vector and index types --------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }
inline int2 make_int2(int x, int y) { return {x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return {x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return {x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return {x, y, z, w}; }

constexpr int warpSize = 32;

// ---- runtime stand-ins ---------------------------------------------------------------------------
struct CUstream_st;
using cudaStream_t = CUstream_st*;
enum cudaError_t : int {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorLaunchFailure = 4,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorNotSupported = 801,  // launchers asked for a weight type they have no kernel for
};
const char* cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();   // returns and clears the last launch error
cudaError_t cudaPeekAtLastError();

namespace simt {

// Thrown from launch() for barrier misuse, deadlock, or an exception escaping a kernel thread.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Schedule { Forward, Reverse, Shuffled };
// Order in which the threads of a block run between two barriers (seed used by Shuffled).
void set_schedule(Schedule s, uint64_t seed = 0);
Schedule schedule();

// Counters since the last reset: blocks run and barrier releases, for tests of the emulator itself.
struct Stats {
  uint64_t blocks = 0, block_barriers = 0, warp_barriers = 0;
};
Stats stats();
void reset_stats();

namespace detail {

enum class WarpOp : uint8_t { Sync, Idx, Xor, Down, Up, Ballot, Any, All };
enum class BlockOp : uint8_t { Sync, Count, And, Or };

struct ThreadState;
uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();

// Blocks the calling fiber until the whole block arrives; returns the reduction of pred for op.
int block_barrier(BlockOp op, int pred);
// Warp collective over the lanes in mask: value (raw bits) in, the source lane's bits out.
uint64_t warp_collective(WarpOp op, uint32_t mask, uint64_t value, int param, int width);

void* shared_alloc(const void* tag, size_t bytes, size_t align);
void* dynamic_shared_base();

template <class T>
T* shared_array(const void* tag, size_t count) {
  return static_cast<T*>(shared_alloc(tag, count * sizeof(T), alignof(T) < 16 ? 16 : alignof(T)));
}
template <class T>
T* dynamic_shared() {
  return static_cast<T*>(dynamic_shared_base());
}

// Runs the grid; body(ctx) is one thread's execution of the kernel.
void run_grid(dim3 grid, dim3 block, size_t shared_bytes, void (*body)(void*), void* ctx);

template <class T>
uint64_t to_bits(const T& v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "warp collectives move at most 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

}  // namespace detail

// ---- stream capture (see the header comment) -------------------------------------------------------
class Graph {
 public:
  void replay() const;  // runs every recorded piece of work in order (launch errors as cudaGetLastError)
  size_t nodes() const { return work_.size(); }

 private:
  friend void submit(std::function<void()> work);
  std::vector<std::function<void()>> work_;
};
void begin_capture();                  // throws simt::Error when this thread is already capturing
std::unique_ptr<Graph> end_capture();  // throws simt::Error when it is not
bool capturing();                      // on this host thread
// Runs `work` now, or records it into the capture of this thread.
void submit(std::function<void()> work);

// Runs kernel over grid × block. Arguments are converted to the kernel's parameter types once and
// every thread receives its own copy, as on the device. Synchronous, or recorded while capturing.
template <class... P, class... A>
void launch(dim3 grid, dim3 block, size_t shared_bytes, void (*kernel)(P...), A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel argument count mismatch");
  struct Ctx {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> params;
  } ctx{kernel, std::tuple<std::decay_t<P>...>(std::forward<A>(args)...)};
  void (*body)(void*) = [](void* c) {
    auto* x = static_cast<Ctx*>(c);
    std::apply(x->kernel, x->params);  // by-value parameters: a copy per thread
  };
  if (capturing()) {
    submit([grid, block, shared_bytes, body, node = std::make_shared<Ctx>(std::move(ctx))] {
      detail::run_grid(grid, block, shared_bytes, body, node.get());
    });
    return;
  }
  detail::run_grid(grid, block, shared_bytes, body, &ctx);
}

}  // namespace simt

// ---- built-in variables ----------------------------------------------------------------------------
#define threadIdx (::simt::detail::thread_idx())
#define blockIdx (::simt::detail::block_idx())
#define blockDim (::simt::detail::block_dim())
#define gridDim (::simt::detail::grid_dim())

// ---- barriers and warp collectives -------------------------------------------------------------------
inline void __syncthreads() { ::simt::detail::block_barrier(::simt::detail::BlockOp::Sync, 0); }
inline int __syncthreads_count(int p) { return ::simt::detail::block_barrier(::simt::detail::BlockOp::Count, p != 0); }
inline int __syncthreads_and(int p) { return ::simt::detail::block_barrier(::simt::detail::BlockOp::And, p != 0); }
inline int __syncthreads_or(int p) { return ::simt::detail::block_barrier(::simt::detail::BlockOp::Or, p != 0); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::simt::detail::warp_collective(::simt::detail::WarpOp::Sync, mask, 0, 0, 32);
}
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize) {
  using namespace ::simt::detail;
  return from_bits<T>(warp_collective(WarpOp::Idx, mask, to_bits(var), src_lane, width));
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize) {
  using namespace ::simt::detail;
  return from_bits<T>(warp_collective(WarpOp::Xor, mask, to_bits(var), lane_mask, width));
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace ::simt::detail;
  return from_bits<T>(warp_collective(WarpOp::Down, mask, to_bits(var), int(delta), width));
}
template <class T>
T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize) {
  using namespace ::simt::detail;
  return from_bits<T>(warp_collective(WarpOp::Up, mask, to_bits(var), int(delta), width));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  using namespace ::simt::detail;
  return unsigned(warp_collective(WarpOp::Ballot, mask, pred != 0, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) {
  using namespace ::simt::detail;
  return int(warp_collective(WarpOp::Any, mask, pred != 0, 0, 32));
}
inline int __all_sync(unsigned mask, int pred) {
  using namespace ::simt::detail;
  return int(warp_collective(WarpOp::All, mask, pred != 0, 0, 32));
}
unsigned __activemask();

// ---- atomics (std::atomic_ref: correct even if blocks are ever run on several host threads) ----------
template <class T>
T atomicAdd(T* addr, T v) {
  return std::atomic_ref<T>(*addr).fetch_add(v);
}
template <class T>
T atomicExch(T* addr, T v) {
  return std::atomic_ref<T>(*addr).exchange(v);
}
template <class T>
T atomicCAS(T* addr, T expected, T desired) {
  std::atomic_ref<T>(*addr).compare_exchange_strong(expected, desired);
  return expected;
}
template <class T>
T atomicMax(T* addr, T v) {
  static_assert(std::is_integral_v<T>, "atomicMax: integer types only");
  std::atomic_ref<T> a(*addr);
  T old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <class T>
T atomicMin(T* addr, T v) {
  static_assert(std::is_integral_v<T>, "atomicMin: integer types only");
  std::atomic_ref<T> a(*addr);
  T old = a.load();
  while (old > v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}

// ---- intrinsics -------------------------------------------------------------------------------------
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline unsigned __float_as_uint(float f) { return ::simt::detail::from_bits<unsigned>(::simt::detail::to_bits(f)); }
inline float __uint_as_float(unsigned u) { return ::simt::detail::from_bits<float>(u); }
inline int __float_as_int(float f) { return ::simt::detail::from_bits<int>(::simt::detail::to_bits(f)); }
inline float __int_as_float(int i) { return ::simt::detail::from_bits<float>(::simt::detail::to_bits(i)); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }

// ---- cuda_fp16.h / cuda_bf16.h stand-ins --------------------------------------------------------------
namespace simt::detail {

inline uint16_t f32_to_f16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return 0x7fffu;                  // NaN, as the CUDA host conversion
  if (ax >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // ≥ 65520 rounds to infinity
  if (ax < 0x38800000u) {                                  // below 2^-14: half subnormal or zero
    const uint32_t e = ax >> 23;
    const uint32_t shift = 126u - e;  // value = mant · 2^(e-150) = (mant >> shift) · 2^-24
    if (shift > 24u) return uint16_t(sign);
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = (ax >> 13) - ((127u - 15u) << 10);
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) ++r;  // carry may bump the exponent: correct
  return uint16_t(sign | r);
}

inline float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu, u;
  if (e == 0) {
    if (m == 0) {
      u = sign;
    } else {
      int s = 0;
      while (!(m & 0x400u)) {
        m <<= 1;
        ++s;
      }
      u = sign | uint32_t(113 - s) << 23 | (m & 0x3ffu) << 13;
    }
  } else if (e == 31) {
    u = sign | 0x7f800000u | m << 13;
  } else {
    u = sign | (e + 112u) << 23 | m << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

inline float bf16_bits_to_f32(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace simt::detail

struct __half {
  unsigned short __x = 0;
  __half() = default;
  __half(float f) : __x(::simt::detail::f32_to_f16_bits(f)) {}
  operator float() const { return ::simt::detail::f16_bits_to_f32(__x); }
};
struct __nv_bfloat16 {
  unsigned short __x = 0;
  __nv_bfloat16() = default;
  __nv_bfloat16(float f) : __x(::simt::detail::f32_to_bf16_bits(f)) {}
  operator float() const { return ::simt::detail::bf16_bits_to_f32(__x); }
};
struct alignas(4) __half2 {
  __half x, y;
};
struct alignas(4) __nv_bfloat162 {
  __nv_bfloat16 x, y;
};

inline __half __float2half(float f) { return __half(f); }
inline __half __float2half_rn(float f) { return __half(f); }
inline float __half2float(__half h) { return ::simt::detail::f16_bits_to_f32(h.__x); }
inline unsigned short __half_as_ushort(__half h) { return h.__x; }
inline __half __ushort_as_half(unsigned short u) {
  __half h;
  h.__x = u;
  return h;
}
inline float2 __half22float2(__half2 h) { return {__half2float(h.x), __half2float(h.y)}; }
inline __half2 __floats2half2_rn(float a, float b) { return {__half(a), __half(b)}; }

inline __nv_bfloat16 __float2bfloat16(float f) { return __nv_bfloat16(f); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return ::simt::detail::bf16_bits_to_f32(b.__x); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) {
  __nv_bfloat16 b;
  b.__x = u;
  return b;
}
inline float2 __bfloat1622float2(__nv_bfloat162 b) { return {__bfloat162float(b.x), __bfloat162float(b.y)}; }
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) { return {__nv_bfloat16(a), __nv_bfloat16(b)}; }
