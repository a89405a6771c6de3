// theta_shift against the CPU backend. The angle is the shared definition of src/common/rotary.hpp,
// computed per position with the same libm sinf/cosf in the emulator and the same per-pair arithmetic,
// so the emulator must agree with the CPU to the last bit (both are built with the same flags, and
// the compiler fuses a·cos − c·sin alike; measured: bit-identical). On a GPU sinf/cosf are within 2 ulp
// (CUDA programming guide), and the rotation may fuse: ≤ 1e-6 relative to |x|, far below the ~6e-3 rad
// an angle computed in a different precision would cost at n = 1e5 (docs/reference.md §2.3).
#include "kernel_test_util.hpp"

#include <cmath>

#include "model/config.hpp"

namespace {

using namespace ktest;

KTEST(ThetaShift, PairingsAnglesScalesAndLongPositions) {
  KTEST_REQUIRE_DEVICE();
  retnet::CpuBackend cpu(1);
  for (int64_t dk : {16, 32, 256})
    for (auto pairing : {retnet::Pairing::Interleaved, retnet::Pairing::Half})
      for (auto angles : {retnet::AngleMode::Reference, retnet::AngleMode::Exact})
        for (bool scale_on_q : {false, true}) {
          const int64_t T = 6, H = 3;
          const std::vector<int64_t> pos = {0, 1, 7, 4097, 65536, 100000};
          const std::vector<float> theta = pairing == retnet::Pairing::Half ? retnet::theta_fla(dk)
                                                                            : retnet::theta_linspace(dk);
          const std::vector<double> theta64 = pairing == retnet::Pairing::Half ? retnet::theta64_fla(dk)
                                                                               : retnet::theta64_linspace(dk);
          const float s = 1.0f / std::sqrt(float(dk));
          const float q_scale = scale_on_q ? s : 1.0f, k_scale = scale_on_q ? 1.0f : s;
          const std::vector<float> q = randu(size_t(T * H * dk), 5), k = randu(size_t(T * H * dk), 6);
          std::vector<float> wq = q, wk = k;
          cpu.theta_shift(wq.data(), wk.data(), T, H, dk, pos.data(), theta.data(), theta64.data(), pairing, angles,
                          q_scale, k_scale);
          std::vector<float> want = wq;
          want.insert(want.end(), wk.begin(), wk.end());
          const std::vector<float> got = run_checked([&] {
            DevBuf<float> dq(q), dk_(k), dth(theta);
            DevBuf<int64_t> dpos(pos);
            DevBuf<double> dth64(theta64);
            expect_ok(retnet::launch_theta_shift(dq.get(), dk_.get(), T, H, dk, dpos.get(), dth.get(),
                                                 angles == retnet::AngleMode::Exact ? dth64.get() : nullptr, pairing,
                                                 q_scale, k_scale, nullptr));
            std::vector<float> r = dq.download(), rk = dk_.download();
            r.insert(r.end(), rk.begin(), rk.end());
            return r;
          });
          EXPECT_LE(rel_err(got, want), tol(0, 1e-6))
              << "dk=" << dk << " half=" << (pairing == retnet::Pairing::Half)
              << " exact=" << (angles == retnet::AngleMode::Exact) << " q_scale=" << scale_on_q;
        }
}

}  // namespace
