// Tests of the SIMT emulator itself: barriers, warp collectives, shared memory, atomics, misuse
// detection, launch errors, and the fp16/bf16 stand-ins' rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "common/dtype.hpp"
#include "simt.hpp"

namespace {

__global__ void rotate_through_shared(int* out) {
  RETNET_SHARED(int, s, 256);
  const unsigned n = blockDim.x, t = threadIdx.x;
  s[t] = int(t + 1000 * blockIdx.x);
  __syncthreads();
  out[blockIdx.x * n + t] = s[(t + 1) % n];
}

TEST(Simt, BarrierMakesSharedWritesVisibleUnderEverySchedule) {
  for (auto sch : {simt::Schedule::Forward, simt::Schedule::Reverse, simt::Schedule::Shuffled}) {
    simt::set_schedule(sch, 7);
    std::vector<int> out(3 * 96, -1);
    simt::launch(dim3(3), dim3(96), 0, rotate_through_shared, out.data());
    for (unsigned b = 0; b < 3; ++b)
      for (unsigned t = 0; t < 96; ++t) EXPECT_EQ(out[b * 96 + t], int((t + 1) % 96 + 1000 * b));
  }
  simt::set_schedule(simt::Schedule::Forward);
}

__global__ void racy(int* out) {
  RETNET_SHARED(int, s, 1);
  s[0] = int(threadIdx.x);  // every thread writes the same word without a barrier: a race
  out[threadIdx.x] = s[0];
  __syncthreads();
  if (threadIdx.x == 0) out[blockDim.x] = s[0];
}

TEST(Simt, RacesShowUpAsScheduleDependence) {
  std::vector<int> a(65), b(65);
  simt::set_schedule(simt::Schedule::Forward);
  simt::launch(dim3(1), dim3(64), 0, racy, a.data());
  simt::set_schedule(simt::Schedule::Reverse);
  simt::launch(dim3(1), dim3(64), 0, racy, b.data());
  simt::set_schedule(simt::Schedule::Forward);
  EXPECT_NE(a[64], b[64]);  // last writer differs
}

__global__ void shared_poison_and_isolation(float* out) {
  RETNET_SHARED(float, s, 4);
  out[blockIdx.x * 2] = s[1];  // read before any write: poison
  __syncthreads();
  if (threadIdx.x == 0) s[1] = 1.5f + float(blockIdx.x);
  __syncthreads();
  out[blockIdx.x * 2 + 1] = s[1];
}

TEST(Simt, SharedStorageIsPerBlockAndStartsPoisoned) {
  std::vector<float> out(4, 0.f);
  simt::launch(dim3(2), dim3(32), 0, shared_poison_and_isolation, out.data());
  EXPECT_TRUE(std::isnan(out[0]));
  EXPECT_TRUE(std::isnan(out[2])) << "block 1 must not see block 0's shared writes";
  EXPECT_EQ(out[1], 1.5f);
  EXPECT_EQ(out[3], 2.5f);
}

__global__ void dynamic_shared_sum(const float* in, float* out, int n) {
  RETNET_DYNAMIC_SHARED(float, buf);
  for (int i = int(threadIdx.x); i < n; i += int(blockDim.x)) buf[i] = in[i];
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.f;
    for (int i = 0; i < n; ++i) s += buf[i];
    *out = s;
  }
}

TEST(Simt, DynamicSharedMemory) {
  std::vector<float> in(3000, 0.5f);
  float out = 0.f;
  simt::launch(dim3(1), dim3(128), in.size() * sizeof(float), dynamic_shared_sum, in.data(), &out, int(in.size()));
  EXPECT_EQ(out, 1500.f);
}

__global__ void warp_ops(int* out) {
  const int lane = int(threadIdx.x & 31u);
  const int w = int(threadIdx.x >> 5);
  int* o = out + threadIdx.x * 8;
  int v = lane + 100 * w;
  int s = v;
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  o[0] = s;
  int d = v;
  for (int off = 16; off > 0; off >>= 1) d += __shfl_down_sync(0xffffffffu, d, unsigned(off));
  o[1] = d;
  o[2] = __shfl_up_sync(0xffffffffu, v, 3u);
  o[3] = __shfl_sync(0xffffffffu, v, 5);
  o[4] = __shfl_xor_sync(0xffffffffu, v, 1, 16);
  o[5] = __shfl_sync(0xffffffffu, v, 3, 8);
  o[6] = int(__ballot_sync(0xffffffffu, lane % 3 == 0));
  o[7] = __any_sync(0xffffffffu, lane == 31) + 2 * __all_sync(0xffffffffu, lane < 31);
}

