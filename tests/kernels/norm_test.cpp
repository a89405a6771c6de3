// rms_norm and group_norm_gate against the CPU backend. The only difference from the CPU is the order
// in which the sum of squares is added (a tree over threads instead of a left-to-right loop): the
// relative error of an fp32 sum of n positive terms is ≤ ~log2(n)·2^-24 for a tree and ≤ n·2^-24 for
// the CPU's loop (typically √n·2^-24), and the output carries half of it through 1/sqrt. For
// n ≤ 4096 that is ≤ 2e-6 worst-case-typical (measured ≤ 6e-7), so 4e-6 leaves a factor of two; silu
// on the GPU adds 2 ulp of expf.
#include "kernel_test_util.hpp"

namespace {

using namespace ktest;

KTEST(RmsNorm, WidthsWeightsAndInPlace) {
  KTEST_REQUIRE_DEVICE();
  retnet::CpuBackend cpu(1);
  for (int64_t D : {16, 64, 300, 1000, 4096})
    for (bool weighted : {false, true})
      for (bool in_place : {false, true}) {
        const int64_t T = 3;
        const std::vector<float> x = randu(size_t(T * D), uint32_t(D), -3.f, 3.f);
        const std::vector<float> w = randu(size_t(D), 99, 0.5f, 1.5f);
        std::vector<float> want(x.size());
        cpu.rms_norm(x.data(), T, D, weighted ? w.data() : nullptr, 1e-6f, want.data());
        const std::vector<float> got = run_checked([&] {
          DevBuf<float> dx(x), dw(w), dy(x.size());
          float* y = in_place ? dx.get() : dy.get();
          expect_ok(retnet::launch_rms_norm(dx.get(), T, D, weighted ? dw.get() : nullptr, 1e-6f, y, nullptr));
          return in_place ? dx.download() : dy.download();
        });
        EXPECT_LE(rel_err(got, want), 4e-6) << "D=" << D << " w=" << weighted << " in_place=" << in_place;
      }
}

KTEST(GroupNormGate, RaggedHeadsWeightsAndGates) {
  KTEST_REQUIRE_DEVICE();
  retnet::CpuBackend cpu(1);
  for (int64_t dv : {20, 28, 52, 428})
    for (bool weighted : {false, true})
      for (bool gated : {false, true}) {
        const int64_t T = 3, H = 3;  // 9 rows: the last block of 4 warps is partly empty
        const size_t n = size_t(T * H * dv);
        const std::vector<float> o = randu(n, uint32_t(dv) + 5, -2.f, 2.f);
        const std::vector<float> g = randu(n, 77, -6.f, 6.f);
        const std::vector<float> w = randu(size_t(dv), 78, 0.5f, 1.5f);
        std::vector<float> want = o;
        cpu.group_norm_gate(want.data(), gated ? g.data() : nullptr, T, H, dv, weighted ? w.data() : nullptr, 1e-5f);
        const std::vector<float> got = run_checked([&] {
          DevBuf<float> dout(o), dg(g), dw(w);
          expect_ok(retnet::launch_group_norm_gate(dout.get(), gated ? dg.get() : nullptr, T, H, dv,
                                                   weighted ? dw.get() : nullptr, 1e-5f, nullptr));
          return dout.download();
        });
        EXPECT_LE(rel_err(got, want), 4e-6) << "dv=" << dv << " w=" << weighted << " gate=" << gated;
      }
}

}  // namespace
