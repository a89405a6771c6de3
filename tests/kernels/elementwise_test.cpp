// embed, widen, glu and residual against the CPU backend. The emulator runs the same float
// operations in the same order as the CPU (one multiply, expf/erff from the same libm), so those
// comparisons are exact; on a GPU expf/erff may differ by 2 ulp and x·α + y may fuse (1 ulp).
#include "kernel_test_util.hpp"

namespace {

using namespace ktest;
using retnet::DType;

KTEST(Embed, AllDtypesAndScales) {
  KTEST_REQUIRE_DEVICE();
  retnet::CpuBackend cpu(1);
  for (DType t : {DType::F32, DType::F16, DType::BF16})
    for (int64_t D : {1, 20, 64, 300})
      for (float scale : {1.0f, 17.888544f}) {
        const int64_t V = 37, T = 9;
        const TypedWeights table = make_weights(randu(size_t(V * D), 7u + uint32_t(D)), t);
        const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 1, 35, 0, 12};
        std::vector<float> want(size_t(T * D));
        cpu.embed(table.ref(V, D), ids.data(), T, scale, want.data());
        const std::vector<float> got = run_checked([&] {
          DevBuf<uint8_t> dt(table.bytes);
          DevBuf<int32_t> di(ids);
          DevBuf<float> out(size_t(T * D));
          expect_ok(retnet::launch_embed(dt.get(), t, di.get(), T, D, scale, out.get(), nullptr));
          return out.download();
        });
        if (kEmulated) EXPECT_EQ(count_mismatch(got, want), 0u) << retnet::dtype_name(t) << " D=" << D;
        EXPECT_LE(rel_err(got, want), tol(0, 1e-7)) << retnet::dtype_name(t) << " D=" << D;
      }
}

KTEST(Widen, AllDtypes) {
  KTEST_REQUIRE_DEVICE();
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    const size_t n = 1000;
    const std::vector<float> f = randu(n, 3, -70000.f, 70000.f);  // f16 overflows to inf at both ends
    const TypedWeights w = make_weights(f, t);
    std::vector<float> want(n);
    for (size_t i = 0; i < n; ++i) want[i] = retnet::load_as_f32(w.bytes.data(), t, i);
    const std::vector<float> got = run_checked([&] {
      DevBuf<uint8_t> src(w.bytes);
      DevBuf<float> dst(n);
      expect_ok(retnet::launch_widen(src.get(), t, n, dst.get(), nullptr));
      return dst.download();
    });
    EXPECT_EQ(count_mismatch(got, want), 0u) << retnet::dtype_name(t);  // exact conversions everywhere
  }
}

KTEST(Glu, SiluAndGelu) {
  KTEST_REQUIRE_DEVICE();
  retnet::CpuBackend cpu(1);
  for (auto act : {retnet::Activation::Silu, retnet::Activation::Gelu})
    for (size_t n : {size_t(1), size_t(33), size_t(5000)}) {
      const std::vector<float> a = randu(n, 11, -8.f, 8.f), b = randu(n, 12);
      std::vector<float> want(n);
      cpu.glu(a.data(), b.data(), want.data(), n, act);
      const std::vector<float> got = run_checked([&] {
        DevBuf<float> da(a), db(b);
        expect_ok(retnet::launch_glu(da.get(), db.get(), da.get(), n, act, nullptr));  // in place
        return da.download();
      });
      if (kEmulated) EXPECT_EQ(count_mismatch(got, want), 0u) << "n=" << n;
      EXPECT_LE(rel_err(got, want), tol(0, 1e-6)) << "n=" << n;
    }
}

KTEST(Residual, AlphaOneAndDeepnorm) {
  KTEST_REQUIRE_DEVICE();
  retnet::CpuBackend cpu(1);
  for (float alpha : {1.0f, 1.6817928f})
    for (size_t n : {size_t(3), size_t(4099)}) {
      const std::vector<float> x = randu(n, 21), y = randu(n, 22);
      std::vector<float> want = x;
      cpu.residual(want.data(), y.data(), alpha, n);
      const std::vector<float> got = run_checked([&] {
        DevBuf<float> dx(x), dy(y);
        expect_ok(retnet::launch_residual(dx.get(), dy.get(), alpha, n, nullptr));
        return dx.download();
      });
      // x·α + y may or may not be fused into one FMA by either compiler: 1 ulp of the result.
      EXPECT_LE(rel_err(got, want), 2.5e-7) << "alpha=" << alpha;
    }
}

}  // namespace