TEST(Simt, WarpCollectivesFollowCudaSemantics) {
  std::vector<int> out(64 * 8);
  simt::launch(dim3(1), dim3(64), 0, warp_ops, out.data());
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int t = 0; t < 64; ++t) {
    const int lane = t % 32, w = t / 32, base = 100 * w;
    const int* o = out.data() + t * 8;
    EXPECT_EQ(o[0], 496 + 3200 * w) << t;  // Σ lanes 0..31 + 32·100w
    if (lane == 0) EXPECT_EQ(o[1], 496 + 3200 * w);
    EXPECT_EQ(o[2], lane >= 3 ? lane - 3 + base : lane + base) << t;  // up: own value below delta
    EXPECT_EQ(o[3], 5 + base);
    EXPECT_EQ(o[4], (lane ^ 1) + base);
    EXPECT_EQ(o[5], (lane & ~7) + 3 + base);  // index within segments of 8
    EXPECT_EQ(unsigned(o[6]), ballot);
    EXPECT_EQ(o[7], 1);  // any true, all false
  }
}

__global__ void partial_warp(float* out) {
  // 48 threads: warp 1 has lanes 0..15 only; a shuffle from an absent lane is undefined → poison.
  const float v = float(threadIdx.x);
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 16u);
}

TEST(Simt, AbsentLanesReadAsPoison) {
  std::vector<float> out(48);
  simt::launch(dim3(1), dim3(48), 0, partial_warp, out.data());
  EXPECT_EQ(out[0], 16.f);
  EXPECT_EQ(out[20], 20.f);  // lane 20 + 16 ≥ 32: own value (defined by CUDA)
  EXPECT_TRUE(std::isnan(out[32]));  // warp 1, lane 0 reads absent lane 16
}

__global__ void early_exit_then_barrier(int* out) {
  if (threadIdx.x == 0) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void exited_lane_in_shuffle(int* out) {
  if (threadIdx.x == 3) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, int(threadIdx.x), 1);
}
__global__ void mixed_barriers(int* out) {
  if (threadIdx.x < 16) __syncwarp();
  else __syncthreads();
  out[threadIdx.x] = 1;
}
__global__ void throws_inside(int*) {
  if (threadIdx.x == 7) throw std::runtime_error("boom");
  __syncthreads();
}

TEST(Simt, BarrierMisuseIsReported) {
  std::vector<int> out(64);
  EXPECT_THROW(simt::launch(dim3(1), dim3(64), 0, early_exit_then_barrier, out.data()), simt::Error);
  EXPECT_THROW(simt::launch(dim3(1), dim3(32), 0, exited_lane_in_shuffle, out.data()), simt::Error);
  EXPECT_THROW(simt::launch(dim3(1), dim3(32), 0, mixed_barriers, out.data()), simt::Error);
  EXPECT_THROW(simt::launch(dim3(1), dim3(32), 0, throws_inside, out.data()), std::runtime_error);
  // The emulator is usable again afterwards.
  std::vector<int> ok(96);
  simt::launch(dim3(1), dim3(96), 0, rotate_through_shared, ok.data());
  EXPECT_EQ(ok[0], 1);
}

__global__ void count_and_atomics(float* sum, int* counts) {
  atomicAdd(sum, 0.25f);
  const int c = __syncthreads_count(threadIdx.x % 4 == 0);
  if (threadIdx.x == 0) counts[blockIdx.x] = c;
  atomicMax(counts + 4, int(threadIdx.x));
}

TEST(Simt, AtomicsAndBarrierReductions) {
  float sum = 0.f;
  std::vector<int> counts(5, 0);
  simt::launch(dim3(4), dim3(128), 0, count_and_atomics, &sum, counts.data());
  EXPECT_EQ(sum, 128.f);
  for (int b = 0; b < 4; ++b) EXPECT_EQ(counts[size_t(b)], 32);
  EXPECT_EQ(counts[4], 127);
}

__global__ void never_runs(int* out) { *out = 1; }
__global__ void too_much_static_shared(int* out) {
  RETNET_SHARED(float, big, 13000);  // 52 000 bytes > 48 KiB
  big[threadIdx.x] = 0.f;
  *out = 1;
}

