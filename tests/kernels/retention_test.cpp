// retention_step and retention_chunk against the CPU backend (retention_cpu.cpp), on ragged shapes:
// dk 16/32/64/256, dv 20/28/52/130/428 (none a multiple of the 32/64-wide tiles), T not a multiple of C, C
// from 1 to beyond T, all three normalisations, a non-zero incoming state, and B = 1..3 step rows.
//
// Tolerance. Kernel and CPU add the same products in a different order (dot products over dk, the
// masked sums over keys, tiles vs sgemm). fp32 rounding then differs by ≲ 2^-24·Σ|terms| per output;
// with random signs Σ|terms| ≈ √n·|output| for the largest outputs, n ≤ 2·(dk + C) ≈ 300 here, so
// relative to max|output| the difference is ≲ 20·6e-8 ≈ 1e-6 and the state (a sum over ≤ 100 tokens
// of decayed products) behaves alike; the emulator measures ≤ 4e-7. 5e-6 leaves room for the GPU's
// FMA contraction and 2-ulp expf without hiding a real error: a wrong decay exponent, mask or
// normalisation moves outputs by ≥ 1e-3 (a 0.1% error in the cross scale fails by 200×).
#include "kernel_test_util.hpp"

#include <cmath>

#include "model/config.hpp"

