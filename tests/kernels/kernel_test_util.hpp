// Shared by every tests/kernels/*_test.cpp. Each of those files is compiled twice:
//   * with RETNET_SIMT (test suites Emu*): the kernels run in the SIMT emulator on host memory,
//     under several thread schedules whose results must agree bit for bit (a data-race check);
//   * in a CUDA build without RETNET_SIMT (suites Gpu*): the real kernels of libretnet on device
//     memory, skipped when no device is present.
// Both compare with retnet::CpuBackend, the reference implementation of every op.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.hpp"
#include "common/dtype.hpp"
// Last: in the emulated build this defines threadIdx, __device__ & co. as macros.
#include "launchers.cuh"

#if !defined(RETNET_SIMT)
#include <cuda_runtime.h>
#endif

// The helpers differ between the two builds of a test file but are linked into one program: the
// inline namespace (emu / cuda, as the launchers') keeps their symbols apart, so that the linker never
// merges the emulated DevBuf with the device one.
namespace ktest {
inline namespace RETNET_KERNEL_ABI {

#if defined(RETNET_SIMT)
#define KTEST(suite, name) TEST(Emu##suite, name)
#define KTEST_REQUIRE_DEVICE() (void)0
inline constexpr bool kEmulated = true;
#else
#define KTEST(suite, name) TEST(Gpu##suite, name)
inline bool gpu_present() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
}
#define KTEST_REQUIRE_DEVICE() \
  if (!::ktest::gpu_present()) GTEST_SKIP() << "no CUDA device"
inline constexpr bool kEmulated = false;
#endif

// Tolerance: the emulator's figure, or the GPU's (FMA contraction, 1–2 ulp libm differences).
inline double tol(double emulated, double gpu) { return kEmulated ? emulated : gpu; }

inline std::vector<float> randu(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

// max|a − b| / max|b|: the error relative to the scale of the reference b.
inline double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, double(std::fabs(a[i] - b[i])));
    den = std::max(den, double(std::fabs(b[i])));
  }
  return den > 0 ? num / den : num;
}

inline size_t count_mismatch(const std::vector<float>& a, const std::vector<float>& b) {
  size_t n = 0;
  for (size_t i = 0; i < a.size(); ++i) n += std::memcmp(&a[i], &b[i], 4) != 0;
  return n;
}

// Weight storage of a float vector in one dtype (what a checkpoint would hold), and its exact fp32
// value (what the CPU backend computes with).
struct TypedWeights {
  retnet::DType dtype;
  std::vector<uint8_t> bytes;
  retnet::WeightRef ref(int64_t rows, int64_t cols) const { return {bytes.data(), dtype, rows, cols}; }
};
inline TypedWeights make_weights(const std::vector<float>& f, retnet::DType t) {
  TypedWeights w{t, std::vector<uint8_t>(retnet::dtype_traits(t).bytes(f.size()))};
  for (size_t i = 0; i < f.size(); ++i) retnet::store_from_f32(w.bytes.data(), t, i, f[i]);
  return w;
}

// A device buffer with canaries on both sides: download() fails the test if a kernel wrote outside.
// Emulated: host memory (the emulator's "device"). GPU: cudaMalloc.
template <class T>
class DevBuf {
 public:
  static constexpr size_t kGuard = 256;  // bytes each side; keeps data() 256-byte aligned
  static constexpr unsigned char kCanary = 0xA5;

  explicit DevBuf(size_t n) : n_(n) {
    const size_t total = kGuard * 2 + bytes();
#if defined(RETNET_SIMT)
    base_ = static_cast<unsigned char*>(std::aligned_alloc(256, (total + 255) / 256 * 256));
    std::memset(base_, kCanary, total);
#else
    EXPECT_EQ(cudaMalloc(&base_, total), cudaSuccess);
    EXPECT_EQ(cudaMemset(base_, kCanary, total), cudaSuccess);
#endif
  }
  explicit DevBuf(const std::vector<T>& host) : DevBuf(host.size()) { upload(host); }
  DevBuf(const DevBuf&) = delete;
  DevBuf& operator=(const DevBuf&) = delete;
  ~DevBuf() {
#if defined(RETNET_SIMT)
    std::free(base_);
#else
    cudaFree(base_);
#endif
  }
  T* get() const { return reinterpret_cast<T*>(base_ + kGuard); }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

  void upload(const std::vector<T>& host) {
#if defined(RETNET_SIMT)
    std::memcpy(get(), host.data(), bytes());
#else
    EXPECT_EQ(cudaMemcpy(get(), host.data(), bytes(), cudaMemcpyHostToDevice), cudaSuccess);
#endif
  }
  std::vector<T> download() const {
    std::vector<T> out(n_);
    std::vector<unsigned char> guards(2 * kGuard);
#if defined(RETNET_SIMT)
    std::memcpy(out.data(), get(), bytes());
    std::memcpy(guards.data(), base_, kGuard);
    std::memcpy(guards.data() + kGuard, base_ + kGuard + bytes(), kGuard);
#else
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(out.data(), get(), bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(guards.data(), base_, kGuard, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(guards.data() + kGuard, base_ + kGuard + bytes(), kGuard, cudaMemcpyDeviceToHost),
              cudaSuccess);
#endif
    for (size_t i = 0; i < guards.size(); ++i)
      if (guards[i] != kCanary) {
        ADD_FAILURE() << "kernel wrote outside its buffer (" << (i < kGuard ? "before" : "after") << " it, byte "
                      << i << ")";
        break;
      }
    return out;
  }

 private:
  size_t n_;
  unsigned char* base_ = nullptr;
};

// Runs `run` (which launches kernels on freshly uploaded inputs and returns the downloaded outputs)
// once per emulator schedule and requires identical bits from all of them: a kernel whose result
// depends on the order of threads between barriers has a race. On the GPU: runs once.
inline std::vector<float> run_checked(const std::function<std::vector<float>()>& run) {
#if defined(RETNET_SIMT)
  simt::set_schedule(simt::Schedule::Forward);
  std::vector<float> first = run();
  for (auto s : {simt::Schedule::Reverse, simt::Schedule::Shuffled}) {
    simt::set_schedule(s, 12345);
    const std::vector<float> again = run();
    EXPECT_EQ(count_mismatch(again, first), 0u) << "result depends on the thread schedule (data race)";
  }
  simt::set_schedule(simt::Schedule::Forward);
  return first;
#else
  return run();
#endif
}

inline void expect_ok(cudaError_t e) { EXPECT_EQ(e, cudaSuccess) << cudaGetErrorString(e); }

}  // namespace RETNET_KERNEL_ABI
}  // namespace ktest