TEST(Simt, LaunchConfigurationErrors) {
  int out = 0;
  cudaGetLastError();
  simt::launch(dim3(1), dim3(2048), 0, never_runs, &out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // cleared
  simt::launch(dim3(0), dim3(32), 0, never_runs, &out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  simt::launch(dim3(1), dim3(32), 300 * 1024, never_runs, &out);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(out, 0);
  EXPECT_THROW(simt::launch(dim3(1), dim3(32), 0, too_much_static_shared, &out), simt::Error);
}

__global__ void indices(unsigned* out) {
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  out[b * 24 + t] = (blockIdx.z * 100 + blockIdx.y * 10 + blockIdx.x) * 1000 + threadIdx.z * 100 + threadIdx.y * 10 +
                    threadIdx.x;
}

TEST(Simt, MultiDimensionalIndices) {
  std::vector<unsigned> out(2 * 3 * 2 * 24);
  simt::launch(dim3(2, 3, 2), dim3(4, 3, 2), 0, indices, out.data());
  EXPECT_EQ(out[0], 0u);
  EXPECT_EQ(out[23], 123u);                              // thread (3, 2, 1) of block 0
  EXPECT_EQ(out[(1 + 2 * 2 + 6) * 24 + 5], 121011u);    // block (1, 2, 1), thread (1, 1, 0)
}

// Nearest half to x by brute force over every finite half (ties to even mantissa): an oracle that
// shares no code with the bit-twiddling conversion.
uint16_t nearest_half(float x, const std::vector<std::pair<double, uint16_t>>& table) {
  if (std::isnan(x)) return 0x7fff;
  const double d = x;
  if (std::fabs(d) >= 65520.0) return d > 0 ? 0x7c00 : 0xfc00;
  auto it = std::lower_bound(table.begin(), table.end(), std::make_pair(d, uint16_t(0)));
  const auto& hi = it == table.end() ? table.back() : *it;
  const auto& lo = it == table.begin() ? table.front() : *(it - 1);
  const double dl = d - lo.first, dh = hi.first - d;
  uint16_t r;
  if (dl < dh) r = lo.second;
  else if (dh < dl) r = hi.second;
  else r = (lo.second & 1) ? hi.second : lo.second;
  if ((r & 0x7fff) == 0) r = std::signbit(x) ? 0x8000 : 0;  // zero keeps the sign
  return r;
}

TEST(Simt, HalfConversionRoundsToNearestEven) {
  std::vector<std::pair<double, uint16_t>> table;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00) continue;  // inf/NaN
    if (h == 0x8000) continue;             // -0 duplicates +0
    table.emplace_back(double(simt::detail::f16_bits_to_f32(uint16_t(h))), uint16_t(h));
  }
  std::sort(table.begin(), table.end());
  std::mt19937 g(1);
  std::vector<float> xs = {0.f, -0.f, 65504.f, 65519.99f, 65520.f, -65520.f, 6.1035156e-05f, 5.9604645e-08f,
                           2.9802322e-08f, 2.9802326e-08f, 1e-10f, -1e-10f, 1.0009765625f, 1.00048828125f,
                           1.00146484375f, INFINITY, -INFINITY};
  for (int i = 0; i < 400000; ++i) {
    uint32_t u = g();
    float f;
    std::memcpy(&f, &u, 4);
    if (std::fabs(f) < 1e5f || std::isnan(f)) xs.push_back(f);
    xs.push_back(std::ldexp(float(g() % 4096) / 4096.f + 1.f, int(g() % 44) - 30) * (g() & 1 ? 1.f : -1.f));
  }
  // exact midpoints between adjacent halves (the tie cases)
  for (size_t i = 0; i + 1 < table.size(); i += 97) xs.push_back(float((table[i].first + table[i + 1].first) / 2));
  size_t bad = 0;
  for (float x : xs) {
    uint16_t want;
    if (std::isinf(x)) want = x > 0 ? 0x7c00 : 0xfc00;
    else want = nearest_half(x, table);
    const uint16_t got = __half_as_ushort(__float2half(x));
    if (got != want && bad++ < 5) ADD_FAILURE() << std::hexfloat << x << ": got " << got << " want " << want;
    if (!std::isnan(x)) EXPECT_EQ(got, retnet::f32_to_f16(x)) << std::hexfloat << x;
  }
  EXPECT_EQ(bad, 0u);
  for (uint32_t h = 0; h < 0x10000; ++h) {  // every half widens exactly and converts back
    const float f = __half2float(__ushort_as_half(uint16_t(h)));
    const float ref = retnet::f16_to_f32(uint16_t(h));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(f));
      continue;
    }
    EXPECT_EQ(std::memcmp(&f, &ref, 4), 0) << h;
    EXPECT_EQ(__half_as_ushort(__float2half(f)), h);
  }
}

TEST(Simt, Bfloat16ConversionRoundsToNearestEven) {
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(1.0f)), 0x3f80);
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(1.00390625f)), 0x3f80);   // tie → even (down)
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(1.01171875f)), 0x3f82);   // tie → even (up)
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(std::nextafter(1.00390625f, 2.f))), 0x3f81);  // above the tie
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(NAN)), 0x7fff);
  EXPECT_EQ(__bfloat16_as_ushort(__float2bfloat16(3.4e38f)), 0x7f80);       // rounds up to inf
  std::mt19937 g(2);
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = g();
    float f;
    std::memcpy(&f, &u, 4);
    if (std::isnan(f)) continue;
    const uint16_t b = __bfloat16_as_ushort(__float2bfloat16(f));
    ASSERT_EQ(b, retnet::f32_to_bf16(f));
    // the result is one of the two neighbours and no farther than the other one
    const float r = __bfloat162float(__ushort_as_bfloat16(b));
    const float down = retnet::bf16_to_f32(uint16_t(u >> 16)), up = retnet::bf16_to_f32(uint16_t((u >> 16) + 1));
    if (std::isfinite(r)) ASSERT_LE(std::fabs(double(r) - f), std::fabs(double(r == down ? up : down) - f));
  }
}

}  // namespace