namespace {

using namespace ktest;
using retnet::RetentionNorm;

constexpr double kTol = 5e-6;

// Per-step decay γ_h = exp(ln γ_h) in fp32, as Model computes it.
std::vector<float> gammas(const std::vector<float>& ld) {
  std::vector<float> g;
  for (float x : ld) g.push_back(std::exp(x));
  return g;
}

struct Shape {
  int64_t T, H, dk, dv, C;
};

void check_chunk(const Shape& s, RetentionNorm norm, uint32_t seed) {
  retnet::CpuBackend cpu(1);
  const std::vector<float> ld = retnet::log_decay_default(s.H);
  const std::vector<float> q = randu(size_t(s.T * s.H * s.dk), seed), k = randu(size_t(s.T * s.H * s.dk), seed + 1),
                           v = randu(size_t(s.T * s.H * s.dv), seed + 2);
  const std::vector<float> state0 = randu(size_t(s.H * s.dk * s.dv), seed + 3, -4.f, 4.f);
  std::vector<float> want_out(size_t(s.T * s.H * s.dv)), want_state = state0;
  retnet::RetentionChunkArgs a;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  a.state = want_state.data();
  a.out = want_out.data();
  a.T = s.T;
  a.H = s.H;
  a.dk = s.dk;
  a.dv = s.dv;
  a.chunk = s.C;
  a.log_decay = ld.data();
  a.norm = norm;
  cpu.retention_chunk(a);

  const std::vector<float> got = run_checked([&] {
    DevBuf<float> dq(q), dk(k), dv(v), dstate(state0), dout(want_out.size()), dld(ld);
    DevBuf<uint8_t> ws(retnet::retention_chunk_workspace_bytes(s.T, s.H, s.dk, s.dv, s.C, norm));
    expect_ok(retnet::launch_retention_chunk(dq.get(), dk.get(), dv.get(), dstate.get(), dout.get(), s.T, s.H, s.dk,
                                             s.dv, s.C, dld.get(), norm, ws.get(), nullptr));
    std::vector<float> r = dout.download(), st = dstate.download();
    r.insert(r.end(), st.begin(), st.end());
    return r;
  });
  const std::vector<float> got_out(got.begin(), got.begin() + std::ptrdiff_t(want_out.size()));
  const std::vector<float> got_state(got.begin() + std::ptrdiff_t(want_out.size()), got.end());
  const std::string what = "T=" + std::to_string(s.T) + " H=" + std::to_string(s.H) + " dk=" + std::to_string(s.dk) +
                           " dv=" + std::to_string(s.dv) + " C=" + std::to_string(s.C) +
                           " norm=" + std::to_string(int(norm));
  EXPECT_LE(rel_err(got_out, want_out), kTol) << what;
  EXPECT_LE(rel_err(got_state, want_state), kTol) << what;
}

KTEST(RetentionChunk, RaggedShapesAllNorms) {
  KTEST_REQUIRE_DEVICE();
  const Shape shapes[] = {
      {1, 2, 16, 20, 4},   {5, 2, 16, 20, 4},   {13, 3, 16, 28, 4},  {13, 2, 32, 52, 7},
      {30, 2, 32, 28, 1},  {40, 3, 16, 20, 16}, {37, 2, 32, 52, 64}, {100, 2, 16, 28, 100},
      {100, 2, 32, 20, 33}, {20, 1, 32, 428, 8},  // dv of the official torchscale sizes (428 = 4·107)
      {9, 1, 256, 20, 4},                          // dk of the official sizes: 8 shared-memory slices
  };
  uint32_t seed = 100;
  for (const Shape& s : shapes)
    for (RetentionNorm n : {RetentionNorm::None, RetentionNorm::TorchscaleChunk}) check_chunk(s, n, seed += 10);
}

KTEST(RetentionChunk, ParallelFormWholeBlock) {
  KTEST_REQUIRE_DEVICE();
  // The parallel form is one chunk of C = T with the 5e4 clamp; tiles of 64 rows and 32 keys are
  // crossed (T = 70), and dv = 130 spans three 64-wide column tiles.
  check_chunk({70, 2, 64, 130, 70}, RetentionNorm::TorchscaleParallel, 7);
  check_chunk({21, 3, 16, 28, 21}, RetentionNorm::TorchscaleParallel, 8);
  check_chunk({70, 2, 64, 130, 70}, RetentionNorm::None, 9);
}

KTEST(RetentionChunk, LargeValuesHitTheClamps) {
  KTEST_REQUIRE_DEVICE();
  // Big q/k make Σ|A| exceed 5e4 (parallel clamp) and the cross scale exceed 1.
  retnet::CpuBackend cpu(1);
  const int64_t T = 24, H = 2, dk = 16, dv = 20;
  for (RetentionNorm norm : {RetentionNorm::TorchscaleParallel, RetentionNorm::TorchscaleChunk}) {
    const int64_t C = norm == RetentionNorm::TorchscaleParallel ? T : 8;
    const std::vector<float> ld = retnet::log_decay_default(H);
    const std::vector<float> q = randu(size_t(T * H * dk), 1, -60.f, 60.f), k = randu(size_t(T * H * dk), 2, -60.f, 60.f),
                             v = randu(size_t(T * H * dv), 3);
    const std::vector<float> state0 = randu(size_t(H * dk * dv), 4, -300.f, 300.f);
    std::vector<float> want(size_t(T * H * dv)), want_state = state0;
    retnet::RetentionChunkArgs a;
    a.q = q.data(), a.k = k.data(), a.v = v.data(), a.state = want_state.data(), a.out = want.data();
    a.T = T, a.H = H, a.dk = dk, a.dv = dv, a.chunk = C, a.log_decay = ld.data(), a.norm = norm;
    cpu.retention_chunk(a);
    const std::vector<float> got = run_checked([&] {
      DevBuf<float> dq(q), dk_(k), dv_(v), dst(state0), dout(want.size()), dld(ld);
      DevBuf<uint8_t> ws(retnet::retention_chunk_workspace_bytes(T, H, dk, dv, C, norm));
      expect_ok(retnet::launch_retention_chunk(dq.get(), dk_.get(), dv_.get(), dst.get(), dout.get(), T, H, dk, dv, C,
                                               dld.get(), norm, ws.get(), nullptr));
      return dout.download();
    });
    EXPECT_LE(rel_err(got, want), kTol) << "norm=" << int(norm);
  }
}

KTEST(RetentionStep, BatchedRowsRaggedDv) {
  KTEST_REQUIRE_DEVICE();
  retnet::CpuBackend cpu(1);
  for (int64_t B : {1, 2, 3})
    for (int64_t dk : {16, 32})
      for (int64_t dv : {20, 28, 52, 428})
        for (bool scaled : {false, true}) {
          const int64_t H = 3, steps = 4;
          const std::vector<float> ld = retnet::log_decay_default(H);
          const std::vector<float> gamma = gammas(ld);
          const std::vector<float> scale = randu(size_t(B * H), 9, 0.1f, 1.0f);
          std::vector<std::vector<float>> want_states;
          for (int64_t b = 0; b < B; ++b) want_states.push_back(randu(size_t(H * dk * dv), 40 + uint32_t(b), -3.f, 3.f));
          const std::vector<std::vector<float>> init = want_states;
          std::vector<float> want_all;
          std::vector<std::vector<float>> qs, ks, vs;
          for (int64_t t = 0; t < steps; ++t) {
            qs.push_back(randu(size_t(B * H * dk), 50 + uint32_t(t)));
            ks.push_back(randu(size_t(B * H * dk), 60 + uint32_t(t)));
            vs.push_back(randu(size_t(B * H * dv), 70 + uint32_t(t)));
            std::vector<float*> ptrs;
            for (auto& s : want_states) ptrs.push_back(s.data());
            std::vector<float> out(size_t(B * H * dv));
            retnet::RetentionStepArgs a;
            a.q = qs.back().data(), a.k = ks.back().data(), a.v = vs.back().data(), a.states = ptrs.data();
            a.out = out.data(), a.B = B, a.H = H, a.dk = dk, a.dv = dv, a.gamma = gamma.data();
            std::vector<float> ones(size_t(B * H), 1.0f);
            a.out_scale = scaled ? scale.data() : ones.data();
            cpu.retention_step(a);
            want_all.insert(want_all.end(), out.begin(), out.end());
          }
          for (auto& s : want_states) want_all.insert(want_all.end(), s.begin(), s.end());

          const std::vector<float> got = run_checked([&] {
            std::vector<std::unique_ptr<DevBuf<float>>> st;
            std::vector<float*> ptrs;
            for (const auto& s : init) {
              st.push_back(std::make_unique<DevBuf<float>>(s));
              ptrs.push_back(st.back()->get());
            }
            DevBuf<float*> dptrs(ptrs);
            DevBuf<float> dgamma(gamma), dscale(scale), dout(size_t(B * H * dv));
            std::vector<float> all;
            for (int64_t t = 0; t < steps; ++t) {
              DevBuf<float> dq(qs[size_t(t)]), dk_(ks[size_t(t)]), dv_(vs[size_t(t)]);
              expect_ok(retnet::launch_retention_step(dq.get(), dk_.get(), dv_.get(), dptrs.get(), dout.get(), B, H, dk,
                                                      dv, dgamma.get(), scaled ? dscale.get() : nullptr, nullptr));
              const std::vector<float> o = dout.download();
              all.insert(all.end(), o.begin(), o.end());
            }
            for (auto& s : st) {
              const std::vector<float> v = s->download();
              all.insert(all.end(), v.begin(), v.end());
            }
            return all;
          });
          EXPECT_LE(rel_err(got, want_all), kTol) << "B=" << B << " dk=" << dk << " dv=" << dv;
        }
}

KTEST(Retention, ChunkedStateEqualsStepwiseState) {
  KTEST_REQUIRE_DEVICE();
  // Kernel against kernel: T recurrent steps and one chunked call (fla form, ρ = 1) must leave the
  // same state and produce the same outputs (S_n = γ S_{n−1} + k_n ⊗ v_n; o_n = q_n·S_n).
  const int64_t T = 19, H = 2, dk = 16, dv = 28, C = 8;
  const std::vector<float> ld = retnet::log_decay_default(H);
  const std::vector<float> gamma = gammas(ld);
  const std::vector<float> q = randu(size_t(T * H * dk), 1), k = randu(size_t(T * H * dk), 2),
                           v = randu(size_t(T * H * dv), 3), s0 = randu(size_t(H * dk * dv), 4);
  DevBuf<float> dq(q), dk_(k), dv_(v), dld(ld), dgamma(gamma);
  DevBuf<float> st_chunk(s0), st_step(s0), out_chunk(size_t(T * H * dv)), out_step(size_t(T * H * dv));
  DevBuf<uint8_t> ws(retnet::retention_chunk_workspace_bytes(T, H, dk, dv, C, retnet::RetentionNorm::None));
  expect_ok(retnet::launch_retention_chunk(dq.get(), dk_.get(), dv_.get(), st_chunk.get(), out_chunk.get(), T, H, dk,
                                           dv, C, dld.get(), retnet::RetentionNorm::None, ws.get(), nullptr));
  const std::vector<float*> ptr = {st_step.get()};
  DevBuf<float*> dptr(ptr);
  for (int64_t t = 0; t < T; ++t)
    expect_ok(retnet::launch_retention_step(dq.get() + t * H * dk, dk_.get() + t * H * dk, dv_.get() + t * H * dv,
                                            dptr.get(), out_step.get() + t * H * dv, 1, H, dk, dv, dgamma.get(),
                                            nullptr, nullptr));
  // exp(n·ld) vs γ^n differ by a few ulp per step (P6), hence the same tolerance as against the CPU.
  EXPECT_LE(rel_err(out_chunk.download(), out_step.download()), kTol);
  EXPECT_LE(rel_err(st_chunk.download(), st_step.download()), kTol);
}

}  // namespace
